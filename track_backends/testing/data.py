"""Documents and expectations shared by the contract suite."""

from __future__ import annotations

from typing import Any

COLL = "things"

DOCS: list[dict[str, Any]] = [
    {"uid": "a", "n": 1, "s": "apple", "tags": ["x", "y"], "sub": {"k": 1, "z": "q"}, "b": True},
    {"uid": "b", "n": 2.5, "s": "Banana", "tags": ["y"], "sub": {"k": 2}, "b": False},
    {"uid": "c", "n": -3, "s": "cherry", "tags": [], "sub": {"k": 3, "arr": [{"v": 1}, {"v": 5}]}},
    {"uid": "d", "n": None, "s": "date", "tags": ["x", "z", "w"]},
    {"uid": "e", "s": "Elder", "n": "7", "sub": {"k": None}},
    {"uid": "f", "n": 2**62, "s": "fig", "tags": [["x"], "y"], "b": 1},
    {"uid": "g", "n": 1.0, "s": "grape\u00e9\u4e2d", "tags": ["x", "y"], "sub": {"arr": [{"v": 2}]}},
]

# (query, uids expected to match) -- MongoDB semantics, checked against a real server.
QUERY_CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({}, set("abcdefg")),
    ({"n": 1}, {"a", "g"}),  # 1 == 1.0; True is not 1
    ({"b": True}, {"a"}),
    ({"b": 1}, {"f"}),
    ({"n": None}, {"d"}),
    ({"n": {"$eq": 2.5}}, {"b"}),
    ({"n": {"$ne": 1}}, {"b", "c", "d", "e", "f"}),
    ({"n": {"$gt": 1}}, {"b", "f"}),  # type bracketing: "7" is not > 1
    ({"n": {"$gte": 1}}, {"a", "b", "f", "g"}),
    ({"n": {"$lt": 1}}, {"c"}),
    ({"n": {"$lte": 1}}, {"a", "c", "g"}),
    ({"s": {"$gt": "d"}}, {"d", "f", "g"}),
    ({"n": {"$in": [1, "7"]}}, {"a", "e", "g"}),
    ({"n": {"$nin": [1, "7"]}}, {"b", "c", "d", "f"}),
    ({"n": {"$in": [None]}}, {"d"}),
    ({"b": {"$exists": True}}, {"a", "b", "f"}),
    ({"b": {"$exists": False}}, {"c", "d", "e", "g"}),
    ({"sub.k": {"$exists": True}}, {"a", "b", "c", "e"}),
    ({"sub.k": None}, {"d", "e", "f", "g"}),
    ({"s": {"$regex": "^[a-c]"}}, {"a", "c"}),
    ({"s": {"$regex": "^[a-c]", "$options": "i"}}, {"a", "b", "c"}),
    ({"tags": "x"}, {"a", "d", "g"}),
    ({"tags": ["x"]}, {"f"}),
    ({"tags": {"$all": ["x", "y"]}}, {"a", "g"}),
    ({"tags": {"$size": 1}}, {"b"}),
    ({"tags": {"$size": 0}}, {"c"}),
    ({"sub.arr": {"$elemMatch": {"v": {"$gt": 1}}}}, {"c", "g"}),
    ({"tags": {"$elemMatch": {"$eq": "z"}}}, {"d"}),
    ({"sub.arr.v": 5}, {"c"}),
    ({"sub.arr.0.v": 2}, {"g"}),
    ({"n": {"$not": {"$gt": 1}}}, {"a", "c", "d", "e", "g"}),
    ({"$or": [{"n": 1}, {"s": "date"}]}, {"a", "d", "g"}),
    ({"$and": [{"n": {"$gte": 1}}, {"n": {"$lt": 3}}]}, {"a", "b", "g"}),
    ({"$nor": [{"n": 1}, {"tags": "y"}]}, {"c", "d", "e"}),
    ({"sub": {"k": 1, "z": "q"}}, {"a"}),
    ({"sub": {"z": "q", "k": 1}}, set()),  # embedded documents compare in field order
]

