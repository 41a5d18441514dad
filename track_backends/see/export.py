"""``export``: trials (one row each) or their metric points (long form) to CSV, JSON lines or Parquet.

The export streams: trials are read a page at a time in uid order (see
:mod:`~track_backends.see.select`), each page is written at once (see
:mod:`~track_backends.see.writers`), and the file is written beside the target and renamed over
it at the end, so a failed export leaves no half-written file. Memory holds one page of trials
(with ``series``, at most :data:`~track_backends.see.select.MAX_POINTS` points), whatever the
size of the store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .columns import PAGE, ROW_FIELDS, trial_row
from .extras import OutputError
from .select import series_batches, store_of, trial_pages
from .writers import SERIES_SHAPE, TRIAL_SHAPE, CsvWriter, JsonlWriter, ParquetWriter, Writer

FORMATS: dict[str, type[Writer]] = {"csv": CsvWriter, "jsonl": JsonlWriter, "parquet": ParquetWriter}
"""Format name -> writer."""

EXTENSIONS: dict[str, str] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
"""File extension -> the format it implies when none is given."""


@dataclass
class ExportResult:
    """What an export wrote."""

    path: str
    format: str
    trials: int = 0
    """Trials read."""
    rows: int = 0
    """Rows written: one per trial, or one per point with ``series``."""
    columns: list[str] = field(default_factory=list)
    widenings: int = 0
    """How many times the file was rewritten for a column (or type) that a later page brought."""


def resolve_format(path: str, format: str | None) -> str:
    """The format to write: ``format`` if given, else the one ``path``'s extension names.

    Raises:
        OutputError: The format is unknown, or none is given and the extension names none.
    """
    if format is None:
        ext = os.path.splitext(path)[1].lower()
        if ext not in EXTENSIONS:
            raise OutputError(f"cannot tell the format from {path!r}: give one of {', '.join(FORMATS)}")
        return EXTENSIONS[ext]
    if format not in FORMATS:
        raise OutputError(f"unknown export format {format!r}: use one of {', '.join(FORMATS)}")
    return format


def _metric_fields(metrics: bool | Sequence[str]) -> tuple[bool | list[str], list[str] | None]:
    """``metrics`` as :func:`trial_row` takes it, and as ``fetch_points`` names (``None``: all)."""
    if metrics is True or metrics is False:
        return metrics, None
    names = list(metrics)
    return names, names


def export(
    source: Any,
    path: str,
    *,
    format: str | None = None,
    query: dict[str, Any] | None = None,
    series: bool = False,
    metrics: bool | Sequence[str] = True,
    progress: Callable[[int], Any] | None = None,
    batch: int = PAGE,
) -> ExportResult:
    """Export the trials matching ``query`` (or their points) to ``path``.

    Args:
        source: A Protocol or a Store.
        path: The file to write (replaced at the end if it exists).
        format: ``csv``, ``jsonl`` or ``parquet`` (default: from ``path``'s extension).
        query: A MongoDB-style filter on trials (default: all).
        series: Write metric points in long form (``trial_uid, name, step, value``) instead of
            one row per trial.
        metrics: ``True`` for every metric, ``False`` for none (trial rows without summaries),
            or the names of the metrics to write.
        progress: Called with the number of trials of each page once it is written.
        batch: Trials per page.

    Returns:
        What was written.

    Raises:
        OutputError: The format is unknown.
        ExtraNotInstalledError: Parquet without pyarrow (the ``analysis`` extra).
        QueryError: The query is malformed.
    """
    fmt = resolve_format(path, format)
    store = store_of(source)
    keep, names = _metric_fields(metrics)
    writer = FORMATS[fmt](path, SERIES_SHAPE if series else TRIAL_SHAPE)
    result = ExportResult(path=path, format=fmt)
    try:
        for page in trial_pages(store, query, batch=batch, fields=ROW_FIELDS):
            if series:
                for rows in series_batches(store, page, names):
                    writer.write(rows)
            else:
                writer.write([trial_row(d, keep) for d in page])
            result.trials += len(page)
            if progress is not None:
                progress(len(page))
        writer.close()
        os.replace(writer.path, path)
    except BaseException:
        writer.abort()
        raise
    result.rows, result.columns, result.widenings = writer.rows, writer.columns, writer.widenings
    return result
