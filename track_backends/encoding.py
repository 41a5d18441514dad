"""Validation and copying of JSON-like values before they reach a store.

A storable value is ``None``, ``bool``, ``int`` (64-bit), a finite ``float`` (``-0.0`` is stored
as ``0.0``), ``str`` (valid UTF-8, without NUL characters), a ``list``
of storable values, or a ``dict`` with ``str`` keys that neither start with ``$`` nor contain
``.``. Tuples become lists; NumPy scalars and arrays become their Python equivalents.
Anything else raises :class:`~track_backends.errors.EncodingError` naming the path of the bad
value, before anything is written.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import EncodingError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _numpy_to_python(value: Any) -> Any:
    """Convert a NumPy scalar or array to Python, or return ``NotImplemented``."""
    module = type(value).__module__
    if not module.startswith("numpy"):
        return NotImplemented
    if hasattr(value, "tolist"):
        return value.tolist()
    return NotImplemented


def _where(path: str) -> str:
    return f" at {path!r}" if path else ""


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_key(key: Any, path: str = "") -> str:
    """Check that ``key`` can name a field.

    Args:
        key: The candidate field name.
        path: Dotted path of the enclosing document, for the error message.

    Returns:
        The key, unchanged.

    Raises:
        EncodingError: The key is not a string, is empty, starts with ``$`` or contains ``.``.
    """
    if type(key) is not str:
        raise EncodingError(f"field names must be str, got {type(key).__name__} {key!r}{_where(path)}")
    if not key or key[0] == "$" or "." in key:
        raise EncodingError(
            f"invalid field name {key!r}{_where(path)}: names must be non-empty, "
            "must not start with '$' and must not contain '.'"
        )
    if not _is_utf8(key) or "\x00" in key:
        raise EncodingError(
            f"field name {key!r}{_where(path)} holds a NUL or a lone surrogate, which is not valid here"
        )
    return key


MAX_DEPTH = 100
"""How many levels of documents and arrays a value (or a query) may nest: MongoDB's limit, which
every backend can hold."""


def _too_deep(path: str) -> EncodingError:
    if len(path) > 60:
        path = path[:60] + "..."
    return EncodingError(f"value{_where(path)} nests deeper than {MAX_DEPTH} levels of documents and arrays")


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How many levels of dicts and lists ``value`` nests (0 for a scalar), counted up to ``limit + 1``.

    It walks without recursion, so any depth is safe to measure.

    >>> nesting_depth({"a": [1, {"b": 2}]}), nesting_depth(3)
    (3, 0)
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if d > deepest:
            deepest = d
            if d > limit:
                return d
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list, tuple)))
    return deepest


def encode(value: Any, path: str = "", _depth: int = 1) -> Any:
    """Return a validated deep copy of ``value`` made of plain JSON-like Python types.

    Args:
        value: The value to validate and copy.
        path: Dotted path of the value, used in error messages.

    Returns:
        A fresh copy that shares no mutable container with ``value``.

    Raises:
        EncodingError: Some part of ``value`` cannot be stored, or it nests deeper than
            :data:`MAX_DEPTH` levels.
    """
    t = type(value)
    if t is str:
        if "\x00" in value:
            raise EncodingError(f"string{_where(path)} holds a NUL character, which not every backend can store")
        if value.isascii() or _is_utf8(value):
            return value
        raise EncodingError(f"string{_where(path)} holds a lone surrogate, which is not valid UTF-8: {value!r:.80}")
    if t is bool or value is None:
        return value
    if t is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
        raise EncodingError(f"integer {value} does not fit in 64 bits{_where(path)}")
    if t is float:
        return value if value else 0.0  # -0.0 becomes 0.0: not every backend keeps the sign of zero
    if t is dict:
        if _depth > MAX_DEPTH:
            raise _too_deep(path)
        out = {}
        for k, v in value.items():
            if (
                type(k) is not str
                or not k
                or k[0] == "$"
                or "." in k
                or "\x00" in k
                or not (k.isascii() or _is_utf8(k))
            ):
                check_key(k, path)
            tv = type(v)
            if (tv is str and v.isascii() and "\x00" not in v) or tv is bool or v is None or (tv is float and v):
                out[k] = v  # the common scalars, without a call
            elif tv is int and INT64_MIN <= v <= INT64_MAX:
                out[k] = v
            else:
                out[k] = encode(v, f"{path}.{k}" if path else k, _depth + 1)
        return out
    if t is list or t is tuple:
        if _depth > MAX_DEPTH:
            raise _too_deep(path)
        return [encode(v, f"{path}.{i}" if path else str(i), _depth + 1) for i, v in enumerate(value)]
    converted = _numpy_to_python(value)
    if converted is not NotImplemented:
        return encode(converted, path, _depth)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return encode(int(value), path)
    if isinstance(value, float):
        return encode(float(value), path)
    if isinstance(value, str):
        return str(value)
    raise EncodingError(f"cannot store a value of type {t.__name__}{_where(path)}: {value!r:.80}")


def clone(value: Any) -> Any:
    """Deep-copy a value that is already known to be JSON-like (fast path, no validation)."""
    t = type(value)
    if t is dict:
        return {k: clone(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if t is list:
        return [clone(v) if type(v) in _CONTAINERS else v for v in value]
    return value


_CONTAINERS = frozenset((dict, list))


def prepare_document(doc: Any) -> dict[str, Any]:
    """Validate and copy a document for insertion into any store.

    Raises:
        EncodingError: ``doc`` is not a dict, has no non-empty string ``uid``, or holds a value
            that cannot be stored.
    """
    if not isinstance(doc, dict):
        raise EncodingError(f"a document must be a dict, got {type(doc).__name__}")
    out: dict[str, Any] = encode(doc)
    uid = out.get("uid")
    if type(uid) is not str or not uid:
        raise EncodingError(f"a document needs a non-empty string 'uid', got {uid!r:.80}")
    return out


SPECIAL_KEY = "$n"
"""Where JSON has no NaN or infinity (JSONB, JSON lines), ``{"$n": "NaN"}``, ``{"$n": "Infinity"}``
or ``{"$n": "-Infinity"}`` stands for the float; stored keys never start with ``$``, so the
stand-in cannot be mistaken for a document."""


def special(value: float) -> dict[str, str]:
    """The JSON stand-in of a non-finite float.

    >>> special(float("-inf"))
    {'$n': '-Infinity'}
    """
    return {SPECIAL_KEY: "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")}


def mark_specials(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its stand-in (copied where needed)."""
    t = type(value)
    if t is float and not math.isfinite(value):
        return special(value)
    if t is dict:
        return {k: mark_specials(v) for k, v in value.items()}
    if t is list:
        return [mark_specials(v) for v in value]
    return value


def unmark_special(pairs: list[tuple[str, Any]]) -> float | None:
    """The float a decoded JSON object's ``pairs`` stand for, or ``None`` when it is a document.

    >>> unmark_special([("$n", "Infinity")]), unmark_special([("a", 1)])
    (inf, None)
    """
    if len(pairs) == 1 and pairs[0][0] == SPECIAL_KEY:
        return float(pairs[0][1])
    return None
