"""Seeded generators of documents, queries, sorts, projections and update scenarios.

Everything here is deterministic for a given seed, so a failing differential test names a query
that can be replayed. Documents stress the corners of MongoDB's semantics: missing fields,
nulls, empty and nested arrays, arrays of documents, documents where arrays are expected, and
values of every type side by side (``1``, ``1.0``, ``True``, ``"1"``).
"""

from __future__ import annotations

import copy
import random
from typing import Any

MISSING = object()  # a field left out of a generated document

QUERY_OPERATORS = (
    "$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options $and $or $nor $not $all $size $elemMatch"
).split()

# -- documents -----------------------------------------------------------------------------------

_A = [MISSING, None, 0, 1, 1.0, 2, -1, 2.5, True, False, "1", "a", "B", "", [], [1], [1, 2], [2, 1], [1, "a"]]
_A += [[True], [None], [[1, 2]], [[1], 2], {"x": 1}, {}, [{"x": 1}], [{"x": 2}, {"y": 1}], {"x": [1, 2]}]
_N = [MISSING, None, 0, 1, 1.0, -3, 2.5, 10, 7, 3, True, False, "10", "3", [3, 7], [], [0.5, 20], [[5]], {"v": 1}]
_S = [MISSING, None, "apple", "Apple", "banana", "APPLE pie", "cherry", "", "kiwi", ["apple", "kiwi"], ["Banana"]]
_S += [5, ["x", 3], "b.c"]
_TAGS = [MISSING, None, [], ["x"], ["x", "y"], ["y", "z", "x"], [["x"]], "x", ["x", 1], [1, 2, 3], ["y"], ["z", "z"]]
_TAGS += [[["x", "y"]], [None, "x"], [True], [1.0, 2]]
_SCALARS = [None, 0, 1, 1.5, 2, True, False, "p", "q", "P", "", [1, 2], [], {"w": 1}]
_GRID = [MISSING, [[1, 2], [3, 4]], [[1], [2, 3]], [], [[]], [1, [2, [3]]], [[2, 1]], [[{"k": "p"}]], None, 3]


def _pick(rng: random.Random, pool: list[Any]) -> Any:
    value = rng.choice(pool)
    return value if value is MISSING else copy.deepcopy(value)


