"""Differential tests: the query engine against a MongoDB-wire server and against mongomock.

References, in order of trust (see ``shared/design.md``, "Which reference to trust"):

1. **SecantusDB**, a MongoDB-wire server started by the ``mongo_wire_uri`` fixture (or the server
   named by ``$TRACK_BACKENDS_MONGO_URI``). It is the primary reference: for every generated
   query, sort, projection and update the engine must give its answer.
2. **MongoDB's documentation** wins where SecantusDB contradicts it. Each such case is listed
   in :data:`SECANTUS_DEVIATIONS` with a link, and handled without weakening the comparison:
   the query or the result is rewritten into a form that MongoDB documents as equivalent and
   that SecantusDB answers correctly (:func:`documented_form`, :func:`documented_order`).
3. **mongomock** is a second opinion. It must agree on every query except those that fall in
   one of the known deviation categories of :data:`MONGOMOCK_DEVIATIONS` (each with a link to
   the documented behaviour it gets wrong); a disagreement outside them fails the test.

Everything is generated from fixed seeds (:mod:`querygen`), so a failure names a replayable
query.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import querygen

from track_backends.errors import QueryError
from track_backends.stores.memory import MemoryStore

DOCS = querygen.documents()
QUERIES = querygen.queries()
SORTS = querygen.sorts()
PROJECTIONS = querygen.projections()
UPDATE_STEPS = querygen.update_steps()
INDEXED_PATHS = ["a", "n", "s", "tags", "m.x", "arr.k", "uid", ("m.x", "n")]
MAX_REPORTED = 25

MANUAL = "https://www.mongodb.com/docs/manual"


def show(value: Any) -> str:
    return json.dumps(value, default=repr)


def report(title: str, failures: list[str]) -> str:
    shown = "\n".join(failures[:MAX_REPORTED])
    more = f"\n... and {len(failures) - MAX_REPORTED} more" if len(failures) > MAX_REPORTED else ""
    return f"{len(failures)} {title}:\n{shown}{more}"


def is_operator_doc(cond: Any) -> bool:
    return isinstance(cond, dict) and bool(cond) and all(isinstance(k, str) and k.startswith("$") for k in cond)


LOGICAL = ("$and", "$or", "$nor")


# -- documented deviations of SecantusDB --------------------------------------------------------


@dataclass(frozen=True)
class Deviation:
    name: str
    url: str
    what: str


SECANTUS_DEVIATIONS = [
    Deviation(
        "all-nested-array",
        f"{MANUAL}/reference/operator/query/all/#nested-array",
        "$all: [[A]] matches a field that equals [A] (not only one that contains [A]); SecantusDB "
        "only matches the containing form.",
    ),
    Deviation(
        "all-is-and",
        f"{MANUAL}/reference/operator/query/all/#equivalent-to--and-operation",
        "$all is an $and of equalities, so different elements of an array of documents may satisfy "
        "different values and $all: [null] matches a missing field; SecantusDB requires one reached "
        "value to hold them all.",
    ),
    Deviation(
        "elemmatch-logical",
        f"{MANUAL}/reference/operator/query/elemMatch/",
        "$elemMatch whose keys are all logical operators ($or, $and, $nor) is a query on the element "
        "documents (MongoDB parses it like any query document); SecantusDB rejects it with 'unknown "
        "operator: $or'.",
    ),
    Deviation(
        "update-field-order",
        f"{MANUAL}/reference/operator/update/#behavior",
        "Since MongoDB 5.0 update operators process fields in lexicographic order (numeric names in "
        "numeric order), so fields an update creates are appended in that order; SecantusDB appends "
        "them in the order of the update document.",
    ),
]

ALWAYS_TRUE_ON_ELEMENT_DOCS = {"__no_such_field__": {"$exists": False}}


def documented_form(query: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``query`` into a form MongoDB documents as equivalent and SecantusDB answers right.

    * ``{f: {$all: [v1, v2]}}`` becomes ``{$and: [{f: {$eq: v1}}, {f: {$eq: v2}}]}``, its
      documented equivalent (deviations ``all-nested-array`` and ``all-is-and``); under ``$not``
      the conjunction moves into a ``$nor``. ``$all: []`` (matches nothing) is kept.
    * ``{$elemMatch: {$or: [...]}}`` gains a field condition that every element document meets,
      so SecantusDB parses it as the query on element documents it is (``elemmatch-logical``).
    """
    out: dict[str, Any] = {}
    moved: list[dict[str, Any]] = []
    for key, cond in query.items():
        if key in LOGICAL:
            out[key] = [documented_form(q) for q in cond]
        elif is_operator_doc(cond):
            ops, extra = _documented_ops(key, cond)
            if ops:
                out[key] = ops
            moved.extend(extra)
        else:
            out[key] = cond
    if moved:
        out["$and"] = out.get("$and", []) + moved
    return out


