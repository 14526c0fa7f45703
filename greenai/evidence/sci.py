"""The SCI evidence CSV (docs/formats.md §4): one row per finished run, append-only.

The header is written once, when the file is new or empty; rows are appended under a file
lock so concurrent writers never interleave. Numbers are fixed-point with enough places for
a one-second run (kWh to 1e-9, grams to 1e-6) and trailing zeros trimmed; unknown values
(no intensity signal, no counterfactual, a part nobody measured) are empty cells, never 0.

Each row's inputs go to ``evidence.inputs.jsonl`` beside it first (``greenai.evidence.inputs``)
so ``greenai audit`` can recompute it. A file begun before the provenance columns
(``SCI_COLUMNS_V1``) keeps its layout: its rows are appended without them (warned once),
their notes and methods still in the inputs file.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from greenai.core.domain import RunRecord
from greenai.core.time import format_time
from greenai.evidence.files import append_locked
from greenai.evidence.inputs import INPUTS_KEY, encode_inputs, inputs_path, run_inputs
from greenai.evidence.provenance import energy_methods, estimated_columns, unmeasured_parts

logger = logging.getLogger(__name__)

SCI_COLUMNS_V1: tuple[str, ...] = (
    "run_id", "job_id", "job_name", "command", "host", "submitted_at", "started_at",
    "finished_at", "duration_s", "exit_code",
    "policy", "decision", "delay_s", "provider", "region", "signal", "forecast_intensity",
    "actual_intensity",
    "cpu_kwh", "gpu_kwh", "ram_kwh", "energy_kwh", "meter", "gpu_model", "gpu_count",
    "operational_g", "embodied_g", "functional_unit", "units", "sci_g_per_unit",
    "counterfactual_intensity", "counterfactual_g", "saved_g", "fallback",
)  # fmt: skip
PROVENANCE_COLUMNS = ("cpu_method", "gpu_method", "ram_method", "estimated", "notes")
SCI_COLUMNS: tuple[str, ...] = (*SCI_COLUMNS_V1, *PROVENANCE_COLUMNS)

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
    methods = energy_methods(energy)
    empty = unmeasured_parts(methods)
    grams = {
        "operational_g": record.operational_g,
        "embodied_g": record.embodied_g,
        "sci_g_per_unit": sci_per_unit(record),
        "counterfactual_g": record.counterfactual_g,
        "saved_g": saved_grams(record),
    }
    kwh = {
        "cpu_kwh": None if "cpu" in empty else energy.cpu_kwh,
        "gpu_kwh": None if "gpu" in empty else energy.gpu_kwh,
        "ram_kwh": None if "ram" in empty else energy.ram_kwh,
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
        **{f"{part}_method": method for part, method in methods.items()},
        "estimated": ";".join(estimated_columns(methods, record.history)),
        "notes": notes_cell(energy.notes),
        **{name: fixed(value, GRAM_PLACES) for name, value in grams.items()},
        **{name: fixed(value, KWH_PLACES) for name, value in kwh.items()},
        **{name: fixed(value, INTENSITY_PLACES) for name, value in intensities.items()},
    }
    return {column: row[column] for column in SCI_COLUMNS}


def notes_cell(notes: tuple[str, ...]) -> str:
    """The reading's notes, each once, ``; ``-joined on one line."""
    flat = (" ".join(note.split()) for note in notes)
    return "; ".join(dict.fromkeys(note for note in flat if note))


def evidence_entry(record: RunRecord) -> dict[str, Any]:
    """What the daemon stores until the row is safely appended: the cells, and under
    ``INPUTS_KEY`` the inputs line that goes beside them."""
    return {**sci_row(record), INPUTS_KEY: run_inputs(record)}


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


HEADER = _csv_line(list(SCI_COLUMNS))
HEADER_V1 = _csv_line(list(SCI_COLUMNS_V1))


def append_run(path: Path, record: RunRecord) -> None:
    """Append the run's row to the SCI CSV at ``path`` (header first if the file is new)."""
    append_row(path, evidence_entry(record))


def append_row(path: Path, row: Mapping[str, Any], *, unless_present: bool = False) -> bool:
    """Append one row of cells keyed by ``SCI_COLUMNS`` (its inputs, when it carries them,
    first to the inputs file); with ``unless_present``, only if no row of that ``run_id`` is
    in the file yet (a daemon finishing a run it may already have written before a crash).
    Returns whether it appended."""
    path = Path(path)
    if unless_present and row["run_id"] in run_ids(path):
        logger.info("evidence: run %s is already in %s", row["run_id"], path)
        return False
    inputs = row.get(INPUTS_KEY)
    if inputs is not None:
        append_locked(inputs_path(path), encode_inputs(inputs), sync=True)
    cells = [row.get(column, "") for column in SCI_COLUMNS]
    older = {HEADER_V1.rstrip("\n"): _csv_line(cells[: len(SCI_COLUMNS_V1)])}
    layout = append_locked(path, _csv_line(cells), header=HEADER, older=older, sync=True)
    if layout != HEADER.rstrip("\n") and path not in _warned_v1:
        _warned_v1.add(path)
        logger.warning(
            "%s was begun before the columns %s; its rows are appended without them (they are "
            "in %s). Start a new evidence file to have them in the CSV.",
            path,
            ", ".join(PROVENANCE_COLUMNS),
            inputs_path(path).name,
        )
    logger.info("evidence: run %s appended to %s", row["run_id"], path)
    return True


_warned_v1: set[Path] = set()


def run_ids(path: Path) -> set[str]:
    """The ``run_id`` of every row in the SCI CSV at ``path`` (none when it does not exist)."""
    if not Path(path).is_file():
        return set()
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return {row["run_id"] for row in csv.DictReader(handle) if row.get("run_id")}
