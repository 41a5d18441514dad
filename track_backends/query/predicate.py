"""Compile a query AST to a Python predicate over documents."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .ast import All, And, Compare, ElemMatch, Exists, In, Node, Nor, Not, Or, Regex, Size
from .parser import MATCH_ALL, parse
from .paths import MISSING, Terminal, expand, resolve, split_path, unwrap
from .values import NULL, bracket, compare, is_nan, values_equal

Predicate = Callable[[Any], bool]


def _getter(path: str) -> Callable[[Any], list[Any]]:
    """Return a function that resolves ``path`` against a document."""
    parts = split_path(path)
    if len(parts) == 1:
        (key,) = parts

        def get_one(doc: Any) -> list[Any]:
            if type(doc) is dict:
                v = doc.get(key, MISSING)
                if type(v) is not list:
                    return [v]
            return resolve(doc, parts)

        return get_one
    return lambda doc: resolve(doc, parts)


def _eq_value(value: Any) -> Callable[[list[Any]], bool]:
    """Test whether any reached value equals ``value`` (null also matches missing)."""
    if value is None:
        return lambda vals: any(v is MISSING or v is None for v in expand(vals))
    t = type(value)
    if t in (str, bool):  # the fast, common case: exact type match only
        return lambda vals: any(type(v) is t and v == value for v in expand(vals))
    return lambda vals: any(v is not MISSING and values_equal(v, value) for v in expand(vals))


_ORDER_OPS: dict[str, Callable[[int], bool]] = {
    "$gt": lambda c: c > 0,
    "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0,
    "$lte": lambda c: c <= 0,
}


def _order(op: str, value: Any) -> Callable[[list[Any]], bool]:
    test = _ORDER_OPS[op]
    b = bracket(value)
    if b == NULL or is_nan(value):  # only the equality part can hold (null matches missing; NaN is NaN)
        if op in ("$gte", "$lte"):
            return _eq_value(value)
        return lambda vals: False

    def match(vals: list[Any]) -> bool:
        for v in expand(vals):
            if v is not MISSING and bracket(v) == b and not is_nan(v) and test(compare(v, value)):
                return True
        return False

    return match


def _values_test(node: Node) -> Callable[[list[Any]], bool]:
    """Compile a field node to a test over the values its path reaches."""
    if isinstance(node, Compare):
        if node.op == "$eq":
            return _eq_value(node.value)
        if node.op == "$ne":
            eq = _eq_value(node.value)
            return lambda vals: not eq(vals)
        return _order(node.op, node.value)
    if isinstance(node, In):
        kinds = {type(v) for v in node.values}
        has_nan = any(is_nan(v) for v in node.values)  # NaN is never found in a set by equality
        if node.values and not has_nan and (kinds == {str} or kinds <= {int, float}):  # a set lookup
            allowed = frozenset(node.values)
            ok = (str,) if kinds == {str} else (int, float)

            def any_in(vals: list[Any]) -> bool:
                return any(type(v) in ok and v in allowed for v in expand(vals))

            return (lambda vals: not any_in(vals)) if node.negate else any_in
        tests = [_eq_value(v) for v in node.values]
        if node.negate:
            return lambda vals: not any(t(vals) for t in tests)
        return lambda vals: any(t(vals) for t in tests)
    if isinstance(node, Exists):
        if node.present:
            return lambda vals: any(v is not MISSING for v in vals)
        return lambda vals: all(v is MISSING for v in vals)
    if isinstance(node, Regex):
        flags = 0
        for ch, flag in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X)):
            if ch in node.options:
                flags |= flag
        rx = re.compile(node.pattern, flags)
        return lambda vals: any(type(v) is str and rx.search(v) is not None for v in expand(vals))
    if isinstance(node, All):
        if not node.values:
            return lambda vals: False
        tests = [_eq_value(v) for v in node.values]
        return lambda vals: all(t(vals) for t in tests)
    if isinstance(node, Size):
        n = node.size
        return lambda vals: any(type(a) is list and len(a) == n for a in map(unwrap, vals))
    if isinstance(node, ElemMatch):
        return _elem_match(node)
    if isinstance(node, Not):
        sub = compile_node(node.query)
        return lambda vals: not sub(_Reached(vals))
    raise TypeError(f"not a field node: {node!r}")


def _elem_match(node: ElemMatch) -> Callable[[list[Any]], bool]:
    """``$elemMatch``: some element of an array the path reaches matches the sub-query.

    The element is matched as a terminal value: an element that is itself an array is not
    searched by membership. In value mode the operators apply to the element; otherwise the
    sub-query applies to elements that are documents (an empty sub-query also accepts
    elements that are arrays).
    """
    sub = compile_node(node.query)
    if node.value_mode:

        def element_matches(el: Any) -> bool:
            return sub(_Reached([Terminal(el) if type(el) is list else el]))

        return lambda vals: any(type(a) is list and any(map(element_matches, a)) for a in map(unwrap, vals))
    if node.query == MATCH_ALL:
        return lambda vals: any(
            type(a) is list and any(type(el) in (dict, list) for el in a) for a in map(unwrap, vals)
        )
    return lambda vals: any(
        type(a) is list and any(type(el) is dict and sub(el) for el in a) for a in map(unwrap, vals)
    )


class _Reached:
    """Values already resolved for a path, handed to a ``$not`` operand on the same path."""

    __slots__ = ("vals",)

    def __init__(self, vals: list[Any]) -> None:
        self.vals = vals


def compile_node(node: Node) -> Predicate:
    """Compile an AST node to a predicate ``doc -> bool``."""
    if isinstance(node, And):
        preds = [compile_node(c) for c in node.children]
        if not preds:
            return lambda doc: True
        if len(preds) == 1:
            return preds[0]
        if len(preds) == 2:
            p0, p1 = preds
            return lambda doc: p0(doc) and p1(doc)
        return lambda doc: all(p(doc) for p in preds)
    if isinstance(node, Or):
        preds = [compile_node(c) for c in node.children]
        return lambda doc: any(p(doc) for p in preds)
    if isinstance(node, Nor):
        preds = [compile_node(c) for c in node.children]
        return lambda doc: not any(p(doc) for p in preds)
    get = _getter(node.path)  # type: ignore[attr-defined]
    test = _values_test(node)

    def field_pred(doc: Any) -> bool:
        if type(doc) is _Reached:
            return test(doc.vals)
        return test(get(doc))

    return field_pred


def compile_query(query: dict[str, Any] | None) -> Predicate:
    """Parse, validate and compile a query document to a predicate."""
    return compile_node(parse(query))


_CACHE_SIZE = 256
_compiled: dict[str, Predicate] = {}


def predicate_for(node: Node) -> Predicate:
    """Compile ``node``, reusing the compiled predicate of an identical AST.

    The cache is keyed by ``repr(node)``, not by the node itself: AST equality follows Python's,
    where ``1 == 1.0 == True``, but MongoDB tells ``{"a": 1}`` from ``{"a": True}``. The repr
    keeps types apart and also works for values that are not hashable (lists, dicts).
    """
    key = repr(node)
    pred = _compiled.get(key)
    if pred is None:
        pred = compile_node(node)
        if len(_compiled) >= _CACHE_SIZE:
            _compiled.clear()
        _compiled[key] = pred
    return pred
