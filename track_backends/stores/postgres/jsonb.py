"""How documents are written to and read from the ``jsonb`` column.

JSONB keeps neither the key order of objects nor the difference between ``1.0`` and ``1e16``.
Every object with two or more keys is stored with an extra key ``"$o"`` listing its keys in
order (user keys never start with ``$``), so JSONB equality of two encoded values is MongoDB's
order-sensitive equality. Floats are written so that PostgreSQL's ``numeric`` prints them back
with a decimal point (and integers without one), so types survive a round trip.

JSONB cannot hold NaN or the infinities either: each is stored as ``{"$n": "NaN"}``,
``{"$n": "Infinity"}`` or ``{"$n": "-Infinity"}`` (:data:`SPECIAL_KEY`), which queries and
sorts treat as numbers.

>>> dumps({"loss": float("nan"), "lr": [float("-inf")]})
'{"loss":{"$n":"NaN"},"lr":[{"$n":"-Infinity"}],"$o":["loss","lr"]}'
>>> loads('{"$n":"Infinity"}')
inf
>>> dumps({"b": 1, "a": [1e16, 2.5]})
'{"b":1,"a":[10000000000000000.0,2.5],"$o":["b","a"]}'
>>> loads('{"a":[1.0],"b":1,"$o":["b","a"]}')
{'b': 1, 'a': [1.0]}
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from ...encoding import mark_specials, unmark_special

ORDER_KEY = "$o"
"""The key under which an encoded object lists its keys in order."""

_CONTAINERS = (dict, list)


def _mark(value: Any) -> Any:
    """Return ``value`` with key-order lists added to objects (shares nothing it changes)."""
    t = type(value)
    if t is dict:
        out = {k: _mark(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
        if len(value) >= 2:
            out[ORDER_KEY] = list(value)
        return out
    if t is list:
        return [_mark(v) if type(v) in _CONTAINERS else v for v in value]
    return value


def _mark_inplace(value: Any) -> None:
    t = type(value)
    if t is dict:
        for v in value.values():
            if type(v) in _CONTAINERS:
                _mark_inplace(v)
        if len(value) >= 2:
            value[ORDER_KEY] = list(value)
    elif t is list:
        for v in value:
            if type(v) in _CONTAINERS:
                _mark_inplace(v)


_STRING_OR_BIG = re.compile(r'("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?[eE]\+?\d+)')


def _fix_exponent(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        return m.group(1)
    text = m.group(2)
    d = Decimal(text)
    if d == d.to_integral_value():  # 1e16 -> 10000000000000000.0 (exactly the float's value)
        return f"{int(float(text))}.0"
    return text  # negative exponents: numeric prints them with a decimal point


def dumps(value: Any, *, owned: bool = False) -> str:
    """Serialise a validated value for a ``jsonb`` parameter (with key order and float marks).

    Args:
        value: A JSON-like value (already validated by :func:`~track_backends.encoding.encode`).
        owned: ``value`` is a private copy that may be modified in place.
    """
    if owned:
        _mark_inplace(value)
    else:
        value = _mark(value)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or an infinity somewhere: rare, so looked for only now
        text = json.dumps(mark_specials(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if "e" in text or "E" in text:
        if "e+" in text or "E+" in text or re.search(r"\de\d", text):
            text = _STRING_OR_BIG.sub(_fix_exponent, text)
    return text


def _reorder(pairs: list[tuple[str, Any]]) -> Any:
    number = unmark_special(pairs)
    if number is not None:
        return number
    d = dict(pairs)
    order = d.pop(ORDER_KEY, None)
    if order is None:
        return d
    out = {k: d[k] for k in order if k in d}
    if len(out) != len(d):  # keys the list does not know (never written by us): keep them
        for k, v in d.items():
            out.setdefault(k, v)
    return out


def loads(text: str | bytes) -> Any:
    """Decode a value written by :func:`dumps` (restores key order, drops the order lists)."""
    return json.loads(text, object_pairs_hook=_reorder)


def storable(value: Any) -> bool:
    """True when PostgreSQL can hold ``value`` (no U+0000 and no lone surrogates in strings)."""
    t = type(value)
    if t is str:
        if "\x00" in value:
            return False
        if value.isascii():
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if t is list:
        return all(storable(v) for v in value)
    if t is dict:
        return all(storable(k) and storable(v) for k, v in value.items())
    return True
