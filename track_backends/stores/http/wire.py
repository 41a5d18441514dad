"""The JSON that crosses the wire between the HTTP client and the server, both ways.

JSON has no NaN or infinity, so a non-finite float travels as the library's stand-in
``{"$n": "NaN"}`` (``"Infinity"``, ``"-Infinity"``; see :func:`track_backends.encoding.special`).
A dict that really is ``{"$n": x}`` (a stored document never is one, but a query may hold one by
mistake) travels escaped as ``{"$n": [x]}``, so that the two can never be confused. Any other
``{"$n": ...}`` is malformed. The literals ``NaN`` and ``Infinity`` are refused, as is text that
is not UTF-8.

This module imports nothing outside the standard library and :mod:`track_backends`, so the server
and the client share it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ...encoding import MAX_DEPTH, SPECIAL_KEY, special, unmark_special
from ...errors import EncodingError, QueryError, TrackBackendsError

_SPECIAL_TEXTS = frozenset({"NaN", "Infinity", "-Infinity"})
MAX_WIRE_DEPTH = MAX_DEPTH + 10
"""Levels of nesting a client sends: every store refuses values and queries deeper than
:data:`~track_backends.encoding.MAX_DEPTH` anyway (the margin covers the update and body
wrappers), so deeper ones are refused before they are sent, with the same error class."""


def to_wire(value: Any, error: type[TrackBackendsError] = EncodingError) -> Any:
    """A JSON-ready copy of ``value``: non-finite floats marked, tuples made lists, NumPy converted.

    Args:
        value: A document, query, update or any argument of a Store call.
        error: The class raised for a value JSON cannot carry (:class:`QueryError` for queries,
            :class:`EncodingError` for documents and updates, as the stores raise).
            Nesting deeper than :data:`MAX_WIRE_DEPTH` raises it too.

    Returns:
        A value that :func:`json.dumps` encodes with ``allow_nan=False``.

    Raises:
        EncodingError: (or ``error``) A value cannot be sent: bytes, sets, objects, a dict key
            that is not a string, or nesting too deep.
    """
    return _walk(value, error, 0)


def _walk(value: Any, error: type[TrackBackendsError], depth: int) -> Any:
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return value if math.isfinite(value) else special(value)
    if depth > MAX_WIRE_DEPTH:
        raise error(f"value nests deeper than {MAX_DEPTH} levels of documents and arrays")
    depth += 1
    if t is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise error(f"field names must be str, got {type(k).__name__} {k!r:.80}")
            out[k] = _walk(v, error, depth)
        if len(out) == 1 and SPECIAL_KEY in out:
            return {SPECIAL_KEY: [out[SPECIAL_KEY]]}  # a real {"$n": x}, escaped
        return out
    if t is list or t is tuple:
        return [_walk(v, error, depth) for v in value]
    if type(value).__module__.startswith("numpy") and hasattr(value, "tolist"):
        return _walk(value.tolist(), error, depth)
    for base in (bool, int, float, str):  # subclasses (enums and the like) travel as their base
        if isinstance(value, base):
            return _walk(base(value), error, depth)
    if isinstance(value, (dict, list, tuple)):
        return _walk(dict(value) if isinstance(value, dict) else list(value), error, depth)
    raise error(f"cannot send a value of type {t.__name__}: {value!r:.80}")


def dumps(value: Any) -> bytes:
    """Encode a value already passed through :func:`to_wire` as compact UTF-8 JSON.

    Raises:
        EncodingError: A value JSON cannot carry slipped through.
    """
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as e:
        raise EncodingError(f"cannot encode as JSON: {e}") from None


def _pairs(pairs: list[tuple[str, Any]]) -> Any:
    if len(pairs) != 1 or pairs[0][0] != SPECIAL_KEY:
        return dict(pairs)
    inner = pairs[0][1]
    if isinstance(inner, str) and inner in _SPECIAL_TEXTS:
        return unmark_special(pairs)
    if isinstance(inner, list) and len(inner) == 1:
        return {SPECIAL_KEY: inner[0]}
    raise QueryError(f'malformed stand-in {{"{SPECIAL_KEY}": {inner!r:.40}}}: use "NaN", "Infinity" or "-Infinity"')


def _no_constant(name: str) -> Any:
    raise QueryError(f'JSON has no {name}: send {{"{SPECIAL_KEY}": "{name}"}} instead')


def loads(data: bytes | str) -> Any:
    """Decode wire JSON, turning stand-ins back into floats.

    Raises:
        QueryError: The text is not UTF-8, not JSON, holds a ``NaN``/``Infinity`` literal or a
            malformed stand-in, or nests deeper than :data:`MAX_WIRE_DEPTH` levels.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as e:
        raise QueryError(f"the body is not valid UTF-8 (byte {e.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except RecursionError:
        raise QueryError("the body nests too deeply to decode") from None
    except json.JSONDecodeError as e:
        raise QueryError(f"the body is not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
