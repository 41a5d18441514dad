"""Incremental writers for exports: CSV (the csv module), JSON lines, Parquet (pyarrow).

Rows arrive a page at a time and are written at once, so memory holds one page. A CSV or
Parquet file has one header or schema, fixed by the first page; when a later page brings a column
the file does not have (or, in Parquet, a value the column's type cannot hold, such as a string in
a float column), the file written so far is *widened*: copied, a row group or a line at a time,
into a new file with the wider header or schema, and writing goes on there. Each widening costs one
pass over what was written; a sweep whose trials share their parameters and metrics never widens.

Parquet column types: text -> ``string``, integers -> ``int64``, other numbers -> ``float64``,
booleans -> ``bool``; a column holding several of these becomes ``float64`` (integers and floats)
or ``string`` (anything else, values written as JSON text); lists and dicts are JSON text. A
column that is empty on the first page starts as ``float64``, and the ``min``, ``max`` and ``last``
of metric summaries start as ``float64`` even when the first values are integers.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from .columns import FIXED, SERIES_COLUMNS, field_path, json_safe, order_columns
from .extras import OutputError, require

Row = dict[str, Any]


def _summary_number(column: str) -> bool:
    path = field_path(column)
    return path.startswith("metric_summary.") and path.rsplit(".", 1)[1] in ("min", "max", "last")


@dataclass(frozen=True)
class Shape:
    """What kind of rows a file holds: their column order and the types columns start with."""

    order: Callable[[Iterable[str]], list[str]]
    text: frozenset[str]
    """Columns that are always text (their type never has to widen from an empty first page)."""
    floats: Callable[[str], bool]
    """Columns that start as floats even when their first values are integers."""
    empty: dict[str, str] = field(default_factory=dict)
    """The columns (and kinds) of a file with no row."""

    def initial_kind(self, column: str, kind: str) -> str:
        """The kind a column starts with, given the kind of its values on the first page that has it."""
        if column in self.text:
            return "str"
        if kind == "null" or (kind == "int" and self.floats(column)):
            return "float"
        return kind


TRIAL_SHAPE = Shape(
    order=order_columns,
    text=frozenset({"uid", "project", "group", "status"}),
    floats=_summary_number,
    empty={c: ("float" if c.endswith("_time") else "str") for c in FIXED},
)


def _series_order(columns: Iterable[str]) -> list[str]:
    cols = set(columns)
    return [c for c in SERIES_COLUMNS if c in cols] + sorted(cols.difference(SERIES_COLUMNS))


SERIES_SHAPE = Shape(
    order=_series_order,
    text=frozenset({"trial_uid", "name"}),
    floats=lambda column: column == "value",
    empty={"trial_uid": "str", "name": "str", "step": "int", "value": "float"},
)


_KINDS: dict[type, str] = {type(None): "null", bool: "bool", int: "int", float: "float", str: "str"}


def kind_of(value: Any) -> str:
    """The kind of a value: ``null``, ``bool``, ``int``, ``float`` or ``str`` (lists and dicts are ``str``)."""
    return _KINDS.get(type(value), "str")


def _column_values(rows: list[Row]) -> dict[str, list[Any]]:
    """The rows as ``{column: [value of each row]}`` (``None`` where a row lacks the column)."""
    return {c: [r.get(c) for r in rows] for c in set().union(*rows)}


def _kind_of_types(types: set[type]) -> str:
    """The kind a column holding values of these Python types needs."""
    kind = "null"
    for t in types:
        kind = join_kinds(kind, _KINDS.get(t, "str"))
    return kind


def join_kinds(a: str, b: str) -> str:
    """The kind a column needs to hold values of kinds ``a`` and ``b``."""
    if a == b or b == "null":
        return a
    if a == "null":
        return b
    return "float" if {a, b} == {"int", "float"} else "str"


def text(value: Any) -> str | None:
    """A value as text: strings as they are, anything else as JSON (``None`` stays ``None``)."""
    if value is None or type(value) is str:
        return value
    return json.dumps(value, separators=(",", ":"))


def scratch(near: str) -> str:
    """A new empty file beside ``near`` (so the final rename stays on one file system), made with the umask's mode.

    Raises:
        OutputError: The directory does not exist or cannot be written.
    """
    directory, name = os.path.split(os.path.abspath(near))
    while True:
        path = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise OutputError(f"cannot write {near!r}: {e.strerror or e}") from e


class Writer:
    """Base of the writers: ``write(rows)`` per page, ``close()`` at the end, ``abort()`` on failure.

    Args:
        near: The final path; the writer writes to a temporary file beside it (:attr:`path`).
        shape: The rows' shape.
    """

    def __init__(self, near: str, shape: Shape) -> None:
        self.near = near
        self.shape = shape
        self.path = scratch(near)
        self.columns: list[str] = []
        self.rows = 0
        self.widenings = 0

    def write(self, rows: list[Row]) -> None:
        """Append rows, widening the file first when they need it."""
        if not rows:
            return
        if self._merge(rows):
            if self.rows:
                self._widen()
                self.widenings += 1
            else:
                self._start()
        self._append(rows)
        self.rows += len(rows)

    def close(self) -> None:
        """Finish the file (a file with no row still gets its header or schema)."""
        if not self.rows and not self.columns:
            self._empty()
            self._start()
        self._finish()

    def abort(self) -> None:
        """Close and delete the temporary file."""
        try:
            self._finish()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)

    def _merge(self, rows: list[Row]) -> bool:
        new = {k for r in rows for k in r}.difference(self.columns)
        if new:
            self.columns = self.shape.order([*self.columns, *new])
        return bool(new)

    def _empty(self) -> None:
        self.columns = list(self.shape.empty)

    def _start(self) -> None:
        """Open the file for the current columns (nothing was written yet)."""

    def _widen(self) -> None:
        """Rewrite what was written for the current (wider) columns, and go on writing there."""

    def _append(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the file (harmless when it was never opened or is closed already)."""


