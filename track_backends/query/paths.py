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


class Terminal:
    """An array reached through a numeric path part (``a.0`` over ``a: [[1, 2]]``).

    MongoDB spends the path step on the index, so such an array is matched as a whole value
    (``{"a.0": [1, 2]}``, ``$size``, ``$elemMatch``) but not by membership: ``{"a.0": 1}`` does
    not match ``{"a": [[1, 2]]}``. :func:`expand` leaves it unexpanded; :func:`unwrap` returns
    the array.
    """

    __slots__ = ("value",)

    def __init__(self, value: list[Any]) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Terminal({self.value!r})"


def unwrap(value: Any) -> Any:
    """Return the array inside a :class:`Terminal`, or ``value`` itself."""
    return value.value if type(value) is Terminal else value


def resolve(doc: Any, parts: tuple[str, ...]) -> list[Any]:
    """Return every value that a dotted path reaches in ``doc``.

    Arrays met along the way fan out: ``a.b`` reaches ``b`` in every document element of the
    array ``a`` (elements that are not documents contribute nothing, and nested arrays are not
    entered). A numeric part both indexes the array and names a field of its document
    elements. A document (or document element) that lacks the next field, a scalar in the way
    and an index past the end contribute :data:`MISSING`; an array without document elements
    contributes nothing. Leaf arrays are returned whole; matchers expand them (except arrays
    reached by an index, which come wrapped in :class:`Terminal`).

    Args:
        doc: The document (or sub-value) to walk.
        parts: The path, split on dots.

    Returns:
        The reached values, possibly empty.
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
                el = doc[i]
                if rest:
                    out.extend(resolve(el, rest))
                else:
                    out.append(Terminal(el) if type(el) is list else el)
            else:
                out.append(MISSING)
        for el in doc:
            if type(el) is dict:
                out.extend(resolve(el, parts))
        return out
    if t is Terminal:
        return resolve(doc.value, parts)
    return [MISSING]


def expand(values: list[Any]) -> list[Any]:
    """Add the elements of array values to the list (MongoDB's implicit array match).

    :class:`Terminal` arrays are replaced by the array itself, without its elements.
    """
    out: list[Any] = []
    for v in values:
        t = type(v)
        if t is list:
            out.append(v)
            out.extend(v)
        elif t is Terminal:
            out.append(v.value)
        else:
            out.append(v)
    return out