def _documented_ops(path: str, ops: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kept: dict[str, Any] = {}
    moved: list[dict[str, Any]] = []
    for op, arg in ops.items():
        if op == "$all" and arg:
            moved.extend({path: {"$eq": v}} for v in arg)
        elif op == "$not":
            inner, inner_moved = _documented_ops(path, arg)
            if inner_moved:
                clause = inner_moved + ([{path: inner}] if inner else [])
                moved.append({"$nor": [{"$and": clause}]})
            else:
                kept[op] = inner
        elif op == "$elemMatch" and (not is_operator_doc(arg) or set(arg) <= set(LOGICAL)):
            sub = documented_form(arg)
            if sub and all(k in LOGICAL for k in sub):
                sub = {**sub, **ALWAYS_TRUE_ON_ELEMENT_DOCS}
            kept[op] = sub
        else:
            kept[op] = arg
    return kept, moved


def documented_order(before: Any, after: Any, paths: list[tuple[str, ...]]) -> Any:
    """Reorder a document SecantusDB updated as MongoDB 5.0+ would have (``update-field-order``).

    On every document level that leads to an updated path, the fields that existed before keep
    their order and the fields the update created follow in lexicographic order (numeric names
    in numeric order). Values below an updated path are stored as given and left alone.
    """
    trie: dict[str, Any] = {}
    for parts in paths:
        node = trie
        for p in parts:
            node = node.setdefault(p, {})
    return _reorder(before, after, trie)


def _name_key(name: str) -> tuple[int, Any]:
    return (0, int(name)) if name.isdigit() else (1, name)


def _reorder(before: Any, after: Any, trie: dict[str, Any]) -> Any:
    if not trie:
        return after
    if isinstance(after, dict):
        old = before if isinstance(before, dict) else {}
        existing = [k for k in old if k in after]
        created = sorted((k for k in after if k not in old), key=_name_key)
        out = {}
        for k in existing + created:
            out[k] = _reorder(old.get(k), after[k], trie[k]) if k in trie else after[k]
        return out
    if isinstance(after, list):
        old_list = before if isinstance(before, list) else []
        return [
            _reorder(old_list[i] if i < len(old_list) else None, v, trie[str(i)]) if str(i) in trie else v
            for i, v in enumerate(after)
        ]
    return after


def canon(value: Any) -> Any:
    """A comparable form that keeps key order and types (``1``, ``1.0`` and ``True`` differ)."""
    if isinstance(value, dict):
        return ["doc", [[k, canon(v)] for k, v in value.items()]]
    if isinstance(value, list):
        return ["arr", [canon(v) for v in value]]
    return [type(value).__name__, value]


def strip_id(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    doc = dict(doc)
    doc.pop("_id", None)
    return doc


# -- known mongomock deviations -------------------------------------------------------------------


@dataclass(frozen=True)
class Atom:
    """One operator applied to one path somewhere in a query."""

    path: str
    op: str
    arg: Any
    implicit: bool


def atoms(query: dict[str, Any], prefix: str = "") -> Iterator[Atom]:
    for key, cond in query.items():
        if key in LOGICAL:
            for sub in cond:
                yield from atoms(sub, prefix)
        elif is_operator_doc(cond):
            yield from _op_atoms(prefix + key, cond)
        else:
            yield Atom(prefix + key, "$eq", cond, implicit=True)


COMPOUND_RANGE = "range operators together"  # a pseudo-operator: several of $gt/$gte/$lt/$lte on one path


def _op_atoms(path: str, ops: dict[str, Any]) -> Iterator[Atom]:
    if sum(op in RANGE_OPS for op in ops) > 1:
        yield Atom(path, COMPOUND_RANGE, {k: v for k, v in ops.items() if k in RANGE_OPS}, implicit=False)
    for op, arg in ops.items():
        yield Atom(path, op, arg, implicit=False)
        if op == "$not":
            yield from _op_atoms(path, arg)
        elif op == "$elemMatch":
            if is_operator_doc(arg) and not set(arg) <= set(LOGICAL):
                yield from _op_atoms(path, arg)
            else:
                yield from atoms(arg, path + ".")


EQUALITY_OPS = ("$eq", "$ne", "$in", "$nin", "$all")
RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")


def _operands(atom: Atom) -> list[Any]:
    if atom.op in ("$in", "$nin", "$all") and isinstance(atom.arg, list):
        return atom.arg
    return [atom.arg]


def _holds_bool_or_01(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (int, float)):
        return value in (0, 1)
    if isinstance(value, dict):
        return any(_holds_bool_or_01(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_bool_or_01(v) for v in value)
    return False


@dataclass(frozen=True)
class MockDeviation:
    name: str
    url: str
    what: str
    applies: Callable[[Atom], bool]


MONGOMOCK_DEVIATIONS = [
    MockDeviation(
        "bool-equals-number",
        f"{MANUAL}/reference/bson-type-comparison-order/",
        "mongomock equates true with 1 and false with 0 (also inside documents and arrays); in "
        "MongoDB booleans and numbers are different BSON types and never equal.",
        lambda a: a.op in EQUALITY_OPS + RANGE_OPS and any(_holds_bool_or_01(v) for v in _operands(a)),
    ),
    MockDeviation(
        "size-of-non-array",
        f"{MANUAL}/reference/operator/query/size/",
        "mongomock's $size counts scalars as one element and documents by their fields; $size only matches arrays.",
        lambda a: a.op == "$size",
    ),
    MockDeviation(
        "not-skips-missing",
        f"{MANUAL}/reference/operator/query/not/",
        "mongomock's $not does not select documents that lack the field (or reach no value through "
        "an array), and rejects $options beside $regex inside $not; MongoDB's $not selects them.",
        lambda a: a.op == "$not",
    ),
    MockDeviation(
        "numeric-index-paths",
        f"{MANUAL}/tutorial/query-arrays/#query-for-an-element-by-the-array-index-position",
        "On paths with an array index (a.0, grid.0.1) mongomock matches by membership inside the "
        "indexed element, and does not treat an index past the end or a non-array as a missing "
        "field.",
        lambda a: any(p.isdigit() for p in a.path.split(".")),
    ),
    MockDeviation(
        "null-through-arrays",
        f"{MANUAL}/tutorial/query-for-null-fields/",
        "mongomock misses documents where a dotted path ends in a missing field inside an array of "
        "documents, or reaches a non-document, when the query asks for null ($eq/$in/$nin/$ne/$all "
        "null); and $gte/$lte null do not match missing fields.",
        lambda a: (
            a.op in EQUALITY_OPS + ("$gte", "$lte")
            and any(v is None for v in _operands(a))
            and ("." in a.path or a.op in ("$gte", "$lte"))
        ),
    ),
    MockDeviation(
        "all-corner-cases",
        f"{MANUAL}/reference/operator/query/all/",
        "mongomock's $all: [] matches every document (MongoDB: none), it crashes on dotted paths "
        "that reach no value, and it mishandles nested arrays.",
        lambda a: a.op == "$all" and (not a.arg or "." in a.path or any(isinstance(v, list) for v in a.arg)),
    ),
    MockDeviation(
        "elemmatch-non-documents",
        f"{MANUAL}/reference/operator/query/elemMatch/",
        "mongomock applies a query $elemMatch to elements that are not documents, and an operator "
        "$elemMatch inside nested arrays; MongoDB matches element documents, and elements as "
        "whole values.",
        lambda a: a.op == "$elemMatch",
    ),
    MockDeviation(
        "empty-document-equality",
        f"{MANUAL}/tutorial/query-embedded-documents/#match-an-embedded-nested-document",
        "mongomock reads {field: {}} as an empty operator list (matching anything); MongoDB matches "
        "fields equal to the empty document.",
        lambda a: a.op in EQUALITY_OPS and any(v == {} for v in _operands(a)),
    ),
    MockDeviation(
        "array-range-comparison",
        f"{MANUAL}/reference/bson-type-comparison-order/#arrays",
        "mongomock does not compare whole arrays (nor nested arrays) with $gt/$gte/$lt/$lte.",
        lambda a: a.op in RANGE_OPS and isinstance(a.arg, list),
    ),
    MockDeviation(
        "compound-range-on-arrays",
        f"{MANUAL}/tutorial/query-arrays/#query-an-array-with-compound-filter-conditions-on-the-array-elements",
        "mongomock requires one array element to satisfy both bounds of {$gt: x, $lt: y}; in MongoDB "
        "each bound may be satisfied by a different element (use $elemMatch for one element).",
        lambda a: a.op == COMPOUND_RANGE,
    ),
    MockDeviation(
        "in-with-array-values",
        f"{MANUAL}/reference/operator/query/in/",
        "mongomock's $in/$nin do not match a field that equals an array listed in the operand.",
        lambda a: a.op in ("$in", "$nin") and isinstance(a.arg, list) and any(isinstance(v, list) for v in a.arg),
    ),
    MockDeviation(
        "exists-through-arrays",
        f"{MANUAL}/reference/operator/query/exists/",
        "mongomock's $exists on a dotted path through an array of documents fails when some element "
        "lacks the field; MongoDB's field exists when any element has it.",
        lambda a: a.op == "$exists" and "." in a.path,
    ),
]


def mongomock_deviations(query: dict[str, Any]) -> list[str]:
    """Names of the known mongomock deviation categories that ``query`` falls into."""
    found = []
    for dev in MONGOMOCK_DEVIATIONS:
        if any(dev.applies(a) for a in atoms(query)):
            found.append(dev.name)
    return found


# -- fixtures -------------------------------------------------------------------------------------


def _fresh(db: Any, name: str, docs: list[dict[str, Any]]) -> Any:
    coll = db[name]
    coll.drop()
    if docs:
        coll.insert_many([dict(d) for d in docs])
    return coll


@pytest.fixture(scope="module")
def wire_docs(mongo_wire_db: Any) -> Any:
    return _fresh(mongo_wire_db, "docs", DOCS)


@pytest.fixture(scope="module")
def mock_docs() -> Any:
    mongomock = pytest.importorskip("mongomock")
    coll = mongomock.MongoClient().db.docs
    coll.insert_many([dict(d) for d in DOCS])
    return coll


@pytest.fixture(scope="module")
def memory() -> MemoryStore:
    store = MemoryStore()
    store.insert_many("docs", DOCS)
    return store


@pytest.fixture(scope="module")
def memory_indexed() -> MemoryStore:
    store = MemoryStore()
    for keys in INDEXED_PATHS:
        store.ensure_index("docs", keys)
    store.insert_many("docs", DOCS)
    return store


def uids_of(docs: Any) -> list[str]:
    return sorted(d["uid"] for d in docs)


@pytest.fixture(scope="module")
def expected(wire_docs: Any) -> dict[str, list[str] | str]:
    """MongoDB's answer for every query: SecantusDB's on the documented form (or its error)."""
    out: dict[str, list[str] | str] = {}
    for q in QUERIES:
        try:
            out[show(q)] = uids_of(wire_docs.find(documented_form(q), {"uid": 1, "_id": 0}))
        except Exception as e:  # noqa: BLE001 - an error is an answer too
            out[show(q)] = f"error: {e}"
    return out


# -- the generator --------------------------------------------------------------------------------


def test_generator_is_deterministic_and_covers_the_language() -> None:
    assert querygen.documents() == DOCS and querygen.queries() == QUERIES
    assert len(DOCS) == 40 and len({d["uid"] for d in DOCS}) == 40
    assert len(QUERIES) >= 400
    used = Counter(op for q in QUERIES for op in querygen.operators_used(q))
    missing = [op for op in querygen.QUERY_OPERATORS if used[op] < 5]
    assert not missing, f"operators used fewer than 5 times: {missing} ({dict(used)})"
    paths = {a.path for q in QUERIES for a in atoms(q)}
    assert {"arr.k", "arr.0.k", "grid.0.1", "m.z.w", "tags.0"} <= paths
    kinds = {type(v).__name__ for d in DOCS for v in d.values()}
    assert {"NoneType", "bool", "int", "float", "str", "list", "dict"} <= kinds


# -- queries ----------------------------------------------------------------------------------------


def test_documented_form_is_faithful_on_known_deviations(wire_docs: Any, memory: MemoryStore) -> None:
    """Each SecantusDB deviation, shown on a minimal case whose answer MongoDB's docs fix."""
    cases = [  # (query, the uids MongoDB's documentation implies)
        ({"tags": {"$all": [["x"]]}}, {d["uid"] for d in DOCS if _tags_equal_x(d)}),
        ({"nope": {"$all": [None]}}, {d["uid"] for d in DOCS}),
        ({"arr": {"$elemMatch": {"$or": [{"k": "q"}, {"v": 5}]}}}, None),
    ]
    for query, documented in cases:
        engine = set(uids_of(memory.find("docs", query)))
        server = set(uids_of(wire_docs.find(documented_form(query), {"uid": 1})))
        assert engine == server, show(query)
        if documented is not None:
            assert engine == documented, show(query)


def _tags_equal_x(doc: dict[str, Any]) -> bool:
    tags = doc.get("tags")
    return tags == ["x"] or (isinstance(tags, list) and ["x"] in tags)


def test_find_matches_mongodb(expected: dict[str, Any], memory: MemoryStore, memory_indexed: MemoryStore) -> None:
    failures = []
    for q in QUERIES:
        want = expected[show(q)]
        for label, store in (("memory", memory), ("memory+indexes", memory_indexed)):
            try:
                got: Any = uids_of(store.find("docs", q))
            except QueryError as e:
                got = f"error: {e}"
            if isinstance(want, str) or isinstance(got, str):
                ok = isinstance(want, str) == isinstance(got, str)
            else:
                ok = got == want
            if not ok:
                extra = sorted(set(got) - set(want)) if isinstance(got, list) and isinstance(want, list) else got
                lacking = sorted(set(want) - set(got)) if isinstance(got, list) and isinstance(want, list) else want
                failures.append(f"[{label}] {show(q)}\n    engine only: {extra}\n    MongoDB only: {lacking}")
    assert not failures, report("queries where the engine disagrees with MongoDB", failures)


def test_mongomock_agrees_outside_known_deviations(expected: dict[str, Any], mock_docs: Any) -> None:
    failures = []
    seen: Counter[str] = Counter()
    checked = 0
    for q in QUERIES:
        want = expected[show(q)]
        if isinstance(want, str):
            continue
        known = mongomock_deviations(q)
        try:
            got: Any = uids_of(mock_docs.find(q, {"uid": 1}))
        except Exception as e:  # noqa: BLE001 - mongomock raises its own types
            got = f"error: {e}"
        if got == want:
            checked += not known
            continue
        if known:
            seen.update(known)
            continue
        failures.append(f"{show(q)}\n    mongomock: {got}\n    MongoDB:   {want}")
    assert not failures, report("queries where mongomock deviates outside the known categories", failures)
    assert checked >= 75, f"only {checked} queries were checked against mongomock outside the known deviations"
    stale = [d.name for d in MONGOMOCK_DEVIATIONS if not seen[d.name]]
    assert not stale, f"known mongomock deviations never observed (fixed upstream? remove them): {stale}"


def test_query_errors_agree(wire_docs: Any, memory: MemoryStore) -> None:
    """Malformed queries fail on both sides (QueryError here, an OperationFailure on the server)."""
    bad = [  # (SecantusDB accepts {"a": {"$gt": 1, "b": 2}}, which MongoDB and the engine refuse)
        {"a": {"$nope": 1}},
        {"$and": []},
        {"$or": {"a": 1}},
        {"a": {"$in": 1}},
        {"a": {"$size": -1}},
        {"a": {"$size": 1.5}},
        {"a": {"$not": 1}},
        {"a": {"$regex": "("}},
        {"a": {"$options": "i"}},
        {"a": {"$all": 1}},
        {"a": {"$elemMatch": 1}},
    ]
    failures = []
    for q in bad:
        try:
            list(wire_docs.find(q))
            failures.append(f"the server accepted {show(q)}")
        except Exception:  # noqa: BLE001, S110 - expected
            pass
        try:
            memory.find("docs", q)
            failures.append(f"the engine accepted {show(q)}")
        except QueryError:
            pass
    assert not failures, report("malformed queries accepted", failures)


# -- sort -------------------------------------------------------------------------------------------


def test_sort_matches_mongodb(wire_docs: Any, memory: MemoryStore, memory_indexed: MemoryStore) -> None:
    failures = []
    filters: list[dict[str, Any] | None] = [None, {"rank": {"$gte": 5}}, {"tags": {"$exists": True}}]
    for i, spec in enumerate(SORTS):
        full = [*spec, ("uid", 1)]
        query = filters[i % len(filters)]
        limit = 7 if i % 4 == 3 else None
        cursor = wire_docs.find(query or {}, {"uid": 1}, sort=full)
        if limit:
            cursor = cursor.limit(limit)
        want = [d["uid"] for d in cursor]
        for label, store in (("memory", memory), ("memory+indexes", memory_indexed)):
            got = [d["uid"] for d in store.find("docs", query, sort=full, limit=limit)]
            if got != want:
                failures.append(
                    f"[{label}] sort={full} query={show(query)} limit={limit}\n    engine:  {got}\n    MongoDB: {want}"
                )
    assert not failures, report("sorts where the engine disagrees with MongoDB", failures)


# -- projection -------------------------------------------------------------------------------------


def mongo_projection(projection: dict[str, int]) -> tuple[dict[str, int], bool]:
    """The server-side projection, and whether ``uid`` must be dropped from its result.

    ``uid`` plays the role of ``_id``: kept unless excluded. MongoDB allows excluding only
    ``_id`` from an inclusion, so an inclusion that drops ``uid`` asks for it and drops it after.
    """
    include = any(v for k, v in projection.items() if k != "uid")
    out = {k: v for k, v in projection.items() if k != "uid"}
    out["_id"] = 0
    drop_uid = False
    if include:
        out["uid"] = 1
        drop_uid = projection.get("uid", 1) == 0
    elif projection.get("uid", 1) == 0:
        out["uid"] = 0
    return out, drop_uid


def test_projection_matches_mongodb(wire_docs: Any, memory: MemoryStore) -> None:
    failures = []
    for projection in [*PROJECTIONS, {}]:
        server_proj, drop_uid = mongo_projection(projection)
        if server_proj.get("uid") == 0:  # no uid to pair the documents by: compare in uid order
            want = list(wire_docs.find({}, server_proj, sort=[("uid", 1)]))
        else:
            want = list(wire_docs.find({}, server_proj, sort=[("uid", 1)]))
            if drop_uid:
                for d in want:
                    del d["uid"]
        got = memory.find("docs", {}, sort=[("uid", 1)], projection=projection)
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            if canon(w) != canon(g):
                failures.append(
                    f"projection={show(projection)} document #{i}\n    engine:  {show(g)}\n    MongoDB: {show(w)}"
                )
    assert not failures, report("projected documents that differ from MongoDB's", failures)


def test_projection_errors_agree(wire_docs: Any, memory: MemoryStore) -> None:
    for projection in ({"m": 1, "m.x": 1}, {"a": 1, "n": 0}, {"m.x": 0, "m": 0}):
        with pytest.raises(Exception):  # noqa: B017 - pymongo's OperationFailure
            list(wire_docs.find({}, {**projection, "_id": 0}))
        with pytest.raises(QueryError):
            memory.find("docs", {}, projection=projection)


# -- updates ----------------------------------------------------------------------------------------


def _update_paths(update: dict[str, Any]) -> list[tuple[str, ...]]:
    return [tuple(path.split(".")) for fields in update.values() for path in fields]


def test_updates_match_mongodb(mongo_wire_db: Any) -> None:
    """Apply the same update sequence to the engine and to the server; compare every document."""
    coll = _fresh(mongo_wire_db, "updates", DOCS)
    store = MemoryStore()
    store.insert_many("docs", DOCS)
    failures: list[str] = []
    errors = 0
    for i, step in enumerate(UPDATE_STEPS):
        before = {d["uid"]: d for d in store.find("docs")}
        label = f"step {i}: {show(step)}"
        try:
            if step["kind"] == "find_one_and_update":
                from pymongo import ReturnDocument

                raw = coll.find_one_and_update(
                    step["query"], step["update"], sort=step["sort"], return_document=ReturnDocument.AFTER
                )
                want_result: Any = ("doc", strip_id(raw))
            else:
                fn = coll.update_many if step["many"] else coll.update_one
                r = fn(step["query"], step["update"], upsert=step["upsert"])
                want_result = ("count", r.matched_count + (r.upserted_id is not None))
        except Exception as e:  # noqa: BLE001 - pymongo's WriteError / OperationFailure
            want_result = ("error", str(e)[:200])
        try:
            if step["kind"] == "find_one_and_update":
                got_result: Any = (
                    "doc",
                    store.find_one_and_update("docs", step["query"], step["update"], sort=step["sort"]),
                )
            else:
                n = store.update("docs", step["query"], step["update"], many=step["many"], upsert=step["upsert"])
                got_result = ("count", n)
        except QueryError as e:
            got_result = ("error", str(e))
        after_server = {d["uid"]: strip_id(d) for d in coll.find({})}
        after_engine = {d["uid"]: d for d in store.find("docs")}
        if want_result[0] == "error" or got_result[0] == "error":
            errors += 1
            if want_result[0] != got_result[0]:
                failures.append(f"{label}\n    engine:  {got_result}\n    MongoDB: {want_result}")
            if step.get("many"):
                # MongoDB is not atomic across documents; the engine is. Put the server back in
                # the engine's state (which the update left unchanged) and go on.
                assert after_engine == before, label
                _fresh(mongo_wire_db, "updates", list(after_engine.values()))
                continue
        paths = _update_paths(step["update"])
        for uid in sorted(set(after_server) | set(after_engine)):
            server_doc = after_server.get(uid)
            if uid in before and server_doc is not None:
                documented = documented_order(before[uid], server_doc, paths)
                if canon(documented) != canon(server_doc):
                    coll.replace_one({"uid": uid}, documented)  # keep both sides in the same state
                server_doc = documented
            if canon(server_doc) != canon(after_engine.get(uid)):
                failures.append(
                    f"{label}\n    {uid} engine:  {show(after_engine.get(uid))}\n    {uid} MongoDB: {show(server_doc)}"
                )
        if want_result[0] == "doc" and want_result[1] is not None:
            uid = want_result[1]["uid"]
            want_result = ("doc", documented_order(before.get(uid), want_result[1], paths))
        if want_result[0] != "error" and canon(want_result) != canon(got_result):
            failures.append(
                f"{label}\n    engine returned:  {show(got_result)}\n    MongoDB returned: {show(want_result)}"
            )
    assert not failures, report("update steps where the engine disagrees with MongoDB", failures)
    assert 10 <= errors <= len(UPDATE_STEPS) // 2, f"{errors} of {len(UPDATE_STEPS)} steps failed on both sides"


def test_update_error_cases_agree(mongo_wire_db: Any) -> None:
    """Updates MongoDB refuses are refused by the engine, and leave the document unchanged."""
    doc = {"uid": "e", "m": None, "l": [1, None], "s": "str", "d": {"x": 1}}
    cases = [
        {"$set": {"m.x": 1}},  # null in the way
        {"$set": {"l.1.x": 1}},
        {"$set": {"s.x": 1}},  # a scalar in the way
        {"$set": {"l.x": 1}},  # an array addressed by a field name
        {"$push": {"l.1": 1}},  # $push onto null
        {"$push": {"s": 1}},
        {"$addToSet": {"d": 1}},
        {"$inc": {"l.1": 1}},
        {"$inc": {"s": 1}},
        {"$set": {"d": 1}, "$unset": {"d.x": 1}},  # overlapping paths
        {"$set": {"a": 1, "a.b": 2}},
        {"$bogus": {"a": 1}},
    ]
    coll = _fresh(mongo_wire_db, "update_errors", [doc])
    store = MemoryStore()
    store.insert("docs", doc)
    failures = []
    for update in cases:
        try:
            coll.update_one({"uid": "e"}, update)
            failures.append(f"the server accepted {show(update)}")
        except Exception:  # noqa: BLE001, S110 - expected
            pass
        try:
            store.update("docs", {"uid": "e"}, update)
            failures.append(f"the engine accepted {show(update)}")
        except QueryError:
            pass
        assert strip_id(coll.find_one({"uid": "e"})) == doc == store.find("docs", {"uid": "e"})[0]
    assert not failures, report("updates refused on one side only", failures)
