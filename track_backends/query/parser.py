"""Parse and validate MongoDB-style query documents into the AST."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ..encoding import MAX_DEPTH, encode, nesting_depth
from ..errors import EncodingError, QueryError, UnsupportedOperatorError
from .ast import All, And, Compare, ElemMatch, Exists, In, Node, Nor, Not, Or, Regex, Size

FIELD_OPERATORS = frozenset(
    ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$options"]
    + ["$all", "$size", "$elemMatch", "$not"]
)
LOGICAL_OPERATORS = frozenset(["$and", "$or", "$nor"])
_REGEX_OPTIONS = frozenset("imsx")
MATCH_ALL = And(())


def _value(v: Any, where: str) -> Any:
    try:
        return encode(v)
    except EncodingError as e:
        raise QueryError(f"bad value in query at {where!r}: {e}") from None


def _check_path(path: Any) -> str:
    if type(path) is not str or not path:
        raise QueryError(f"field paths must be non-empty strings, got {path!r}")
    if path.startswith("$"):
        raise UnsupportedOperatorError(f"unknown top-level operator {path!r}")
    if any(not part for part in path.split(".")):
        raise QueryError(f"malformed field path {path!r}")
    return path


def parse(query: Any) -> Node:
    """Parse a query document into a validated AST.

    Args:
        query: A MongoDB-style filter, or ``None`` for "everything".

    Returns:
        The root node.

    Raises:
        QueryError: The query is malformed.
        UnsupportedOperatorError: The query uses an unknown operator.
    """
    if query is None:
        return MATCH_ALL
    if not isinstance(query, dict):
        raise QueryError(f"a query must be a dict, got {type(query).__name__}")
    if nesting_depth(query) > MAX_DEPTH:
        raise QueryError(f"the query nests deeper than {MAX_DEPTH} levels of documents and arrays")
    return _parse(query)


def _parse(query: dict[str, Any]) -> Node:
    children: list[Node] = []
    for key, cond in query.items():
        if type(key) is str and key in LOGICAL_OPERATORS:
            if not isinstance(cond, (list, tuple)) or not cond:
                raise QueryError(f"{key} takes a non-empty list of queries, got {cond!r:.80}")
            subs = tuple(_parse(q) if isinstance(q, dict) else _bad_sub(key, q) for q in cond)
            if key == "$and":  # flattened, so that analysis sees every top-level condition
                children.extend(c for sub in subs for c in (sub.children if isinstance(sub, And) else (sub,)))
            else:
                children.append({"$or": Or, "$nor": Nor}[key](subs))
        else:
            children.extend(_parse_field(_check_path(key), cond))
    if len(children) == 1:
        return children[0]
    return And(tuple(children))


def _bad_sub(op: str, q: Any) -> Node:
    raise QueryError(f"{op} takes a list of query documents, got an element {q!r:.80}")


def _is_operator_doc(cond: Any) -> bool:
    if not isinstance(cond, dict) or not cond:
        return False
    dollar = [type(k) is str and k.startswith("$") for k in cond]
    if any(dollar) and not all(dollar):
        raise QueryError(f"cannot mix operators and field names in {cond!r:.120}")
    return all(dollar)


def _parse_field(path: str, cond: Any) -> list[Node]:
    if not _is_operator_doc(cond):
        return [Compare(path, "$eq", _value(cond, path))]
    return _parse_operators(path, cond)


def _parse_operators(path: str, ops: dict[str, Any]) -> list[Node]:
    nodes: list[Node] = []
    for op, arg in ops.items():
        if op not in FIELD_OPERATORS:
            raise UnsupportedOperatorError(f"unknown operator {op!r} on field {path!r}")
        where = f"{path}.{op}" if path else op
        if op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
            nodes.append(Compare(path, op, _value(arg, where)))
        elif op in ("$in", "$nin"):
            if not isinstance(arg, (list, tuple)):
                raise QueryError(f"{op} on {path!r} takes a list, got {arg!r:.80}")
            nodes.append(In(path, tuple(_value(v, where) for v in arg), negate=op == "$nin"))
        elif op == "$exists":
            if type(arg) not in (bool, int):
                raise QueryError(f"$exists on {path!r} takes true or false, got {arg!r:.80}")
            nodes.append(Exists(path, bool(arg)))
        elif op == "$regex":
            nodes.append(_regex(path, arg, ops.get("$options", "")))
        elif op == "$options":
            if "$regex" not in ops:
                raise QueryError(f"$options on {path!r} needs a $regex beside it")
        elif op == "$all":
            if not isinstance(arg, (list, tuple)):
                raise QueryError(f"$all on {path!r} takes a list, got {arg!r:.80}")
            nodes.append(All(path, tuple(_value(v, where) for v in arg)))
        elif op == "$size":
            if type(arg) is float and arg.is_integer():
                arg = int(arg)
            if type(arg) is not int or arg < 0:
                raise QueryError(f"$size on {path!r} takes a non-negative integer, got {arg!r:.80}")
            nodes.append(Size(path, arg))
        elif op == "$elemMatch":
            if not isinstance(arg, dict):
                raise QueryError(f"$elemMatch on {path!r} takes a query document, got {arg!r:.80}")
            nodes.append(_elem_match(path, arg))
        elif op == "$not":
            if isinstance(arg, dict) and arg and _is_operator_doc(arg):
                sub = _parse_operators("", arg)
            else:
                raise QueryError(f"$not on {path!r} takes an operator document such as {{'$gt': 1}}, got {arg!r:.80}")
            nodes.append(Not(path, _rebase(sub, path)))
    return nodes


def _rebase(nodes: list[Node], path: str) -> Node:
    """Put field nodes parsed with an empty path onto ``path``."""
    rebased: list[Node] = [dataclasses.replace(n, path=path) for n in nodes]  # type: ignore[call-arg]
    return rebased[0] if len(rebased) == 1 else And(tuple(rebased))


def _regex(path: str, pattern: Any, options: Any) -> Regex:
    if type(pattern) is not str:
        raise QueryError(f"$regex on {path!r} takes a string pattern, got {pattern!r:.80}")
    if type(options) is not str or not set(options) <= _REGEX_OPTIONS:
        raise QueryError(f"$options on {path!r} must use only the flags 'imsx', got {options!r}")
    try:
        re.compile(pattern)
    except re.error as e:
        raise QueryError(f"invalid $regex on {path!r}: {e}") from None
    return Regex(path, pattern, "".join(sorted(set(options))))


def _elem_match(path: str, arg: dict[str, Any]) -> ElemMatch:
    if not arg:  # MongoDB accepts it: an array with an element that is a document or an array
        return ElemMatch(path, MATCH_ALL, value_mode=False)
    keys = [k for k in arg if type(k) is str]
    if keys and all(k.startswith("$") for k in keys) and not all(k in LOGICAL_OPERATORS for k in keys):
        nodes = _parse_operators("", arg)
        return ElemMatch(path, nodes[0] if len(nodes) == 1 else And(tuple(nodes)), value_mode=True)
    return ElemMatch(path, _parse(arg), value_mode=False)
