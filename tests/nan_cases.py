"""NaN and infinities: documents, queries and sorts whose answers a MongoDB-wire server decides."""

from __future__ import annotations

import math
from typing import Any

NAN_DOCS: list[dict[str, Any]] = [
    {"uid": "nan", "x": math.nan},
    {"uid": "inf", "x": math.inf},
    {"uid": "ninf", "x": -math.inf},
    {"uid": "one", "x": 1},
    {"uid": "zero", "x": 0.0},
    {"uid": "big", "x": 1e308},
    {"uid": "str", "x": "a"},
    {"uid": "null", "x": None},
    {"uid": "missing"},
    {"uid": "arrnan", "x": [math.nan, 2]},
    {"uid": "arrinf", "x": [-math.inf, "b"]},
    {"uid": "sub", "x": {"m": math.nan}},
]

_RHS = [math.nan, math.inf, -math.inf, 1, 0.0]


def nan_queries() -> list[dict[str, Any]]:
    """Every comparison operator against NaN, ±inf and finite numbers, and a few compound forms."""
    out: list[dict[str, Any]] = []
    for op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
        out.extend({"x": {op: rhs}} for rhs in _RHS)
    out += [
        {"x": math.nan},
        {"x": {"$in": [math.nan]}},
        {"x": {"$in": [math.nan, math.inf]}},
        {"x": {"$nin": [math.nan]}},
        {"x": {"$not": {"$gt": 0}}},
        {"x": {"$not": {"$lte": math.nan}}},
        {"x": {"$elemMatch": {"$lt": 0}}},
        {"x": {"$elemMatch": {"$eq": math.nan}}},
        {"x": {"$all": [math.nan]}},
        {"x.m": math.nan},
        {"x": {"m": math.nan}},
        {"x": {"$gt": -math.inf, "$lt": math.inf}},
    ]
    return out


NAN_SORTS: list[list[tuple[str, int]]] = [[("x", 1), ("uid", 1)], [("x", -1), ("uid", 1)]]


def same_values(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN and types count."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)
