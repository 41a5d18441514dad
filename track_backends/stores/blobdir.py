"""Blobs of the journal stores: files in a directory beside the journal.

A journal ``/data/store.jsonl`` keeps its blobs in ``/data/store.jsonl.blobs/``, one file per
content at ``<first two hex digits>/<sha256>``. An upload writes ``tmp/<random>.part``, fsyncs
it, renames it to its address (an atomic step: a reader sees the whole file or none) and fsyncs
the directory, so a process killed half-way leaves only an invisible ``.part`` file, removed by
``track-backends gc`` once it is older than the grace period. Two processes that store the same
bytes at once both rename onto the same address, which is harmless. With the journal's
``fsync=false`` the fsyncs are skipped (faster, and unsafe on power loss, like its own writes).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import IO

from ..blobs import BlobStat, BlobWriter, check_sha
from ..errors import NotFoundError, StoreError

TMP = "tmp"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs(path: str) -> None:
    """Create ``path`` (and parents) durably, if missing."""
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    _makedirs(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        return
    _fsync_dir(parent)


class _FileWriter(BlobWriter):
    def __init__(self, root: str, fsync: bool) -> None:
        super().__init__()
        self._root = root
        self._fsync = fsync
        tmp = os.path.join(root, TMP)
        try:
            _makedirs(tmp)
            self._tmp = os.path.join(tmp, f"{uuid.uuid4().hex}.part")
            self._file: IO[bytes] | None = open(self._tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as e:
            raise StoreError(f"cannot start an upload in {root}: {e.strerror or e}") from e

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
        except OSError as e:
            raise StoreError(f"cannot write the upload {self._tmp}: {e.strerror or e}") from e

    def _commit(self, sha256: str, size: int) -> float:
        assert self._file is not None
        final_dir = os.path.join(self._root, sha256[:2])
        final = os.path.join(final_dir, sha256)
        try:
            self._file.flush()
            if self._fsync:
                os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            if os.path.exists(final):  # stored already: touch it, so gc's grace period covers it
                os.unlink(self._tmp)
                os.utime(final)
            else:
                _makedirs(final_dir)
                os.replace(self._tmp, final)
                if self._fsync:
                    _fsync_dir(final_dir)
            return os.stat(final).st_mtime
        except OSError as e:
            raise StoreError(f"cannot store blob {sha256} in {self._root}: {e.strerror or e}") from e

    def _abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


class DirectoryBlobs:
    """Blob primitives for :class:`~track_backends.stores.journal.JournalStore` (a mixin).

    The store sets ``self.path``, the journal's real path; blobs live in ``path + ".blobs"``.
    """

    path: str
    fsync: bool

    @property
    def blob_root(self) -> str:
        """The directory that holds this journal's blobs."""
        return self.path + ".blobs"

    def _blob_file(self, sha256: str) -> str:
        return os.path.join(self.blob_root, sha256[:2], check_sha(sha256))

    def blob_writer(self) -> BlobWriter:
        """Start an upload into a temporary file of the blob directory."""
        return _FileWriter(self.blob_root, self.fsync)

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a blob's file for reading."""
        path = self._blob_file(sha256)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise NotFoundError(f"no blob {sha256} in {self.blob_root}") from None
        except OSError as e:
            raise StoreError(f"cannot open blob {path}: {e.strerror or e}") from e

    def stat_blob(self, sha256: str) -> BlobStat | None:
        """Return the blob's address, size and modification time, or ``None``."""
        try:
            st = os.stat(self._blob_file(sha256))
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StoreError(f"cannot stat blob {sha256} in {self.blob_root}: {e.strerror or e}") from e
        return BlobStat(sha256, st.st_size, st.st_mtime)

    def delete_blob(self, sha256: str) -> bool:
        """Remove a blob's file; return whether it existed."""
        try:
            os.unlink(self._blob_file(sha256))
            return True
        except FileNotFoundError:
            return False
        except OSError as e:
            raise StoreError(f"cannot delete blob {sha256} in {self.blob_root}: {e.strerror or e}") from e

    def list_blobs(self) -> Iterator[BlobStat]:
        """Yield every blob file (``.part`` files of uploads in progress are not blobs)."""
        root = self.blob_root
        if not os.path.isdir(root):
            return
        for sub in sorted(os.listdir(root)):
            if len(sub) != 2 or sub == TMP:
                continue
            for entry in os.scandir(os.path.join(root, sub)):
                if len(entry.name) == 64 and entry.name.startswith(sub):
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    yield BlobStat(entry.name, st.st_size, st.st_mtime)

    def clean_uploads(self, older_than: float) -> int:
        """Remove ``.part`` files of uploads that died before ``older_than``."""
        tmp = os.path.join(self.blob_root, TMP)
        if not os.path.isdir(tmp):
            return 0
        removed = 0
        for entry in os.scandir(tmp):
            try:
                if entry.name.endswith(".part") and entry.stat().st_mtime < older_than:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
