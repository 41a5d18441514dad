"""Parse, validate and apply MongoDB-style update documents.

Supported operators: ``$set $unset $inc $push`` (with ``$each``) ``$addToSet`` (with ``$each``)
and ``$setOnInsert``. Dotted paths create missing intermediate documents and keep the siblings of
the field they set. Numeric parts index arrays. Two operators may not touch overlapping paths,
and ``uid`` can never be changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any

from ..encoding import encode
from ..errors import EncodingError, QueryError, UnsupportedOperatorError
from .ast import And, Compare, In, Node
from .paths import split_path
from .values import compare, values_equal

UPDATE_OPERATORS = ("$set", "$unset", "$inc", "$min", "$max", "$push", "$addToSet", "$setOnInsert")
IMMUTABLE_FIELDS = frozenset(["uid"])


def _part_cmp(a: str, b: str) -> int:
    if a.isdigit() and b.isdigit():  # numeric names in numeric order
        x, y = int(a), int(b)
        return (x > y) - (x < y)
    return (a > b) - (a < b)


def _path_cmp(a: tuple[str, tuple[str, ...], Any], b: tuple[str, tuple[str, ...], Any]) -> int:
    for x, y in zip(a[1], b[1]):
        c = _part_cmp(x, y)
        if c:
            return c
    return len(a[1]) - len(b[1])


_op_order = cmp_to_key(_path_cmp)


def mongo_order(ops: list[tuple[str, tuple[str, ...], Any]]) -> tuple[tuple[str, tuple[str, ...], Any], ...]:
    """Order operations as MongoDB (5.0+) applies them: by path, lexicographically.

    Fields with numeric names are ordered numerically. Paths never overlap, so the order only
    decides where newly created fields go: after the existing ones, in this order.
    """
    if len(ops) > 1:
        ops = sorted(ops, key=_op_order)
    return tuple(ops)


@dataclass(frozen=True, slots=True)
class Update:
    """A validated update: ``(operator, path parts, value)`` triples in application order.

    The order is MongoDB's (see :func:`mongo_order`), not the order of the update document.
    """

    ops: tuple[tuple[str, tuple[str, ...], Any], ...]
    source: dict[str, Any]

    def paths(self) -> list[str]:
        """Return the dotted paths this update writes."""
        return [".".join(p) for _, p, _ in self.ops]

    def to_record(self) -> list[list[Any]]:
        """Serialise the validated operations for a journal record (JSON- and pickle-safe)."""
        return [[op, ".".join(p), list(v[1]) if type(v) is tuple else v] for op, p, v in self.ops]

    @staticmethod
    def from_record(record: list[list[Any]]) -> Update:
        """Rebuild an update from :meth:`to_record` output (which was validated when written)."""
        ops = []
        for op, path, value in record:
            ops.append((op, split_path(path), ("each", value) if op in ("$push", "$addToSet") else value))
        return Update(mongo_order(ops), {})


def parse_update(update: Any) -> Update:
    """Validate an update document.

    Args:
        update: A dict mapping update operators to ``{path: value}`` documents.

    Returns:
        The validated :class:`Update`; values are validated deep copies.

    Raises:
        QueryError: The update is malformed, empty, touches ``uid``, or has overlapping paths.
        UnsupportedOperatorError: The update uses an unknown operator.
        EncodingError: A value cannot be stored.
    """
    if isinstance(update, Update):
        return update
    if not isinstance(update, dict) or not update:
        raise QueryError(f"an update must be a non-empty dict of operators, got {update!r:.80}")
    ops: list[tuple[str, tuple[str, ...], Any]] = []
    seen: list[tuple[str, ...]] = []
    for op, fields in update.items():
        if op not in UPDATE_OPERATORS:
            if isinstance(op, str) and op.startswith("$"):
                raise UnsupportedOperatorError(f"unknown update operator {op!r}")
            raise QueryError(f"update documents take operators such as $set, not field {op!r}")
        if not isinstance(fields, dict):
            raise QueryError(f"{op} takes a dict of fields, got {fields!r:.80}")
        for path, value in fields.items():
            if type(path) is not str or not path or any(not p for p in path.split(".")):
                raise QueryError(f"malformed field path {path!r} in {op}")
            parts = split_path(path)
            if any(p.startswith("$") for p in parts):
                raise QueryError(f"field path {path!r} in {op} names an operator")
            if parts[0] in IMMUTABLE_FIELDS:
                raise QueryError(f"{parts[0]!r} cannot be changed by an update ({op} {path!r})")
            for other in seen:
                n = min(len(other), len(parts))
                if other[:n] == parts[:n]:
                    raise QueryError(f"update paths {'.'.join(other)!r} and {path!r} conflict")
            seen.append(parts)
            ops.append((op, parts, _operand(op, path, value)))
    return Update(mongo_order(ops), update)


def _operand(op: str, path: str, value: Any) -> Any:
    if op == "$unset":
        return None
    if op in ("$push", "$addToSet") and isinstance(value, dict) and "$each" in value:
        if set(value) != {"$each"}:
            raise UnsupportedOperatorError(f"{op} on {path!r} supports only the $each modifier, got {sorted(value)}")
        each = value["$each"]
        if not isinstance(each, (list, tuple)):
            raise QueryError(f"$each in {op} on {path!r} takes a list, got {each!r:.80}")
        return ("each", encode(list(each), path))
    v = encode(value, path)
    if op == "$inc" and (type(v) not in (int, float)):
        raise QueryError(f"$inc on {path!r} takes a number, got {value!r:.80}")
    if op in ("$push", "$addToSet"):
        return ("each", [v])
    return v


def _container(doc: dict[str, Any], parts: tuple[str, ...], create: bool, path: str) -> tuple[Any, str] | None:
    """Walk to the parent of the last part.

    With ``create``, missing fields become documents and indexes past the end of an array pad it
    with nulls, as MongoDB does; anything else in the way (null, a scalar, an array addressed by
    a field name) raises. Without ``create`` (``$unset``), a path that does not fully exist
    returns ``None``.
    """
    cur: Any = doc
    for i, part in enumerate(parts[:-1]):
        t = type(cur)
        if t is dict:
            nxt = cur.get(part, _ABSENT)
            if nxt is _ABSENT:
                if not create:
                    return None
                nxt = cur[part] = {}
        elif t is list and part.isdigit():
            idx = int(part)
            if idx < len(cur):
                nxt = cur[idx]
            else:
                if not create:
                    return None
                cur.extend([None] * (idx - len(cur)))
                nxt = {}
                cur.append(nxt)
        else:
            if not create:
                return None
            where = ".".join(parts[:i]) or "the document"
            raise QueryError(f"cannot create field {part!r} inside {where!r} ({_type_name(cur)}) for {path!r}")
        cur = nxt
    last = parts[-1]
    t = type(cur)
    if t is dict or (t is list and last.isdigit()):
        return cur, last
    if not create:
        return None
    where = ".".join(parts[:-1])
    raise QueryError(f"cannot create field {last!r} inside {where!r} ({_type_name(cur)}) for {path!r}")


def _type_name(value: Any) -> str:
    """Name the type of a stored value with an article, for messages ("a document", "null")."""
    if value is None:
        return "null"
    name = {dict: "document", list: "array", str: "string", bool: "boolean", int: "integer", float: "float"}
    n = name.get(type(value), type(value).__name__)
    return f"an {n}" if n[0] in "aeiou" else f"a {n}"


def _get(cur: Any, last: str) -> Any:
    if type(cur) is dict:
        return cur.get(last, _ABSENT)
    idx = int(last)
    return cur[idx] if idx < len(cur) else _ABSENT


def _put(cur: Any, last: str, value: Any) -> None:
    if type(cur) is dict:
        cur[last] = value
    else:
        idx = int(last)
        if idx >= len(cur):
            cur.extend([None] * (idx + 1 - len(cur)))
        cur[idx] = value


_ABSENT: Any = object()


def apply_update(doc: dict[str, Any], update: Update, *, inserting: bool = False) -> None:
    """Apply a validated update to ``doc`` in place.

    Callers apply it to a copy and keep the copy only when this returns, so a failing update
    leaves the stored document unchanged.

    Args:
        doc: The document to modify.
        update: The parsed update.
        inserting: True when the document is being created by an upsert (enables
            ``$setOnInsert``).

    Raises:
        QueryError: The update does not fit the document (``$inc`` of a string, ``$push`` onto a
            non-array, a path through a scalar).
    """
    for op, parts, value in update.ops:
        path = ".".join(parts)
        if op == "$setOnInsert" and not inserting:
            continue
        if op == "$unset":
            found = _container(doc, parts, False, path)
            if found is not None:
                cur, last = found
                if type(cur) is dict:
                    cur.pop(last, None)
                elif int(last) < len(cur):
                    cur[int(last)] = None
            continue
        cur, last = _container(doc, parts, True, path)  # type: ignore[misc]
        if op in ("$set", "$setOnInsert"):
            _put(cur, last, _copy(value))
        elif op in ("$min", "$max"):  # MongoDB's: set when missing, or when beyond in BSON order
            old = _get(cur, last)
            if old is _ABSENT or (compare(value, old) < 0) == (op == "$min") and compare(value, old) != 0:
                _put(cur, last, _copy(value))
        elif op == "$inc":
            old = _get(cur, last)
            if old is _ABSENT:
                _put(cur, last, value)
            elif type(old) in (int, float):
                _put(cur, last, _inc(old, value, path))
            else:
                raise QueryError(f"$inc on {path!r}: the field holds {_type_name(old)}, not a number")
        else:  # $push / $addToSet with ("each", items)
            items = value[1]
            old = _get(cur, last)
            if old is _ABSENT:
                old = []
                _put(cur, last, old)
            elif type(old) is not list:
                raise QueryError(f"{op} on {path!r}: the field holds {_type_name(old)}, not an array")
            for item in items:
                if op == "$push" or not any(values_equal(item, x) for x in old):
                    old.append(_copy(item))


def _inc(old: int | float, by: int | float, path: str) -> int | float:
    out = old + by
    try:
        checked: int | float = encode(out, path)
        return checked
    except EncodingError as e:
        raise QueryError(f"$inc on {path!r} overflows: {e}") from None


def _copy(value: Any) -> Any:
    t = type(value)
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list:
        return [_copy(v) for v in value]
    return value


def _equalities(node: Node, out: list[tuple[str, tuple[str, ...], Any]]) -> None:
    if isinstance(node, And):
        for child in node.children:
            _equalities(child, out)
    elif isinstance(node, Compare) and node.op == "$eq":
        out.append(("$eq", split_path(node.path), node.value))
    elif isinstance(node, In) and not node.negate and len(node.values) == 1:  # {$in: [v]} is {$eq: v}
        out.append(("$eq", split_path(node.path), node.values[0]))


def upsert_seed(node: Node) -> dict[str, Any]:
    """Build the document an upsert starts from: the query's equality fields.

    Top-level equalities (also inside ``$and``, and one-value ``$in``) are set in path order,
    as MongoDB does; the update is applied to the result.
    """
    pairs: list[tuple[str, tuple[str, ...], Any]] = []
    _equalities(node, pairs)
    seed: dict[str, Any] = {}
    for _, parts, value in mongo_order(pairs):
        cur = seed
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
            if type(cur) is not dict:
                break
        else:
            cur[parts[-1]] = _copy(value)
    return seed
