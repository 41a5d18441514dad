"""MongoDB's value semantics on plain Python values: type brackets, equality and ordering.

MongoDB compares values of different types by a fixed type order and never equates them, so
``1`` is not ``True`` and ``$gt: 3`` never matches a string. Numbers (``int`` and ``float``)
form one bracket. Documents compare field by field in order; arrays element by element.

NaN equals NaN and sorts below every other number, ``-inf`` included; an ordered comparison
(``$gt``, ``$lt``...) with NaN on either side is false, except that ``$gte``/``$lte`` NaN match
NaN (MongoDB's rules, checked against a MongoDB-wire server in the differential tests).
"""

from __future__ import annotations

from functools import cmp_to_key
from typing import Any

# BSON canonical type order (the subset of types we store).
NULL, NUMBER, STRING, OBJECT, ARRAY, BOOL = 1, 2, 3, 4, 5, 8

_BRACKETS: dict[type, int] = {
    type(None): NULL,
    int: NUMBER,
    float: NUMBER,
    str: STRING,
    dict: OBJECT,
    list: ARRAY,
    bool: BOOL,
}


def bracket(value: Any) -> int:
    """Return the BSON canonical type order of ``value``."""
    return _BRACKETS[type(value)]


def is_nan(value: Any) -> bool:
    """True for a float NaN."""
    return type(value) is float and value != value


def values_equal(a: Any, b: Any) -> bool:
    """MongoDB equality: same bracket, and equal (documents also in the same key order)."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is dict:
            if len(a) != len(b):
                return False
            return all(ka == kb and values_equal(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items()))
        if ta is list:
            return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
        return bool(a == b) or (ta is float and a != a and b != b)
    if _BRACKETS[ta] != _BRACKETS[tb]:
        return False
    return bool(a == b)  # int against float


def compare(a: Any, b: Any) -> int:
    """Total order over stored values, as MongoDB sorts them. Returns -1, 0 or 1."""
    ba, bb = _BRACKETS[type(a)], _BRACKETS[type(b)]
    if ba != bb:
        return -1 if ba < bb else 1
    if ba == OBJECT:
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            c = _cmp(bracket(va), bracket(vb)) or _cmp(ka, kb) or compare(va, vb)
            if c:
                return c
        return _cmp(len(a), len(b))
    if ba == ARRAY:
        for x, y in zip(a, b):
            c = compare(x, y)
            if c:
                return c
        return _cmp(len(a), len(b))
    if ba == NULL:
        return 0
    if ba == NUMBER and (a != a or b != b):  # NaN sorts below every other number
        return (b != b) - (a != a)
    return _cmp(a, b)


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


sort_key = cmp_to_key(compare)
"""A ``key=`` function that sorts values in MongoDB's order."""
