"""What a migration did: per-collection and blob counts, the verification verdict, a printable summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_PROBLEMS = 20
"""How many problem messages a collection report keeps (the counts are always complete)."""

_COPY_COLUMNS = ["source", "copied", "unchanged", "skipped", "overwritten", "bumped", "failed"]
_VERIFY_COLUMNS = ["verified", "kept", "missing", "differing"]


class _Problems:
    """Counting failures and keeping the first :data:`MAX_PROBLEMS` messages about them."""

    failed: int
    problems: list[str]

    def problem(self, message: str) -> None:
        """Record a problem message (only the first :data:`MAX_PROBLEMS` are kept)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)

    def fail(self, message: str) -> None:
        """Count what could not be copied (a document the destination refused, a blob), and record why."""
        self.failed += 1
        self.problem(message)


@dataclass
class CollectionReport(_Problems):
    """What a migration did to one collection.

    Attributes:
        name: The collection.
        source: Matching source documents when the migration started.
        copied: Inserted into the destination (new uid there).
        unchanged: Already in the destination with the same content (or, with ``bump``, a bumped
            copy of it already there); nothing written.
        skipped: Conflicts left as the destination has them (``skip``, or ``bump`` on projects
            and groups).
        overwritten: Conflicts replaced by the source's document (``overwrite``).
        bumped: Conflicting trials stored as a new revision (``bump``).
        failed: Documents the destination refused; see ``problems``.
        scanned: Source documents looked at by verification.
        verified: Found in the destination with the source's checksum (or as a bumped copy).
        kept: Found with other content, kept on purpose (``skip``).
        missing: Not found in the destination.
        differing: Found with other content although the policy should have copied it.
        problems: The first :data:`MAX_PROBLEMS` messages about failed or mismatched documents.
        conflicts: The uids of the first :data:`MAX_PROBLEMS` conflicts that were skipped.
        series_copied: Trials (with points) whose points were written where the destination had
            none, or only the start of them (a copy that was interrupted).
        series_replaced: Trials whose destination points differed and were replaced
            (``overwrite``; or a bumped copy of this run's).
        series_unchanged: Trials whose points the destination already holds.
        series_kept: Trials whose destination points differ, left alone (``skip``).
        points_copied: Points written (or, in a dry run, that would be).
        series_verified: Trials whose points verification found the same on both sides.
        series_differing: Trials whose destination points differ from the source's (including
            those kept under ``skip``: a trial with the same document and other points is damaged).
    """

    name: str
    source: int = 0
    copied: int = 0
    unchanged: int = 0
    skipped: int = 0
    overwritten: int = 0
    bumped: int = 0
    failed: int = 0
    scanned: int = 0
    verified: int = 0
    kept: int = 0
    missing: int = 0
    differing: int = 0
    problems: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    series_copied: int = 0
    series_replaced: int = 0
    series_unchanged: int = 0
    series_kept: int = 0
    points_copied: int = 0
    series_verified: int = 0
    series_differing: int = 0

    def skip(self, uid: str) -> None:
        """Count a conflict kept as the destination has it (the first uids are recorded)."""
        self.skipped += 1
        if len(self.conflicts) < MAX_PROBLEMS:
            self.conflicts.append(uid)

    @property
    def mismatched(self) -> bool:
        """Whether verification found a document missing or different, or a write failed."""
        return bool(self.missing or self.differing or self.series_differing or self.failed)

    @property
    def has_series(self) -> bool:
        """Whether any trial's points were looked at."""
        return bool(self.series_copied or self.series_replaced or self.series_unchanged or self.series_kept)


@dataclass
class BlobReport(_Problems):
    """What a migration did with blobs (the content behind artifacts and cache entries).

    Attributes:
        source: Distinct blobs the selected reference documents name (plus, with
            ``all_blobs``, every other blob of the source).
        copied: Blobs written to the destination (or, in a dry run, that would be).
        skipped: Blobs the destination already held (nothing written).
        failed: Blobs that could not be copied (missing or damaged in the source); see ``problems``.
        bytes_copied: Bytes of the copied blobs.
        bytes_skipped: Bytes of the skipped blobs.
        verified: Referenced blobs found in the destination with the right size.
        missing: Referenced blobs missing from the destination.
        differing: Referenced blobs in the destination with another size.
        problems: The first :data:`MAX_PROBLEMS` messages about failed or mismatched blobs.
    """

    source: int = 0
    copied: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_copied: int = 0
    bytes_skipped: int = 0
    verified: int = 0
    missing: int = 0
    differing: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self, verified: bool) -> str:
        """One summary line."""
        text = (
            f"blobs: {self.source} in the source, {self.copied} copied ({_size(self.bytes_copied)}), "
            f"{self.skipped} already there ({_size(self.bytes_skipped)}), {self.failed} failed"
        )
        if verified:
            text += f"; verified {self.verified}, missing {self.missing}, wrong size {self.differing}"
        return text