def csv_cell(value: Any) -> Any:
    """A value as the csv module should write it: ``None`` empty, booleans and containers as JSON."""
    t = type(value)
    if value is None:
        return ""
    if t is bool or t is list or t is dict:
        return json.dumps(value, separators=(",", ":"))
    return value


class CsvWriter(Writer):
    """CSV with a header line; floats are written exactly (``repr``), NaN as ``nan``, infinities as ``inf``."""

    def __init__(self, near: str, shape: Shape) -> None:
        super().__init__(near, shape)
        self._file: IO[str] | None = None
        self._csv: Any = None

    def _start(self) -> None:
        self._file = open(self.path, "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(self.columns)

    def _append(self, rows: list[Row]) -> None:
        cols = self.columns
        self._csv.writerows([csv_cell(r.get(c)) for c in cols] for r in rows)

    def _widen(self) -> None:
        self._finish()
        old = self.path
        try:
            self.path = scratch(self.near)
            with open(old, newline="", encoding="utf-8") as src:
                reader = csv.reader(src)
                header = next(reader)
                where = [header.index(c) if c in header else None for c in self.columns]
                self._start()
                self._csv.writerows([row[i] if i is not None else "" for i in where] for row in reader)
        finally:
            os.unlink(old)

    def _finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class JsonlWriter(Writer):
    """One JSON object per line, keys as the CSV's columns (missing values left out).

    The output is strict JSON: NaN and infinities are written as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``. Lines never need widening.
    """

    def __init__(self, near: str, shape: Shape) -> None:
        super().__init__(near, shape)
        self._file: IO[str] | None = open(self.path, "w", encoding="utf-8")

    def _merge(self, rows: list[Row]) -> bool:
        super()._merge(rows)
        return False

    def _append(self, rows: list[Row]) -> None:
        assert self._file is not None
        dumps = json.dumps
        self._file.writelines(dumps(json_safe(r), allow_nan=False) + "\n" for r in rows)

    def _finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


_ARROW_TYPES = {"bool": "bool_", "int": "int64", "float": "float64", "str": "string"}


class ParquetWriter(Writer):
    """Parquet through pyarrow's ``ParquetWriter``: one row group per page (see the module docstring for types).

    Raises:
        ExtraNotInstalledError: pyarrow is not installed (the ``analysis`` extra).
    """

    def __init__(self, near: str, shape: Shape) -> None:
        self.pa = require("pyarrow", "export to Parquet")
        self.pq = require("pyarrow.parquet", "export to Parquet")
        super().__init__(near, shape)
        self.kinds: dict[str, str] = {}
        self._writer: Any = None
        self.schema: Any = None
        self._values: dict[str, list[Any]] = {}
        """The page being written, by column (computed once for both its types and its arrays)."""

    def _merge(self, rows: list[Row]) -> bool:
        self._values = _column_values(rows)
        changed = False
        for c, values in self._values.items():
            k = _kind_of_types(set(map(type, values)))
            old = self.kinds.get(c)
            new = self.shape.initial_kind(c, k) if old is None else join_kinds(old, k)
            if new != old:
                self.kinds[c] = new
                changed = True
        if changed:
            self.columns = self.shape.order(self.kinds)
        return changed

    def _empty(self) -> None:
        self.kinds = dict(self.shape.empty)
        self.columns = list(self.shape.empty)

    def _start(self) -> None:
        pa = self.pa
        self.schema = pa.schema([(c, getattr(pa, _ARROW_TYPES[self.kinds[c]])()) for c in self.columns])
        self._writer = self.pq.ParquetWriter(self.path, self.schema)

    def _table(self, columns: dict[str, list[Any]], n: int) -> Any:
        arrays = []
        for c, typ in zip(self.columns, self.schema.types, strict=True):
            kind = self.kinds[c]
            values = columns.get(c) or [None] * n
            if kind == "str" and any(v is not None and type(v) is not str for v in values):
                values = [text(v) for v in values]
            elif kind == "float" and any(type(v) is int for v in values):
                values = [float(v) if type(v) is int else v for v in values]
            arrays.append(self.pa.array(values, type=typ))
        return self.pa.Table.from_arrays(arrays, schema=self.schema)

    def _append(self, rows: list[Row]) -> None:
        values, self._values = self._values, {}
        self._writer.write_table(self._table(values, len(rows)))

    def _widen(self) -> None:
        self._finish()
        old = self.path
        try:
            self.path = scratch(self.near)
            self._start()
            for batch in self.pq.ParquetFile(old).iter_batches(batch_size=10_000):
                self._writer.write_table(self._table(batch.to_pydict(), batch.num_rows))
        finally:
            os.unlink(old)

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
