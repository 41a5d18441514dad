"""Data, backends and misbehaving destinations shared by the migration tests.

Backends: ``ephemeral`` (in process, as a Store object), ``pickled``, ``file``, ``postgres`` (the
pgserver fixture of ``tests/postgres/conftest.py``), and, when the MongoDB store is installed,
``mongo`` (the SecantusDB ``mongo_wire_uri`` fixture of ``tests/conftest.py``) and ``mongomock``.
Server fixtures skip when their server cannot start, except under ``CI=true``, where they fail.
A test module that uses the ``backends`` fixture imports it, and the PostgreSQL fixtures, from here.
"""

from __future__ import annotations

import importlib.util
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

# The PostgreSQL fixtures live in tests/postgres/conftest.py, out of reach of this directory:
# a test module imports them (with ``backends``) so that pytest registers them for it too.
from postgres.conftest import pg_admin, pg_server_uri, with_options  # noqa: F401

from track_backends import Project, Status, Trial, TrialGroup, open_store
from track_backends.errors import EncodingError
from track_backends.migrate import COLLECTIONS
from track_backends.store import GROUPS, PROJECTS, TRIALS, Store
from track_backends.stores.memory import MemoryStore
from track_backends.stores.multiplex.series import as_lists, read_by_attempt

HAS_MONGO = importlib.util.find_spec("track_backends.stores.mongo") is not None
KINDS = ["ephemeral", "pickled", "file", "postgres"] + (["mongo", "mongomock"] if HAS_MONGO else [])


# -- data ------------------------------------------------------------------------------------------
ASTRAL = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🎉🚀"


def dataset() -> dict[str, list[dict[str, Any]]]:
    """Documents that stress every type distinction a backend might blur."""
    projects = [
        Project("alpha").to_doc(),
        Project("Zeta ünï " + ASTRAL, description="astral " + ASTRAL, metadata={"n": 2**62, "z": 1, "a": 2}).to_doc(),
        Project("日本語", metadata={"nested": {"deep": [{"x": []}, {}]}}).to_doc(),
    ]
    g1 = TrialGroup("g1", project_id="alpha", metadata={"k": [1, 1.0, True, "1", None]})
    g2 = TrialGroup("g2 " + ASTRAL, project_id=projects[1]["uid"], description="ü")
    groups = [g1.to_doc(), g2.to_doc()]
    trials = []
    special: list[dict[str, Any]] = [
        {"one_i": 1, "one_f": 1.0, "true": True, "zero_i": 0, "zero_f": 0.0, "false": False, "s": "1"},
        {"tenth": 0.1, "tiny": 1e-300, "subnormal": 5e-324, "huge": 1.7976931348623157e308, "third": 1 / 3},
        {"big": 2**62, "min": -(2**63), "max": 2**63 - 1, "neg": -1, "big_f": 2.0**62},
        {"nested": {"a": {"b": [1, {"c": [[], {}]}], "d": None}}, "empty_l": [], "empty_d": {}},
        {"unicode": "日本語 ünï " + ASTRAL, ASTRAL: "key", "é": [ASTRAL, "\u2028\t\n\"'\\"]},
        {"order": {"z": 1, "a": 2, "m": 3}, "list": [3, 1, 2], "null": None},
    ]
    for i in range(30):
        params: dict[str, Any] = special[i] if i < len(special) else {"i": i, "lr": 0.1 * i, "layers": [i, i + 1]}
        t = Trial(
            params,
            name="exp " + ASTRAL if i % 3 == 0 else None,
            version="v1",
            project_id="alpha" if i % 2 else projects[1]["uid"],
            group_id=g1.uid if i % 2 else g2.uid,
            revision=i % 2,
            metadata={"host": f"node{i}", "seed": -(2**63) + i, "float": 1.0},
            metric_summary={"loss": {"count": 3, "last": 0.125 + i, "last_step": 2, "min": 0.125, "max": 0.5}},
            lease={"owner": "w", "token": 2, "expires": None, "attempts": 2} if i in (1, 2) else None,
            chronos={"epoch": {"count": 3, "total": 1.5, "mean": 0.5, "min": 0.25, "max": 1.0, "sd": 0.0}},
            status=Status.Completed if i % 5 == 0 else Status("Custom " + ASTRAL, 500 + i),
            errors=["Traceback " + ASTRAL] if i == 7 else [],
            tags={"z": i, "a": [None, True]},
        )
        trials.append(t.to_doc())
    neg_zero = Trial({"neg_zero": -0.0, "x": [-0.0, 0.0]}, group_id=g1.uid, project_id="alpha").to_doc()
    trials.append(neg_zero)
    return {PROJECTS: projects, GROUPS: groups, TRIALS: trials}