# (update, expected document of uid "a" after it, starting from DOCS[0])
UPDATE_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"$set": {"s": "apricot"}}, {**DOCS[0], "s": "apricot"}),
    ({"$set": {"sub.new": 9}}, {**DOCS[0], "sub": {"k": 1, "z": "q", "new": 9}}),  # siblings kept
    ({"$set": {"deep.er.x": 1}}, {**DOCS[0], "deep": {"er": {"x": 1}}}),
    ({"$set": {"tags.1": "Y"}}, {**DOCS[0], "tags": ["x", "Y"]}),
    ({"$unset": {"sub.z": ""}}, {**DOCS[0], "sub": {"k": 1}}),
    ({"$unset": {"nope": ""}}, DOCS[0]),
    ({"$inc": {"n": 2}}, {**DOCS[0], "n": 3}),
    ({"$inc": {"fresh": 1.5}}, {**DOCS[0], "fresh": 1.5}),
    ({"$push": {"tags": "z"}}, {**DOCS[0], "tags": ["x", "y", "z"]}),
    ({"$push": {"tags": {"$each": ["z", "x"]}}}, {**DOCS[0], "tags": ["x", "y", "z", "x"]}),
    ({"$push": {"m.loss": [1, 0.5]}}, {**DOCS[0], "m": {"loss": [[1, 0.5]]}}),
    ({"$addToSet": {"tags": "x"}}, DOCS[0]),
    ({"$addToSet": {"tags": {"$each": ["x", "q", "q"]}}}, {**DOCS[0], "tags": ["x", "y", "q"]}),
    ({"$setOnInsert": {"s": "ignored"}}, DOCS[0]),
    ({"$set": {"s": "two"}, "$inc": {"n": 1}}, {**DOCS[0], "s": "two", "n": 2}),
    ({"$min": {"n": 0.5}}, {**DOCS[0], "n": 0.5}),
    ({"$min": {"n": 7}}, DOCS[0]),
    ({"$max": {"n": 7}}, {**DOCS[0], "n": 7}),
    ({"$max": {"n": -1}}, DOCS[0]),
    ({"$min": {"fresh.low": 3}, "$max": {"fresh.high": 4}}, {**DOCS[0], "fresh": {"high": 4, "low": 3}}),
    ({"$max": {"s": 1}}, DOCS[0]),  # strings sort after numbers: "apple" stays the maximum
    ({"$min": {"s": 1}}, {**DOCS[0], "s": 1}),
]

# Updates that must be refused without changing anything: (update, exception class name)
BAD_UPDATES: list[tuple[Any, str]] = [
    ({"$inc": {"s": 1}}, "QueryError"),  # $inc of a string
    ({"$push": {"s": 1}}, "QueryError"),  # $push onto a non-array
    ({"$set": {"s.x": 1}}, "QueryError"),  # a field inside a string
    ({"$set": {"uid": "zz"}}, "QueryError"),  # uid is immutable
    ({"$set": {"a": 1}, "$inc": {"a.b": 1}}, "QueryError"),  # overlapping paths
    ({"$rename": {"s": "t"}}, "UnsupportedOperatorError"),
    ({"s": "replacement"}, "QueryError"),  # replacement documents are not updates
    ({}, "QueryError"),
    ({"$set": {"x": {1, 2}}}, "EncodingError"),
    ({"$set": {"x": {"$bad": 1}}}, "EncodingError"),
    ({"$inc": {"n": 2**63}}, "EncodingError"),
]

BAD_DOCUMENTS: list[tuple[Any, str]] = [
    ({"n": 1}, "EncodingError"),  # no uid
    ({"uid": 5}, "EncodingError"),
    ({"uid": "x", "a.b": 1}, "EncodingError"),
    ({"uid": "x", "$a": 1}, "EncodingError"),
    ({"uid": "x", "v": b"bytes"}, "EncodingError"),
    ({"uid": "x", "v": 2**64}, "EncodingError"),
    ({"uid": "x", "v": {3: "int key"}}, "EncodingError"),
    (["not", "a", "dict"], "EncodingError"),
    ({"uid": "x", "v": "lone \ud800 surrogate"}, "EncodingError"),  # not valid UTF-8 anywhere
    ({"uid": "x", "k\udc00": 1}, "EncodingError"),
    ({"uid": "x", "v": "nul \x00 inside"}, "EncodingError"),  # PostgreSQL's text cannot hold it
]

BAD_QUERIES: list[tuple[Any, str]] = [
    ({"n": {"$foo": 1}}, "UnsupportedOperatorError"),
    ({"$where": "1"}, "UnsupportedOperatorError"),
    ({"n": {"$in": 1}}, "QueryError"),
    ({"n": {"$size": -1}}, "QueryError"),
    ({"n": {"$regex": "("}}, "QueryError"),
    ({"$or": []}, "QueryError"),
    ({"n": {"$gt": 1, "x": 2}}, "QueryError"),
    ("n = 1", "QueryError"),
]
