"""``greenai audit``: recompute every evidence row from its recorded inputs (docs/formats.md §4a).

The arithmetic here is written again from the documented method, not imported from
``accounting.py``: an audit that called the code it audits would only prove the code agrees
with itself. Energy is a piecewise-linear cumulative timeline, intensity a step function on
the history's grid; their product is integrated exactly over the union of both functions'
breakpoints, each piece charged at the intensity of its midpoint.

A figure is off when it differs from its recomputation by more than the relative tolerance
(0.1% by default) and by more than its cell's rounding. Presence counts too: a cell that
holds a number the inputs cannot support, or is empty where they give one, is off.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from greenai.core.domain import EmbodiedFactors
from greenai.core.errors import InputError
from greenai.core.time import format_time
from greenai.evidence.inputs import History, RunInputs, inputs_path, parse_inputs
from greenai.evidence.report import read_cells

logger = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.001
SECONDS_PER_YEAR = 365.25 * 86400
PLACES = {
    "duration_s": 3, "delay_s": 3,
    "cpu_kwh": 9, "gpu_kwh": 9, "ram_kwh": 9, "energy_kwh": 9,
    "actual_intensity": 3, "counterfactual_intensity": 3,
    "operational_g": 6, "embodied_g": 6, "sci_g_per_unit": 6, "counterfactual_g": 6,
    "saved_g": 6,
}  # fmt: skip
Timeline = Sequence[tuple[datetime, float]]


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One cell that does not reproduce."""

    line: int
    run_id: str
    column: str
    cell: str
    recomputed: float | None
    recorded: str | None = None  # a cell copied from the inputs: what they hold

    @property
    def expected(self) -> str:
        if self.recorded is not None:
            return self.recorded
        return "empty" if self.recomputed is None else f"{self.recomputed:.9g}"

    def describe(self) -> str:
        expected = self.expected
        found = self.cell or "empty"
        where = f"line {self.line} (run {self.run_id})"
        return f"{where}: {self.column} is {found}, recomputed {expected}"


@dataclass(slots=True)
class AuditResult:
    """What an audit of one evidence file found."""

    evidence: Path
    inputs: Path
    rows: int = 0
    reproduced: int = 0
    without_inputs: list[tuple[int, str]] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)
    torn_lines: tuple[int, ...] = ()

    @property
    def off_rows(self) -> int:
        return len({d.line for d in self.discrepancies})

    def passed(self, *, strict: bool = False) -> bool:
        return not self.discrepancies and not (strict and self.without_inputs)

    def to_json(self) -> dict[str, object]:
        return {
            "evidence": str(self.evidence),
            "inputs": str(self.inputs),
            "rows": self.rows,
            "reproduced": self.reproduced,
            "off": self.off_rows,
            "without_inputs": [{"line": n, "run_id": r} for n, r in self.without_inputs],
            "torn_lines": list(self.torn_lines),
            "discrepancies": [
                {
                    "line": d.line,
                    "run_id": d.run_id,
                    "column": d.column,
                    "cell": d.cell,
                    "recomputed": d.recomputed if d.recorded is None else d.recorded,
                }
                for d in self.discrepancies
            ],
        }


def audit_file(
    evidence: Path, inputs: Path | None = None, *, tolerance: float = DEFAULT_TOLERANCE
) -> AuditResult:
    """Audit every row of ``evidence`` against ``inputs`` (default: the file beside it)."""
    inputs = inputs if inputs is not None else inputs_path(evidence)
    rows, torn = read_cells(evidence)
    recorded = read_inputs(inputs)
    result = AuditResult(evidence, inputs, rows=len(rows), torn_lines=torn)
    for line, cells in rows:
        run = recorded.get(cells["run_id"])
        if run is None:
            result.without_inputs.append((line, cells["run_id"]))
            continue
        found = list(audit_row(line, cells, run, tolerance))
        result.discrepancies += found
        result.reproduced += not found
    return result


