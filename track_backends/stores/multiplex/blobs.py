"""Mirroring blobs: the primary stores (and decides), then each mirror gets a copy.

* **Uploads** (:class:`MultiplexWriter`): the bytes go to the primary's own upload. When the
  primary has committed the blob, each mirror gets a copy streamed from the primary
  (:func:`~track_backends.blobs.copy_blob`: verified against the sha256, skipped when the mirror
  holds it already). A blob is immutable, so copies need no ordering with other writes: they run
  outside the mirroring lock, and a large copy never holds up the mirroring of documents.
* **Deletions** (:func:`delete_blob`): on the primary, then on every mirror.
* **A miss** (a failed copy or deletion, a mirror backing off) is recorded in the outbox as a
  ``blob`` entry keyed by the sha256 (collection :data:`BLOBS`). Replaying it
  (:func:`~.mirroring.replay_blob`) makes the mirror agree with the primary *now*: it copies the blob from
  the primary if the primary holds it, and deletes it from the mirror otherwise. Idempotent, so
  one entry is enough however many writes of that content were missed. Blob entries replay
  before document entries, so a replayed artifact reference finds its blob on the mirror.
* **Policies** apply as for documents: ``strict`` raises :class:`~.state.MirrorError` (the
  primary has the blob, and the miss is in the outbox), ``best_effort`` records, warns and
  backs off.
* **Reads** (``open_blob``, ``stat_blob``, ``list_blobs``) come from the primary;
  ``clean_uploads`` runs on every store.

Caveat: a mirror that holds a blob already keeps its store time (the primary's is refreshed),
so ``gc`` run on that mirror alone, with a short grace period, may race an upload of the same
content; ``gc`` through the multiplexer is not affected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO, Any

from ...blobs import BlobStat, BlobWriter, check_sha, copy_blob
from ...errors import CorruptStoreError
from ...store import Store
from .mirroring import Mirroring
from .state import Mirror, MirrorError

BLOBS = "blobs"
"""The collection name under which the outbox records blobs a mirror missed."""


def _short(shas: list[str]) -> str:
    return ", ".join(s[:16] + "..." for s in shas[:5]) + (f" and {len(shas) - 5} more" if len(shas) > 5 else "")


def _attempt_all(mirroring: Mirroring, shas: list[str], deleting: bool, action: Callable[[Store], Any]) -> None:
    """Run ``action(store)`` (a copy, or a deletion) on every mirror per the policy; record misses as blob entries.

    Raises:
        MirrorError: Under the strict policy, a mirror missed it (after the miss is recorded).
    """

    def record(m: Mirror, reason: str) -> None:
        mirroring.record(m, BLOBS, shas, reason, locked=False, kind="blob")

    def error(m: Mirror, reason: str) -> MirrorError:
        return MirrorError(
            f"mirror {m.name} failed: {reason}; it missed {missed} {_short(shas)} "
            f"(recorded in the outbox {mirroring.where}; run track-backends replay)",
            mirror=m.name,
            missed=[(BLOBS, s) for s in shas],
            outbox=mirroring.outbox.path,
        )

    missed = "the deletion of blob(s)" if deleting else "blob(s)"
    errors: list[MirrorError] = []
    what = f"{'deleting' if deleting else 'copying'} blob {shas[0][:16]}..."
    for m in mirroring.mirrors:
        if mirroring.attempt(m, action, what=what, record=record, error=error, errors=errors):
            mirroring.succeeded(m)
    mirroring.raise_first(errors)


def mirror_blob(mirroring: Mirroring, sha256: str) -> None:
    """Copy a blob the primary has just committed to every mirror, per the policy.

    Raises:
        MirrorError: Under the strict policy, a mirror missed it (the primary has it).
    """
    if not mirroring.mirrors:
        return
    primary = mirroring.primary

    def copy(store: Store) -> None:
        copy_blob(primary, store, sha256)

    _attempt_all(mirroring, [sha256], False, copy)


def delete_blob(mirroring: Mirroring, sha256: str) -> bool:
    """Delete a blob on the primary, then on every mirror, per the policy.

    Returns:
        Whether the primary held it.

    Raises:
        MirrorError: Under the strict policy, a mirror missed the deletion.
    """
    existed = mirroring.primary.delete_blob(check_sha(sha256))
    if mirroring.mirrors:

        def delete(store: Store) -> None:
            store.delete_blob(sha256)

        _attempt_all(mirroring, [sha256], True, delete)
    return existed


def clean_uploads(mirroring: Mirroring, older_than: float) -> int:
    """Remove dead uploads' leftovers on the primary and every mirror; return how many in all.

    Raises:
        MirrorError: Under the strict policy, a mirror failed (nothing is recorded: there is
            nothing to replay).
    """
    removed = [mirroring.primary.clean_uploads(older_than)]

    def clean(store: Store) -> None:
        removed.append(store.clean_uploads(older_than))

    def error(m: Mirror, reason: str) -> MirrorError:
        return mirroring.failure(m, f"mirror {m.name} failed to clean its dead uploads: {reason}")

    errors: list[MirrorError] = []
    for m in mirroring.mirrors:
        mirroring.attempt(m, clean, what="cleaning dead uploads", record=None, error=error, errors=errors)
    mirroring.raise_first(errors)
    return sum(removed)


class MultiplexWriter(BlobWriter):
    """An upload to the primary that is copied to the mirrors once the primary has committed it.

    Args:
        mirroring: The multiplexer's mirroring (its primary, mirrors, outbox and policy).
    """

    def __init__(self, mirroring: Mirroring) -> None:
        super().__init__()
        self._mirroring = mirroring
        self._inner = mirroring.primary.blob_writer()

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def _commit(self, sha256: str, size: int) -> float:
        stat = self._inner.commit()
        if stat.sha256 != sha256 or stat.size != size:
            raise CorruptStoreError(
                f"the primary stored {stat.size} bytes hashing to {stat.sha256[:16]}..., "
                f"but {size} bytes hashing to {sha256[:16]}... were written"
            )
        mirror_blob(self._mirroring, sha256)
        return stat.created

    def _abort(self) -> None:
        self._inner.abort()


class MultiplexBlobs:
    """Blob primitives of :class:`~.store.MultiplexStore` (a mixin; see the module docstring)."""

    _mirroring: Mirroring

    def _check_open(self) -> None:  # pragma: no cover - MultiplexStore's
        raise NotImplementedError

    def blob_writer(self) -> BlobWriter:
        """Start an upload to the primary; on commit the blob is copied to every mirror.

        Raises:
            StoreUnavailableError: The multiplexer is closed.
            StoreError: The primary keeps no blobs or cannot start an upload.
        """
        self._check_open()
        return MultiplexWriter(self._mirroring)

    def open_blob(self, sha256: str) -> IO[bytes]:
        """Open a blob of the primary (see :meth:`Store.open_blob`).

        Raises:
            NotFoundError: The primary has no such blob.
        """
        self._check_open()
        return self._mirroring.primary.open_blob(sha256)

    def stat_blob(self, sha256: str) -> BlobStat | None:
        """Return the primary's :class:`~track_backends.blobs.BlobStat` of a blob, or ``None``."""
        self._check_open()
        return self._mirroring.primary.stat_blob(sha256)

    def delete_blob(self, sha256: str) -> bool:
        """Delete a blob on the primary, then on every mirror; return whether the primary had it.

        Raises:
            MirrorError: Under the strict policy, a mirror missed the deletion.
        """
        self._check_open()
        return delete_blob(self._mirroring, sha256)

    def list_blobs(self) -> Iterator[BlobStat]:
        """Yield the primary's blobs."""
        self._check_open()
        return self._mirroring.primary.list_blobs()

    def clean_uploads(self, older_than: float) -> int:
        """Remove dead uploads' leftovers on the primary and on every mirror; return how many in all.

        Raises:
            MirrorError: Under the strict policy, a mirror failed.
        """
        self._check_open()
        return clean_uploads(self._mirroring, older_than)


__all__ = ["BLOBS", "MultiplexBlobs", "MultiplexWriter", "clean_uploads", "delete_blob", "mirror_blob"]
