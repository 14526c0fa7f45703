"""Reading the SCI evidence CSV back (docs/formats.md §4) for ``greenai report``: parsed
rows, filters and sums. Pure reading and arithmetic; the plots and the Markdown are elsewhere.

A file that is missing, starts with another header, or holds a cell that is not what its
column promises is refused with an ``InputError`` naming file, line and column. A line with
the wrong number of fields is a torn row (its writer was killed mid-row) and is skipped, as
§4 tells readers to, and counted.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from greenai.core.errors import InputError
from greenai.core.time import parse_time
from greenai.evidence.sci import SCI_COLUMNS, SCI_COLUMNS_V1

logger = logging.getLogger(__name__)

SIGNALS = ("average", "marginal")


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """One run's row; ``None`` where the cell is empty (unknown, never 0)."""

    line: int
    run_id: str
    job_id: str
    job_name: str
    submitted_at: datetime
    started_at: datetime
    finished_at: datetime
    duration_s: float
    provider: str
    region: str
    signal: str
    meter: str
    gpu_count: int
    forecast_intensity: float | None
    actual_intensity: float | None
    counterfactual_intensity: float | None
    energy_kwh: float
    operational_g: float | None
    embodied_g: float
    counterfactual_g: float | None
    saved_g: float | None
    fallback: str

    @property
    def source(self) -> str:
        return f"{self.provider}:{self.region}" if self.region else self.provider

    @property
    def estimated(self) -> bool:
        """Energy (or a part of it) from the estimate meter's model, not a measurement."""
        return "estimate" in self.meter.split("+")


@dataclass(frozen=True, slots=True)
class Evidence:
    """The rows of one file, and how many torn lines were skipped."""

    path: Path
    rows: tuple[EvidenceRow, ...]
    torn_lines: tuple[int, ...] = ()


def read_evidence(path: Path) -> Evidence:
    """Every row of the SCI CSV at ``path``, parsed; ``InputError`` names what is wrong."""
    cells, torn = read_cells(path)
    rows = tuple(_row(path, number, row) for number, row in cells)
    return Evidence(path, rows, torn)


def read_cells(path: Path) -> tuple[list[tuple[int, dict[str, str]]], tuple[int, ...]]:
    """``([(line, cells by column), ...], torn line numbers)`` of the SCI CSV at ``path``,
    in either layout (a file begun before the provenance columns lacks them)."""
    if not path.is_file():
        raise InputError(str(path), None, "no such evidence file")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        lines = csv.reader(handle)
        columns = evidence_layout(path, next(lines, None))
        rows, torn = [], []
        for number, cells in enumerate(lines, start=2):
            if len(cells) != len(columns):
                logger.warning(
                    "%s:%d: %d fields, not %d; skipped as torn",
                    path,
                    number,
                    len(cells),
                    len(columns),
                )
                torn.append(number)
                continue
            rows.append((number, dict(zip(columns, cells, strict=True))))
    return rows, tuple(torn)


def evidence_layout(path: Path, header: list[str] | None) -> tuple[str, ...]:
    """The columns of an evidence file with this ``header``: the current ones, or those of a
    file begun before the provenance columns; ``InputError`` for anything else."""
    if header is not None and tuple(header) in (SCI_COLUMNS, SCI_COLUMNS_V1):
        return tuple(header)
    raise InputError(str(path), 1, _header_problem(header))


def _header_problem(header: list[str] | None) -> str:
    if header is None:
        return "empty file: no header"
    missing = [c for c in SCI_COLUMNS if c not in header]
    extra = [c for c in header if c not in SCI_COLUMNS]
    if missing or extra:
        return f"header is not the SCI columns (missing {missing}, unexpected {extra})"
    return "header has the SCI columns in another order"


