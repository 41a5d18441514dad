"""Fixtures and helpers shared by the contract classes."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from ..protocol import DocumentProtocol
from ..registry import get_protocol, open_store
from ..store import Store
from .data import COLL, DOCS

PENDING = {"status.name": {"$in": ["Created", "Interrupted"]}}


def _strip(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if doc is None else {k: v for k, v in doc.items() if k != "_id"}


def snapshot(store: Store, collection: str = COLL) -> list[dict[str, Any]]:
    """All documents of a collection, sorted by uid, for before/after comparisons."""
    docs = [{k: v for k, v in d.items() if k != "_id"} for d in store.find(collection)]
    return sorted(docs, key=lambda d: d["uid"])


class _Base:
    """Fixtures shared by the contract classes."""

    #: Set to True when other processes can open ``store_uri`` and see the same data.
    multiprocess: bool = False

    @pytest.fixture
    def store_uri(self) -> str:  # pragma: no cover - the suite's user provides it
        raise NotImplementedError("provide a store_uri fixture returning the URI of a fresh, empty store")

    @pytest.fixture
    def store(self, store_uri: str) -> Iterator[Store]:
        s = open_store(store_uri)
        yield s
        s.close()

    @pytest.fixture
    def filled(self, store: Store) -> Store:
        store.insert_many(COLL, copy.deepcopy(DOCS))
        return store

    @pytest.fixture
    def protocol(self, store_uri: str) -> Iterator[DocumentProtocol]:
        p = get_protocol(store_uri)
        yield p
        p.close()


_RUNNING = {"$set": {"status": {"name": "Running", "value": 101}}}


def _pending_doc(i: int, group: str = "g") -> dict[str, Any]:
    return {"uid": f"t{i:05d}", "group_id": group, "status": {"name": "Created", "value": 0}, "i": i}
