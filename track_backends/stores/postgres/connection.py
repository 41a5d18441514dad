"""The connection pools of one store: opened on first use, retries, and wrapped driver errors.

Serialization failures (``40001``) and deadlocks (``40P01``) are retried a bounded number of
times with a short random back-off; a read on a dropped connection is repeated once. Every
driver exception leaves as a :mod:`track_backends.errors` exception, with passwords masked.

A store has a second, lazily opened pool for claims through an index (:data:`WALK_SETTINGS`):
its sessions do not let the planner pick a sequential or a bitmap scan, so a claim always walks
the index and marks the entries of claimed trials dead as it goes (see the measurements in
:mod:`.indexes`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
import psycopg.errors as pgerr
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from ...errors import (
    DuplicateKeyError,
    EncodingError,
    LockTimeoutError,
    QueryError,
    StoreError,
    StoreUnavailableError,
)
from ...uri import mask_password
from .jsonb import loads
from .options import Options

T = TypeVar("T")

WALK_SETTINGS = {"enable_seqscan": "off", "enable_bitmapscan": "off"}
"""Session settings of the claim pool (PostgreSQL only).

A ``LIMIT 1 ... FOR UPDATE SKIP LOCKED`` claim through the ``(group_id, status.name)`` index
costs O(1) only as a plain index scan: its dead entries are marked and then skipped. The
planner's other choices depend on statistics that a sweep makes stale at once: a sequential
scan (statistics saying most trials are pending) reads every claimed trial again at each claim;
a bitmap scan (statistics from an empty table, or none) collects every entry of the range, dead
ones included, and never marks them. Claims that no index answers do not use this pool.
"""

RETRY_SQLSTATES = ("40001", "40P01")
"""Serialization failure and deadlock: the transaction is run again."""
QUERY_SQLSTATE = "TB001"
"""Raised by the helper functions of :mod:`.functions` when an update does not apply."""
PYTHON_SQLSTATE = "TB002"
"""Raised by the numeric helpers of :mod:`.functions` for a value the store updates in Python."""
_UNICODE_SQLSTATES = ("22P05", "22P02", "22021", "54000")
_GONE_SQLSTATES = ("57P01", "57P02")


def wrap_error(e: psycopg.Error, opts: Options) -> Exception:
    """The :mod:`track_backends.errors` exception for a driver error (password masked)."""
    state = getattr(e, "sqlstate", None)
    msg = mask_password(str(e)).strip()
    if isinstance(e, pgerr.UniqueViolation):
        return DuplicateKeyError(msg)
    if state == QUERY_SQLSTATE:
        return QueryError(msg)
    if state in _UNICODE_SQLSTATES and "unicode" in msg.lower():
        return EncodingError(f"PostgreSQL cannot store this value: {msg}")
    if state == "55P03":
        return LockTimeoutError(msg)
    if state in RETRY_SQLSTATES:
        return StoreError(f"gave up after {opts.max_retries} retries: {msg}")
    if isinstance(e, psycopg.OperationalError) or (state or "").startswith("08") or state in _GONE_SQLSTATES:
        return unavailable(e, opts)
    return StoreError(msg)


def unavailable(e: BaseException | str, opts: Options) -> StoreUnavailableError:
    """The error for a server that cannot be reached (password masked)."""
    return StoreUnavailableError(
        f"cannot reach the {opts.scheme} server at {opts.where}: {mask_password(str(e)).strip()}"
    )


def _configure(conn: psycopg.Connection) -> None:
    set_json_loads(loads, conn)


def with_settings(conninfo: str, settings: dict[str, str]) -> str:
    """``conninfo`` with session settings added to its ``options`` (``-c name=value``)."""
    kw: dict[str, Any] = dict(psycopg.conninfo.conninfo_to_dict(conninfo))
    extra = " ".join(f"-c {k}={v}" for k, v in settings.items())
    kw["options"] = f"{kw['options']} {extra}" if kw.get("options") else extra
    return psycopg.conninfo.make_conninfo(**kw)


class Connections:
    """A lazily opened pool; ``setup`` (if any) runs once on a first connection before the pool opens.

    Attributes:
        retries: How many transactions were retried after a serialization failure or deadlock.
    """

    def __init__(
        self,
        opts: Options,
        setup: Callable[[psycopg.Connection], None] | None,
        *,
        settings: dict[str, str] | None = None,
        name: str = "",
    ) -> None:
        self.opts = opts
        self._setup = setup
        self._conninfo = with_settings(opts.conninfo, settings) if settings else opts.conninfo
        self._name = f"track_backends{name}:{opts.where}"
        self._pool: ConnectionPool | None = None
        self._open_lock = threading.Lock()
        self.closed = False
        self.retries = 0

    def _kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"autocommit": True, "prepare_threshold": self.opts.prepare_threshold}
        if self.opts.password is not None:
            kw["password"] = self.opts.password
        return kw

    def _closed_error(self) -> StoreUnavailableError:
        return StoreUnavailableError(f"the {self.opts.scheme} store at {self.opts.where} is closed")

    def _first_connection(self) -> None:
        """Connect once and run ``setup`` (bootstrap), so the pool opens on a ready namespace."""
        opts = self.opts
        try:
            conn = psycopg.connect(self._conninfo, **self._kwargs())
        except psycopg.OperationalError as e:
            raise unavailable(e, opts) from e
        except psycopg.Error as e:
            raise StoreError(f"cannot open the {opts.scheme} store at {opts.where}: {mask_password(str(e))}") from e
        try:
            _configure(conn)
            if self._setup is not None:
                self._setup(conn)
        finally:
            conn.close()

    def connect(self) -> psycopg.Connection:
        """A new connection outside the pool, not in autocommit, for one long transaction (the caller closes it).

        The namespace is set up first (the pool is opened if need be).

        Raises:
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The server refused the connection.
        """
        self.open()
        try:
            conn = psycopg.connect(self._conninfo, **{**self._kwargs(), "autocommit": False})
        except psycopg.Error as e:
            raise wrap_error(e, self.opts) from e
        _configure(conn)
        return conn

    def open(self) -> ConnectionPool:
        """The pool, opened (and the namespace set up) on first use.

        Raises:
            StoreUnavailableError: The server cannot be reached, or the store is closed.
            StoreError: The server refused the connection or the setup.
        """
        pool = self._pool
        if pool is not None:
            return pool
        if self.closed:
            raise self._closed_error()
        with self._open_lock:
            if self._pool is not None:
                return self._pool
            if self._setup is not None:
                self._first_connection()
            opts = self.opts
            pool = ConnectionPool(
                self._conninfo,
                kwargs=self._kwargs(),
                min_size=opts.pool_min,
                max_size=opts.pool_max,
                timeout=opts.pool_timeout,
                configure=_configure,
                open=False,
                name=self._name,
                reconnect_timeout=max(opts.connect_timeout * 3, 10.0),
            )
            try:
                pool.open(wait=opts.pool_min > 0, timeout=opts.connect_timeout * 2 + 1)
            except PoolTimeout as e:
                pool.close()
                raise unavailable(e, opts) from e
            self._pool = pool
            return pool

    def run(self, fn: Callable[[psycopg.Connection], T], *, read: bool = False) -> T:
        """Run ``fn(conn)`` on a pooled connection, retrying serialization failures and deadlocks.

        Args:
            fn: The work; it runs again from the start on a retry, so it must open its own
                transaction when it needs one.
            read: ``fn`` only reads, so it is also repeated once on a dropped connection.

        Raises:
            StoreUnavailableError: No connection, or the store is closed.
            EncodingError: A value PostgreSQL cannot hold.
            StoreError: Any other failure (see :func:`wrap_error` for the subclasses).
        """
        pool = self._pool or self.open()
        attempt = 0
        while True:
            try:
                conn = pool.getconn(timeout=self.opts.pool_timeout)
                try:
                    return fn(conn)
                finally:
                    pool.putconn(conn)
            except psycopg.Error as e:
                if not self._again(e, attempt, read):
                    raise wrap_error(e, self.opts) from e
                attempt += 1
            except PoolTimeout as e:
                if self.closed:
                    raise self._closed_error() from e
                raise unavailable(f"no connection within {self.opts.pool_timeout} s ({e})", self.opts) from e
            except PoolClosed as e:  # the pool was closed under us
                raise self._closed_error() from e
            except UnicodeEncodeError as e:  # a lone surrogate cannot be sent as UTF-8
                raise EncodingError(f"PostgreSQL cannot store this value: {e}") from e

    def _again(self, e: psycopg.Error, attempt: int, read: bool) -> bool:
        """Whether to run the work again after ``e`` (sleeping before a retried transaction)."""
        if getattr(e, "sqlstate", None) in RETRY_SQLSTATES and attempt < self.opts.max_retries:
            self.retries += 1
            time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** (attempt + 1))))
            return True
        # a dropped connection: the pool replaces it; reads are safe to repeat
        return read and attempt == 0 and isinstance(e, psycopg.OperationalError) and not self.closed

    def close(self) -> None:
        """Close the pool; later calls raise :class:`StoreUnavailableError`."""
        self.closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
