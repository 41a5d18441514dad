"""The durable journal engine behind ``pickled:`` and ``file:`` stores.

State lives in memory, indexed, exactly as in the ``ephemeral:`` engine (:class:`MemoryStore`).
Every write is planned there, then appended to a journal file as one checksummed record and
flushed with ``fdatasync`` before the call returns; only then is it applied in memory.

Concurrency: processes (and several stores in one process) share a journal through an
``fcntl.flock`` on ``<path>.lock`` (:mod:`.filelock`), a file that is never deleted. A write holds the lock
exclusively, a read holds it shared; either first replays the records that others appended since
this store last looked (one ``stat`` when nothing changed). Lock waits poll with exponential
backoff and give up after ``lock_timeout`` seconds with :class:`LockTimeoutError`.

Crashes: a writer that dies in the middle of an append leaves a torn last record. Readers ignore
it and the next writer truncates it. A damaged record followed by valid data is corruption and
raises :class:`CorruptStoreError`, as does a file that this library did not write (which is never
unpickled).

Compaction: when the journal has grown past ``max(compact_bytes, 2 * snapshot)`` bytes since its
last snapshot (or on :meth:`JournalStore.compact`), a snapshot of the live state is written to
``<path>.tmp-<pid>``, flushed, and renamed over the journal, and the directory is flushed. Other
processes notice the new inode and reload. The header of each file carries a generation number
that compaction increments.

File layout: a header line (a checksummed JSON line naming the format, its version, the codec,
the generation and the snapshot size), then records; see :mod:`.codecs`. An empty file is an
empty journal that nothing has written to yet: opening and reading it leave it empty, and the
first write gives it its header (written to a temporary file and renamed, like a snapshot).
"""

from __future__ import annotations

import errno
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import CorruptStoreError, LockTimeoutError, StoreError, StoreUnavailableError
from ..store import DEFAULT_INDEXES
from .blobdir import DirectoryBlobs
from .codecs import CODECS, EMPTY, FORMAT_VERSION, BadFrame, check_header, header_line, write_file
from .filelock import FileLock
from .gcpause import gc_paused
from .memory import MemoryStore, upgrade_layout

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT = 30.0
DEFAULT_COMPACT_BYTES = 4 * 1024 * 1024
_READ_CHUNK = 16 * 1024 * 1024
_GC_PAUSE_BYTES = 1 << 20
_SNAPSHOT_CHUNK = 1000  # documents per snapshot record
_HOLDER = "another process or thread holds it; raise lock_timeout=... in the URI to wait longer"


def _check_arguments(codec: str, lock_timeout: float, compact_bytes: int) -> None:
    if codec not in CODECS:
        raise ValueError(f"unknown journal codec {codec!r}; expected one of {sorted(CODECS)}")
    if type(lock_timeout) not in (int, float) or not math.isfinite(lock_timeout) or lock_timeout < 0:
        raise ValueError(f"lock_timeout must be a finite number of seconds >= 0, got {lock_timeout!r}")
    if type(compact_bytes) is not int or compact_bytes < 0:
        raise ValueError(f"compact_bytes must be an int >= 0, got {compact_bytes!r}")


