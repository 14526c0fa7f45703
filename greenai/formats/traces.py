"""Intensity traces (docs/formats.md §1): a regular grid of actual values, plus the forecasts
issued at each step when the file carries ``f1..fK`` columns.

Two layouts are read: greenai's own ``timestamp,intensity[,f1..fK]`` and the hourly export of
the Electricity Maps data portal (recognised by its ``Datetime (UTC)`` header; the ``direct``
intensity column by default). A trace may say what its values are: greenai's layout by naming
its value column ``average_intensity`` or ``marginal_intensity`` (``Trace.signal``); an
Electricity Maps export is always a grid average. ``intensity`` leaves it unsaid. Every defect
is an ``InputError`` naming file, line and problem: a trace is evidence, so a gap is never
filled silently.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from greenai.core.errors import InputError
from greenai.core.time import parse_time
from greenai.formats.electricitymaps import EXPORT_TIME, SIGNAL, export_column

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Trace:
    """A loaded trace. ``actual[i]`` holds on ``[timestamp(i), timestamp(i) + step)``;
    ``forecasts[i, k-1]`` is the value issued at row ``i`` for the step starting at row ``i+k``
    (``None`` when the file has no ``fk`` columns). ``signal`` is what the file says its
    values are (``average``, ``marginal``), ``None`` when it does not say."""

    name: str
    path: str
    start: datetime
    step: timedelta
    actual: FloatArray
    forecasts: FloatArray | None = None
    column: str = "intensity"
    signal: str | None = None  # "average" or "marginal" when the file says; None: unsaid

    def __len__(self) -> int:
        return int(self.actual.size)

    @property
    def step_s(self) -> float:
        return self.step.total_seconds()

    @property
    def end(self) -> datetime:
        """End of the last step (exclusive)."""
        return self.start + self.step * len(self)

    @property
    def horizon_steps(self) -> int:
        """How many steps ahead the recorded forecasts reach (0 without ``fk`` columns)."""
        return 0 if self.forecasts is None else int(self.forecasts.shape[1])

    def timestamp(self, i: int) -> datetime:
        return self.start + self.step * i

    def index_at(self, at: datetime) -> int:
        """Index of the row holding ``at``; ``ValueError`` outside the trace."""
        if not self.start <= at < self.end:
            raise ValueError(f"{at.isoformat()} is outside trace {self.name}")
        return int((at - self.start) // self.step)

    def seconds(self, at: datetime) -> float:
        """``at`` as seconds from the start of the trace (the simulator's time axis)."""
        return (at - self.start).total_seconds()


def load_trace(path: str | Path, column: str = "direct") -> Trace:
    """Read a trace file. ``column`` picks the Electricity Maps intensity (``direct`` or
    ``LCA``); it is ignored for greenai's own layout."""
    file = Path(path)
    where = str(file)
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            rows = enumerate(csv.reader(handle), start=1)
            header = next(rows, None)
            if header is None:
                raise InputError(where, 1, "empty file: expected a header line")
            time_col, value_cols, used, signal = _columns(where, header[1], column)
            times, table = _read_body(where, rows, time_col, value_cols)
    except OSError as exc:
        raise InputError(where, None, f"cannot read trace: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(where, None, "not UTF-8 text") from exc
    start, step = _check_regular(where, times)
    forecasts = table[:, 1:] if table.shape[1] > 1 else None
    return Trace(file.name, where, start, step, table[:, 0].copy(), forecasts, used, signal)


_VALUE_COLUMNS = {
    "intensity": None,
    "average_intensity": "average",
    "marginal_intensity": "marginal",
}


def _columns(where: str, header: list[str], column: str) -> tuple[int, list[int], str, str | None]:
    """Which columns hold the time and the values (actual first, then f1..fK), the value
    column's name, and the signal the header states (``None``: unsaid)."""
    names = [name.strip() for name in header]
    if names and names[0] == EXPORT_TIME:
        wanted = export_column(column)  # the API's factor names and the export's agree here
        if wanted not in names:
            raise InputError(where, 1, f"Electricity Maps export without column {wanted!r}")
        return 0, [names.index(wanted)], column, SIGNAL  # a consumption-mix average
    if names[:1] != ["timestamp"] or len(names) < 2 or names[1] not in _VALUE_COLUMNS:
        raise InputError(
            where, 1, f"header must start with 'timestamp,intensity' (got {','.join(names)!r})"
        )
    extra = names[2:]
    expected = [f"f{k}" for k in range(1, len(extra) + 1)]
    if extra != expected:
        raise InputError(where, 1, f"forecast columns must be f1..f{len(extra)} in order")
    return 0, list(range(1, len(names))), names[1], _VALUE_COLUMNS[names[1]]


def _read_body(
    where: str, rows: Iterator[tuple[int, list[str]]], time_col: int, value_cols: list[int]
) -> tuple[list[datetime], FloatArray]:
    times: list[datetime] = []
    values: list[list[float]] = []
    width = max(value_cols) + 1
    blank_at: int | None = None
    for number, row in rows:
        if not any(cell.strip() for cell in row):
            blank_at = blank_at or number
            continue
        if blank_at is not None:
            raise InputError(where, blank_at, "empty line inside the trace")
        if len(row) < width:
            raise InputError(where, number, f"expected at least {width} columns, got {len(row)}")
        times.append(_parse_stamp(where, number, row[time_col]))
        values.append([_parse_value(where, number, row[c], c) for c in value_cols])
    if not times:
        raise InputError(where, 2, "no data rows")
    return times, np.asarray(values, dtype=np.float64).reshape(len(times), len(value_cols))


def _parse_stamp(where: str, line: int, text: str) -> datetime:
    if not text.strip():
        raise InputError(where, line, "empty timestamp")
    try:
        return parse_time(text)
    except ValueError as exc:
        raise InputError(where, line, f"timestamp {text!r} is not ISO-8601") from exc


def _parse_value(where: str, line: int, text: str, col: int) -> float:
    what = "intensity" if col <= 1 else f"column {col + 1}"
    if not text.strip():
        raise InputError(where, line, f"empty {what}")
    try:
        value = float(text)
    except ValueError as exc:
        raise InputError(where, line, f"{what} {text!r} is not a number") from exc
    if not math.isfinite(value) or value < 0:
        raise InputError(where, line, f"{what} {text!r} must be finite and non-negative")
    return value


def _check_regular(where: str, times: list[datetime]) -> tuple[datetime, timedelta]:
    """The grid's start and step; any gap, duplicate, disorder or change of step is an error.
    Line numbers count the header as line 1, so data row ``i`` is line ``i + 2``."""
    if len(times) < 2:
        raise InputError(where, 2, "a trace needs at least two rows to show its step")
    step = times[1] - times[0]
    if step <= timedelta(0):
        what = (
            "duplicate timestamp" if step == timedelta(0) else "timestamp before the previous row"
        )
        raise InputError(where, 3, f"{what}: {times[1].isoformat()}")
    for i in range(1, len(times)):
        delta = times[i] - times[i - 1]
        if delta == step:
            continue
        line = i + 2
        stamp = times[i].isoformat()
        if delta == timedelta(0):
            raise InputError(where, line, f"duplicate timestamp {stamp}")
        if delta < timedelta(0):
            raise InputError(where, line, f"timestamp {stamp} is before the previous row")
        if delta > step and delta % step == timedelta(0):
            missing = delta // step - 1
            raise InputError(where, line, f"gap: {missing} step(s) missing before {stamp}")
        raise InputError(where, line, f"irregular step {delta} (expected {step}) at {stamp}")
    return times[0], step
