"""Printing rows for the command line: an aligned table, CSV or JSON, from the same records."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import IO, Any

from .columns import json_safe

OUTPUT_FORMATS = ("table", "csv", "json")
"""The ``--format`` choices of ``ls``, ``best`` and ``tree``."""


def param_summary(params: Any, width: int = 60) -> str:
    """``k=v, ...`` with values as compact JSON, cut to ``width`` characters."""
    if not isinstance(params, dict):
        return repr(params)
    text = ", ".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 3] + "..."


def table_cell(value: Any) -> str:
    """A value in a table: ``-`` for none, floats to 6 significant digits, dicts as ``k=v`` summaries."""
    if value is None:
        return "-"
    if type(value) is float:
        return f"{value:.6g}"
    if isinstance(value, dict):
        return param_summary(value)
    if isinstance(value, (list, bool)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def csv_value(value: Any) -> Any:
    """A value in CSV: empty for none, booleans, lists and dicts as compact JSON, floats exact."""
    if value is None:
        return ""
    if isinstance(value, (bool, list, dict)):
        return json.dumps(json_safe(value), separators=(",", ":"))
    return value


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]], out: IO[str] | None = None) -> None:
    """Print left-aligned columns separated by two spaces (trailing blanks stripped)."""
    out = out or sys.stdout
    widths = [max(len(x) for x in col) for col in zip(columns, *rows, strict=True)]
    for cells in [list(columns), *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip(), file=out)


def emit(fmt: str, columns: Sequence[str], records: Sequence[dict[str, Any]], out: IO[str] | None = None) -> None:
    """Print records as a table, CSV (header first) or a JSON array of objects (strict JSON).

    Args:
        fmt: ``table``, ``csv`` or ``json``.
        columns: The columns, in order; a record's missing column is empty.
        records: ``{column: value}`` with the stored values.
        out: Where to print (default: stdout).
    """
    out = out or sys.stdout
    if fmt == "json":
        objs = [{c: json_safe(r.get(c)) for c in columns} for r in records]
        print(json.dumps(objs, indent=2, allow_nan=False), file=out)
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([csv_value(r.get(c)) for c in columns] for r in records)
    else:
        print_table(columns, [[table_cell(r.get(c)) for c in columns] for r in records], out)


def more_line(shown: int, total: int) -> str | None:
    """The line that says how many matching trials a ``--limit`` left out, or ``None`` when none was."""
    if total <= shown:
        return None
    return f"... {total - shown} more (of {total}); raise --limit to see them"
