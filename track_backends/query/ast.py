"""The query AST: what a parsed, validated MongoDB-style query means.

Every backend works from these nodes: the Python predicate compiler, the SQL compiler, and the
MongoDB pass-through (which sends the validated original). A field node's ``path`` is the dotted
path relative to the document being matched; inside a value-mode ``$elemMatch`` the path is
empty and denotes the array element itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Node:
    """Base class of all query nodes."""


@dataclass(frozen=True, slots=True)
class And(Node):
    """Matches when every child matches (an empty ``And`` matches everything)."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    """Matches when at least one child matches."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Nor(Node):
    """Matches when no child matches."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """``$eq $ne $gt $gte $lt $lte`` against one value (``op`` keeps the ``$`` name)."""

    path: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class In(Node):
    """``$in`` (or ``$nin`` when ``negate``) against a tuple of values."""

    path: str
    values: tuple[Any, ...]
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Exists(Node):
    """``$exists``: the path reaches a value (``present``) or reaches none."""

    path: str
    present: bool


@dataclass(frozen=True, slots=True)
class Regex(Node):
    """``$regex`` with ``$options`` (a subset of ``imsx``); matches string values only."""

    path: str
    pattern: str
    options: str = ""


@dataclass(frozen=True, slots=True)
class All(Node):
    """``$all``: the field holds every one of the values (an empty list matches nothing)."""

    path: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Size(Node):
    """``$size``: the field is an array of exactly ``size`` elements."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class ElemMatch(Node):
    """``$elemMatch``: some element of the array at ``path`` matches ``query``.

    In value mode (the operand used operators such as ``{"$gt": 1}``) ``query`` applies to the
    element itself through paths that are empty; otherwise it is a query on element documents.
    """

    path: str
    query: Node
    value_mode: bool


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``$not``: the operator expression ``query`` (field nodes on ``path``) does not match."""

    path: str
    query: Node
