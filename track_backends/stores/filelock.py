"""One cross-process lock: an ``fcntl.flock`` on a lock file that is never deleted.

Deleting a lock file breaks mutual exclusion (a process still holding the old inode and one that
created a new file both think they own the lock), so the file is created on first use and left
in place. Waits poll with exponential backoff up to a deadline, then raise
:class:`~track_backends.errors.LockTimeoutError` naming the file and the timeout. The uncontended
path is a single non-blocking ``flock`` call.

After ``os.fork()`` the child shares its parent's open file descriptions, hence its locks: a
:class:`FileLock` notices the fork and opens its own description in the child.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import LockTimeoutError, StoreError

BACKOFF_START = 50e-6
"""First pause of a contended wait, in seconds (doubled at each retry)."""
BACKOFF_MAX = 2e-3
"""Longest pause between two tries, in seconds."""

_EXCLUSIVE = fcntl.LOCK_EX | fcntl.LOCK_NB
_SHARED = fcntl.LOCK_SH | fcntl.LOCK_NB
_forks = 0


def _forked() -> None:
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class FileLock:
    """A shared/exclusive ``flock`` on ``path``, with bounded waits.

    Process-level only: threads of one process share the lock, so callers serialise their
    threads themselves (with a thread lock taken first).

    Args:
        path: The lock file. It is created (mode ``0o666`` less the umask) when first needed and
            never deleted.
        holder: Who to blame in a timeout message, and what to do about it (e.g. ``"another
            process holds it; raise lock_timeout=... to wait longer"``).
        backoff_max: Longest pause between two tries while waiting, in seconds.
    """

    def __init__(self, path: str, *, holder: str = "another process holds it", backoff_max: float = BACKOFF_MAX):
        self.path = path
        self.holder = holder
        self.backoff_max = backoff_max
        self._fd: int | None = None
        self._forks = _forks

    def open(self) -> None:
        """Open the lock file now (creating it), so a bad path fails early.

        Raises:
            StoreError: The file cannot be created or opened.
        """
        if self._fd is not None and self._forks == _forks:
            return
        if self._fd is not None:  # inherited from the parent: the child needs its own description
            self._close_fd()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as e:
            raise StoreError(f"cannot open the lock file {self.path}: {e.strerror}") from e
        self._forks = _forks

    def acquire(self, exclusive: bool, timeout: float, deadline: float | None = None) -> None:
        """Take the lock, waiting at most until ``deadline`` (default: ``timeout`` from now).

        Args:
            exclusive: An exclusive lock (writers) rather than a shared one (readers).
            timeout: The caller's whole timeout, in seconds (named in the error).
            deadline: ``time.monotonic()`` after which to give up, when the caller's wait
                started earlier.

        Raises:
            LockTimeoutError: The lock was not free before the deadline.
            StoreError: The lock file cannot be opened or locked.
        """
        if self._fd is None or self._forks != _forks:
            self.open()
        assert self._fd is not None
        op = _EXCLUSIVE if exclusive else _SHARED
        try:
            fcntl.flock(self._fd, op)
            return
        except BlockingIOError:
            pass
        except OSError as e:
            raise StoreError(f"cannot lock {self.path}: {e.strerror}") from e
        self._wait(op, exclusive, timeout, time.monotonic() + timeout if deadline is None else deadline)

    def _wait(self, op: int, exclusive: bool, timeout: float, deadline: float) -> None:
        assert self._fd is not None
        delay = BACKOFF_START
        while True:
            now = time.monotonic()
            if now >= deadline:
                mode = "exclusive" if exclusive else "shared"
                raise LockTimeoutError(
                    f"timed out after {timeout:g} s waiting for the {mode} lock on {self.path} ({self.holder})"
                )
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, self.backoff_max)
            try:
                fcntl.flock(self._fd, op)
                return
            except BlockingIOError:
                pass
            except OSError as e:
                raise StoreError(f"cannot lock {self.path}: {e.strerror}") from e

    def release(self) -> None:
        """Release the lock (a no-op when it is not held or the file is closed)."""
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:  # pragma: no cover - only if the fd is gone
                pass

    @contextmanager
    def held(self, exclusive: bool, timeout: float, deadline: float | None = None) -> Iterator[None]:
        """Hold the lock for the duration of a ``with`` block (see :meth:`acquire`)."""
        self.acquire(exclusive, timeout, deadline)
        try:
            yield
        finally:
            self.release()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        """Close the lock file (releasing the lock); the file stays. The lock can be taken again."""
        self._close_fd()

    def __repr__(self) -> str:
        return f"<FileLock {self.path}>"


__all__ = ["BACKOFF_MAX", "BACKOFF_START", "FileLock"]
