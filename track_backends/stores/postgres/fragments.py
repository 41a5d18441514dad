"""The pieces compiled statements are made of: parameters, dialects and boolean conditions.

Nothing a user wrote reaches a statement as text: field names are ``text[]`` parameters, values
are ``jsonb``/``text`` parameters (collected by :class:`Params`), and tables and columns are
:class:`psycopg.sql.Identifier`.

>>> p = Params()
>>> and_([Cond(sql.SQL("a")), Cond(p.text("x"))]).sql.as_string()
'(a AND %(p0)s::text)'
>>> p.values
{'p0': 'x'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from .jsonb import dumps

TRUE = sql.SQL("true")
FALSE = sql.SQL("false")


class Params:
    """Named parameters of one statement; :meth:`add` returns the placeholder to compose."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any, cast: str) -> sql.Composable:
        """Add a parameter named ``p<n>`` and return its placeholder, cast to ``cast``."""
        return self.named(f"p{len(self.values)}", value, cast)

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


def _join(conds: list[Cond], op: str, exact: bool) -> Cond:
    if len(conds) == 1:
        return Cond(conds[0].sql, exact)
    return Cond(sql.SQL("(") + sql.SQL(f" {op} ").join(c.sql for c in conds) + sql.SQL(")"), exact)


def and_(conds: list[Cond]) -> Cond:
    """The conjunction (exact when every part is)."""
    if any(c.sql is FALSE and c.exact for c in conds):
        return Cond(FALSE)
    exact = all(c.exact for c in conds)
    conds = [c for c in conds if c.sql is not TRUE]
    return _join(conds, "AND", exact) if conds else Cond(TRUE, exact)


def or_(conds: list[Cond]) -> Cond:
    """The disjunction (exact when every part is)."""
    if any(c.sql is TRUE and c.exact for c in conds):
        return Cond(TRUE)
    exact = all(c.exact for c in conds)
    conds = [c for c in conds if c.sql is not FALSE]
    return _join(conds, "OR", exact) if conds else Cond(FALSE, exact)


def not_(c: Cond) -> Cond:
    """The negation; the negation of an inexact condition (a superset) bounds nothing."""
    if not c.exact:
        return Cond(TRUE, False)
    if c.sql is TRUE:
        return Cond(FALSE)
    if c.sql is FALSE:
        return Cond(TRUE)
    return Cond(sql.SQL("(NOT ") + c.sql + sql.SQL(")"))


def two_valued(expr: sql.Composable) -> sql.Composable:
    """Make a leaf predicate two-valued (NULL -> false), so NOT works as in Python."""
    return sql.SQL("COALESCE(") + expr + sql.SQL(", false)")


def array_index(part: str) -> int | None:
    """The array index a path part names (``resolve`` uses ``str.isdigit`` and ``int``).

    ``None`` also for indexes past what a PostgreSQL ``int`` holds (past any array's end).
    """
    if not part.isdigit():
        return None
    try:
        i = int(part)
    except ValueError:
        return None
    return i if i < 2**31 else None
