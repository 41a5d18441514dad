"""A read-only web dashboard over any store: ``track-backends ui URI``.

It shows projects and groups with trial counts by status, a paginated, sortable and filterable
trials table, each trial's document and metric curves, and a scatter of a parameter against a
metric summary per group; the page polls, so it follows running workers. It only reads (every
route is ``GET``) and draws its charts with the vendored uPlot (``static/``, MIT), never from a CDN.

Starlette and uvicorn (the ``ui`` extra) are imported when a dashboard is created, not when this
package is, so ``import track_backends`` needs neither.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import TYPE_CHECKING, Any

from ..errors import DriverNotInstalledError, TrackBackendsError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..protocol import DocumentProtocol

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8766
DEFAULT_POLL = 4.0
INSTALL_HINT = "the dashboard needs starlette and uvicorn: pip install 'track-backends[ui]'"


class DashboardError(TrackBackendsError):
    """The dashboard cannot start (e.g. its address is taken)."""


def create_app(proto: DocumentProtocol, poll: float = DEFAULT_POLL) -> Starlette:
    """The dashboard's ASGI application over an open Protocol (see :mod:`track_backends.ui.app`).

    Raises:
        DriverNotInstalledError: Starlette is not installed.
    """
    try:
        from .app import create_app as create
    except ImportError as e:
        raise DriverNotInstalledError(f"{INSTALL_HINT} ({e})") from e
    return create(proto, poll)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one).

    Raises:
        DashboardError: The address cannot be bound (taken, or not this machine's).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise DashboardError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise DashboardError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def serve(
    proto: DocumentProtocol,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    poll: float = DEFAULT_POLL,
    announce: Any = None,
) -> None:
    """Serve the dashboard until interrupted (Ctrl-C or SIGTERM); the Protocol is closed at the end.

    Args:
        proto: The Protocol over the store to show.
        host: The address to listen on (``127.0.0.1``: this machine only; there is no login).
        port: The port (0 picks a free one).
        poll: Seconds between the page's refreshes.
        announce: Called with the dashboard's URL once it listens (default: print it).

    Raises:
        DriverNotInstalledError: Starlette or uvicorn is not installed.
        DashboardError: The address cannot be bound.
    """
    try:
        import uvicorn
    except ImportError as e:
        proto.close()
        raise DriverNotInstalledError(f"{INSTALL_HINT} ({e})") from e
    try:
        app = create_app(proto, poll)
        sock = bind(host, port)
    except BaseException:
        proto.close()
        raise
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    if not ipaddress.ip_address(bound[0].split("%")[0]).is_loopback:
        print(f"warning: no login; whoever reaches {shown}:{bound[1]} can read the whole store", file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    started = server.startup

    async def startup(sockets: Any = None) -> None:
        # announced once uvicorn has started, its Ctrl-C/SIGTERM handlers in place: a signal sent
        # as soon as the URL shows stops the dashboard cleanly instead of landing mid-start-up
        await started(sockets=sockets)
        if server.started:
            (announce or _print)(f"http://{shown}:{bound[1]}/")

    server.startup = startup  # type: ignore[method-assign]
    try:
        with sock:
            server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C is how one stops it (uvicorn re-raises it after shutting down)
        pass
    finally:
        proto.close()  # the application's shutdown closed it already, unless it never started


def _print(url: str) -> None:
    print(f"dashboard (read-only) at {url}  (Ctrl-C stops it)", flush=True)
    sys.stdout.flush()


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DashboardError", "bind", "create_app", "serve"]