class JournalStore(DirectoryBlobs, MemoryStore):
    """A durable, multi-process store: an in-memory engine plus an append-only journal file.

    Opening and reading never modify the journal file: a missing file is created with its header
    (unless ``create=False``), and an existing empty file is read as an empty store and gets its
    header on the first write.

    Args:
        path: The journal file; its parent directory must exist. ``<path>.lock`` is created next
            to it and never deleted.
        codec: ``"pickled"`` (binary pickle frames) or ``"file"`` (JSON lines, readable by ``jq``).
        lock_timeout: Seconds to wait for the file lock before raising LockTimeoutError.
        fsync: Flush each write to disk before returning. ``False`` is faster but UNSAFE: a power
            loss or OS crash can lose acknowledged writes (a process crash cannot).
        compact_bytes: Journal growth since the last snapshot, in bytes, after which the journal
            is compacted automatically (it must also exceed twice the snapshot). 0 disables
            automatic compaction.
        create: Create the file when it is missing. With ``False``, a missing file is an error
            and nothing is created (not even the lock file).

    Raises:
        StoreUnavailableError: ``create=False`` and the file does not exist.
        StoreError: The directory does not exist or the files cannot be opened.
        CorruptStoreError: The file exists and is not a journal of this codec.
        LockTimeoutError: The lock could not be taken within ``lock_timeout``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        codec: str = "pickled",
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        fsync: bool = True,
        compact_bytes: int = DEFAULT_COMPACT_BYTES,
        create: bool = True,
    ) -> None:
        super().__init__()
        _check_arguments(codec, lock_timeout, compact_bytes)
        self.scheme = codec
        self._codec = CODECS[codec]
        self.path = os.path.realpath(os.fspath(path))  # compaction must replace the file, not a link
        self.lock_path = self.path + ".lock"
        self.lock_timeout = float(lock_timeout)
        self.fsync = bool(fsync)
        self.compact_bytes = compact_bytes
        self.generation = 0
        self._fd: int | None = None  # data file, O_APPEND
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of self._fd
        self._offset = 0  # end of the last record applied; 0 while the file is empty (no header)
        self._snap_end = 0  # end of the snapshot in the current file
        self._compact_after = 0  # offset past which we compact
        self._want_compact = False
        self._flock = FileLock(self.lock_path, holder=_HOLDER)
        self._depth = 0  # nesting of _reading/_writing in this process (under self._lock)
        self._exclusive = False
        self._pid = os.getpid()
        self._check_path(os.fspath(path), create)
        try:
            self._flock.open()
            if create:
                self._create_if_missing()
            with self._reading():
                pass
        except BaseException:
            self._close_fds()
            raise

    def _check_path(self, given: str, create: bool) -> None:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StoreError(f"cannot open journal {self.path}: directory {directory} does not exist")
        if os.path.isdir(self.path):
            raise StoreError(f"cannot open journal {self.path}: it is a directory")
        if not create and not os.path.exists(self.path):
            raise StoreUnavailableError(
                f"no journal at {self.path} (given as {given!r}) and create=false: check the path "
                "(a relative path is resolved against the current directory)"
            )

    # -- files and locks -------------------------------------------------------------------------
    def _after_fork(self) -> None:
        """A forked child must not use its parent's data file description: reload from disk."""
        self._pid = os.getpid()
        self._close_data()
        self._depth = 0

    def _create_if_missing(self) -> None:
        """Create the journal (header only) if it is missing, under the exclusive lock."""
        if os.path.exists(self.path):
            return
        with self._lock, self._flock.held(True, self.lock_timeout):
            if not os.path.exists(self.path):  # else another process created it meanwhile
                self._write_file(header_line(self._codec.name, 0, 0), [])

    def _write_file(self, header: bytes, chunks: list[bytes]) -> None:
        """Replace the journal with a new file (under the exclusive lock), keeping its permissions."""
        mode = os.fstat(self._fd).st_mode & 0o7777 if self._fd is not None else None
        write_file(self.path, header, chunks, mode)

    # -- catching up -----------------------------------------------------------------------------
    def _open_data(self) -> int:
        """(Re)open the journal file, check its header and reset the state; return its size."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError as e:
            raise StoreError(f"the journal {self.path} has disappeared") from e
        except OSError as e:
            raise StoreError(f"cannot open journal {self.path}: {e.strerror}") from e
        try:
            st = os.fstat(fd)
            header, header_len = (
                check_header(os.pread(fd, 4096, 0), self._codec.name, self.path) if st.st_size else EMPTY
            )
        except BaseException:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._colls = {}
        self.generation = header["generation"]
        self._version = header.get("version", FORMAT_VERSION) if st.st_size else FORMAT_VERSION
        self._offset = header_len  # 0 for an empty file: it gets its header on the first write
        self._snap_end = header_len + header["snapshot_bytes"]
        self._set_compact_after()
        return st.st_size

    def _set_compact_after(self) -> None:
        self._compact_after = self._snap_end + max(self.compact_bytes, 2 * self._snap_end)

    def _catch_up(self, exclusive: bool) -> None:
        """Replay what other processes appended; reload after a compaction; drop a torn tail."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError as e:
            raise StoreError(f"the journal {self.path} has disappeared") from e
        except OSError as e:
            raise StoreError(f"cannot stat journal {self.path}: {e.strerror}") from e
        size = st.st_size
        if (
            self._fd is None
            or (st.st_dev, st.st_ino) != self._ident
            or size < self._offset
            or (self._offset == 0 and size > 0)  # an empty file got its header in place
        ):
            if self._fd is not None:
                log.debug("journal %s was replaced or shrank: reloading", self.path)
            self._ident = None  # until the reload completes
            size = self._open_data()
            assert self._fd is not None
            st = os.fstat(self._fd)
            self._ident = (st.st_dev, st.st_ino)
        if size > self._offset:
            # A bulk load allocates millions of objects that all stay alive: the cyclic GC would
            # rescan them again and again (more than half the load time), so pause it meanwhile.
            try:
                with gc_paused(size - self._offset > _GC_PAUSE_BYTES):
                    self._replay(size)
            except BaseException:
                self._ident = None  # the state may be half-applied: reload next time
                raise
        if self._version < FORMAT_VERSION:
            upgrade_layout(self._colls)  # layout 1: points still inside trials (idempotent)
        if exclusive and size > self._offset:
            self._truncate_torn_tail(size)

    def _replay(self, size: int) -> None:
        """Apply the records in ``[self._offset, size)``; stop before a torn last record."""
        assert self._fd is not None
        codec = self._codec
        buf = b""
        base = self._offset  # file offset of buf[0]
        read_to = self._offset
        while read_to < size:
            chunk = os.pread(self._fd, min(_READ_CHUNK, size - read_to), read_to)
            if not chunk:
                break
            read_to += len(chunk)
            buf = buf[self._offset - base :] + chunk if buf else chunk
            base = self._offset
            at_eof = read_to >= size
            try:
                for rec, end in codec.scan(buf):
                    try:
                        self.apply_record(rec)
                    except Exception as e:
                        raise CorruptStoreError(
                            f"{self.path}: the record at byte {self._offset} cannot be replayed "
                            f"({type(e).__name__}: {e})"
                        ) from e
                    self._offset = base + end
            except BadFrame as bad:
                if not at_eof:  # torn or damaged? that depends on everything after it
                    buf += os.pread(self._fd, size - read_to, read_to)
                if not codec.valid_after(buf, bad.start):
                    return  # a torn (partial, garbled or zero-filled) last write: ignore it
                raise CorruptStoreError(
                    f"{self.path} is damaged: the record at byte {base + bad.start} is bad ({bad.reason}) and "
                    "valid data follows it"
                ) from None
        if self._offset < size and buf and codec.valid_after(buf, self._offset - base):
            raise CorruptStoreError(  # e.g. a damaged length field makes a record overrun the file
                f"{self.path} is damaged: the record at byte {self._offset} runs past the end of the file and "
                "valid data follows its start"
            )

    def _truncate_torn_tail(self, size: int) -> None:
        assert self._fd is not None
        log.warning(
            "journal %s: dropping a torn last record (%d bytes at offset %d) left by a crashed writer",
            self.path,
            size - self._offset,
            self._offset,
        )
        try:
            os.ftruncate(self._fd, self._offset)
        except OSError as e:
            raise StoreError(f"cannot truncate the torn tail of {self.path}: {e.strerror}") from e

    # -- MemoryStore hooks -----------------------------------------------------------------------
    @contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        deadline = time.monotonic() + self.lock_timeout
        if not self._lock.acquire(timeout=self.lock_timeout):
            raise LockTimeoutError(
                f"timed out after {self.lock_timeout:g} s waiting for another thread of this process to release "
                f"the journal {self.path}"
            )
        try:
            self._check_open()
            if self._depth:  # nested call in the same thread: the lock is already ours
                if exclusive and not self._exclusive:
                    raise StoreError("cannot write to a journal store from inside one of its reads")
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            if os.getpid() != self._pid:
                self._after_fork()
            self._flock.acquire(exclusive, self.lock_timeout, deadline)
            self._depth, self._exclusive = 1, exclusive
            try:
                self._catch_up(exclusive)
                yield
                if self._want_compact and exclusive:
                    self._auto_compact()
            finally:
                self._depth, self._exclusive = 0, False
                self._flock.release()
        finally:
            self._lock.release()

    def _reading(self) -> Any:
        return self._locked(False)

    def _writing(self) -> Any:
        return self._locked(True)

    def _commit(self, record: list[Any], planned: Any = None) -> None:
        """Append ``record`` durably, then apply it in memory (called under the exclusive lock)."""
        assert self._fd is not None and self._exclusive
        data = self._codec.frame(record)
        if self._offset == 0:  # an empty file: its header first
            self._write_file(header_line(self._codec.name, 0, 0), [])
            self._reopen_rewritten("after writing its header")
        elif self._version < FORMAT_VERSION:  # an older format: rewritten in this one first
            self._compact_locked()
            self._version = FORMAT_VERSION
        start = self._offset
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                if n <= 0:  # pragma: no cover - regular files do not do this
                    raise OSError(errno.EIO, "short write")
                view = view[n:]
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError as e:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                self._ident = None  # unknown file state: reload from disk next time
            raise StoreError(f"cannot append to journal {self.path}: {e.strerror or e}") from e
        self._offset = start + len(data)
        self.apply_record(record, planned)
        if self.compact_bytes and self._offset > self._compact_after:
            self._want_compact = True

    # -- compaction ------------------------------------------------------------------------------
    def _snapshot_records(self) -> Iterator[list[Any]]:
        for name, c in self._colls.items():
            defaults = {paths for paths, _ in DEFAULT_INDEXES.get(name, ())}
            for ix in c.indexes:
                if ix.paths not in defaults:
                    yield ["index", name, list(ix.paths), ix.unique]
            docs = list(c.docs.values())
            for i in range(0, len(docs), _SNAPSHOT_CHUNK):
                yield ["insert", name, docs[i : i + _SNAPSHOT_CHUNK]]
            yield from c.points.records(name)

    def _compact_locked(self) -> None:
        """Rewrite the journal as a snapshot of the state (under the exclusive lock, caught up)."""
        self._want_compact = False
        frame = self._codec.frame
        chunks = [frame(r) for r in self._snapshot_records()]
        snapshot_bytes = sum(len(c) for c in chunks)
        header = header_line(self._codec.name, self.generation + 1, snapshot_bytes)
        self._write_file(header, chunks)
        self._reopen_rewritten("after compaction")
        self.generation += 1
        log.debug("compacted journal %s to %d bytes (generation %d)", self.path, self._offset, self.generation)

    def _reopen_rewritten(self, when: str) -> None:
        """Open the file that :meth:`_write_file` just renamed over the journal."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except OSError as e:
            self._ident = None
            raise StoreError(f"cannot reopen journal {self.path} {when}: {e.strerror}") from e
        st = os.fstat(fd)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._offset = self._snap_end = st.st_size  # what we just wrote: a header and a snapshot
        self._set_compact_after()

    def _auto_compact(self) -> None:
        try:
            self._compact_locked()
        except StoreError as e:  # the write itself is durable: report, retry after more growth
            log.warning("automatic compaction of %s failed: %s", self.path, e)
            self._compact_after = self._offset + max(self.compact_bytes, 2 * self._snap_end)

    def compact(self) -> None:
        """Rewrite the journal as a snapshot of the live documents and indexes.

        Raises:
            StoreError: The snapshot could not be written; the journal is left as it was.
            LockTimeoutError: The lock could not be taken within ``lock_timeout``.
        """
        with self._writing():
            self._compact_locked()

    # -- Store API -------------------------------------------------------------------------------
    def commit(self) -> None:
        """Do nothing: every write is already durable when it returns."""

    def _close_data(self) -> None:
        fd, self._fd, self._ident = self._fd, None, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _close_fds(self) -> None:
        self._close_data()
        self._flock.close()

    def close(self) -> None:
        """Close the journal and its lock file; later calls raise StoreUnavailableError."""
        with self._lock:
            self._close_fds()
            self.closed = True
            self._colls = {}

    def __del__(self) -> None:
        try:
            self._close_fds()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"generation {self.generation}"
        return f"<JournalStore {self.scheme}:{self.path} ({state})>"


from .journal_uri import file_from_uri, pickled_from_uri  # noqa: E402  (the registry's factories)

__all__ = ["JournalStore", "file_from_uri", "pickled_from_uri"]
