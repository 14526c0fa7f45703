"""The SCI evidence CSV (docs/formats.md §4): one row per finished run, append-only.

The header is written once, when the file is new or empty; rows are appended under a file
lock so concurrent writers never interleave. Numbers are fixed-point with enough places for
a one-second run (kWh to 1e-9, grams to 1e-6) and trailing zeros trimmed; unknown values
(no intensity signal, no counterfactual) are empty cells, never 0.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping
from pathlib import Path

from greenai.core.domain import RunRecord
from greenai.core.time import format_time
from greenai.evidence.files import append_locked

logger = logging.getLogger(__name__)

SCI_COLUMNS: tuple[str, ...] = (
    "run_id", "job_id", "job_name", "command", "host", "submitted_at", "started_at",
    "finished_at", "duration_s", "exit_code",
    "policy", "decision", "delay_s", "provider", "region", "signal", "forecast_intensity",
    "actual_intensity",
    "cpu_kwh", "gpu_kwh", "ram_kwh", "energy_kwh", "meter", "gpu_model", "gpu_count",
    "operational_g", "embodied_g", "functional_unit", "units", "sci_g_per_unit",
    "counterfactual_intensity", "counterfactual_g", "saved_g", "fallback",
)  # fmt: skip

KWH_PLACES = 9
GRAM_PLACES = 6
INTENSITY_PLACES = 3
SECOND_PLACES = 3


def fixed(value: float | None, places: int) -> str:
    """``value`` to ``places`` decimals, trailing zeros trimmed; ``""`` when unknown."""
    if value is None or not math.isfinite(value):
        return ""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def saved_grams(record: RunRecord) -> float | None:
    """``counterfactual_g - operational_g`` (negative when waiting made it worse)."""
    if record.counterfactual_g is None or not math.isfinite(record.operational_g):
        return None
    return record.counterfactual_g - record.operational_g


def sci_per_unit(record: RunRecord) -> float | None:
    """SCI = (O + M) / R; unknown when the operational emissions are."""
    if not math.isfinite(record.operational_g):
        return None
    return (record.operational_g + record.embodied_g) / record.units


def sci_row(record: RunRecord) -> dict[str, str]:
    """The record as the CSV's cells, keyed by ``SCI_COLUMNS``."""
    energy = record.energy
    grams = {
        "operational_g": record.operational_g,
        "embodied_g": record.embodied_g,
        "sci_g_per_unit": sci_per_unit(record),
        "counterfactual_g": record.counterfactual_g,
        "saved_g": saved_grams(record),
    }
    kwh = {
        "cpu_kwh": energy.cpu_kwh,
        "gpu_kwh": energy.gpu_kwh,
        "ram_kwh": energy.ram_kwh,
        "energy_kwh": energy.energy_kwh,
    }
    intensities = {
        "forecast_intensity": record.forecast_intensity,
        "actual_intensity": record.actual_intensity,
        "counterfactual_intensity": record.counterfactual_intensity,
    }
    row = {
        "run_id": record.run_id,
        "job_id": record.job_id,
        "job_name": record.job_name,
        "command": record.command,
        "host": record.host,
        "submitted_at": format_time(record.submitted_at) or "",
        "started_at": format_time(record.started_at) or "",
        "finished_at": format_time(record.finished_at) or "",
        "duration_s": fixed(record.duration_s, SECOND_PLACES),
        "exit_code": "" if record.exit_code is None else str(record.exit_code),
        "policy": record.policy,
        "decision": record.decision,
        "delay_s": fixed(record.delay_s, SECOND_PLACES),
        "provider": record.provider,
        "region": record.region,
        "signal": str(record.signal),
        "meter": energy.meter,
        "gpu_model": energy.gpu_model,
        "gpu_count": str(energy.gpu_count),
        "functional_unit": record.functional_unit,
        "units": f"{record.units:g}",
        "fallback": record.fallback or "",
        **{name: fixed(value, GRAM_PLACES) for name, value in grams.items()},
        **{name: fixed(value, KWH_PLACES) for name, value in kwh.items()},
        **{name: fixed(value, INTENSITY_PLACES) for name, value in intensities.items()},
    }
    return {column: row[column] for column in SCI_COLUMNS}


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def append_run(path: Path, record: RunRecord) -> None:
    """Append the run's row to the SCI CSV at ``path`` (header first if the file is new)."""
    append_row(path, sci_row(record))


def append_row(path: Path, row: Mapping[str, str], *, unless_present: bool = False) -> bool:
    """Append one row of cells keyed by ``SCI_COLUMNS``; with ``unless_present``, only if no
    row of that ``run_id`` is in the file yet (a daemon finishing a run it may already have
    written before a crash). Returns whether it appended."""
    if unless_present and row["run_id"] in run_ids(path):
        logger.info("evidence: run %s is already in %s", row["run_id"], path)
        return False
    line = _csv_line([row[column] for column in SCI_COLUMNS])
    append_locked(Path(path), line, header=_csv_line(list(SCI_COLUMNS)), sync=True)
    logger.info("evidence: run %s appended to %s", row["run_id"], path)
    return True


def run_ids(path: Path) -> set[str]:
    """The ``run_id`` of every row in the SCI CSV at ``path`` (none when it does not exist)."""
    if not Path(path).is_file():
        return set()
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return {row["run_id"] for row in csv.DictReader(handle) if row.get("run_id")}