def read_inputs(path: Path) -> dict[str, RunInputs]:
    """The inputs of each run in ``path`` (the first line of a ``run_id`` wins); none when
    the file does not exist. A torn last line is skipped; any other bad line is an error."""
    found: dict[str, RunInputs] = {}
    if not path.is_file():
        return found
    with path.open(encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            run = parse_inputs(json.loads(text))
        except json.JSONDecodeError as exc:
            if number == len(lines):  # no newline after it: a writer killed mid-line
                logger.warning("%s:%d: torn last line skipped", path, number)
                continue
            raise InputError(str(path), number, f"not JSON: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(str(path), number, f"not an inputs record: {exc!r}") from exc
        found.setdefault(run.run_id, run)
    return found


def audit_row(
    line: int, cells: dict[str, str], run: RunInputs, tolerance: float = DEFAULT_TOLERANCE
) -> Iterator[Discrepancy]:
    """Every cell of the row that its inputs do not reproduce."""
    for column, value in recompute(run).items():
        cell = cells.get(column, "")
        if not _agrees(cell, value, PLACES[column], tolerance):
            yield Discrepancy(line, cells["run_id"], column, cell, value)
    for part in ("cpu", "gpu", "ram"):
        cell, value = cells[f"{part}_kwh"], run.parts[part]
        if cell and not _agrees(cell, value, PLACES[f"{part}_kwh"], tolerance):
            yield Discrepancy(line, cells["run_id"], f"{part}_kwh", cell, value)
    for column, text in _copied(run).items():
        if cells.get(column, "") != text:
            yield Discrepancy(line, cells["run_id"], column, cells.get(column, ""), None, text)


def _copied(run: RunInputs) -> dict[str, str]:
    """Cells the row copies from its inputs as they are."""
    return {
        "submitted_at": format_time(run.submitted_at) or "",
        "started_at": format_time(run.started_at) or "",
        "finished_at": format_time(run.finished_at) or "",
        "meter": run.reading.meter,
        "gpu_count": str(run.reading.gpu_count),
        "units": f"{run.units:g}",
    }


def recompute(run: RunInputs) -> dict[str, float | None]:
    """The row's derived figures from its inputs alone."""
    parts = list(run.parts.values())
    energy = None if any(p is None for p in parts) else math.fsum(p or 0.0 for p in parts)
    duration = (run.finished_at - run.started_at).total_seconds()
    operational = actual = cf_intensity = cf_grams = None
    if energy is not None and run.history is not None:
        timeline = _timeline(run, energy)
        charged = _charge(timeline, run.history)
        if charged is not None:
            operational, actual = charged
        if run.history.start - run.submitted_at <= run.history.step:
            shift = run.submitted_at - run.reading.started_at
            shifted = _charge([(at + shift, kwh) for at, kwh in timeline], run.history)
            if shifted is not None:
                cf_grams, cf_intensity = shifted
    embodied = _embodied(run.embodied, run.reading.gpu_count, duration) if run.embodied else None
    sci = None
    if operational is not None and embodied is not None:
        sci = (operational + embodied) / run.units
    saved = None if cf_grams is None or operational is None else cf_grams - operational
    return {
        "duration_s": duration,
        "delay_s": (run.started_at - run.submitted_at).total_seconds(),
        "energy_kwh": energy,
        "actual_intensity": actual,
        "operational_g": operational,
        "embodied_g": embodied,
        "sci_g_per_unit": sci,
        "counterfactual_intensity": cf_intensity,
        "counterfactual_g": cf_grams,
        "saved_g": saved,
    }


def _timeline(run: RunInputs, energy: float) -> list[tuple[datetime, float]]:
    """The cumulative energy timeline scaled to the total, or an even spread over the
    meter's window when there is no usable shape (formats.md §4, Accounting)."""
    samples = sorted(run.reading.samples)
    if len(samples) >= 2 and samples[-1][1] > samples[0][1]:
        first, last = samples[0][1], samples[-1][1]
        return [(at, energy * (kwh - first) / (last - first)) for at, kwh in samples]
    return [(run.reading.started_at, 0.0), (run.reading.finished_at, energy)]


def _charge(timeline: Timeline, history: History) -> tuple[float, float] | None:
    """``(grams, energy-weighted intensity)``; ``None`` when the span misses the history."""
    start, end = timeline[0][0], timeline[-1][0]
    history_end = history.start + history.step * len(history.values)
    if end < history.start or start >= history_end:
        return None
    times = {at for at, _ in timeline}
    first = max(0, math.ceil((start - history.start) / history.step))
    last = min(len(history.values), math.floor((end - history.start) / history.step))
    times.update(history.start + k * history.step for k in range(first, last + 1))
    points = [at for at in sorted(times) if start <= at <= end]
    stamps = [at for at, _ in timeline]
    grams = weighted = 0.0
    for a, b in pairwise(points):
        intensity = _intensity(history, a + (b - a) / 2)
        energy_ab = _energy_at(timeline, stamps, b) - _energy_at(timeline, stamps, a)
        grams += energy_ab * intensity
        weighted += (b - a).total_seconds() * intensity
    energy = timeline[-1][1] - timeline[0][1]
    if energy > 0:
        return grams, grams / energy
    seconds = (end - start).total_seconds()
    return 0.0, weighted / seconds if seconds > 0 else _intensity(history, start)


def _intensity(history: History, at: datetime) -> float:
    """The history's value at ``at``; its first or last value outside it."""
    index = math.floor((at - history.start) / history.step)
    return history.values[min(max(index, 0), len(history.values) - 1)]


def _energy_at(timeline: Timeline, stamps: Sequence[datetime], at: datetime) -> float:
    """Linear interpolation of the cumulative energy, flat outside the timeline."""
    if at <= stamps[0]:
        return timeline[0][1]
    if at >= stamps[-1]:
        return timeline[-1][1]
    i = bisect.bisect_left(stamps, at)
    (t0, e0), (t1, e1) = timeline[i - 1], timeline[i]
    span = (t1 - t0).total_seconds()
    return e1 if span <= 0 else e0 + (e1 - e0) * (at - t0).total_seconds() / span


def _embodied(factors: EmbodiedFactors, gpu_count: int, duration_s: float) -> float:
    """SCI ``M`` = TE x TiR/EL x RR/ToR, in grams."""
    host_share = max(gpu_count, 1) / factors.host_gpus
    kg = factors.kg_per_gpu * gpu_count + factors.kg_host * host_share
    return kg * 1000.0 * max(duration_s, 0.0) / (factors.lifetime_years * SECONDS_PER_YEAR)


def _agrees(cell: str, value: float | None, places: int, tolerance: float) -> bool:
    if not cell or value is None or not math.isfinite(value):
        return not cell and (value is None or not math.isfinite(value))
    try:
        written = float(cell)
    except ValueError:
        return False
    rounding = 0.5 * 10.0**-places * 1.0001
    return abs(written - value) <= max(tolerance * abs(value), rounding)
