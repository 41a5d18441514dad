"""The query language: MongoDB's filters, updates, sorts and projections, parsed once.

``parse`` turns a filter into an AST (:mod:`.ast`); :mod:`.predicate` compiles it to Python.
``parse_update`` validates an update document and ``apply_update`` applies it.
"""

from .ast import All, And, Compare, ElemMatch, Exists, In, Node, Nor, Not, Or, Regex, Size
from .parser import MATCH_ALL, parse
from .predicate import compile_node, compile_query, predicate_for
from .projection import Projection, parse_projection, project
from .sort import SortSpec, parse_sort, sort_documents
from .update import Update, apply_update, parse_update, upsert_seed

__all__ = [
    "MATCH_ALL",
    "All",
    "And",
    "Compare",
    "ElemMatch",
    "Exists",
    "In",
    "Node",
    "Nor",
    "Not",
    "Or",
    "Projection",
    "Regex",
    "Size",
    "SortSpec",
    "Update",
    "apply_update",
    "compile_node",
    "compile_query",
    "parse",
    "parse_projection",
    "parse_sort",
    "parse_update",
    "predicate_for",
    "project",
    "sort_documents",
    "upsert_seed",
]
