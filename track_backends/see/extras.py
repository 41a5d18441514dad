"""Optional dependencies of the result views, imported only when a view needs them.

pandas and pyarrow come with the ``analysis`` extra (``pip install 'track-backends[analysis]'``),
matplotlib with the ``plot`` extra. ``import track_backends`` imports none of them: each is
imported by :func:`require` at the first call that needs it, and a missing one raises
:class:`ExtraNotInstalledError`, whose message names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ExtraNotInstalledError, OutputError

__all__ = ["EXTRAS", "ExtraNotInstalledError", "OutputError", "require"]

EXTRAS: dict[str, str] = {"pandas": "analysis", "pyarrow": "analysis", "matplotlib": "plot"}
"""Top-level module -> the pip extra that installs it."""


def require(module: str, what: str) -> Any:
    """Import an optional module, or say which extra installs it.

    Args:
        module: The module to import, e.g. ``"pyarrow.parquet"``.
        what: The feature that needs it, for the message (e.g. ``"export --format parquet"``).

    Returns:
        The imported module.

    Raises:
        ExtraNotInstalledError: The module cannot be imported.
    """
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = EXTRAS.get(top, top)
        raise ExtraNotInstalledError(
            f"{what} needs {top}, which is not installed ({e}); install it with: pip install 'track-backends[{extra}]'"
        ) from None
