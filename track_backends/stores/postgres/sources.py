"""What a dotted path reaches in a JSONB document, as SQL.

A path reaches a *set* of values, resolved as :func:`track_backends.query.paths.resolve` does
(array fan-out, numeric parts, missing = SQL ``NULL``, JSON ``null`` = ``'null'::jsonb``). When
no array lies on the way, the set is the single value ``doc #> path``; the generated SQL tests
that at run time and takes the fast branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg import sql

from ...query.paths import split_path
from .fragments import FALSE, Cond, Dialect, Params, array_index, two_valued
from .jsonb import storable


@dataclass(frozen=True)
class Single:
    """Exactly one reached value ``expr`` (SQL NULL = missing); ``expandable``: not terminal."""

    expr: sql.Composable
    expandable: bool = True


@dataclass(frozen=True)
class Multi:
    """A set of reached values: ``rows`` is a subquery yielding ``(v jsonb, t boolean)``."""

    rows: sql.Composable


Source = Single | Multi
Pred = Callable[[sql.Composable], sql.Composable]


def special(part: str) -> bool:
    """A path part that can never name a stored field ($-keys are ours; NUL is unstorable)."""
    return part.startswith("$") or not storable(part)


class PathCompiler:
    """Compiles the values paths reach, and tests over them; collects parameters in ``params``."""

    def __init__(
        self, params: Params, dialect: Dialect, flat: frozenset[str] = frozenset(), root: object = None
    ) -> None:
        self.p = params
        self.d = dialect
        self.n = 0
        self.flat = flat
        self.flat_root = root

    def alias(self, stem: str) -> sql.Identifier:
        """A fresh alias for a subquery or a row variable."""
        self.n += 1
        return sql.Identifier(f"{stem}{self.n}")

    def c(self, text_expr: sql.Composable) -> sql.Composable:
        """``text_expr`` in code-point order (``COLLATE "C"`` where the dialect needs it)."""
        return text_expr + sql.SQL(' COLLATE "C"') if self.d.collate_c else text_expr

    def _key_branches(
        self, pv: sql.Composable, elements: sql.Composable, e: sql.Identifier, part: str, last: bool
    ) -> list[sql.Composable]:
        """The rows one storable path part reaches from the value ``pv``."""
        key = self.p.text(part)
        branches: list[sql.Composable] = [
            sql.SQL("SELECT {pv} -> {key}, false WHERE jsonb_typeof({pv}) = 'object'").format(pv=pv, key=key)
        ]
        if part.isdigit():
            idx = array_index(part)
            if idx is None:  # past any array's end
                branches.append(sql.SQL("SELECT NULL::jsonb, false WHERE jsonb_typeof({pv}) = 'array'").format(pv=pv))
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
        return branches

    def _step(self, prev: sql.Composable, part: str, last: bool) -> sql.Composable:
        """Rows reached from the rows of ``prev`` by one more path part (``resolve``)."""
        p, s, e = self.alias("p"), self.alias("s"), self.alias("e")
        pv = sql.SQL("{}.v").format(p)
        elements = sql.SQL("jsonb_array_elements(CASE WHEN jsonb_typeof({pv}) = 'array' THEN {pv} END) {e}").format(
            pv=pv, e=e
        )
        branches: list[sql.Composable] = [
            sql.SQL(
                "SELECT NULL::jsonb, false WHERE {pv} IS NULL OR jsonb_typeof({pv}) NOT IN ('object', 'array')"
            ).format(pv=pv)
        ]
        if special(part):  # neither documents nor document elements hold such a key
            branches.append(sql.SQL("SELECT NULL::jsonb, false WHERE jsonb_typeof({pv}) = 'object'").format(pv=pv))
            branches.append(
                sql.SQL("SELECT NULL::jsonb, false FROM {els} WHERE jsonb_typeof({e}) = 'object'").format(
                    els=elements, e=e
                )
            )
        else:
            branches.extend(self._key_branches(pv, elements, e, part, last))
        union = sql.SQL(" UNION ALL ").join(branches)
        return sql.SQL("SELECT {s}.v, {s}.t FROM ({prev}) {p}(v, t) CROSS JOIN LATERAL ({union}) {s}(v, t)").format(
            s=s, prev=prev, p=p, union=union
        )

    def multi(self, root: sql.Composable, parts: tuple[str, ...]) -> Multi:
        """The general source: every value ``parts`` reaches from ``root``, arrays fanned out."""
        rows: sql.Composable = sql.SQL("SELECT {}::jsonb, false").format(root)
        for i, part in enumerate(parts):
            rows = self._step(rows, part, i == len(parts) - 1)
        return Multi(rows)

    def field(self, root: sql.Composable, path: str, test: Callable[[Source], Cond]) -> Cond:
        """Compile ``test(source)`` for the values ``path`` reaches from the object ``root``.

        A path of :attr:`flat` (from the document itself) has no array on the way, so only the
        fast branch is compiled (see :func:`.statements.where_clause`).
        """
        parts = split_path(path)
        if len(parts) == 1 and not special(parts[0]):
            return test(Single(sql.SQL("({} -> {})").format(root, self.p.text(parts[0]))))
        if path in self.flat and root is self.flat_root and not any(p.isdigit() or special(p) for p in parts):
            return test(Single(sql.SQL("({} #> {})").format(root, self.p.path(parts))))
        general = test(self.multi(root, parts))
        if any(special(p) for p in parts):
            return general
        fast = test(Single(sql.SQL("({} #> {})").format(root, self.p.path(parts))))
        checks = sql.SQL(" AND ").join(
            sql.SQL("jsonb_typeof({} #> {}) IS DISTINCT FROM 'array'").format(root, self.p.path(parts[:i]))
            for i in range(1, len(parts))
        )
        return Cond(
            sql.SQL("(CASE WHEN {} THEN {} ELSE {} END)").format(checks, fast.sql, general.sql),
            fast.exact and general.exact,
        )

    def any_value(self, src: Source, pred: Pred, exact: bool = True) -> Cond:
        """Some reached value, arrays expanded (``expand``), satisfies ``pred(x)``."""
        if isinstance(src, Single):
            own = two_valued(pred(src.expr))
            if not src.expandable:
                return Cond(own, exact)
            x = self.alias("x")
            elems = sql.SQL(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof({e}) = 'array' THEN {e} END) {x}(v)"
                " WHERE {pred})"
            ).format(e=src.expr, x=x, pred=two_valued(pred(sql.SQL("{}.v").format(x))))
            return Cond(sql.SQL("({} OR {})").format(own, elems), exact)
        r, x, e = self.alias("r"), self.alias("x"), self.alias("e")
        rv = sql.SQL("{}.v").format(r)
        return Cond(
            sql.SQL(
                "EXISTS (SELECT 1 FROM ({rows}) {r}(v, t) CROSS JOIN LATERAL (SELECT {rv} UNION ALL SELECT {e} FROM "
                "jsonb_array_elements(CASE WHEN NOT {r}.t AND jsonb_typeof({rv}) = 'array' THEN {rv} END) {e}) {x}(v)"
                " WHERE {pred})"
            ).format(rows=src.rows, r=r, rv=rv, e=e, x=x, pred=two_valued(pred(sql.SQL("{}.v").format(x)))),
            exact,
        )

    def any_reached(self, src: Source, pred: Pred) -> sql.Composable:
        """Some reached value (not expanded, terminal arrays unwrapped) satisfies ``pred``."""
        if isinstance(src, Single):
            return two_valued(pred(src.expr))
        r = self.alias("r")
        return sql.SQL("EXISTS (SELECT 1 FROM ({}) {}(v, t) WHERE {})").format(
            src.rows, r, two_valued(pred(sql.SQL("{}.v").format(r)))
        )
