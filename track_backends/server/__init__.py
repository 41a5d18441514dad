"""``track-backends serve``: an authenticated, allow-listed HTTP(S) server in front of any store.

The routes are exactly the Store primitives (see :mod:`.routes`); the client is
:class:`track_backends.stores.http.HttpStore`, which ``get_protocol("http://...")`` and
``"https://..."`` open. Importing this package imports neither starlette nor uvicorn: they are
imported by :mod:`.app` and :mod:`.run`, which the ``serve`` command loads when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app
    from .run import ServeConfig, serve

__all__ = ["ServeConfig", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    """Import the application and the runner on first use (they need starlette and uvicorn).

    Raises:
        AttributeError: ``name`` is not one of :data:`__all__`.
    """
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServeConfig":
        from .run import ServeConfig

        return ServeConfig
    if name == "serve":
        from .run import serve

        return serve
    raise AttributeError(name)
