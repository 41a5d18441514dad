"""Seeing results: flat trial rows, exports (CSV, JSON lines, Parquet) and curve plots.

Used by the ``ls``, ``best``, ``tree``, ``export`` and ``plot`` subcommands and by
:mod:`track_backends.analysis`. pandas, pyarrow and matplotlib are imported only when a Parquet
export, a frame or a plot asks for them (see :mod:`~track_backends.see.extras`).
"""

from __future__ import annotations

from .columns import FIXED, SERIES_COLUMNS, STATS, field_path, order_columns, parse_sort, trial_row
from .export import EXTENSIONS, FORMATS, ExportResult, export, resolve_format
from .extras import ExtraNotInstalledError, OutputError, require
from .plot import PLOT_FORMATS, plot_curves
from .select import group_filter, series_batches, status_filter, store_of, trial_filter, trial_pages

__all__ = [
    "EXTENSIONS",
    "FIXED",
    "FORMATS",
    "PLOT_FORMATS",
    "SERIES_COLUMNS",
    "STATS",
    "ExportResult",
    "ExtraNotInstalledError",
    "OutputError",
    "export",
    "field_path",
    "group_filter",
    "order_columns",
    "parse_sort",
    "plot_curves",
    "require",
    "resolve_format",
    "series_batches",
    "status_filter",
    "store_of",
    "trial_filter",
    "trial_pages",
    "trial_row",
]