def _size(n: int) -> str:
    """A byte count for people: ``512 bytes``, ``1.5 MiB``."""
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@dataclass
class MigrationReport:
    """The outcome of :func:`~track_backends.migrate.migrate`.

    Attributes:
        source: The source, as a URI with its password masked (or the store's ``repr``).
        destination: The destination, likewise.
        on_conflict: The conflict policy.
        dry_run: Nothing was written; the counts say what would have happened.
        verification: ``True`` when every check passed, ``False`` on a mismatch, ``None`` when
            verification did not run (dry run, or ``verify=False``).
        collections: Per collection (:data:`~track_backends.migrate.ALL_COLLECTIONS`), what happened.
        blobs: What happened to the blobs the copied documents reference.
        seconds: Wall time of the migration.
    """

    source: str
    destination: str
    on_conflict: str
    dry_run: bool
    verification: bool | None = None
    collections: dict[str, CollectionReport] = field(default_factory=dict)
    blobs: BlobReport = field(default_factory=BlobReport)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No write failed and verification (when it ran) passed."""
        failed = any(c.failed for c in self.collections.values()) or self.blobs.failed
        return self.verification is not False and not failed

    def total(self, attr: str) -> int:
        """Sum of one counter over the collections, e.g. ``report.total("copied")``."""
        return sum(getattr(c, attr) for c in self.collections.values())

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "source": self.source,
            "destination": self.destination,
            "on_conflict": self.on_conflict,
            "dry_run": self.dry_run,
            "verification": self.verification,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "collections": {
                name: {k: v for k, v in vars(c).items() if k != "name"} for name, c in self.collections.items()
            },
            "blobs": dict(vars(self.blobs)),
        }

    def summary(self) -> str:
        """A human-readable table of the counts and the verification verdict."""
        what = "dry run: nothing was written; counts say what would happen" if self.dry_run else "migrated"
        lines = [f"{what}: {self.source} -> {self.destination} (on conflict: {self.on_conflict})"]
        lines += self._table()
        lines += self._points()
        if self.blobs.source:
            lines.append(self.blobs.line(self.verification is not None))
        lines.append(self._verdict())
        lines += self._notes()
        lines += [f"blobs: {p}" for p in self.blobs.problems]
        if any(c.failed for c in self.collections.values()):
            lines.append(f"failed: {self.total('failed')} documents were refused by the destination")
        if self.blobs.failed:
            lines.append(f"failed: {self.blobs.failed} blobs could not be copied")
        lines.append(f"time: {self.seconds:.2f} s")
        return "\n".join(lines)

    def _table(self) -> list[str]:
        cols = _COPY_COLUMNS + (_VERIFY_COLUMNS if self.verification is not None else [])
        header = ["collection", *cols]
        rows = [[c.name, *(str(getattr(c, k)) for k in cols)] for c in self.collections.values()]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        return [
            "  ".join(r[0].ljust(widths[0]) if i == 0 else r[i].rjust(widths[i]) for i in range(len(r)))
            for r in [header, *rows]
        ]

    def _points(self) -> list[str]:
        lines = []
        for c in self.collections.values():
            if not c.has_series and not c.series_differing:
                continue
            line = (
                f"{c.name} points: {c.series_copied} series copied, {c.series_replaced} replaced, "
                f"{c.series_unchanged} unchanged, {c.series_kept} kept ({c.points_copied} points written)"
            )
            if self.verification is not None:
                line += f"; verified {c.series_verified}, differing {c.series_differing}"
            lines.append(line)
        return lines

    def _verdict(self) -> str:
        if self.verification is None:
            return "verification: not run" + (" (dry run)" if self.dry_run else "")
        blobs = self.blobs
        if self.verification:
            also = f", {blobs.verified} blobs present with their sizes" if blobs.source else ""
            return f"verification: OK ({self.total('scanned')} source documents: counts and checksums match{also})"
        bad = [
            f"{c.name}: {c.missing} missing, {c.differing} differing"
            + (f", {c.series_differing} with other points" if c.series_differing else "")
            for c in self.collections.values()
            if c.missing or c.differing or c.series_differing
        ]
        if blobs.missing or blobs.differing:
            bad.append(f"blobs: {blobs.missing} missing, {blobs.differing} with the wrong size")
        return "verification: MISMATCH (" + ("; ".join(bad) or "counts differ") + ")"

    def _notes(self) -> list[str]:
        lines = []
        for c in self.collections.values():
            if c.scanned != c.source and self.verification is not None:
                lines.append(
                    f"note: {c.name}: the source had {c.source} documents at the start, {c.scanned} at the end"
                )
            lines += [f"{c.name}: {p}" for p in c.problems]
            if c.skipped:
                more = f" and {c.skipped - len(c.conflicts)} more" if c.skipped > len(c.conflicts) else ""
                lines.append(
                    f"{c.name}: {c.skipped} conflicts kept as the destination has them: {', '.join(c.conflicts)}{more}"
                )
        return lines
