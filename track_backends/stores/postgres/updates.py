"""Compile a parsed update to a JSONB expression over the helper functions of :mod:`.functions`.

The value of operation ``n`` is the parameter ``u<n>`` (see :func:`update_values`), so one
compiled statement serves every update of the same shape (:func:`update_shape`).

>>> from track_backends.query import parse_update
>>> upd = parse_update({"$set": {"a.b": 1}})
>>> fns = {n: sql.Identifier(n) for n in ("set", "unset", "push")}
>>> compile_update(upd, Params(), doc=sql.SQL("t.doc"), functions=fns).as_string()
'"set"(t.doc, %(p1)s::text[], %(u0)s::jsonb)'
>>> update_values(upd)
{'u0': '1'}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from psycopg import sql

from ...query.update import Update
from .fragments import Params
from .jsonb import dumps

_PUSH = ("$push", "$addToSet")
_NUMERIC = ("$inc", "$min", "$max")


def _kind(op: str, value: Any) -> str | None:
    """What SQL can do with a numeric update's value: ``"int"``, ``"float"`` (finite), else None."""
    t = type(value)
    if t is int:
        return "int"
    if t is float and op != "$inc" and math.isfinite(value):
        return "float"  # float arithmetic stays in Python; comparing finite floats does not
    return None


def compile_update(
    upd: Update, params: Params, *, doc: sql.Composable, functions: Mapping[str, sql.Composable]
) -> sql.Composable | None:
    """Compile an update to a JSONB expression using the store's helper functions.

    Args:
        upd: The validated update.
        params: Collects parameters.
        doc: The JSONB expression to update.
        functions: SQL names of the helper functions ``set``, ``unset`` and ``push`` (see
            :mod:`.functions`).

    Returns:
        The expression, or ``None`` when the update needs Python (``$inc`` by a float, whose
        arithmetic SQL does not reproduce, ``$min``/``$max`` by anything but a finite number,
        and paths with non-ASCII digits). The numeric helpers raise ``TB002`` at run time when
        the stored value needs Python too (see :mod:`.functions`).
    """
    expr = doc
    for n, (op, parts, value) in enumerate(upd.ops):
        if any(p.isdigit() and not p.isascii() for p in parts):
            return None
        if op == "$setOnInsert":
            continue
        if op == "$set":
            v = params.named(f"u{n}", dumps(value), "jsonb")
            expr = sql.SQL("{}({}, {}, {})").format(functions["set"], expr, params.path(parts), v)
        elif op == "$unset":
            expr = sql.SQL("{}({}, {})").format(functions["unset"], expr, params.path(parts))
        elif op in _PUSH:
            expr = sql.SQL("{}({}, {}, {}, {})").format(
                functions["push"],
                expr,
                params.path(parts),
                params.named(f"u{n}", dumps(list(value[1])), "jsonb"),
                sql.SQL("true" if op == "$addToSet" else "false"),
            )
        elif op in _NUMERIC and _kind(op, value) is not None:
            v = params.named(f"u{n}", dumps(value), "jsonb")
            if op == "$inc":
                expr = sql.SQL("{}({}, {}, {})").format(functions["inc"], expr, params.path(parts), v)
            else:
                lower = sql.SQL("true" if op == "$min" else "false")
                expr = sql.SQL("{}({}, {}, {}, {})").format(functions["minmax"], expr, params.path(parts), v, lower)
        else:
            return None
    return expr


def update_values(upd: Update) -> dict[str, str]:
    """The ``u<n>`` parameters of :func:`compile_update` for this update's values."""
    out = {}
    for n, (op, _, value) in enumerate(upd.ops):
        if op == "$set" or (op in _NUMERIC and _kind(op, value) is not None):
            out[f"u{n}"] = dumps(value)
        elif op in _PUSH:
            out[f"u{n}"] = dumps(list(value[1]))
    return out


def update_shape(upd: Update) -> tuple[Any, ...]:
    """What :func:`compile_update`'s SQL depends on: operators, paths, kinds of numbers; no values."""
    return tuple((op, parts, _kind(op, value) if op in _NUMERIC else None) for op, parts, value in upd.ops)