def _m(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.1:
        return MISSING
    if r < 0.15:
        return None
    if r < 0.2:
        return rng.choice([5, "m", []])
    if r < 0.3:
        return [{"x": _pick(rng, _SCALARS)}, {"y": _pick(rng, _SCALARS)}]
    doc: dict[str, Any] = {}
    for key in ("x", "y"):
        if rng.random() < 0.8:
            doc[key] = _pick(rng, _SCALARS)
    if rng.random() < 0.6:
        doc["z"] = rng.choice([{"w": _pick(rng, _SCALARS)}, {}, None, [{"w": 1}, {"w": 2}], 4])
    return doc


def _arr_element(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.08:
        return rng.choice([3, "p", None])
    if r < 0.13:
        return [{"k": "p", "v": 1}]
    if r < 0.18:
        return {}
    el: dict[str, Any] = {}
    if rng.random() < 0.85:
        el["k"] = rng.choice(["p", "q", "r", None, 1, "P"])
    if rng.random() < 0.75:
        el["v"] = rng.choice([0, 1, 2, 2.0, 5, -1, None, True, "1", [1, 2], [5], []])
    return el


def _arr(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.08:
        return MISSING
    if r < 0.12:
        return []
    if r < 0.16:
        return {"k": "p", "v": 1}  # a document where an array is expected
    if r < 0.19:
        return None
    return [_arr_element(rng) for _ in range(rng.randint(1, 4))]


def documents(seed: int = 7, n: int = 40) -> list[dict[str, Any]]:
    """Return ``n`` documents with uids ``d00``, ``d01``, ... (deterministic for ``seed``)."""
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        fields = {
            "a": _A[i % len(_A)] if i < len(_A) else _pick(rng, _A),  # every value of _A at least once
            "n": _N[i % len(_N)] if i < len(_N) else _pick(rng, _N),
            "s": _pick(rng, _S),
            "tags": _TAGS[i % len(_TAGS)] if i < len(_TAGS) else _pick(rng, _TAGS),
            "m": _m(rng),
            "arr": _arr(rng),
            "grid": _pick(rng, _GRID),
            "rank": rng.choice([i, i, float(i) + 0.5, -i]),
        }
        doc: dict[str, Any] = {"uid": f"d{i:02d}"}
        for key, value in fields.items():
            if value is not MISSING:
                doc[key] = copy.deepcopy(value)  # never share containers between documents
        docs.append(doc)
    return docs


# -- queries -------------------------------------------------------------------------------------

_PATH_VALUES: dict[str, list[Any]] = {
    "a": [None, 0, 1, 1.0, 2, True, False, "1", "a", "", [], [1], [1, 2], [2, 1], [[1, 2]], {"x": 1}, {}, [1, "a"]],
    "a.x": [None, 1, 2, [1, 2]],
    "a.0": [None, 1, [1, 2], {"x": 1}, 2],
    "a.1": [None, 2, "a", 1],
    "n": [None, 0, 1, 1.0, 2.5, 3, 7, 10, -3, True, False, "10", "3", [3, 7], [], 20, 0.5, [5]],
    "n.0": [None, 3, 0.5, [5], 5],
    "s": [None, "apple", "Apple", "banana", "kiwi", "", 5, "b.c", ["apple", "kiwi"], ["Banana"]],
    "tags": [None, "x", "y", "z", 1, 2, True, [], ["x"], ["x", "y"], ["y", "x"], 1.0],
    "tags.0": [None, "x", "y", 1, ["x"], True],
    "tags.1": [None, "y", "x", 2, "z"],
    "m": [None, 5, {}, {"x": 1}, {"x": "p", "y": "q"}, []],
    "m.x": [None, 0, 1, 1.5, 2, True, False, "p", "P", "", [], [1, 2], {"w": 1}],
    "m.y": [None, 1, 2, "q", False, [1, 2]],
    "m.z": [None, {}, {"w": 1}, 4],
    "m.z.w": [None, 1, 2, "p", True, {"w": 1}, [1, 2]],
    "arr": [None, [], {"k": "p", "v": 1}, {"k": "p"}, {}, 3, "p"],
    "arr.k": [None, "p", "q", "r", 1, "P"],
    "arr.v": [None, 0, 1, 2, 5, -1, True, "1", [1, 2], [5], []],
    "arr.0": [None, {"k": "p"}, 3, "p", {}],
    "arr.0.k": [None, "p", "q", 1],
    "arr.1.v": [None, 1, 2, [1, 2]],
    "arr.k.0": [None, "p"],
    "grid": [None, 1, 2, 3, [1, 2], [3, 4], [], [[]], [2, 3], [[1, 2], [3, 4]]],
    "grid.0": [None, 1, 2, [1, 2], [1], [], [2, 1]],
    "grid.1": [None, 2, 3, [2, 3], [3, 4], [2, [3]]],
    "grid.0.1": [None, 1, 2],
    "grid.k": [None, "p"],
    "grid.0.k": [None, "p"],
    "rank": [0, 3, 3.5, -5, 10, 39],
    "nope": [None, 1],
    "nope.deep": [None, 1],
    "uid": ["d00", "d05", "d17", "zz"],
}
_PATHS = list(_PATH_VALUES)
_GENERIC = [None, 0, 1, 1.0, 2, True, False, "1", "p", "x", [], [1, 2], {"x": 1}]
_REGEXES = ["^a", "apple", "^A", "an", "e$", "^$", "x", "1", "p", "^[a-c]", "b\\.c", "PIE"]
_SIZES = [0, 1, 2, 3]
_ELEM_DOC_QUERIES: list[dict[str, Any]] = [
    {"k": "p"},
    {"k": "p", "v": {"$gte": 1}},
    {"v": {"$gt": 1}},
    {"k": None},
    {"k": {"$exists": False}},
    {"v": {"$in": [1, 5]}},
    {"$or": [{"k": "q"}, {"v": 5}]},
    {"v": [1, 2]},
    {"w": 1},
    {"x": 1},
    {"x": {"$exists": True}},
    {"k": {"$ne": "p"}},
    {"v": {"$size": 2}},
    {"k": {"$regex": "^p$", "$options": "i"}},
]


class QueryGenerator:
    """Random MongoDB filters over the fields of :func:`documents` (deterministic for a seed)."""

    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)

    def value(self, path: str) -> Any:
        pool = _PATH_VALUES.get(path, _GENERIC)
        if self.rng.random() < 0.2:
            pool = _GENERIC
        return copy.deepcopy(self.rng.choice(pool))

    def path(self) -> str:
        return self.rng.choice(_PATHS)

    def values(self, path: str, lo: int = 0, hi: int = 3) -> list[Any]:
        return [self.value(path) for _ in range(self.rng.randint(lo, hi))]

    def operator_doc(self, path: str, depth: int = 0) -> dict[str, Any]:
        """One operator expression (a dict of ``$`` operators) on ``path``."""
        rng = self.rng
        op = rng.choice(
            ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex"]
            + ["$all", "$size", "$elemMatch", "$not", "range", "$in", "$regex", "$elemMatch", "$size", "$not"]
        )
        if op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
            return {op: self.value(path)}
        if op == "range":
            lo, hi = rng.choice([("$gt", "$lt"), ("$gte", "$lte"), ("$gt", "$lte"), ("$gte", "$lt")])
            a, b = self.value(path), self.value(path)
            return {lo: a, hi: b}
        if op in ("$in", "$nin"):
            return {op: self.values(path, 0 if rng.random() < 0.1 else 1, 3)}
        if op == "$exists":
            return {"$exists": rng.random() < 0.5}
        if op == "$regex":
            out: dict[str, Any] = {"$regex": rng.choice(_REGEXES)}
            if rng.random() < 0.4:
                out["$options"] = "i"
            return out
        if op == "$all":
            return {"$all": self.values(path, 0 if rng.random() < 0.1 else 1, 3)}
        if op == "$size":
            return {"$size": rng.choice(_SIZES)}
        if op == "$elemMatch":
            if rng.random() < 0.5:
                return {"$elemMatch": rng.choice(_ELEM_DOC_QUERIES)}
            sub = self.operator_doc(path, depth + 1) if depth < 1 else {"$gt": self.value(path)}
            while "$elemMatch" in sub or "$regex" in sub and "$options" in sub:
                sub = {"$gte": self.value(path)}
            return {"$elemMatch": sub}
        # $not
        sub = self.operator_doc(path, depth + 1) if depth < 1 else {"$gt": self.value(path)}
        while "$not" in sub:
            sub = {"$lt": self.value(path)}
        return {"$not": sub}

    def field_condition(self, depth: int = 0) -> tuple[str, Any]:
        path = self.path()
        if self.rng.random() < 0.25:
            return path, self.value(path)
        return path, self.operator_doc(path, depth)

    def query(self, depth: int = 0) -> dict[str, Any]:
        rng = self.rng
        q: dict[str, Any] = {}
        r = rng.random()
        if depth < 2 and r < 0.25:
            op = rng.choice(["$and", "$or", "$nor"])
            q[op] = [self.query(depth + 1) for _ in range(rng.randint(1, 3))]
            if rng.random() < 0.3:
                path, cond = self.field_condition(depth)
                q[path] = cond
            return q
        for _ in range(rng.randint(1, 2)):
            path, cond = self.field_condition(depth)
            q[path] = cond
        return q


def queries(seed: int = 11, n: int = 450) -> list[dict[str, Any]]:
    """Return ``n`` generated queries followed by the hand-picked :data:`EDGE_QUERIES`."""
    gen = QueryGenerator(seed)
    return [gen.query() for _ in range(n)] + copy.deepcopy(EDGE_QUERIES)


EDGE_QUERIES: list[dict[str, Any]] = [
    {"a": 1},
    {"a": True},
    {"a": 1.0},
    {"a": "1"},
    {"a": None},
    {"a": {"$ne": None}},
    {"a": {"$gte": None}},
    {"a": {"$lt": None}},
    {"a": []},
    {"a": [1, 2]},
    {"a": [[1, 2]]},
    {"a": {"$gt": []}},
    {"a": {"$lt": [2]}},
    {"a": {"$gte": {}}},
    {"a": {"$not": {"$gt": 0}}},
    {"a": {"$not": {"$size": 1}}},
    {"a": {"$size": 0}},
    {"a": {"$elemMatch": {"$eq": 2}}},
    {"a": {"$elemMatch": {"$gte": 1, "$lt": 2}}},
    {"a": {"$elemMatch": {"x": {"$exists": False}}}},
    {"a": {"$all": [1, 2]}},
    {"a": {"$all": [[1, 2]]}},
    {"a": {"$all": []}},
    {"a": {"$in": []}},
    {"a": {"$nin": []}},
    {"a": {"$in": [None, True]}},
    {"a": {"$nin": [None, 1]}},
    {"a.x": None},
    {"a.x": {"$exists": False}},
    {"a.0": None},
    {"a.0": {"$exists": True}},
    {"a.0": 1},
    {"n": {"$gt": 2}},
    {"n": {"$gt": 2, "$lt": 5}},
    {"n": {"$gte": False}},
    {"n": {"$lte": "3"}},
    {"n": {"$in": [1, "10"]}},
    {"n": {"$exists": True, "$ne": None}},
    {"s": {"$regex": "^a", "$options": "i"}},
    {"s": {"$not": {"$regex": "^a"}}},
    {"s": {"$regex": "apple"}},
    {"tags": "x"},
    {"tags": ["x"]},
    {"tags": {"$all": ["x", "y"]}},
    {"tags": {"$all": [["x"]]}},
    {"tags": {"$size": 2}},
    {"tags.0": "x"},
    {"tags.0": {"$exists": False}},
    {"tags": {"$elemMatch": {"$in": ["x", 1]}}},
    {"tags": {"$elemMatch": {"$ne": "x"}}},
    {"m.x": None},
    {"m.x": {"$exists": False}},
    {"m.z.w": {"$gte": 1}},
    {"m": {"x": 1}},
    {"m.x": {"$not": {"$in": [1, "p"]}}},
    {"arr.k": "p"},
    {"arr.k": None},
    {"arr.k": {"$ne": "p"}},
    {"arr.k": {"$exists": False}},
    {"arr.v": {"$gt": 1}},
    {"arr.v": {"$size": 2}},
    {"arr.0.k": "p"},
    {"arr.0.k": None},
    {"arr.0": None},
    {"arr.1.v": {"$exists": True}},
    {"arr": {"$elemMatch": {"k": "p", "v": {"$gte": 1}}}},
    {"arr": {"$elemMatch": {"k": None}}},
    {"arr": {"$elemMatch": {"k": {"$exists": False}}}},
    {"arr": {"$elemMatch": {"w": {"$exists": False}}}},
    {"arr": {"$size": 1}},
    {"arr": {"k": "p", "v": 1}},
    {"arr.k.0": None},
    {"grid": [1, 2]},
    {"grid": 2},
    {"grid.0": 1},
    {"grid.0": [1, 2]},
    {"grid.1": 3},
    {"grid.0.1": 2},
    {"grid": {"$elemMatch": {"$elemMatch": {"$gt": 1}}}},
    {"grid": {"$size": 2}},
    {"grid.0": {"$size": 2}},
    {"grid.k": "p"},
    {"grid.0.k": "p"},
    {"grid.k": None},
    {"nope": None},
    {"nope": {"$exists": False}},
    {"nope": {"$ne": 1}},
    {"nope": {"$not": {"$eq": 1}}},
    {"nope.deep": {"$nin": [1]}},
    {"$or": [{"a": 1}, {"n": {"$gt": 5}}]},
    {"$nor": [{"a": 1}, {"a": None}]},
    {"$and": [{"n": {"$gte": 0}}, {"n": {"$lt": 10}}]},
    {"$and": [{"$or": [{"a": True}, {"a": False}]}, {"$nor": [{"tags": "x"}]}]},
    {"uid": {"$in": ["d01", "d02", "zz"]}},
    {"uid": "d03", "a": None},
]


def operators_used(query: Any) -> set[str]:
    """Return the ``$`` operators that appear anywhere in ``query``."""
    found: set[str] = set()
    if isinstance(query, dict):
        for k, v in query.items():
            if isinstance(k, str) and k.startswith("$"):
                found.add(k)
            found |= operators_used(v)
    elif isinstance(query, list):
        for v in query:
            found |= operators_used(v)
    return found


# -- sorts and projections -------------------------------------------------------------------------

SORT_PATHS = ["a", "n", "s", "tags", "m.x", "m.z.w", "arr.k", "arr.v", "grid", "rank", "nope", "m", "arr.0.k", "tags.0"]
PROJECTION_PATHS = ["a", "n", "s", "tags", "m", "m.x", "m.z", "m.z.w", "arr.k", "arr.v", "arr", "grid", "nope", "a.x"]


def sorts(seed: int = 13, n: int = 60) -> list[list[tuple[str, int]]]:
    """Return sort specifications of 1 to 3 keys (``uid`` is appended by the test as a tie-breaker)."""
    rng = random.Random(seed)
    out = [[(p, d)] for p in SORT_PATHS for d in (1, -1)]
    while len(out) < n:
        keys = rng.sample(SORT_PATHS, rng.randint(2, 3))
        out.append([(k, rng.choice([1, -1])) for k in keys])
    return out


def projections(seed: int = 17, n: int = 40) -> list[dict[str, int]]:
    """Return projections that are all inclusions or all exclusions, without path collisions."""
    rng = random.Random(seed)
    out: list[dict[str, int]] = [{p: 1} for p in PROJECTION_PATHS] + [{p: 0} for p in PROJECTION_PATHS]
    while len(out) < n:
        chosen: list[str] = []
        for p in rng.sample(PROJECTION_PATHS, rng.randint(2, 4)):
            if not any(p == c or p.startswith(c + ".") or c.startswith(p + ".") for c in chosen):
                chosen.append(p)
        flag = rng.choice([0, 1])
        proj = {p: flag for p in chosen}
        if rng.random() < 0.3:
            proj["uid"] = 0
        out.append(proj)
    return out


# -- update scenarios ------------------------------------------------------------------------------

UPDATE_PATHS = ["m.x", "m.y", "m.z.w", "n", "cnt", "tags", "tags.1", "arr.0.k", "arr.1", "arr.3", "grid.0.1", "a"]
UPDATE_PATHS += ["new", "new.deep.er", "m", "s", "arr.0.v", "list", "list.2"]
_UPDATE_VALUES = [0, 1, 2.5, -4, True, None, "v", "", [1, 2], [], {"p": 1}, {"q": [1]}, [{"k": "p"}]]


def _update_doc(rng: random.Random) -> dict[str, Any]:
    update: dict[str, dict[str, Any]] = {}
    used: list[str] = []
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["$set", "$set", "$unset", "$inc", "$push", "$addToSet", "$setOnInsert"])
        path = rng.choice(UPDATE_PATHS)
        if any(path == u or path.startswith(u + ".") or u.startswith(path + ".") for u in used):
            continue
        used.append(path)
        if op == "$unset":
            value: Any = ""
        elif op == "$inc":
            value = rng.choice([1, -2, 0.5, 3])
        elif op in ("$push", "$addToSet"):
            if rng.random() < 0.4:
                value = {"$each": [copy.deepcopy(rng.choice(_UPDATE_VALUES)) for _ in range(rng.randint(0, 3))]}
            else:
                value = copy.deepcopy(rng.choice(_UPDATE_VALUES))
        else:
            value = copy.deepcopy(rng.choice(_UPDATE_VALUES))
        update.setdefault(op, {})[path] = value
    return update


def update_steps(seed: int = 19, n: int = 160, uids: int = 40) -> list[dict[str, Any]]:
    """Return update steps applied in order to :func:`documents`.

    Each step is ``{"kind": "update", "query", "update", "many", "upsert"}`` or
    ``{"kind": "find_one_and_update", "query", "update", "sort"}``. Upsert queries pin fields
    (``seed``, ``seeded.x``) that no update writes, so the inserted document matches its query.
    """
    rng = random.Random(seed)
    steps: list[dict[str, Any]] = []
    for i in range(n):
        r = rng.random()
        upsert = False
        if r < 0.6:
            query: dict[str, Any] = {"uid": f"d{rng.randrange(uids):02d}"}
            many = False
            upsert = rng.random() < 0.2
        elif r < 0.75:
            query = {"uid": f"u{i:03d}", rng.choice(["seed", "seeded.x"]): rng.choice([1, "p", None, [1, 2], {"w": 1}])}
            if rng.random() < 0.3:
                query["$and"] = [{"also": rng.choice([2, "q"])}]
            many, upsert = False, True
        elif r < 0.9:
            query = {"uid": {"$in": [f"d{rng.randrange(uids):02d}" for _ in range(3)]}}
            many = True
        else:
            lo = rng.randrange(-uids, uids)
            steps.append(
                {
                    "kind": "find_one_and_update",
                    "query": {"rank": {"$gte": lo}},
                    "update": _update_doc(rng),
                    "sort": [("rank", rng.choice([1, -1])), ("uid", 1)],
                }
            )
            continue
        steps.append({"kind": "update", "query": query, "update": _update_doc(rng), "many": many, "upsert": upsert})
    return steps
