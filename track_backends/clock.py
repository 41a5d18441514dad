"""The clock that decides when leases expire.

Memory and journal stores use this machine's clock. A server store uses the server's clock, so
that workers whose own clocks are wrong still agree on which leases are live: it reads the
server's time once, keeps the offset to the local clock, and reads it again every ``refresh``
seconds or whenever the local clock jumps backwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ServerClock:
    """The server's time, from a measured offset to the local clock.

    Args:
        fetch: Returns the server's time in seconds since the epoch (one round trip).
        refresh: Seconds after which the offset is measured again.

    The error is at most half the round trip of the measurement, plus the local clock's drift
    since then.
    """

    def __init__(self, fetch: Callable[[], float], refresh: float = 30.0) -> None:
        self._fetch = fetch
        self._refresh = refresh
        self._offset = 0.0
        self._measured_at: float | None = None
        self._lock = threading.Lock()

    def _measure(self) -> None:
        t0 = time.time()
        server = self._fetch()
        t1 = time.time()
        self._offset = server - (t0 + t1) / 2
        self._measured_at = t1

    def now(self) -> float:
        """The server's current time, in seconds since the epoch."""
        local = time.time()
        at = self._measured_at
        if at is None or local - at > self._refresh or local < at:
            with self._lock:
                self._measure()
            local = time.time()
        return local + self._offset

    def offset(self) -> float:
        """Seconds to add to the local clock to get the server's (measured if not yet)."""
        self.now()
        return self._offset
