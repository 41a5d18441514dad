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

UPDATES: ParseCache[Any] = ParseCache(_parse_update)
"""The process-wide cache of parsed update documents, shared by every store."""
