"""Projections: which fields of a document a query returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import QueryError
from .paths import split_path


@dataclass(frozen=True, slots=True)
class Projection:
    """A validated projection: included paths, or excluded paths; ``uid`` is kept unless excluded."""

    include: bool
    paths: tuple[tuple[str, ...], ...]
    keep_uid: bool
    tree: Any = field(default=None, compare=False, repr=False)  # inclusions as a tree, built once


def parse_projection(projection: Any) -> Projection | None:
    """Validate a projection.

    Args:
        projection: ``None``, a list of paths to include, or a dict ``{path: 1 | 0}`` that is
            all inclusions or all exclusions (``uid`` may be excluded from an inclusion).

    Returns:
        The :class:`Projection`, or ``None`` for whole documents.

    Raises:
        QueryError: The projection is malformed or mixes inclusion and exclusion.
    """
    if projection is None:
        return None
    if isinstance(projection, (list, tuple)):
        bad = [p for p in projection if type(p) is not str]
        if bad:
            raise QueryError(f"a projection list holds paths (strings), got {bad[0]!r:.80}")
        projection = {p: 1 for p in projection}
    if not isinstance(projection, dict):
        raise QueryError(f"a projection is a dict or a list of paths, got {projection!r:.80}")
    keep_uid = True
    flags: dict[str, bool] = {}
    for path, flag in projection.items():
        if type(path) is not str or not path or path.startswith("$") or any(not p for p in path.split(".")):
            raise QueryError(f"bad projection path {path!r}")
        if flag not in (0, 1, True, False):
            raise QueryError(f"projection values must be 0 or 1, got {flag!r} for {path!r}")
        if path == "uid":
            keep_uid = bool(flag)
            continue
        flags[path] = bool(flag)
    kinds = set(flags.values())
    if len(kinds) > 1:
        raise QueryError("a projection cannot mix inclusion and exclusion (except of 'uid')")
    for a in flags:
        for b in flags:
            if b.startswith(a + "."):
                raise QueryError(f"projection paths {a!r} and {b!r} collide")
    if not flags:
        if not projection:  # {} means the whole document, as in MongoDB
            return None
        return Projection(include=keep_uid, paths=(), keep_uid=keep_uid)
    paths = tuple(split_path(p) for p in flags)
    include = kinds.pop()
    tree = _tree(paths + ((("uid",),) if keep_uid else ())) if include else None
    return Projection(include=include, paths=paths, keep_uid=keep_uid, tree=tree)


def _tree(paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    """The included paths as a tree of field names; ``True`` marks a whole included field."""
    tree: dict[str, Any] = {}
    for parts in paths:
        node = tree
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = True
    return tree


def _include(doc: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    """Keep the fields of ``doc`` that ``tree`` names, in the document's own field order."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        sub = tree.get(key)
        if sub is None:
            continue
        if sub is True:
            out[key] = value
        elif type(value) is dict:
            out[key] = _include(value, sub)
        elif type(value) is list:
            out[key] = _include_array(value, sub)
    return out


def _include_array(value: list[Any], tree: dict[str, Any]) -> list[Any]:
    """Project every document of an array, nested arrays included.

    Elements that are neither documents nor arrays are dropped, as MongoDB does.
    """
    items: list[Any] = []
    for el in value:
        t = type(el)
        if t is dict:
            items.append(_include(el, tree))
        elif t is list:
            items.append(_include_array(el, tree))
    return items


def _exclude(doc: Any, parts: tuple[str, ...]) -> None:
    head, rest = parts[0], parts[1:]
    if type(doc) is list:
        for el in doc:
            _exclude(el, parts)
        return
    if type(doc) is not dict or head not in doc:
        return
    if not rest:
        del doc[head]
    else:
        _exclude(doc[head], rest)


def project(doc: dict[str, Any], projection: Projection | None) -> dict[str, Any]:
    """Return the projected document (``doc`` must be a private copy; it may be modified)."""
    if projection is None:
        return doc
    if projection.include:
        tree = projection.tree
        if tree is None:
            tree = _tree(projection.paths + ((("uid",),) if projection.keep_uid else ()))
        return _include(doc, tree)
    for parts in projection.paths:
        _exclude(doc, parts)
    if not projection.keep_uid:
        doc.pop("uid", None)
    return doc
