"""Values on their way to the browser: strict JSON, flattened parameters, plottable numbers.

JSON has no NaN or infinity, and ``json.dumps`` would emit the bare words ``NaN`` and
``Infinity``, which browsers refuse to parse. :func:`json_safe` turns them into the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the page shows them as they are, and plots them as
gaps), so every response is valid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
"""How a non-finite float is written: ``repr(x)`` -> the string sent."""


def json_safe(value: Any) -> Any:
    """A copy of ``value`` in which every non-finite float is a string and every key a string.

    Args:
        value: A JSON-like value (dicts, lists, tuples, scalars).

    Returns:
        A value that ``json.dumps(..., allow_nan=False)`` accepts.
    """
    t = type(value)
    if t is float:
        return value if math.isfinite(value) else NON_FINITE[repr(value)]
    if t is dict:
        return {str(k): json_safe(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [json_safe(v) for v in value]
    if value is None or t is str or t is int or t is bool:
        return value
    if isinstance(value, float):  # a float subclass (e.g. numpy.float64)
        return json_safe(float(value))
    if isinstance(value, int):
        return int(value)
    return str(value)


def dumps(value: Any) -> bytes:
    """Encode ``value`` as strict JSON (UTF-8), non-finite floats written as strings.

    Args:
        value: A JSON-like value.

    Returns:
        The encoded body.
    """
    return json.dumps(json_safe(value), allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


def flatten(value: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Flatten nested dicts into dotted paths: ``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}``.

    Lists and scalars are leaves. An empty dict is a leaf too, so that it still shows.

    Args:
        value: The value (usually a trial's ``parameters``).
        prefix: The path of ``value`` itself.
        out: The dict to fill (a new one by default).

    Returns:
        ``{dotted path: leaf value}``.
    """
    if out is None:
        out = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif prefix:
        out[prefix] = value
    return out


def number(value: Any) -> float | None:
    """``value`` as a finite float to plot, or ``None`` (bools, strings, NaN and infinities are gaps)."""
    if type(value) is bool or not isinstance(value, (int, float)):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def get_path(doc: Any, path: str) -> Any:
    """The value at a dotted path of nested dicts, or ``None`` when the path reaches nothing."""
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc
