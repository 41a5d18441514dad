"""Compile the query AST to parameterised SQL over a JSONB column (PostgreSQL, CockroachDB).

The SQL reproduces :mod:`.predicate` exactly for the operators it compiles, and reports when
it cannot: every compiled condition carries an ``exact`` flag. An inexact condition is a
*superset* of the matches (a prefilter); the store then re-checks the fetched documents with
the Python predicate. This happens only for comparisons whose MongoDB order cannot be computed
from JSONB (``$gt``/``$lt`` against a document or an array) and for ``$regex`` patterns or
options that PostgreSQL's regex engine does not reproduce exactly (see :func:`pg_regex`).

Encoding of stored documents (see :func:`to_json`): JSONB keeps neither the key order of
objects nor the difference between ``1.0`` and ``1e16``. Every object with two or more keys is
stored with an extra key ``"$o"`` listing its keys in order (user keys never start with ``$``),
so JSONB equality of two encoded values is MongoDB's order-sensitive equality. Floats are
written so that PostgreSQL's ``numeric`` prints them back with a decimal point (and integers
without one), so types survive a round trip.

Nothing a user wrote reaches the statement as text: field names are ``text[]`` parameters,
values are ``jsonb``/``text`` parameters, and tables and columns are :class:`psycopg.sql.Identifier`.
DDL cannot take parameters, so the expressions of indexes and generated columns
(:func:`key_text`, :func:`overflow`, :func:`unique_key`) quote validated paths with
:class:`psycopg.sql.Literal`.

Value semantics: a path reaches a *set* of values, resolved as :func:`.paths.resolve` does
(array fan-out, numeric parts, missing = SQL ``NULL``, JSON ``null`` = ``'null'::jsonb``).
When no array lies on the way, the set is the single value ``doc #> path``; the generated SQL
tests that at run time and takes the fast branch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import sql

from .ast import All, And, Compare, ElemMatch, Exists, In, Node, Nor, Not, Or, Regex, Size
from .parser import MATCH_ALL
from .paths import split_path
from .sort import SortSpec
from .update import Update

try:  # Python 3.11+
    from re import _constants as _sc  # type: ignore[attr-defined]
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as _sc  # type: ignore[no-redef]
    import sre_parse as _sre  # type: ignore[no-redef]

ORDER_KEY = "$o"
"""The key under which an encoded object lists its keys in order."""

TRUE = sql.SQL("true")
FALSE = sql.SQL("false")


# -- encoding of values ------------------------------------------------------------------------


def _mark(value: Any) -> Any:
    """Return ``value`` with key-order lists added to objects (shares nothing it changes)."""
    t = type(value)
    if t is dict:
        out = {k: _mark(v) if type(v) in (dict, list) else v for k, v in value.items()}
        if len(value) >= 2:
            out[ORDER_KEY] = list(value)
        return out
    if t is list:
        return [_mark(v) if type(v) in (dict, list) else v for v in value]
    return value


def _mark_inplace(value: Any) -> None:
    t = type(value)
    if t is dict:
        for v in value.values():
            if type(v) in (dict, list):
                _mark_inplace(v)
        if len(value) >= 2:
            value[ORDER_KEY] = list(value)
    elif t is list:
        for v in value:
            if type(v) in (dict, list):
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
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if "e" in text or "E" in text:
        if "e+" in text or "E+" in text or re.search(r"\de\d", text):
            text = _STRING_OR_BIG.sub(_fix_exponent, text)
    return text


def _reorder(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
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


# -- statement pieces ---------------------------------------------------------------------------


class Params:
    """Named parameters of one statement; :meth:`add` returns the placeholder to compose."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, cast: str) -> sql.Composable:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return sql.SQL("{}::{}").format(sql.Placeholder(name), sql.SQL(cast))

    def named(self, name: str, value: Any, cast: str) -> sql.Composable:
        """Add a parameter under a fixed name (callers substitute its value per execution)."""
        self.values[name] = value
        return sql.SQL("{}::{}").format(sql.Placeholder(name), sql.SQL(cast))

    def jsonb(self, value: Any) -> sql.Composable:
        return self.add(dumps(value), "jsonb")

    def path(self, parts: tuple[str, ...] | list[str]) -> sql.Composable:
        return self.add(list(parts), "text[]")

    def text(self, value: str) -> sql.Composable:
        return self.add(value, "text")


@dataclass(frozen=True)
class Dialect:
    """What the target engine supports.

    Attributes:
        collate_c: Text comparisons take ``COLLATE "C"`` (code-point order); CockroachDB compares
            bytes, which is the same order, and needs no collation.
        regex: Translate ``$regex`` to the engine's regex (PostgreSQL ARE); otherwise ``$regex``
            is checked in Python after an SQL prefilter.
    """

    collate_c: bool = True
    regex: bool = True


POSTGRES = Dialect()
COCKROACH = Dialect(collate_c=False, regex=False)


@dataclass(frozen=True)
class Cond:
    """A compiled boolean condition.

    Attributes:
        sql: The SQL expression (never NULL).
        exact: True when it matches exactly what the Python predicate matches; False when it
            matches a superset that must be re-checked.
    """

    sql: sql.Composable
    exact: bool = True


def _and(conds: list[Cond]) -> Cond:
    if any(c.sql is FALSE and c.exact for c in conds):
        return Cond(FALSE)
    exact = all(c.exact for c in conds)
    conds = [c for c in conds if c.sql is not TRUE]
    if not conds:
        return Cond(TRUE, exact)
    if len(conds) == 1:
        return Cond(conds[0].sql, exact)
    return Cond(sql.SQL("(") + sql.SQL(" AND ").join(c.sql for c in conds) + sql.SQL(")"), exact)


def _or(conds: list[Cond]) -> Cond:
    if any(c.sql is TRUE and c.exact for c in conds):
        return Cond(TRUE)
    exact = all(c.exact for c in conds)
    conds = [c for c in conds if c.sql is not FALSE]
    if not conds:
        return Cond(FALSE, exact)
    if len(conds) == 1:
        return Cond(conds[0].sql, exact)
    return Cond(sql.SQL("(") + sql.SQL(" OR ").join(c.sql for c in conds) + sql.SQL(")"), exact)


def _not(c: Cond) -> Cond:
    if not c.exact:
        return Cond(TRUE, False)  # the negation of a superset is no bound at all
    if c.sql is TRUE:
        return Cond(FALSE)
    if c.sql is FALSE:
        return Cond(TRUE)
    return Cond(sql.SQL("(NOT ") + c.sql + sql.SQL(")"))


def _b(expr: sql.Composable) -> sql.Composable:
    """Make a leaf predicate two-valued (NULL -> false), so NOT works as in Python."""
    return sql.SQL("COALESCE(") + expr + sql.SQL(", false)")


# -- value sources: what a path reaches ------------------------------------------------------


@dataclass(frozen=True)
class _Single:
    """Exactly one reached value ``expr`` (SQL NULL = missing); ``expandable``: not terminal."""

    expr: sql.Composable
    expandable: bool = True


@dataclass(frozen=True)
class _Multi:
    """A set of reached values: ``rows`` is a subquery yielding ``(v jsonb, t boolean)``."""

    rows: sql.Composable


def _special(part: str) -> bool:
    """A path part that can never name a stored field ($-keys are ours; NUL is unstorable)."""
    return part.startswith("$") or not storable(part)


class _Compiler:
    def __init__(self, params: Params, dialect: Dialect) -> None:
        self.p = params
        self.d = dialect
        self.n = 0

    def alias(self, stem: str) -> sql.Identifier:
        self.n += 1
        return sql.Identifier(f"{stem}{self.n}")

    def c(self, text_expr: sql.Composable) -> sql.Composable:
        return text_expr + sql.SQL(' COLLATE "C"') if self.d.collate_c else text_expr

    # -- paths ----------------------------------------------------------------------------------
    def _step(self, prev: sql.Composable, part: str, last: bool) -> sql.Composable:
        """Rows reached from the rows of ``prev`` by one more path part (``resolve``)."""
        p, s, e = self.alias("p"), self.alias("s"), self.alias("e")
        pv = sql.SQL("{}.v").format(p)
        elements = sql.SQL("jsonb_array_elements(CASE WHEN jsonb_typeof({pv}) = 'array' THEN {pv} END) {e}").format(
            pv=pv, e=e
        )
        branches = [
            sql.SQL(
                "SELECT NULL::jsonb, false WHERE {pv} IS NULL OR jsonb_typeof({pv}) NOT IN ('object', 'array')"
            ).format(pv=pv)
        ]
        if _special(part):  # neither documents nor document elements hold such a key
            branches.append(sql.SQL("SELECT NULL::jsonb, false WHERE jsonb_typeof({pv}) = 'object'").format(pv=pv))
            branches.append(
                sql.SQL("SELECT NULL::jsonb, false FROM {els} WHERE jsonb_typeof({e}) = 'object'").format(
                    els=elements, e=e
                )
            )
        else:
            key = self.p.text(part)
            branches.append(
                sql.SQL("SELECT {pv} -> {key}, false WHERE jsonb_typeof({pv}) = 'object'").format(pv=pv, key=key)
            )
            if part.isdigit():
                idx = _index(part)
                if idx is None:  # past any array's end
                    branches.append(
                        sql.SQL("SELECT NULL::jsonb, false WHERE jsonb_typeof({pv}) = 'array'").format(pv=pv)
                    )
                else:
                    i = self.p.add(idx, "int")
                    term = sql.SQL("jsonb_typeof({pv} -> {i}) = 'array'").format(pv=pv, i=i) if last else FALSE
                    branches.append(
                        sql.SQL("SELECT {pv} -> {i}, {term} WHERE jsonb_typeof({pv}) = 'array'").format(
                            pv=pv, i=i, term=term
                        )
                    )
            branches.append(
                sql.SQL("SELECT {e} -> {key}, false FROM {els} WHERE jsonb_typeof({e}) = 'object'").format(
                    e=e, key=key, els=elements
                )
            )
        union = sql.SQL(" UNION ALL ").join(branches)
        return sql.SQL("SELECT {s}.v, {s}.t FROM ({prev}) {p}(v, t) CROSS JOIN LATERAL ({union}) {s}(v, t)").format(
            s=s, prev=prev, p=p, union=union
        )

    def multi(self, root: sql.Composable, parts: tuple[str, ...]) -> _Multi:
        rows: sql.Composable = sql.SQL("SELECT {}::jsonb, false").format(root)
        for i, part in enumerate(parts):
            rows = self._step(rows, part, i == len(parts) - 1)
        return _Multi(rows)

    def field(self, root: sql.Composable, path: str, test: Any) -> Cond:
        """Compile ``test(source)`` for the values ``path`` reaches from the object ``root``."""
        parts = split_path(path)
        if len(parts) == 1 and not _special(parts[0]):
            return test(_Single(sql.SQL("({} -> {})").format(root, self.p.text(parts[0]))))
        general = test(self.multi(root, parts))
        if any(_special(p) for p in parts):
            return general
        fast = test(_Single(sql.SQL("({} #> {})").format(root, self.p.path(parts))))
        checks = sql.SQL(" AND ").join(
            sql.SQL("jsonb_typeof({} #> {}) IS DISTINCT FROM 'array'").format(root, self.p.path(parts[:i]))
            for i in range(1, len(parts))
        )
        return Cond(
            sql.SQL("(CASE WHEN {} THEN {} ELSE {} END)").format(checks, fast.sql, general.sql),
            fast.exact and general.exact,
        )

    # -- tests over a source --------------------------------------------------------------------
    def any_value(self, src: Any, pred: Any, exact: bool = True) -> Cond:
        """Some reached value, arrays expanded (``expand``), satisfies ``pred(x)``."""
        if isinstance(src, _Single):
            own = _b(pred(src.expr))
            if not src.expandable:
                return Cond(own, exact)
            x = self.alias("x")
            elems = sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({e}) = 'array' THEN {e} END) {x}(v)"
                " WHERE {pred})"
            ).format(e=src.expr, x=x, pred=_b(pred(sql.SQL("{}.v").format(x))))
            return Cond(sql.SQL("({} OR {})").format(own, elems), exact)
        r, x, e = self.alias("r"), self.alias("x"), self.alias("e")
        rv = sql.SQL("{}.v").format(r)
        return Cond(
            sql.SQL(
                "EXISTS (SELECT 1 FROM ({rows}) {r}(v, t) CROSS JOIN LATERAL (SELECT {rv} UNION ALL SELECT {e} FROM "
                "jsonb_array_elements(CASE WHEN NOT {r}.t AND jsonb_typeof({rv}) = 'array' THEN {rv} END) {e}) {x}(v)"
                " WHERE {pred})"
            ).format(rows=src.rows, r=r, rv=rv, e=e, x=x, pred=_b(pred(sql.SQL("{}.v").format(x)))),
            exact,
        )

    def any_reached(self, src: Any, pred: Any) -> sql.Composable:
        """Some reached value (not expanded, terminal arrays unwrapped) satisfies ``pred``."""
        if isinstance(src, _Single):
            return _b(pred(src.expr))
        r = self.alias("r")
        return sql.SQL("EXISTS (SELECT 1 FROM ({}) {}(v, t) WHERE {})").format(
            src.rows, r, _b(pred(sql.SQL("{}.v").format(r)))
        )

    def eq_pred(self, value: Any) -> Any:
        if value is None:
            return lambda x: sql.SQL("({x} IS NULL OR jsonb_typeof({x}) = 'null')").format(x=x)
        v = self.p.jsonb(value)
        return lambda x: sql.SQL("{} = {}").format(x, v)

    def eq(self, src: Any, value: Any) -> Cond:
        if value is not None and not storable(value):
            return Cond(FALSE)  # nothing stored can hold it
        if isinstance(src, _Single) and src.expandable and value is not None and type(value) in (str, int, float, bool):
            v = self.p.jsonb(value)
            arr = self.p.jsonb([value])
            return Cond(
                _b(
                    sql.SQL("({e} = {v} OR (jsonb_typeof({e}) = 'array' AND {e} @> {arr}))").format(
                        e=src.expr, v=v, arr=arr
                    )
                )
            )
        return self.any_value(src, self.eq_pred(value))

    def in_(self, src: Any, values: tuple[Any, ...]) -> Cond:
        has_null = any(v is None for v in values)
        rest = [v for v in values if v is not None and storable(v)]
        conds = []
        if has_null:
            conds.append(self.eq(src, None))
        if rest:
            arr = self.p.add([dumps(v) for v in rest], "jsonb[]")
            conds.append(self.any_value(src, lambda x: sql.SQL("{} = ANY({})").format(x, arr)))
        return _or(conds)

    def order(self, src: Any, op: str, value: Any) -> Cond:
        if value is None:
            return self.eq(src, None) if op in ("$gte", "$lte") else Cond(FALSE)
        sym = sql.SQL({"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op])
        t = type(value)
        if t is bool or t is int or t is float:
            kind = "boolean" if t is bool else "number"
            v = self.p.jsonb(value)
            return self.any_value(
                src,
                lambda x: sql.SQL("(jsonb_typeof({x}) = {k} AND {x} {sym} {v})").format(
                    x=x, k=sql.Literal(kind), sym=sym, v=v
                ),
            )
        if t is str:
            if "\x00" in value or not storable(value):
                value, op = _cut_string(value, op)
                sym = sql.SQL({"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op])
            v = self.p.text(value)
            return self.any_value(
                src,
                lambda x: sql.SQL("(jsonb_typeof({x}) = 'string' AND {s} {sym} {v})").format(
                    x=x, s=self.c(sql.SQL("({} #>> '{{}}')").format(x)), sym=sym, v=v
                ),
            )
        kind = "object" if t is dict else "array"
        return self.any_value(src, lambda x: sql.SQL("jsonb_typeof({}) = {}").format(x, sql.Literal(kind)), exact=False)

    def regex(self, src: Any, node: Regex) -> Cond:
        translated = pg_regex(node.pattern, node.options) if self.d.regex else None
        is_str = lambda x: sql.SQL("jsonb_typeof({}) = 'string'").format(x)  # noqa: E731
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

    def size(self, src: Any, n: int) -> Cond:
        k = self.p.add(n, "int")
        return Cond(
            self.any_reached(
                src,
                lambda x: sql.SQL(
                    "CASE WHEN jsonb_typeof({x}) = 'array' THEN jsonb_array_length({x}) = {k} ELSE false END"
                ).format(x=x, k=k),
            )
        )

    def exists(self, src: Any, present: bool) -> Cond:
        if isinstance(src, _Single):
            return Cond(sql.SQL("({} IS {} NULL)").format(src.expr, sql.SQL("NOT" if present else "")))
        r = self.alias("r")
        found = sql.SQL("EXISTS (SELECT 1 FROM ({}) {}(v, t) WHERE {}.v IS NOT NULL)").format(src.rows, r, r)
        return Cond(found if present else sql.SQL("(NOT ") + found + sql.SQL(")"))

    def elem_match(self, src: Any, node: ElemMatch) -> Cond:
        el = self.alias("el")
        ev = sql.SQL("{}.v").format(el)
        if node.value_mode:
            sub = self.node(node.query, ev, value=_Single(ev, expandable=False))
        elif node.query == MATCH_ALL:
            sub = Cond(sql.SQL("jsonb_typeof({}) IN ('object', 'array')").format(ev))
        else:
            inner = self.node(node.query, ev)
            sub = Cond(sql.SQL("(jsonb_typeof({}) = 'object' AND {})").format(ev, inner.sql), inner.exact)

        def elements(arr: sql.Composable) -> sql.Composable:
            return sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({a}) = 'array' THEN {a} END) {el}(v)"
                " WHERE {sub})"
            ).format(a=arr, el=el, sub=sub.sql)

        if isinstance(src, _Single):
            return Cond(elements(src.expr), sub.exact)
        r = self.alias("r")
        return Cond(
            sql.SQL("EXISTS (SELECT 1 FROM ({}) {}(v, t) WHERE {})").format(
                src.rows, r, elements(sql.SQL("{}.v").format(r))
            ),
            sub.exact,
        )

    def test(self, node: Node) -> Any:
        """Return ``src -> Cond`` for a field node."""
        if isinstance(node, Compare):
            if node.op == "$eq":
                return lambda src: self.eq(src, node.value)
            if node.op == "$ne":
                return lambda src: _not(self.eq(src, node.value))
            return lambda src: self.order(src, node.op, node.value)
        if isinstance(node, In):
            if node.negate:
                return lambda src: _not(self.in_(src, node.values))
            return lambda src: self.in_(src, node.values)
        if isinstance(node, Exists):
            return lambda src: self.exists(src, node.present)
        if isinstance(node, Regex):
            return lambda src: self.regex(src, node)
        if isinstance(node, All):
            if not node.values:
                return lambda src: Cond(FALSE)
            return lambda src: _and([self.eq(src, v) for v in node.values])
        if isinstance(node, Size):
            return lambda src: self.size(src, node.size)
        if isinstance(node, ElemMatch):
            return lambda src: self.elem_match(src, node)
        if isinstance(node, Not):
            return lambda src: _not(self.on_source(node.query, src))
        raise TypeError(f"not a field node: {node!r}")

    def on_source(self, node: Node, src: Any) -> Cond:
        """Compile field nodes (and logical nodes over them) that all test the same source."""
        if isinstance(node, And):
            return _and([self.on_source(c, src) for c in node.children])
        if isinstance(node, Or):
            return _or([self.on_source(c, src) for c in node.children])
        if isinstance(node, Nor):
            return _not(_or([self.on_source(c, src) for c in node.children]))
        return self.test(node)(src)

    def node(self, node: Node, root: sql.Composable, value: Any = None) -> Cond:
        """Compile ``node`` against the object ``root`` (or, in value mode, the source ``value``)."""
        if isinstance(node, And):
            return _and([self.node(c, root, value) for c in node.children])
        if isinstance(node, Or):
            return _or([self.node(c, root, value) for c in node.children])
        if isinstance(node, Nor):
            return _not(_or([self.node(c, root, value) for c in node.children]))
        path = node.path  # type: ignore[attr-defined]
        if value is not None and not path:
            return self.test(node)(value)
        if root is None:  # pragma: no cover - the parser never produces this
            raise TypeError("a field node needs a document")
        return self.field(root, path, self.test(node))


def _index(part: str) -> int | None:
    """The array index a path part names (``resolve`` uses ``str.isdigit`` and ``int``)."""
    if not part.isdigit():
        return None
    try:
        i = int(part)
    except ValueError:
        return None
    return i if i < 2**31 else None


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


# -- public compile API -----------------------------------------------------------------------


def compile_condition(
    node: Node, params: Params, *, doc: sql.Composable | None = None, dialect: Dialect = POSTGRES
) -> Cond:
    """Compile a query AST to a boolean SQL condition over the JSONB column ``doc``.

    Args:
        node: The parsed query.
        params: Collects the statement's parameters.
        doc: The JSONB expression of the document (default: the column ``doc``).
        dialect: The target engine.

    Returns:
        The condition; when ``exact`` is false it is a superset to re-check in Python.
    """
    comp = _Compiler(params, dialect)
    return comp.node(node, doc if doc is not None else sql.Identifier("doc"))


def uid_condition(node: Node, params: Params, uid: sql.Composable) -> Cond | None:
    """Compile a query that only constrains ``uid`` to a condition on the ``uid`` column.

    ``uid`` is always a non-empty string, so equality and ``$in`` on it reduce to text
    comparisons the primary key answers. Returns ``None`` for other queries.
    """
    nodes = node.children if isinstance(node, And) else (node,)
    if not nodes:
        return None
    conds = []
    for n in nodes:
        if isinstance(n, Compare) and n.path == "uid" and n.op in ("$eq", "$ne"):
            ok = type(n.value) is str and storable(n.value)
            c = Cond(sql.SQL("{} = {}").format(uid, params.text(n.value)) if ok else FALSE)
            conds.append(c if n.op == "$eq" else _not(c))
        elif isinstance(n, In) and n.path == "uid":
            strs = [v for v in n.values if type(v) is str and storable(v)]
            c = Cond(sql.SQL("{} = ANY({})").format(uid, params.add(strs, "text[]")) if strs else FALSE)
            conds.append(_not(c) if n.negate else c)
        else:
            return None
    return _and(conds)


def pins(node: Node) -> dict[str, list[str]]:
    """The paths a query pins to strings at the top level (``$eq`` / ``$in``), for index use.

    A document matches only if, for each pinned path, some value it reaches is one of the
    strings. Two constraints on one path keep the intersection.
    """
    out: dict[str, list[str]] = {}
    for n in node.children if isinstance(node, And) else (node,):
        if isinstance(n, Compare) and n.op == "$eq":
            vals: tuple[Any, ...] = (n.value,)
        elif isinstance(n, In) and not n.negate and n.values:
            vals = n.values
        else:
            continue
        if not all(type(v) is str and storable(v) for v in vals):
            continue
        keys = list(dict.fromkeys(vals))
        if n.path in out:
            keys = [k for k in out[n.path] if k in keys]
        out[n.path] = keys
    return out


# -- sort -----------------------------------------------------------------------------------------

_BRACKET_SQL = (
    "CASE jsonb_typeof({v}) WHEN 'number' THEN 2 WHEN 'string' THEN 3 WHEN 'object' THEN 4 "
    "WHEN 'array' THEN 5 WHEN 'boolean' THEN 8 ELSE 1 END"
)


@dataclass(frozen=True)
class SortSQL:
    """The pieces of an ordered query.

    Attributes:
        joins: ``LEFT JOIN LATERAL`` clauses computing each key (to put after ``FROM t``).
        order_by: The ``ORDER BY`` list.
        brackets: One expression per key giving its type bracket; when a fetched row has a
            document or array key (bracket 4 or 5), MongoDB's order among such rows is not
            what SQL used, and the caller sorts in Python instead.
    """

    joins: sql.Composable
    order_by: sql.Composable
    brackets: list[sql.Composable]


def _sort_rows(comp: _Compiler, doc: sql.Composable, parts: tuple[str, ...]) -> sql.Composable:
    """Rows ``(v, i)`` a sort path reaches (``sort._sort_path_values``): missing fields add nothing."""
    rows: sql.Composable = sql.SQL("SELECT {}::jsonb, false").format(doc)
    for part in parts:
        p, s, e = comp.alias("p"), comp.alias("s"), comp.alias("e")
        pv = sql.SQL("{}.v").format(p)
        key = comp.p.text(part)
        branches = [
            sql.SQL("SELECT {pv} -> {key}, false WHERE jsonb_typeof({pv}) = 'object' AND {pv} ? {key}").format(
                pv=pv, key=key
            ),
            sql.SQL(
                "SELECT {e} -> {key}, false FROM jsonb_array_elements(CASE WHEN jsonb_typeof({pv}) = 'array'"
                " THEN {pv} END) {e} WHERE jsonb_typeof({e}) = 'object' AND {e} ? {key}"
            ).format(pv=pv, key=key, e=e),
        ]
        idx = _index(part)
        if idx is not None:
            i = comp.p.add(idx, "int")
            branches.append(
                sql.SQL(
                    "SELECT {pv} -> {i}, true WHERE jsonb_typeof({pv}) = 'array' AND {pv} -> {i} IS NOT NULL"
                ).format(pv=pv, i=i)
            )
        rows = sql.SQL("SELECT {s}.v, {s}.i FROM ({prev}) {p}(v, i) CROSS JOIN LATERAL ({u}) {s}(v, i)").format(
            s=s, prev=rows, p=p, u=sql.SQL(" UNION ALL ").join(branches)
        )
    return rows


def compile_sort(
    spec: SortSpec, params: Params, *, doc: sql.Composable, uid: sql.Composable, dialect: Dialect = POSTGRES
) -> SortSQL:
    """Compile a sort specification to SQL, in the order of :func:`.sort.sort_documents`.

    Each key is ``(e, bracket, number, string, boolean)`` where ``e`` is 0 only for an empty
    array (which sorts below null); arrays reached by a field name sort by their smallest
    (ascending) or largest (descending) element, arrays reached by an index as a whole.
    """
    comp = _Compiler(params, dialect)
    joins: list[sql.Composable] = []
    order: list[sql.Composable] = []
    brackets: list[sql.Composable] = []
    for path, direction in spec:
        d = sql.SQL(" ASC" if direction > 0 else " DESC")
        if path == "uid":
            order.append(uid + d)
            continue
        rows = _sort_rows(comp, doc, split_path(path))
        r, el, f, k = comp.alias("r"), comp.alias("el"), comp.alias("f"), comp.alias("k")
        rv = sql.SQL("{}.v").format(r)
        reps = sql.SQL(
            "SELECT 1, {rv} FROM ({rows}) {r}(v, i) WHERE {r}.i OR jsonb_typeof({rv}) <> 'array'"
            " UNION ALL SELECT 0, NULL::jsonb FROM ({rows}) {r}(v, i) WHERE NOT {r}.i AND {rv} = '[]'::jsonb"
            " UNION ALL SELECT 1, {el} FROM ({rows}) {r}(v, i) CROSS JOIN LATERAL jsonb_array_elements("
            "CASE WHEN NOT {r}.i AND jsonb_typeof({rv}) = 'array' THEN {rv} END) {el}"
        ).format(rv=rv, rows=rows, r=r, el=el)
        fv = sql.SQL("{}.v").format(f)
        cols = sql.SQL(
            "SELECT {f}.e AS e, " + _BRACKET_SQL + " AS b,"
            " CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::numeric END AS n,"
            " CASE WHEN jsonb_typeof({v}) = 'string' THEN {s} END AS s,"
            " CASE WHEN jsonb_typeof({v}) = 'boolean' THEN {v}::boolean END AS o"
        ).format(f=f, v=fv, s=comp.c(sql.SQL("({} #>> '{{}}')").format(fv)))
        inner_order = sql.SQL("e{d}, b{d}, n{d}, s{d}, o{d}").format(d=d)
        joins.append(
            sql.SQL(" LEFT JOIN LATERAL ({cols} FROM ({reps}) {f}(e, v) ORDER BY {io} LIMIT 1) {k} ON true").format(
                cols=cols, reps=reps, f=f, io=inner_order, k=k
            )
        )
        order.append(
            sql.SQL("COALESCE({k}.e, 1){d}, COALESCE({k}.b, 1){d}, {k}.n{d}, {k}.s{d}, {k}.o{d}").format(k=k, d=d)
        )
        brackets.append(sql.SQL("COALESCE({}.b, 1)").format(k))
    return SortSQL(sql.Composed(joins), sql.SQL(", ").join(order), brackets)


# -- updates --------------------------------------------------------------------------------------


def compile_update(
    upd: Update, params: Params, *, doc: sql.Composable, functions: dict[str, sql.Composable]
) -> sql.Composable | None:
    """Compile an update to a JSONB expression using the store's helper functions.

    Args:
        upd: The validated update.
        params: Collects parameters.
        doc: The JSONB expression to update.
        functions: SQL names of the helper functions ``set``, ``unset`` and ``push`` (see the
            store's schema).

    The value of operation ``n`` is the parameter ``u<n>`` (see :func:`update_values`), so one
    compiled statement serves every update of the same shape.

    Returns:
        The expression, or ``None`` when the update needs Python (``$inc``, whose float
        arithmetic SQL does not reproduce, and paths with non-ASCII digits).
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
        elif op in ("$push", "$addToSet"):
            expr = sql.SQL("{}({}, {}, {}, {})").format(
                functions["push"],
                expr,
                params.path(parts),
                params.named(f"u{n}", dumps(list(value[1])), "jsonb"),
                sql.SQL("true" if op == "$addToSet" else "false"),
            )
        else:
            return None
    return expr


def update_values(upd: Update) -> dict[str, str]:
    """The ``u<n>`` parameters of :func:`compile_update` for this update's values."""
    out = {}
    for n, (op, _, value) in enumerate(upd.ops):
        if op == "$set":
            out[f"u{n}"] = dumps(value)
        elif op in ("$push", "$addToSet"):
            out[f"u{n}"] = dumps(list(value[1]))
    return out


def update_shape(upd: Update) -> tuple[Any, ...]:
    """What :func:`compile_update`'s SQL depends on: the operators and paths, not the values."""
    return tuple((op, parts) for op, parts, _ in upd.ops)


# -- DDL expressions (literals: DDL takes no parameters) ---------------------------------------


def _lit_path(parts: tuple[str, ...]) -> sql.Composable:
    return sql.SQL("{}::text[]").format(sql.Literal(list(parts)))


def key_text(path: str, doc: sql.Composable) -> sql.Composable:
    """The text an ordinary index keeps for ``path``: ``doc #>> '{a,b}'``."""
    return sql.SQL("({} #>> {})").format(doc, _lit_path(split_path(path)))


def overflow(path: str, doc: sql.Composable) -> sql.Composable:
    """True when an array lies on ``path`` (then :func:`key_text` does not describe the values)."""
    parts = split_path(path)
    return (
        sql.SQL("(")
        + sql.SQL(" OR ").join(
            sql.SQL("COALESCE(jsonb_typeof({} #> {}) = 'array', false)").format(doc, _lit_path(parts[:i]))
            for i in range(1, len(parts) + 1)
        )
        + sql.SQL(")")
    )


def unique_key(path: str, doc: sql.Composable) -> sql.Composable:
    """The JSONB key a unique index keeps for ``path`` (the memory engine's key, see ``indexes``).

    Missing and null are the same key; a path through an array keys on the whole array and the
    rest of the path; documents compare in key order (their order lists are part of the value).
    """
    parts = split_path(path)
    whens = []
    for i in range(1, len(parts)):
        pre = sql.SQL("({} #> {})").format(doc, _lit_path(parts[:i]))
        via = sql.Literal(json.dumps({"$via": [None, list(parts[i:])]}))
        whens.append(  # jsonb_set, not jsonb_build_object: index expressions must be IMMUTABLE
            sql.SQL("WHEN jsonb_typeof({pre}) = 'array' THEN jsonb_set({via}::jsonb, '{{$via,0}}', {pre})").format(
                pre=pre, via=via
            )
        )
        whens.append(sql.SQL("WHEN jsonb_typeof({pre}) IS DISTINCT FROM 'object' THEN 'null'::jsonb").format(pre=pre))
    final = sql.SQL("COALESCE({} #> {}, 'null'::jsonb)").format(doc, _lit_path(parts))
    if not whens:
        return sql.SQL("(") + final + sql.SQL(")")
    return sql.SQL("(CASE ") + sql.SQL(" ").join(whens) + sql.SQL(" ELSE ") + final + sql.SQL(" END)")


# -- regex translation -----------------------------------------------------------------------------


class _Untranslatable(Exception):
    pass


_CATEGORY_CLASS = {
    _sc.CATEGORY_DIGIT: "0-9",
    _sc.CATEGORY_WORD: "a-zA-Z0-9_",
    _sc.CATEGORY_SPACE: "\\u0009-\\u000d\\u001c-\\u0020",
}
_NOT_CATEGORY = {
    _sc.CATEGORY_NOT_DIGIT: _sc.CATEGORY_DIGIT,
    _sc.CATEGORY_NOT_WORD: _sc.CATEGORY_WORD,
    _sc.CATEGORY_NOT_SPACE: _sc.CATEGORY_SPACE,
}
_MAX_PATTERN = 2000


class _RegexTranslator:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.guard = bool(flags & re.IGNORECASE)

    def char(self, code: int) -> str:
        if code == 0 or 0xD800 <= code <= 0xDFFF:
            raise _Untranslatable("unstorable character")
        if code > 127:
            if self.flags & re.IGNORECASE:
                raise _Untranslatable("case folding outside ASCII")
            return chr(code)
        ch = chr(code)
        if ch.isalnum():
            return ch
        if 32 < code < 127:
            return "\\" + ch
        return f"\\u{code:04x}"

    def cls(self, items: list[Any]) -> str:
        negate = False
        out = []
        if len(items) == 1 and items[0][0] == _sc.CATEGORY and items[0][1] in _NOT_CATEGORY:
            self.guard = True
            return "[^" + _CATEGORY_CLASS[_NOT_CATEGORY[items[0][1]]] + "]"
        for op, av in items:
            if op == _sc.NEGATE:
                negate = True
            elif op == _sc.LITERAL:
                out.append(self.char(av))
            elif op == _sc.RANGE:
                out.append(self.char(av[0]) + "-" + self.char(av[1]))
            elif op == _sc.CATEGORY and av in _CATEGORY_CLASS:
                self.guard = True
                out.append(_CATEGORY_CLASS[av])
            else:
                raise _Untranslatable(f"class item {op}")
        return "[" + ("^" if negate else "") + "".join(out) + "]"

    def seq(self, items: Any) -> str:
        return "".join(self.item(op, av) for op, av in items)

    def item(self, op: Any, av: Any) -> str:
        f = self.flags
        if op == _sc.LITERAL:
            return self.char(av)
        if op == _sc.NOT_LITERAL:
            return "[^" + self.char(av) + "]"
        if op == _sc.ANY:
            return "." if f & re.DOTALL else "[^\\u000a]"
        if op == _sc.IN:
            return self.cls(av)
        if op in (_sc.MAX_REPEAT, _sc.MIN_REPEAT):
            lo, hi, sub = av
            if not sub or any(o in (_sc.AT, _sc.ASSERT, _sc.ASSERT_NOT) for o, _ in sub):
                raise _Untranslatable("quantified assertion")
            body = self.seq(sub)
            if not body:
                raise _Untranslatable("empty quantified group")
            unbounded = hi == _sc.MAXREPEAT
            if lo > 255 or (not unbounded and hi > 255):
                raise _Untranslatable("repeat bound over 255")
            if (lo, unbounded) == (0, True):
                q = "*"
            elif (lo, unbounded) == (1, True):
                q = "+"
            elif unbounded:
                q = f"{{{lo},}}"
            elif (lo, hi) == (0, 1):
                q = "?"
            elif lo == hi:
                q = f"{{{lo}}}"
            else:
                q = f"{{{lo},{hi}}}"
            return "(?:" + body + ")" + q + ("?" if op == _sc.MIN_REPEAT else "")
        if op == _sc.SUBPATTERN:
            _, add, dele, sub = av
            if add or dele:
                raise _Untranslatable("scoped flags")
            return "(?:" + self.seq(sub) + ")"
        if op == _sc.BRANCH:
            return "(?:" + "|".join(self.seq(a) for a in av[1]) + ")"
        if op == _sc.AT:
            if av == _sc.AT_BEGINNING:
                return "(?:^|(?<=\\u000a))" if f & re.MULTILINE else "^"
            if av == _sc.AT_BEGINNING_STRING:
                return "^"
            if av == _sc.AT_END:
                return "(?=\\u000a|$)" if f & re.MULTILINE else "(?=\\u000a?$)"
            if av == _sc.AT_END_STRING:
                return "$"
            if av == _sc.AT_BOUNDARY:
                self.guard = True
                return "\\y"
            if av == _sc.AT_NON_BOUNDARY:
                self.guard = True
                return "\\Y"
            raise _Untranslatable(f"anchor {av}")
        if op in (_sc.ASSERT, _sc.ASSERT_NOT):
            direction, sub = av
            kind = ("=" if op == _sc.ASSERT else "!") if direction > 0 else ("<=" if op == _sc.ASSERT else "<!")
            return "(?" + kind + self.seq(sub) + ")"
        raise _Untranslatable(f"operator {op}")


def pg_regex(pattern: str, options: str = "") -> tuple[str, bool] | None:
    r"""Translate a Python regular expression to an equivalent PostgreSQL ARE.

    The translation goes through Python's own parser, so it means what the memory store's
    :mod:`re` means: ``.`` excludes newlines unless ``s``; ``$`` also matches before a final
    newline; ``m`` makes ``^``/``$`` match at line breaks; ``x`` is resolved by the parser.

    Args:
        pattern: The ``$regex`` pattern.
        options: Its ``$options`` (``imsx``).

    Returns:
        ``(pattern, guard)``: ``guard`` is true when the translation is exact only for ASCII
        subjects (case folding and the classes ``\\d \\w \\s \\b``, which Python extends to
        Unicode); ``None`` when the pattern uses features without an exact equivalent
        (back-references, scoped flags, possessive repeats, bounds over 255, ...).
    """
    if len(pattern) > _MAX_PATTERN:
        return None
    flags = 0
    for ch, flag in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL), ("x", re.VERBOSE)):
        if ch in options:
            flags |= flag
    try:
        tree = _sre.parse(pattern, flags)
    except Exception:  # noqa: BLE001 - anything Python refuses, we do not translate
        return None
    flags = tree.state.flags
    if flags & (re.LOCALE | re.ASCII):
        return None
    tr = _RegexTranslator(flags)
    try:
        body = tr.seq(tree)
    except _Untranslatable:
        return None
    prefix = "(?i)" if flags & re.IGNORECASE else ""
    return prefix + body, tr.guard


__all__ = [
    "COCKROACH",
    "Cond",
    "Dialect",
    "ORDER_KEY",
    "POSTGRES",
    "Params",
    "SortSQL",
    "compile_condition",
    "compile_sort",
    "compile_update",
    "dumps",
    "key_text",
    "loads",
    "overflow",
    "pg_regex",
    "pins",
    "storable",
    "uid_condition",
    "unique_key",
]
