"""Turning arbitrary Python values into storable ones: exact where cheap, summarised otherwise.

* :func:`storable` keeps a value exactly when the store can hold it (NumPy arrays and scalars
  become lists and numbers, NaN stays NaN) and falls back to :func:`summarize` otherwise.
* :func:`summarize` never stores anything big: arrays (NumPy's, or any array-like with ``shape``
  and ``dtype``) become ``{"shape", "dtype", "min", "max"}``, long lists and strings are cut with
  their length, dicts are kept down to a depth, other objects become ``{"type", "repr"}``.

NumPy is never imported here: values are recognised by their attributes.
"""

from __future__ import annotations

import math
from typing import Any

from ..encoding import INT64_MAX, INT64_MIN, encode
from ..errors import EncodingError

MAX_ITEMS = 20
"""Items of a list, tuple, set or dict kept by :func:`summarize` (the rest is counted)."""

MAX_STR = 200
"""Characters of a string kept by :func:`summarize`."""

MAX_REPR = 120
"""Characters of an object's ``repr`` kept by :func:`summarize`."""

MAX_DEPTH = 4
"""Levels of nested containers kept by :func:`summarize`."""

_FLAT = frozenset((float, int, bool, type(None)))


def storable(value: Any, _depth: int = 0) -> Any:
    """``value`` as a store can hold it: exactly where possible, the rest as :func:`summarize` summaries.

    Dicts, lists and tuples that hold something unstorable keep their storable parts exactly
    (keys are made storable); only the unstorable values in them are summarised.
    """
    t = type(value)
    if t is float or t is bool or value is None or (t is int and INT64_MIN <= value <= INT64_MAX):
        return value
    if t.__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
        t = type(value)
    if (t is list or t is tuple) and all(type(v) in _FLAT for v in value):
        if all(INT64_MIN <= v <= INT64_MAX for v in value if type(v) is int):
            return list(value)  # the common parameter vector: a copy, without a call per item
    try:
        return encode(value)
    except EncodingError:
        if _depth < MAX_DEPTH * 8:
            if isinstance(value, dict):
                return {_key(k): storable(v, _depth + 1) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [storable(v, _depth + 1) for v in value]
        return summarize(value)


def _key(k: Any) -> str:
    """A field name a store accepts, made from any dict key."""
    s = k if isinstance(k, str) else repr(k)
    s = s.replace(".", "_").replace("\x00", "")
    if not s or s[0] == "$":
        s = "_" + s
    return s[:MAX_STR]


def _number(x: Any) -> Any:
    """A plain ``int``/``float``/``bool`` from a NumPy or tensor scalar, or ``None``."""
    try:
        if hasattr(x, "item"):
            x = x.item()
    except (TypeError, ValueError, RuntimeError):
        return None
    if isinstance(x, bool):
        return bool(x)
    if isinstance(x, int):
        return int(x) if INT64_MIN <= x <= INT64_MAX else float(x)
    if isinstance(x, float):
        return float(x)
    return None


def _array(value: Any) -> dict[str, Any]:
    shape = value.shape
    out: dict[str, Any] = {"shape": [int(n) for n in shape], "dtype": str(value.dtype), "min": None, "max": None}
    size = math.prod(out["shape"])
    if size:
        try:
            out["min"] = _number(value.min())
            out["max"] = _number(value.max())
        except Exception:  # noqa: BLE001 - strings, objects, exotic array types: no bounds
            pass
    return out


def _is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, type)


def summarize(value: Any, depth: int = MAX_DEPTH) -> Any:
    """A small storable summary of any value.

    >>> summarize("x" * 1000)["length"]
    1000
    >>> summarize(list(range(100)))["items"][:3], summarize(list(range(100)))["length"]
    ([0, 1, 2], 100)
    >>> summarize(object())["type"]
    'object'

    Args:
        value: What to summarise.
        depth: How many more levels of containers to descend into.

    Returns:
        Scalars as they are (NaN included); arrays as ``{"shape", "dtype", "min", "max"}``;
        strings longer than :data:`MAX_STR` as ``{"truncated": head, "length": n}``; lists,
        tuples and sets as a list, or ``{"items": first MAX_ITEMS, "length": n}`` when longer;
        dicts as dicts (keys made storable), or ``{"type", "length", "keys"}`` when longer than
        MAX_ITEMS or below ``depth``;
        bytes as ``{"type": "bytes", "length": n}``; anything else as ``{"type", "repr"}``.
    """
    t = type(value)
    if t is float or t is bool or value is None:
        return value
    if t is int:
        return value if INT64_MIN <= value <= INT64_MAX else {"type": "int", "repr": str(value)[:MAX_REPR]}
    if t is str:
        value = value.replace("\x00", "\\0")
        return value if len(value) <= MAX_STR else {"truncated": value[:MAX_STR], "length": len(value)}
    if _is_array(value):
        if getattr(value, "shape", None) == ():
            number = _number(value)
            if number is not None:
                return number
        try:
            return _array(value)
        except Exception:  # noqa: BLE001 - an array-like that misbehaves: describe it by type
            pass
    elif isinstance(value, (list, tuple, set, frozenset)):
        if depth <= 0:
            return {"type": t.__name__, "length": len(value)}
        items = list(value) if not isinstance(value, (list, tuple)) else value
        head = [summarize(v, depth - 1) for v in items[:MAX_ITEMS]]
        return head if len(items) <= MAX_ITEMS else {"items": head, "length": len(items)}
    elif isinstance(value, dict):
        if depth <= 0 or len(value) > MAX_ITEMS:
            return {"type": t.__name__, "length": len(value), "keys": [_key(k) for k in list(value)[:MAX_ITEMS]]}
        return {_key(k): summarize(v, depth - 1) for k, v in value.items()}
    elif isinstance(value, (bytes, bytearray, memoryview)):
        return {"type": t.__name__, "length": len(value)}
    elif isinstance(value, (int, float, str)):  # subclasses (IntEnum, numpy scalars, ...)
        number = _number(value) if not isinstance(value, str) else None
        if number is not None:
            return number
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break the caller
        text = "<unrepresentable>"
    return {
        "type": f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__,
        "repr": text[:MAX_REPR].replace("\x00", "\\0"),
    }
