"""Caching parsed queries and updates by their exact text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_SCALARS = frozenset((str, int, float, bool, type(None)))
CACHE_SIZE = 512


def _plain(value: Any) -> bool:
    t = type(value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or (type(v) not in _SCALARS and not _plain(v)):
                return False
        return True
    if t is list:
        for v in value:
            if type(v) not in _SCALARS and not _plain(v):
                return False
        return True
    return t in _SCALARS


def cache_key(value: Any) -> str | None:
    """Return a key that identifies ``value`` exactly, or ``None`` when it must not be cached.

    For values made only of ``dict``, ``list``, ``str``, ``int``, ``float``, ``bool`` and
    ``None``, ``repr`` is exact (it tells ``1``, ``1.0`` and ``True`` apart). Anything else
    (a NumPy array, whose ``repr`` may be abridged with ``...``; an object with a custom
    ``repr``) gets ``None``, and is parsed every time.
    """
    if value is None:
        return "{}"  # no query: the same as {}
    return repr(value) if _plain(value) else None


class ParseCache(Generic[T]):
    """A bounded map from a query's (or update's) exact text to what parsing it produced.

    Args:
        parse: The function that parses (and validates) a value.
        size: Entries kept before the cache is emptied.
    """

    def __init__(self, parse: Callable[[Any], T], size: int = CACHE_SIZE) -> None:
        self._parse = parse
        self._size = size
        self._hits: dict[str, T] = {}

    def get(self, value: Any, key: str | None = None) -> T:
        """Return the parse of ``value``, from the cache when its exact text was seen before.

        Args:
            value: The query or update.
            key: ``cache_key(value)`` if the caller has it already.
        """
        if key is None:
            key = cache_key(value)
            if key is None:
                return self._parse(value)
        hit = self._hits.get(key)
        if hit is None:
            hit = self._parse(value)
            if len(self._hits) >= self._size:
                self._hits.clear()
            self._hits[key] = hit
        return hit


def _parse_query(query: Any) -> Any:
    from .parser import parse

    return parse(query or {})


def _parse_update(update: Any) -> Any:
    from .update import parse_update

    return parse_update(update)


QUERIES: ParseCache[Any] = ParseCache(_parse_query)
"""The process-wide cache of parsed queries (AST nodes), shared by every store."""


class UpdateCache:
    """Parsed updates by shape: the scalar value of each field is a parameter bound per call.

    ``{"$set": {"lease.expires": 1764480000.5}}`` is parsed once for every float it takes, so an
    update that carries a fresh time or metric value on every call is not parsed every time.
    A scalar is validated as it is bound, exactly as parsing would validate it. Anything else
    (nested values, unknown types) is part of the shape, keyed by its exact text.

    Args:
        size: Shapes kept before the cache is emptied.
    """

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._templates: dict[tuple[Any, ...], _Template] = {}

    def get(self, update: Any) -> Any:
        """Return the parsed update (an :class:`~track_backends.query.update.Update`)."""
        if type(update) is not dict:
            return _parse_update(update)
        shape: list[Any] = []
        params: list[Any] = []
        for op, fields in update.items():
            if type(fields) is not dict:
                return _parse_update(update)
            shape.append(op)
            for path, value in fields.items():
                t = type(value)
                if t in _SCALARS and op != "$unset":
                    shape.append((path, t))
                    params.append(value)
                else:
                    text = cache_key(value)
                    if text is None:
                        return _parse_update(update)
                    shape.append((path, text))
        key = tuple(shape)
        template = self._templates.get(key)
        if template is None:
            template = _Template(update)
            if len(self._templates) >= self._size:
                self._templates.clear()
            self._templates[key] = template
        return template.bind(update, params)


class _Template:
    """A parsed update and where each scalar parameter goes in its (ordered) operations."""

    __slots__ = ("update", "slots")

    def __init__(self, update: dict[str, Any]) -> None:
        from .paths import split_path

        self.update = _parse_update(update)
        where = {(op, parts): i for i, (op, parts, _) in enumerate(self.update.ops)}
        self.slots: list[tuple[int, str, str]] = []
        for op, fields in update.items():
            for path, value in fields.items():
                if type(value) in _SCALARS and op != "$unset":
                    self.slots.append((where[(op, split_path(path))], op, path))

    def bind(self, source: dict[str, Any], params: list[Any]) -> Any:
        from ..encoding import encode
        from .update import Update

        if not self.slots:
            return self.update
        ops = list(self.update.ops)
        for (i, op, path), value in zip(self.slots, params):
            t = type(value)
            if t is float and value:  # the common scalars need no call (encode's own fast paths)
                v = value
            elif t is str and value.isascii() and "\x00" not in value:
                v = value
            else:
                v = encode(value, path)
            if op in ("$push", "$addToSet"):
                v = ("each", [v])
            ops[i] = (op, ops[i][1], v)
        return Update(tuple(ops), source)


UPDATES = UpdateCache()
"""The process-wide cache of parsed update documents, shared by every store."""
