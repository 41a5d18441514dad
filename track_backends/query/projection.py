"""Projections: which fields of a document a query returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import QueryError
from .paths import split_path


@dataclass(frozen=True, slots=True)
class Projection:
    """A validated projection: included paths, or excluded paths; ``uid`` is kept unless excluded."""

    include: bool
    paths: tuple[tuple[str, ...], ...]
    keep_uid: bool


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
    if not flags:
        return Projection(include=keep_uid, paths=(), keep_uid=keep_uid)
    return Projection(include=kinds.pop(), paths=tuple(split_path(p) for p in flags), keep_uid=keep_uid)


def _include(doc: Any, parts: tuple[str, ...], out: dict[str, Any]) -> None:
    head, rest = parts[0], parts[1:]
    if head not in doc:
        return
    value = doc[head]
    if not rest:
        out[head] = value
        return
    if type(value) is dict:
        sub = out.get(head)
        if type(sub) is not dict:
            sub = out[head] = {}
        _include(value, rest, sub)
    elif type(value) is list:
        prev = out.get(head)
        items = []
        for i, el in enumerate(value):
            if type(el) is dict:
                base = prev[i] if type(prev) is list and i < len(prev) and type(prev[i]) is dict else {}
                _include(el, rest, base)
                items.append(base)
        out[head] = items


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
        out: dict[str, Any] = {}
        if projection.keep_uid and "uid" in doc:
            out["uid"] = doc["uid"]
        for parts in projection.paths:
            _include(doc, parts, out)
        return out
    for parts in projection.paths:
        _exclude(doc, parts)
    if not projection.keep_uid:
        doc.pop("uid", None)
    return doc
