"""``track-backends tree URI``: projects, their groups, and each group's trial counts by status."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..model import PREDEFINED_STATUSES
from ..protocol.updates import and_query
from ..store import GROUPS, PROJECTS, TRIALS, Store
from .common import FORMATTER, URI_HELP, open_existing

NAME = "tree"

NO_GROUP = "(no group)"
NO_PROJECT = "(no project)"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``tree`` subparser to the command line's subparsers."""
    p = sub.add_parser(
        NAME,
        help="projects, their groups, and trial counts by status",
        description=(
            "List projects, then their groups, with the number of trials in each status. Counts are "
            "store.count queries (no trial is read). Trials whose group has no stored group document "
            f"are counted on a '{NO_GROUP}' line, under their project or under '{NO_PROJECT}'."
        ),
        epilog=URI_HELP,
        formatter_class=FORMATTER,
    )
    p.add_argument("uri", metavar="URI")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")
    return p


def status_counts(store: Store, query: dict[str, Any]) -> dict[str, int]:
    """``{"total": n, status name: n, ...}`` for the trials matching ``query`` (statuses with none left out).

    Trials in a custom status are counted together as ``other``.
    """
    total = store.count(TRIALS, query)
    counts = {"total": total}
    left = total
    for status in sorted(PREDEFINED_STATUSES, key=lambda s: s.value):
        if not left:
            break
        n = store.count(TRIALS, and_query(query, {"status.name": status.name}))
        if n:
            counts[status.name] = n
            left -= n
    if left:
        counts["other"] = left
    return counts


def build_tree(store: Store) -> list[dict[str, Any]]:
    """``[{"project", "groups": [{"name", "uid", "counts"}]}]``: projects by name, then their groups by name.

    Groups whose project is not stored come under the project ``None``, named ``"name [project_id]"``;
    each project ends with a :data:`NO_GROUP` entry for its trials in no stored group, when it has any.
    """
    projects = sorted(d["uid"] for d in store.find(PROJECTS, None, projection=["uid"]))
    groups = store.find(GROUPS, None, projection=["uid", "name", "project_id"])
    by_project: dict[str | None, list[dict[str, Any]]] = {}
    for g in groups:
        pid = g.get("project_id")
        by_project.setdefault(pid if pid in projects else None, []).append(g)
    loose = {"group_id": {"$nin": [g["uid"] for g in groups]}}
    out = []
    for project in [*projects, None]:
        rows = []
        for g in sorted(by_project.get(project, []), key=lambda g: (str(g.get("name")), g["uid"])):
            name = str(g.get("name"))
            if project is None and g.get("project_id") is not None:
                name += f" [{g['project_id']}]"
            rows.append({"name": name, "uid": g["uid"], "counts": status_counts(store, {"group_id": g["uid"]})})
        where = {"project_id": project} if project is not None else {"project_id": {"$nin": projects}}
        counts = status_counts(store, and_query(loose, where))
        if counts["total"]:
            rows.append({"name": NO_GROUP, "uid": None, "counts": counts})
        if project is not None or rows:
            out.append({"project": project, "groups": rows})
    return out


def _counts_text(counts: dict[str, int]) -> str:
    parts = [f"{k} {v}" for k, v in counts.items() if k != "total"]
    return f"{counts['total']} trial{'s' if counts['total'] != 1 else ''}" + (f": {', '.join(parts)}" if parts else "")


def run(args: argparse.Namespace) -> int:
    """Print the tree of projects and groups with trial counts."""
    with open_existing(args.uri) as store:
        tree = build_tree(store)
    if args.format == "json":
        print(json.dumps(tree, indent=2))
        return 0
    for node in tree:
        total = sum(g["counts"]["total"] for g in node["groups"])
        n = sum(1 for g in node["groups"] if g["uid"] is not None)
        name = node["project"] if node["project"] is not None else NO_PROJECT
        print(f"{name}  ({n} group{'s' if n != 1 else ''}, {total} trial{'s' if total != 1 else ''})")
        width = max((len(str(g["name"])) for g in node["groups"]), default=0)
        for g in node["groups"]:
            print(f"  {str(g['name']).ljust(width)}  {_counts_text(g['counts'])}")
    if not tree:
        print("(no projects, groups or trials)")
    return 0
