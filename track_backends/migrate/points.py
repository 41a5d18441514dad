"""Copying each trial's metric points with it, idempotently, and verifying them by checksum.

Points live beside the trial (:meth:`~track_backends.store.Store.append_points`), so after the
documents of a page of trials are copied, their points follow:

1. one bulk ``fetch_points`` of the page on the source and one on the destination (each
   trial's copy there: the same uid, or its bumped copy);
2. per trial, the two series (every attempt) are compared by
   :func:`~track_backends.migrate.checksums.series_checksum`:

   * the same: *unchanged*, nothing written;
   * none in the destination, or each of its series the start of the source's (a copy that was
     interrupted): *copied*;
   * otherwise the trial conflicts, and ``on_conflict`` decides as for documents:
     ``overwrite`` replaces them, ``skip`` keeps them (and verification still reports them: a
     trial whose document is the same and whose points differ is damaged), ``fail`` raises,
     ``bump`` stores the trial as its next revision with the source's points;
   * a trial whose *document* conflict was kept (``skip``) keeps its points too: they belong to
     the destination's trial. A trial the destination refused gets no points.
3. the trials to write are read attempt by attempt from the source
   (:func:`~track_backends.stores.multiplex.series.read_by_attempt`: one bulk read per attempt
   number), their points in the destination are deleted, and the source's are appended under
   the same attempts. Replacing whole makes a rerun, or a resumed run, converge.

Verification reads the page's series on both sides again (two bulk reads) and compares their
checksums. A dry run reads and counts, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import EncodingError, QueryError
from ..query.equality import same_value
from ..store import TRIALS, Document, Store
from ..stores.multiplex.series import (
    ByAttempt,
    Series,
    SeriesSplitError,
    as_lists,
    count,
    read_by_attempt,
    write_by_attempt,
)
from .checksums import series_checksum
from .conflicts import ConflictResolver
from .report import CollectionReport


def resumes(partial: Series, full: Series) -> bool:
    """Whether each of ``partial``'s series is the start of ``full``'s (what an interrupted copy leaves)."""
    for name, pairs in partial.items():
        whole = full.get(name)
        if whole is None or len(pairs) > len(whole):
            return False
        if not same_value(as_lists({name: pairs}), as_lists({name: whole[: len(pairs)]})):
            return False
    return True


class SeriesCopier:
    """Copies and verifies the points of the trials a migration copies (see the module docstring).

    Args:
        src: The source store.
        dst: The destination store.
        conflicts: The migration's conflict resolver (its policy, what it kept and bumped).
        dry_run: Count without writing.

    Attributes:
        kept: Uids of trials whose differing points were kept (``skip``).
    """

    def __init__(self, src: Store, dst: Store, conflicts: ConflictResolver, dry_run: bool) -> None:
        self.src = src
        self.dst = dst
        self.conflicts = conflicts
        self.dry_run = dry_run
        self.kept: set[str] = set()

    def _selected(self, docs: list[Document]) -> tuple[list[str], dict[str, str | None]]:
        """The page's uids whose points follow them, and where each one's copy is in the destination."""
        kept = self.conflicts.kept[TRIALS]
        uids = [d["uid"] for d in docs if d["uid"] not in kept]
        return uids, {u: self.conflicts.bumped.get(u, u) if u in self.conflicts.bumped else u for u in uids}

    def copy(self, docs: list[Document], rep: CollectionReport) -> None:
        """Bring the destination's points of a page of copied trials in line with the source's.

        Raises:
            MigrationConflictError: ``on_conflict="fail"`` and a trial's points conflict.
            StoreError: A store failed.
        """
        uids, targets = self._selected(docs)
        if not uids:
            return
        theirs = self.src.fetch_points(TRIALS, uids)
        there = [t for t in dict.fromkeys(targets.values()) if t is not None]
        ours = self.dst.fetch_points(TRIALS, there) if there else {}
        present = None if self.dry_run else self._present(there)
        by_uid = {d["uid"]: d for d in docs}
        writes: dict[str, str | None] = {}
        for u in uids:
            t = targets[u]
            if present is not None and t not in present:
                continue  # the destination refused the document (already reported)
            s, o = theirs.get(u) or {}, (ours.get(t) or {}) if t is not None else {}
            if not count(s) and not count(o):
                continue
            if series_checksum(s) == series_checksum(o):
                rep.series_unchanged += 1
            elif not count(o) or resumes(o, s):
                rep.series_copied += 1
                writes[u] = t
            elif u in self.conflicts.bumped:  # a bumped copy is this migration's own
                rep.series_replaced += 1
                writes[u] = t
            else:
                self._conflict(by_uid[u], s, rep, writes)
        self._write(by_uid, writes, theirs, rep)

    def _present(self, targets: list[str]) -> set[str]:
        """The targets whose document the destination holds."""
        if not targets:
            return set()
        return {d["uid"] for d in self.dst.find(TRIALS, {"uid": {"$in": targets}}, projection=["uid"])}

    def _conflict(self, doc: Document, series: Series, rep: CollectionReport, writes: dict[str, Any]) -> None:
        """A trial whose points differ from the destination's: the policy decides."""
        uid = doc["uid"]
        self.conflicts.check(TRIALS, uid)
        policy = self.conflicts.policy
        if policy == "overwrite":
            rep.series_replaced += 1
            writes[uid] = uid
        elif policy == "bump" and self.conflicts.bump_target(doc, rep):
            t = self.conflicts.bumped[uid]
            held = (self.dst.fetch_points(TRIALS, [t]).get(t) or {}) if t is not None else {}
            if series_checksum(held) == series_checksum(series):
                rep.series_unchanged += 1
            else:
                rep.series_copied += 1
                writes[uid] = t
        elif policy != "bump":
            rep.series_kept += 1
            self.kept.add(uid)

    def _split(
        self, docs: Mapping[str, Document], writes: dict[str, Any], theirs: Mapping[str, Series], rep: CollectionReport
    ) -> dict[str, ByAttempt]:
        """The source's points of the trials to write, per attempt; a trial that cannot be split fails."""
        try:
            return read_by_attempt(self.src, TRIALS, {u: docs[u] for u in writes}, everything=theirs)
        except SeriesSplitError:
            out: dict[str, ByAttempt] = {}
            for u in list(writes):
                try:
                    out.update(read_by_attempt(self.src, TRIALS, {u: docs[u]}, everything=theirs))
                except SeriesSplitError as e:
                    rep.fail(f"{u}: its points cannot be copied: {e}")
                    del writes[u]
            return out

    def _write(
        self, docs: Mapping[str, Document], writes: dict[str, Any], theirs: Mapping[str, Series], rep: CollectionReport
    ) -> None:
        """Replace the destination's points of the trials to write with the source's, attempt by attempt."""
        if not writes:
            return
        if self.dry_run:
            rep.points_copied += sum(count(theirs.get(u) or {}) for u in writes)
            return
        split = self._split(docs, writes, theirs, rep)
        if not writes:
            return
        self.dst.delete_points(TRIALS, list(dict.fromkeys(writes.values())))
        for u, t in writes.items():
            try:
                rep.points_copied += write_by_attempt(self.dst, TRIALS, t, split.get(u, {}))
            except (EncodingError, QueryError) as e:
                rep.fail(f"{u}: the destination refused its points: {e}")

    def verify(self, docs: list[Document], found: Mapping[str, Document], rep: CollectionReport) -> None:
        """Compare the checksum of each trial's points (every attempt) on both sides.

        Args:
            docs: A page of source trials.
            found: The destination's documents among them, by uid.
            rep: Where ``series_verified`` and ``series_differing`` are counted.
        """
        uids, targets = self._selected(docs)
        uids = [u for u in uids if targets[u] is not None and (targets[u] != u or u in found)]
        if not uids:
            return
        theirs = self.src.fetch_points(TRIALS, uids)
        ours = self.dst.fetch_points(TRIALS, list(dict.fromkeys(t for u in uids if (t := targets[u]))))
        for u in uids:
            s, o = theirs.get(u) or {}, ours.get(targets[u] or "") or {}
            if not count(s) and not count(o):
                continue
            if series_checksum(s) == series_checksum(o):
                rep.series_verified += 1
                continue
            rep.series_differing += 1
            why = " (kept under --on-conflict skip; overwrite replaces them)" if u in self.kept else ""
            rep.problem(f"{u}: the destination's points differ (checksum mismatch){why}")


__all__ = ["SeriesCopier", "resumes"]
