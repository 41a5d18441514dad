"""Resolution of dotted paths with MongoDB's array semantics."""

from __future__ import annotations

from typing import Any


class _Missing:
    """Marker for a path that does not exist in a document."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def split_path(path: str) -> tuple[str, ...]:
    """Split a dotted path into its parts."""
    return tuple(path.split(".")) if path else ()


def resolve(doc: Any, parts: tuple[str, ...]) -> list[Any]:
    """Return every value that a dotted path reaches in ``doc``.

    Arrays met along the way fan out: ``a.b`` reaches ``b`` in every document element of the
    array ``a``, and a numeric part also indexes the array. A document (or array element that is
    a document) that lacks the next field contributes :data:`MISSING`. Leaf arrays are returned
    whole; matchers expand them.

    Args:
        doc: The document (or sub-value) to walk.
        parts: The path, split on dots.

    Returns:
        The reached values; ``[MISSING]`` when nothing is reached.
    """
    if not parts:
        return [doc]
    head, rest = parts[0], parts[1:]
    t = type(doc)
    if t is dict:
        if head in doc:
            return resolve(doc[head], rest)
        return [MISSING]
    if t is list:
        out: list[Any] = []
        if head.isdigit():
            i = int(head)
            if i < len(doc):
                out.extend(resolve(doc[i], rest))
        for el in doc:
            if type(el) is dict:
                out.extend(resolve(el, parts))
        return out or [MISSING]
    return [MISSING]


def expand(values: list[Any]) -> list[Any]:
    """Add the elements of array values to the list (MongoDB's implicit array match)."""
    out: list[Any] = []
    for v in values:
        out.append(v)
        if type(v) is list:
            out.extend(v)
    return out
