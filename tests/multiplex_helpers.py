"""What the multiplexer tests share: the mirroring check (documents and points) and a flaky mirror."""

from __future__ import annotations

import threading
from typing import Any

from track_backends import errors
from track_backends.model import Trial
from track_backends.protocol.artifacts import ARTIFACTS
from track_backends.query.equality import same_value
from track_backends.store import GROUPS, PROJECTS, TRIALS, Store
from track_backends.stores.memory import MemoryStore
from track_backends.stores.multiplex.series import as_lists, read_by_attempt
from track_backends.testing.base import snapshot
from track_backends.testing.data import COLL

COLLECTIONS = (TRIALS, GROUPS, PROJECTS, COLL, ARTIFACTS)
PENDING = {"status.name": {"$in": ["Created", "Interrupted"]}}


def series_by_attempt(store: Store, coll: str, docs: dict[str, Any]) -> dict[str, Any]:
    """Every document's points, per attempt, as JSON-like lists (for ``same_value``)."""
    got = read_by_attempt(store, coll, docs)
    return {uid: {a: as_lists(s) for a, s in by_attempt.items()} for uid, by_attempt in got.items()}


def assert_mirrored(primary: Store, *mirrors: Store) -> None:
    """Every mirror holds exactly the primary's documents, and their points attempt by attempt."""
    for coll in COLLECTIONS:
        expected = snapshot(primary, coll)
        docs = {d["uid"]: d for d in expected}
        points = series_by_attempt(primary, coll, docs)
        for m in mirrors:
            assert same_value(snapshot(m, coll), expected), f"{m!r} differs from the primary in {coll!r}"
            got = series_by_attempt(m, coll, docs)
            assert same_value(got, points), f"{m!r} holds other points than the primary in {coll!r}"


def blob_sizes(store: Store) -> dict[str, int]:
    return {b.sha256: b.size for b in store.list_blobs()}


def assert_blobs_mirrored(primary: Store, *mirrors: Store) -> None:
    """Every mirror holds exactly the primary's blobs, with the same bytes."""
    expected = blob_sizes(primary)
    for m in mirrors:
        assert blob_sizes(m) == expected, f"{m!r} holds other blobs than the primary"
        for sha in expected:
            with primary.open_blob(sha) as a, m.open_blob(sha) as b:
                assert a.read() == b.read(), f"{m!r} holds other bytes for blob {sha}"


class Flaky(MemoryStore):
    """An in-memory store whose calls fail (``"fail"``) or block (``"hang"``) on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.calls = 0
        self.release = threading.Event()

    def _gate(self) -> None:
        self.calls += 1
        if self.mode == "fail":
            raise errors.StoreUnavailableError("mirror unreachable (test)")
        if self.mode == "hang":
            self.release.wait(30)

    def _reading(self) -> Any:
        self._gate()
        return super()._reading()

    def _writing(self) -> Any:
        self._gate()
        return super()._writing()

    def blob_writer(self) -> Any:
        self._gate()
        return super().blob_writer()

    def stat_blob(self, sha256: str) -> Any:
        self._gate()
        return super().stat_blob(sha256)

    def delete_blob(self, sha256: str) -> bool:
        self._gate()
        return super().delete_blob(sha256)

    def close(self) -> None:
        if self.mode == "hang":
            self.release.wait(30)
        super().close()

    def __repr__(self) -> str:
        return "<Flaky>"


def new_trials(proto: Any, n: int, group: str = "g", start: int = 0) -> list[Trial]:
    return [proto.new_trial(Trial({"i": i}, name="t", group_id=group)) for i in range(start, start + n)]
