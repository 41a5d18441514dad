"""Sort specifications and MongoDB's sort order for documents."""

from __future__ import annotations

from typing import Any

from ..errors import QueryError
from .paths import split_path
from .values import BOOL, NULL, NUMBER, STRING, bracket, compare, sort_key

SortSpec = tuple[tuple[str, int], ...]


def parse_sort(sort: Any) -> SortSpec:
    """Normalise a sort specification.

    Args:
        sort: ``None``, a dict ``{path: 1 | -1}``, a list of ``(path, 1 | -1)`` pairs, or a
            single path (ascending).

    Returns:
        A tuple of ``(path, direction)`` pairs (empty for no sort).

    Raises:
        QueryError: The specification is malformed.
    """
    if sort is None:
        return ()
    if isinstance(sort, str):
        sort = [(sort, 1)]
    elif isinstance(sort, dict):
        sort = list(sort.items())
    if not isinstance(sort, (list, tuple)):
        raise QueryError(f"sort takes a dict or a list of (path, direction) pairs, got {sort!r:.80}")
    out = []
    for item in sort:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise QueryError(f"sort takes (path, direction) pairs, got {item!r:.80}")
        path, direction = item
        if type(path) is not str or not path or path.startswith("$"):
            raise QueryError(f"bad sort path {path!r}")
        if direction not in (1, -1) or type(direction) is bool:
            raise QueryError(f"sort direction for {path!r} must be 1 or -1, got {direction!r}")
        out.append((path, int(direction)))
    return tuple(out)


def _sort_path_values(doc: Any, parts: tuple[str, ...]) -> list[tuple[Any, bool]]:
    """The ``(value, indexed)`` pairs a sort path reaches; ``indexed`` when the last step was an index.

    Unlike query matching, a document (or element) that lacks the field contributes nothing,
    so ``a: [{b: 1}, {}]`` sorts by ``1`` on ``a.b``. Arrays fan out one level; a numeric part
    both indexes an array and names a field of its document elements.
    """
    current: list[tuple[Any, bool]] = [(doc, False)]
    for part in parts:
        nxt: list[tuple[Any, bool]] = []
        for cur, _ in current:
            t = type(cur)
            if t is dict:
                if part in cur:
                    nxt.append((cur[part], False))
            elif t is list:
                if part.isdigit() and int(part) < len(cur):
                    nxt.append((cur[int(part)], True))
                for el in cur:
                    if type(el) is dict and part in el:
                        nxt.append((el[part], False))
        current = nxt
    return current


class _EmptyArray:
    """The sort value of an empty array: below null (MongoDB's BSON comparison order)."""

    __slots__ = ()


_EMPTY = _EmptyArray()


def _key(value: Any) -> tuple[Any, ...]:
    """A key in MongoDB's order; plain scalars get native tuples (fast), the rest :data:`sort_key`."""
    t = type(value)
    if t is str:
        return (1, STRING, value)  # code point order is UTF-8 byte order, MongoDB's
    if t is int or t is float:
        return (1, NUMBER, value == value, value if value == value else 0)  # NaN below every number
    if value is None:
        return (1, NULL)
    if t is bool:
        return (1, BOOL, value)
    if value is _EMPTY:
        return (0,)
    return (1, bracket(value), sort_key(value))


def _sort_value(doc: Any, parts: tuple[str, ...], direction: int) -> Any:
    """The value a document sorts by on one path.

    An array reached by a field name sorts by its smallest element ascending and its largest
    descending (an empty array sorts below null); an array reached by an index sorts as a
    whole. A path that reaches nothing sorts as null.
    """
    values = _sort_path_values(doc, parts)
    if not values:
        return None
    pick = min if direction > 0 else max
    reps = []
    for v, indexed in values:
        if type(v) is list and not indexed:
            v = pick(v, key=sort_key) if v else _EMPTY
        reps.append(v)
    return reps[0] if len(reps) == 1 else pick(reps, key=_key)


def sort_documents(docs: list[dict[str, Any]], spec: SortSpec) -> list[dict[str, Any]]:
    """Sort documents in place (stable) by ``spec``, in MongoDB's order.

    Values of different types sort by the BSON type order (null, numbers, strings, documents,
    arrays, booleans); a missing field sorts as null.
    """
    for path, direction in reversed(spec):
        parts = split_path(path)
        keyed = [(_key(_sort_value(d, parts, direction)), d) for d in docs]
        keyed.sort(key=lambda kd: kd[0], reverse=direction < 0)
        docs[:] = [d for _, d in keyed]
    return docs


__all__ = ["SortSpec", "compare", "parse_sort", "sort_documents"]
