"""Sort specifications and MongoDB's sort order for documents."""

from __future__ import annotations

from typing import Any

from ..errors import QueryError
from .paths import MISSING, resolve, split_path
from .values import compare, sort_key

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


def _sort_value(doc: Any, parts: tuple[str, ...], direction: int) -> Any:
    vals = [v for v in resolve(doc, parts)]
    flat: list[Any] = []
    for v in vals:
        if v is MISSING:
            flat.append(None)
        elif type(v) is list:
            flat.extend(v if v else [None])
        else:
            flat.append(v)
    if len(flat) == 1:
        return flat[0]
    return min(flat, key=sort_key) if direction > 0 else max(flat, key=sort_key)


def sort_documents(docs: list[dict[str, Any]], spec: SortSpec) -> list[dict[str, Any]]:
    """Sort documents in place (stable) by ``spec``; arrays sort by their min (asc) or max (desc)."""
    for path, direction in reversed(spec):
        parts = split_path(path)
        keyed = [(sort_key(_sort_value(d, parts, direction)), d) for d in docs]
        keyed.sort(key=lambda kd: kd[0], reverse=direction < 0)
        docs[:] = [d for _, d in keyed]
    return docs


__all__ = ["SortSpec", "compare", "parse_sort", "sort_documents"]