def _row(path: Path, line: int, cells: dict[str, str]) -> EvidenceRow:
    cell = _Cells(path, line, cells)
    signal = cells["signal"]
    if signal not in SIGNALS:
        raise InputError(str(path), line, f"signal: {signal!r} is not average or marginal")
    return EvidenceRow(
        line=line,
        run_id=cells["run_id"],
        job_id=cells["job_id"],
        job_name=cells["job_name"],
        submitted_at=cell.time("submitted_at"),
        started_at=cell.time("started_at"),
        finished_at=cell.time("finished_at"),
        duration_s=cell.number("duration_s"),
        provider=cells["provider"],
        region=cells["region"],
        signal=signal,
        meter=cells["meter"],
        gpu_count=int(cell.number("gpu_count")),
        forecast_intensity=cell.maybe("forecast_intensity"),
        actual_intensity=cell.maybe("actual_intensity"),
        counterfactual_intensity=cell.maybe("counterfactual_intensity"),
        energy_kwh=cell.number("energy_kwh"),
        operational_g=cell.maybe("operational_g"),
        embodied_g=cell.number("embodied_g"),
        counterfactual_g=cell.maybe("counterfactual_g"),
        saved_g=cell.maybe("saved_g"),
        fallback=cells["fallback"],
    )


@dataclass(frozen=True, slots=True)
class _Cells:
    path: Path
    line: int
    cells: dict[str, str]

    def _bad(self, column: str, why: str) -> InputError:
        return InputError(str(self.path), self.line, f"{column}: {why}")

    def maybe(self, column: str) -> float | None:
        text = self.cells[column]
        if text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            raise self._bad(column, f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise self._bad(column, f"{text!r} is not a finite number")
        return value

    def number(self, column: str) -> float:
        value = self.maybe(column)
        if value is None:
            raise self._bad(column, "empty, but this column is always known")
        return value

    def time(self, column: str) -> datetime:
        text = self.cells[column]
        try:
            return parse_time(text)
        except ValueError:
            raise self._bad(column, f"{text!r} is not an ISO-8601 time") from None


def select(
    rows: Iterable[EvidenceRow],
    since: datetime | None = None,
    job_ids: Collection[str] | None = None,
) -> list[EvidenceRow]:
    """Rows of runs that finished at or after ``since`` and belong to ``job_ids``."""
    return [
        row
        for row in rows
        if (since is None or row.finished_at >= since)
        and (job_ids is None or row.job_id in job_ids)
    ]


@dataclass(slots=True)
class Totals:
    """Sums over rows of one signal. Grams over rows where the cell is known; ``*_rows`` say
    how many were known, so an empty cell is never read as 0."""

    runs: int = 0
    energy_kwh: float = 0.0
    operational_g: float = 0.0
    operational_rows: int = 0
    embodied_g: float = 0.0
    counterfactual_g: float = 0.0
    saved_g: float = 0.0
    saved_rows: int = 0

    def add(self, row: EvidenceRow) -> None:
        self.runs += 1
        self.energy_kwh += row.energy_kwh
        self.embodied_g += row.embodied_g
        if row.operational_g is not None:
            self.operational_g += row.operational_g
            self.operational_rows += 1
        if row.saved_g is not None and row.counterfactual_g is not None:
            self.counterfactual_g += row.counterfactual_g
            self.saved_g += row.saved_g
            self.saved_rows += 1


def totals_by(rows: Iterable[EvidenceRow], *keys: str) -> dict[tuple[str, ...], Totals]:
    """Totals per distinct value of ``keys`` (row attributes), in first-seen order. Always
    group by ``signal`` too: average and marginal grams are never added together."""
    groups: dict[tuple[str, ...], Totals] = {}
    for row in rows:
        groups.setdefault(tuple(str(getattr(row, k)) for k in keys), Totals()).add(row)
    return groups


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rows say about how they were made, for FOOTPRINT.md."""

    meters: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    signals: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)
    estimated: int = 0
    no_operational: int = 0
    no_counterfactual: int = 0
    no_forecast: int = 0
    first_start: datetime | None = None
    last_finish: datetime | None = None


def facts_of(rows: list[EvidenceRow]) -> Facts:
    def count(values: Iterator[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        return dict(sorted(counts.items()))

    return Facts(
        meters=count(r.meter for r in rows),
        sources=count(r.source for r in rows if r.provider),
        signals=count(r.signal for r in rows),
        fallbacks=count(r.fallback for r in rows if r.fallback),
        estimated=sum(r.estimated for r in rows),
        no_operational=sum(r.operational_g is None for r in rows),
        no_counterfactual=sum(r.counterfactual_g is None for r in rows),
        no_forecast=sum(r.forecast_intensity is None for r in rows),
        first_start=min((r.started_at for r in rows), default=None),
        last_finish=max((r.finished_at for r in rows), default=None),
    )