def points_of(i: int, doc: dict[str, Any]) -> dict[int, list[tuple[str, Any, Any]]]:
    """The points of the i-th trial by attempt: types a backend might blur, NaN and infinities, attempts."""
    out: dict[int, list[tuple[str, Any, Any]]] = {}
    if i % 4 == 3:
        return out  # some trials have none
    uni = "ünï " + ASTRAL
    out[0] = [("loss", 0, 0.5), ("loss", 1, 0.25), ("acc", 0, 0.1 * i), (uni, 0, 1), (uni, 1, 1.0)]
    out[0] += [("loss", 2, 0.125 + i), ("odd", 0.5, True), ("odd", 1, None), ("odd", 2, 2**62), ("odd", 3, "s")]
    if i % 5 == 0:
        out[0] += [("nan", 0, math.nan), ("nan", 1, math.inf), ("nan", 2, -math.inf)]
    if doc.get("lease"):  # a reserved trial: points of attempts 1 and 2 too
        out[1] = [("loss", 0, 9.0), ("loss", 1, 8.0)]
        out[2] = [("loss", 0, 1.0), ("acc", 0, 0.5)]
    return out


def fill_points(store: Store, data: dict[str, list[dict[str, Any]]]) -> int:
    """Append :func:`points_of` each trial of ``data``; return how many trials have points."""
    n = 0
    for i, doc in enumerate(data[TRIALS]):
        by_attempt = points_of(i, doc)
        for attempt, points in by_attempt.items():
            store.append_points(TRIALS, doc["uid"], points, attempt=attempt)
        n += bool(by_attempt)
    return n


def series(store: Store, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every trial's points per attempt, JSON-like (compare with ``same_value``)."""
    got = read_by_attempt(store, TRIALS, {d["uid"]: d for d in docs})
    return {uid: {a: as_lists(s) for a, s in by_attempt.items()} for uid, by_attempt in got.items()}


def fill(store: Store, data: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, list[dict[str, Any]]]:
    data = data or dataset()
    for coll in COLLECTIONS:
        store.insert_many(coll, data[coll])
    return data


def by_uid(store: Store, coll: str) -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in store.find(coll)}


def exact(doc: dict[str, Any]) -> str:
    """Bit-for-bit form: repr tells 1, 1.0 and True apart, 0.0 from -0.0, and keeps key order."""
    return repr(doc)


def keeps_negative_zero(store: Store) -> bool:
    """Whether a backend gives -0.0 back (PostgreSQL's JSONB numeric has no negative zero)."""
    store.insert("probe_negzero", {"uid": "p", "x": -0.0})
    x = store.find_one("probe_negzero", {"uid": "p"})["x"]  # type: ignore[index]
    store.delete("probe_negzero", {})
    return math.copysign(1.0, x) < 0


# -- backends --------------------------------------------------------------------------------------
def _with_database(uri: str, name: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


class Backends:
    """Opens fresh, empty stores of each kind; closes and drops them at teardown."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.request = request
        self.tmp_path = tmp_path
        self.opened: list[Store] = []
        self.cleanups: list[Callable[[], None]] = []

    def uri(self, kind: str) -> str:
        name = f"s{len(self.opened)}_{uuid.uuid4().hex[:8]}"
        if kind == "ephemeral":
            return "ephemeral:"
        if kind in ("pickled", "file"):
            return f"{kind}://{self.tmp_path}/{name}.{'pkl' if kind == 'pickled' else 'jsonl'}"
        if kind == "postgres":
            server = self.request.getfixturevalue("pg_server_uri")
            admin = self.request.getfixturevalue("pg_admin")
            self.cleanups.append(lambda: admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            return with_options(server, schema=name)
        if kind == "mongo":
            server = self.request.getfixturevalue("mongo_wire_uri")
            client = self.request.getfixturevalue("mongo_wire_client")
            self.cleanups.append(lambda: client.drop_database(name))
            return _with_database(server, name)
        if kind == "mongomock":
            return f"mongomock://{name}"
        raise ValueError(kind)

    def open(self, kind: str) -> Store:
        store = MemoryStore() if kind == "ephemeral" else open_store(self.uri(kind))
        self.opened.append(store)
        return store

    def close(self) -> None:
        for s in self.opened:
            s.close()
        for c in self.cleanups:
            c()


@pytest.fixture(name="backends")
def backends_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    b = Backends(request, tmp_path)
    yield b
    b.close()


class Refusing(MemoryStore):
    """A destination that refuses documents whose uid ends with '7'."""

    def insert(self, collection: str, doc: dict[str, Any]) -> None:
        if doc["uid"].endswith("7"):
            raise EncodingError(f"cannot store {doc['uid']}")
        super().insert(collection, doc)

    def insert_many(self, collection: str, docs: Any) -> int:
        docs = list(docs)
        if any(d["uid"].endswith("7") for d in docs):
            raise EncodingError("one of them cannot be stored")
        return super().insert_many(collection, docs)


class Forgetful(MemoryStore):
    """A destination that loses writes to trials and garbles one document."""

    def insert_many(self, collection: str, docs: Any) -> int:
        docs = [dict(d) for d in docs]
        if collection == TRIALS:
            docs = [dict(d, x=-1) if d["uid"] == "u01" else d for d in docs if d["uid"] != "u02"]
        return super().insert_many(collection, docs)
