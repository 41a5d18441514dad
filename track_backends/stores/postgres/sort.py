"""Compile a parsed sort specification to SQL, in the order of :func:`~track_backends.query.sort.sort_documents`."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from ...encoding import SPECIAL_KEY
from ...query.analysis import UID
from ...query.paths import split_path
from ...query.sort import SortSpec
from ...query.values import ARRAY, BOOL, NULL, NUMBER, OBJECT, STRING
from .fragments import POSTGRES, Dialect, Params, array_index
from .sources import PathCompiler

UNORDERED_BRACKETS = frozenset((OBJECT, ARRAY))
"""Type brackets whose MongoDB order SQL does not reproduce (documents and arrays as sort keys)."""

_SPECIAL = f"(jsonb_typeof({{v}}) = 'object' AND {{v}} ? '{SPECIAL_KEY}')"
_BRACKET_SQL = (
    f"CASE WHEN {_SPECIAL} THEN {NUMBER} ELSE "
    f"CASE jsonb_typeof({{v}}) WHEN 'number' THEN {NUMBER} WHEN 'string' THEN {STRING} WHEN 'object' THEN {OBJECT} "
    f"WHEN 'array' THEN {ARRAY} WHEN 'boolean' THEN {BOOL} ELSE {NULL} END END"
)
_NUMBER_SQL = (  # NaN first (below -Infinity, as MongoDB sorts it), then the value, infinities included
    f" CASE WHEN {_SPECIAL} AND {{v}} ->> '{SPECIAL_KEY}' = 'NaN' THEN 0 ELSE 1 END AS x,"
    " CASE WHEN jsonb_typeof({v}) = 'number' THEN {v}::numeric"
    f" WHEN {_SPECIAL} AND {{v}} ->> '{SPECIAL_KEY}' <> 'NaN' THEN ({{v}} ->> '{SPECIAL_KEY}')::numeric END AS n,"
)


@dataclass(frozen=True)
class SortSQL:
    """The pieces of an ordered query.

    Attributes:
        joins: ``LEFT JOIN LATERAL`` clauses computing each key (to put after ``FROM t``).
        order_by: The ``ORDER BY`` list.
        brackets: One expression per key giving its type bracket; when a fetched row has a
            document or array key (see :data:`UNORDERED_BRACKETS`), MongoDB's order among such
            rows is not what SQL used, and the caller sorts in Python instead.
    """

    joins: sql.Composable
    order_by: sql.Composable
    brackets: list[sql.Composable]


def _sort_rows(comp: PathCompiler, doc: sql.Composable, parts: tuple[str, ...]) -> sql.Composable:
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
        idx = array_index(part)
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


def _sort_key(comp: PathCompiler, doc: sql.Composable, path: str, d: sql.Composable) -> tuple[sql.Composable, ...]:
    """The lateral join computing one key, its ``ORDER BY`` terms and its bracket expression."""
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
        "SELECT {f}.e AS e, " + _BRACKET_SQL + " AS b," + _NUMBER_SQL + ""
        " CASE WHEN jsonb_typeof({v}) = 'string' THEN {s} END AS s,"
        " CASE WHEN jsonb_typeof({v}) = 'boolean' THEN {v}::boolean END AS o"
    ).format(f=f, v=fv, s=comp.c(sql.SQL("({} #>> '{{}}')").format(fv)))
    inner_order = sql.SQL("e{d}, b{d}, x{d}, n{d}, s{d}, o{d}").format(d=d)
    join = sql.SQL(" LEFT JOIN LATERAL ({cols} FROM ({reps}) {f}(e, v) ORDER BY {io} LIMIT 1) {k} ON true").format(
        cols=cols, reps=reps, f=f, io=inner_order, k=k
    )
    order = sql.SQL(
        "COALESCE({k}.e, 1){d}, COALESCE({k}.b, {null}){d}, COALESCE({k}.x, 1){d}, {k}.n{d}, {k}.s{d}, {k}.o{d}"
    ).format(k=k, d=d, null=sql.SQL(str(NULL)))
    return join, order, sql.SQL("COALESCE({}.b, {})").format(k, sql.SQL(str(NULL)))


def compile_sort(
    spec: SortSpec, params: Params, *, doc: sql.Composable, uid: sql.Composable, dialect: Dialect = POSTGRES
) -> SortSQL:
    """Compile a sort specification to SQL, in the order of :func:`~track_backends.query.sort.sort_documents`.

    Each key is ``(e, bracket, number, string, boolean)`` where ``e`` is 0 only for an empty
    array (which sorts below null); arrays reached by a field name sort by their smallest
    (ascending) or largest (descending) element, arrays reached by an index as a whole.
    """
    comp = PathCompiler(params, dialect)
    joins: list[sql.Composable] = []
    order: list[sql.Composable] = []
    brackets: list[sql.Composable] = []
    for path, direction in spec:
        d = sql.SQL(" ASC" if direction > 0 else " DESC")
        if path == UID:  # the primary key column
            order.append(uid + d)
            continue
        join, terms, bracket = _sort_key(comp, doc, path, d)
        joins.append(join)
        order.append(terms)
        brackets.append(bracket)
    return SortSQL(sql.Composed(joins), sql.SQL(", ").join(order), brackets)
