"""Compile the query AST to a parameterised SQL condition over the JSONB column.

The SQL reproduces :mod:`track_backends.query.predicate` exactly for the operators it compiles,
and reports when it cannot: every compiled condition carries an ``exact`` flag. An inexact
condition is a *superset* of the matches (a prefilter); the store then re-checks the fetched
documents with the Python predicate. This happens only for comparisons whose MongoDB order
cannot be computed from JSONB (``$gt``/``$lt`` against a document or an array) and for
``$regex`` patterns or options that PostgreSQL's regex engine does not reproduce exactly (see
:func:`.regex.pg_regex`).

A simple condition compiles to SQL with the values as parameters (``+Infinity``, kept in JSONB
as a ``{"$n": "Infinity"}`` stand-in, is greater than every number, so it is matched too):

>>> from track_backends.query import parse
>>> params = Params()
>>> cond = compile_condition(parse({"x": {"$gt": 3}}), params)
>>> print(cond.sql.as_string())  # doctest: +NORMALIZE_WHITESPACE
(COALESCE(((jsonb_typeof(("doc" -> %(p0)s::text)) = 'number' AND ("doc" -> %(p0)s::text) > %(p1)s::jsonb)
 OR ("doc" -> %(p0)s::text) = %(p2)s::jsonb), false) OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE
 WHEN jsonb_typeof(("doc" -> %(p0)s::text)) = 'array' THEN ("doc" -> %(p0)s::text) END) "x1"(v) WHERE
 COALESCE(((jsonb_typeof("x1".v) = 'number' AND "x1".v > %(p1)s::jsonb) OR "x1".v = %(p2)s::jsonb), false)))
>>> params.values, cond.exact
({'p0': 'x', 'p1': '3', 'p2': '{"$n":"Infinity"}'}, True)
"""

from __future__ import annotations

import math
from typing import Any

from psycopg import sql

from ...query.analysis import UidTerm
from ...query.ast import All, And, Compare, ElemMatch, Exists, In, Node, Nor, Not, Or, Regex, Size
from ...query.parser import MATCH_ALL
from .fragments import FALSE, POSTGRES, Cond, Dialect, Params, and_, not_, or_, two_valued
from .jsonb import dumps, storable
from .regex import pg_regex
from .sources import PathCompiler, Pred, Single, Source

_SYMBOLS = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def _cut_string(value: str, op: str) -> tuple[str, str]:
    """Rewrite an order comparison with an unstorable string into one with a storable bound.

    Stored strings hold neither U+0000 nor lone surrogates. With ``p`` the prefix before the
    first such character ``c``, a stored string is greater than ``value`` exactly when it is at
    least ``p + succ(c)``, where ``succ`` is the next storable character (U+0001 after U+0000,
    U+E000 after a surrogate); so ``$gt``/``$gte`` become ``$gte`` and ``$lt``/``$lte`` become ``$lt``.
    """
    for i, ch in enumerate(value):
        if ch == "\x00":
            bound = value[:i] + "\x01"
            break
        if "\ud800" <= ch <= "\udfff":
            bound = value[:i] + "\ue000"
            break
    else:  # pragma: no cover - only called for unstorable strings
        return value, op
    return bound, ("$gte" if op in ("$gt", "$gte") else "$lt")


class ConditionCompiler(PathCompiler):
    """Compiles query nodes; one instance per statement (it numbers aliases)."""

    def eq_pred(self, value: Any) -> Pred:
        if value is None:
            return lambda x: sql.SQL("({x} IS NULL OR jsonb_typeof({x}) = 'null')").format(x=x)
        v = self.p.jsonb(value)
        return lambda x: sql.SQL("{} = {}").format(x, v)

    def eq(self, src: Source, value: Any) -> Cond:
        if value is not None and not storable(value):
            return Cond(FALSE)  # nothing stored can hold it
        if isinstance(src, Single) and src.expandable and value is not None and type(value) in (str, int, float, bool):
            v = self.p.jsonb(value)
            arr = self.p.jsonb([value])
            test = sql.SQL("({e} = {v} OR (jsonb_typeof({e}) = 'array' AND {e} @> {arr}))")
            return Cond(two_valued(test.format(e=src.expr, v=v, arr=arr)))
        return self.any_value(src, self.eq_pred(value))

    def in_(self, src: Source, values: tuple[Any, ...]) -> Cond:
        rest = [v for v in values if v is not None and storable(v)]
        conds = []
        if any(v is None for v in values):
            conds.append(self.eq(src, None))
        if rest:
            arr = self.p.add([dumps(v) for v in rest], "jsonb[]")
            conds.append(self.any_value(src, lambda x: sql.SQL("{} = ANY({})").format(x, arr)))
        return or_(conds)

    def order(self, src: Source, op: str, value: Any) -> Cond:
        if value is None:
            return self.eq(src, None) if op in ("$gte", "$lte") else Cond(FALSE)
        t = type(value)
        if t is float and not math.isfinite(value):
            return self._order_special(src, op, value)
        if t is bool or t is int or t is float:
            kind = sql.Literal("boolean" if t is bool else "number")
            v = self.p.jsonb(value)
            sym = sql.SQL(_SYMBOLS[op])
            if t is not bool:  # a finite bound: an infinity on the right side also matches
                inf = self.p.jsonb(math.inf if op in ("$gt", "$gte") else -math.inf)
                return self.any_value(
                    src,
                    lambda x: sql.SQL("((jsonb_typeof({x}) = 'number' AND {x} {sym} {v}) OR {x} = {inf})").format(
                        x=x, sym=sym, v=v, inf=inf
                    ),
                )
            return self.any_value(
                src,
                lambda x: sql.SQL("(jsonb_typeof({x}) = {k} AND {x} {sym} {v})").format(x=x, k=kind, sym=sym, v=v),
            )
        if t is str:
            if "\x00" in value or not storable(value):
                value, op = _cut_string(value, op)
            v, sym = self.p.text(value), sql.SQL(_SYMBOLS[op])
            return self.any_value(
                src,
                lambda x: sql.SQL("(jsonb_typeof({x}) = 'string' AND {s} {sym} {v})").format(
                    x=x, s=self.c(sql.SQL("({} #>> '{{}}')").format(x)), sym=sym, v=v
                ),
            )
        kind = sql.Literal("object" if t is dict else "array")
        return self.any_value(src, lambda x: sql.SQL("jsonb_typeof({}) = {}").format(x, kind), exact=False)

    def _order_special(self, src: Source, op: str, value: float) -> Cond:
        """``$gt``... against NaN or an infinity, as MongoDB decides (see :mod:`track_backends.query.values`).

        NaN is only ``$gte``/``$lte`` itself. Beyond an infinity there is nothing; short of it
        lie every finite number and the other infinity (never NaN).
        """
        inclusive = op in ("$gte", "$lte")
        if value != value or (op in ("$gt", "$gte")) == (value > 0):  # NaN, or past an infinity
            return self.eq(src, value) if inclusive else Cond(FALSE)
        ends = self.p.add([dumps(-value), *([dumps(value)] if inclusive else [])], "jsonb[]")
        return self.any_value(
            src, lambda x: sql.SQL("(jsonb_typeof({x}) = 'number' OR {x} = ANY({e}))").format(x=x, e=ends)
        )

    def regex(self, src: Source, node: Regex) -> Cond:
        translated = pg_regex(node.pattern, node.options) if self.d.regex else None

        def is_str(x: sql.Composable) -> sql.Composable:
            return sql.SQL("jsonb_typeof({}) = 'string'").format(x)

        if translated is None:
            return self.any_value(src, is_str, exact=False)
        pattern, guard = translated
        pat = self.p.text(pattern)

        def pred(x: sql.Composable) -> sql.Composable:
            s = self.c(sql.SQL("({} #>> '{{}}')").format(x))
            match = sql.SQL("{} ~ {}").format(s, pat)
            if guard:  # outside ASCII, PostgreSQL's classes and case folding differ from Python's
                match = sql.SQL("({} OR octet_length({x} #>> '{{}}') <> length({x} #>> '{{}}'))").format(match, x=x)
            return sql.SQL("({} AND {})").format(is_str(x), match)

        return self.any_value(src, pred, exact=not guard)

    def size(self, src: Source, n: int) -> Cond:
        k = self.p.add(n, "int")
        return Cond(
            self.any_reached(
                src,
                lambda x: sql.SQL(
                    "CASE WHEN jsonb_typeof({x}) = 'array' THEN jsonb_array_length({x}) = {k} ELSE false END"
                ).format(x=x, k=k),
            )
        )

    def exists(self, src: Source, present: bool) -> Cond:
        if isinstance(src, Single):
            return Cond(sql.SQL("({} IS {} NULL)").format(src.expr, sql.SQL("NOT" if present else "")))
        r = self.alias("r")
        found = sql.SQL("EXISTS (SELECT 1 FROM ({}) {}(v, t) WHERE {}.v IS NOT NULL)").format(src.rows, r, r)
        return Cond(found if present else sql.SQL("(NOT ") + found + sql.SQL(")"))

    def _element_test(self, node: ElemMatch, ev: sql.Composable) -> Cond:
        """The condition ``$elemMatch`` puts on one array element ``ev``."""
        if node.value_mode:
            return self.node(node.query, ev, value=Single(ev, expandable=False))
        if node.query == MATCH_ALL:
            return Cond(sql.SQL("jsonb_typeof({}) IN ('object', 'array')").format(ev))
        inner = self.node(node.query, ev)
        return Cond(sql.SQL("(jsonb_typeof({}) = 'object' AND {})").format(ev, inner.sql), inner.exact)

    def elem_match(self, src: Source, node: ElemMatch) -> Cond:
        el = self.alias("el")
        sub = self._element_test(node, sql.SQL("{}.v").format(el))

        def elements(arr: sql.Composable) -> sql.Composable:
            return sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({a}) = 'array' THEN {a} END) {el}(v)"
                " WHERE {sub})"
            ).format(a=arr, el=el, sub=sub.sql)

        if isinstance(src, Single):
            return Cond(elements(src.expr), sub.exact)
        r = self.alias("r")
        return Cond(
            sql.SQL("EXISTS (SELECT 1 FROM ({}) {}(v, t) WHERE {})").format(
                src.rows, r, elements(sql.SQL("{}.v").format(r))
            ),
            sub.exact,
        )

    def test(self, node: Node, src: Source) -> Cond:
        """Compile a field node against the values ``src`` (the field's path already resolved)."""
        if isinstance(node, Compare):
            if node.op == "$eq":
                return self.eq(src, node.value)
            if node.op == "$ne":
                return not_(self.eq(src, node.value))
            return self.order(src, node.op, node.value)
        if isinstance(node, In):
            return not_(self.in_(src, node.values)) if node.negate else self.in_(src, node.values)
        if isinstance(node, Exists):
            return self.exists(src, node.present)
        if isinstance(node, Regex):
            return self.regex(src, node)
        if isinstance(node, All):
            return and_([self.eq(src, v) for v in node.values]) if node.values else Cond(FALSE)
        if isinstance(node, Size):
            return self.size(src, node.size)
        if isinstance(node, ElemMatch):
            return self.elem_match(src, node)
        if isinstance(node, Not):
            return not_(self.on_source(node.query, src))
        raise TypeError(f"not a field node: {node!r}")

    def on_source(self, node: Node, src: Source) -> Cond:
        """Compile field nodes (and logical nodes over them) that all test the same source."""
        if isinstance(node, And):
            return and_([self.on_source(c, src) for c in node.children])
        if isinstance(node, Or):
            return or_([self.on_source(c, src) for c in node.children])
        if isinstance(node, Nor):
            return not_(or_([self.on_source(c, src) for c in node.children]))
        return self.test(node, src)

    def node(self, node: Node, root: sql.Composable, value: Source | None = None) -> Cond:
        """Compile ``node`` against the object ``root`` (or, in value mode, the source ``value``)."""
        if isinstance(node, And):
            return and_([self.node(c, root, value) for c in node.children])
        if isinstance(node, Or):
            return or_([self.node(c, root, value) for c in node.children])
        if isinstance(node, Nor):
            return not_(or_([self.node(c, root, value) for c in node.children]))
        path = node.path  # type: ignore[attr-defined]
        if value is not None and not path:
            return self.test(node, value)
        return self.field(root, path, lambda src: self.test(node, src))


def compile_condition(
    node: Node,
    params: Params,
    *,
    doc: sql.Composable | None = None,
    dialect: Dialect = POSTGRES,
    flat: frozenset[str] = frozenset(),
) -> Cond:
    """Compile a query AST to a boolean SQL condition over the JSONB column ``doc``.

    Args:
        node: The parsed query.
        params: Collects the statement's parameters.
        doc: The JSONB expression of the document (default: the column ``doc``).
        dialect: The target engine.
        flat: Paths known to have no array on the way in the rows the condition is for (the
            rows an index found by their keys: the key text of a path through an array is NULL).

    Returns:
        The condition; when ``exact`` is false it is a superset to re-check in Python.
    """
    root = doc if doc is not None else sql.Identifier("doc")
    return ConditionCompiler(params, dialect, flat, root).node(node, root)


def uid_condition(terms: list[UidTerm], params: Params, uid: sql.Composable) -> Cond:
    """Compile the conditions of a query on ``uid`` alone (:func:`~track_backends.query.analysis.uid_terms`).

    ``uid`` is always a non-empty string, so each term is a text comparison the primary key
    answers; a term whose values hold no storable string matches nothing.
    """
    conds = []
    for term in terms:
        strs = [v for v in term.values if storable_string(v)]
        if not strs:
            c = Cond(FALSE)
        elif len(term.values) == 1:
            c = Cond(sql.SQL("{} = {}").format(uid, params.text(strs[0])))
        else:
            c = Cond(sql.SQL("{} = ANY({})").format(uid, params.add(strs, "text[]")))
        conds.append(not_(c) if term.negate else c)
    return and_(conds)


def storable_string(value: Any) -> str | None:
    """``value`` when it is a string PostgreSQL can hold (an index key), else ``None``."""
    return value if type(value) is str and storable(value) else None
