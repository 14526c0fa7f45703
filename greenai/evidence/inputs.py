"""What each evidence row was computed from, kept beside the CSV so it can be recomputed.

For every row appended to ``evidence.csv`` one JSON line goes to ``evidence.inputs.jsonl``
(docs/formats.md §4a) first: the meter's reading (parts, timeline, notes), the intensity
history the row was charged with (grid, values, source, signal) and the embodied factors.
``greenai audit`` recomputes the row from that line alone, so a change of settings, a
provider that no longer serves old data, or an edited cell cannot go unnoticed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from greenai.core.domain import EmbodiedFactors, EnergyReading, Forecast, RunRecord, Signal
from greenai.core.time import format_time, parse_time
from greenai.meters.readings import reading_from_json, reading_to_json

INPUTS_VERSION = 1
PARTS = ("cpu", "gpu", "ram")
INPUTS_KEY = "audit_inputs"  # where a stored evidence entry keeps its inputs beside the cells


def inputs_path(evidence_path: Path) -> Path:
    """``evidence.csv`` -> ``evidence.inputs.jsonl``, beside it."""
    return evidence_path.with_name(evidence_path.stem + ".inputs.jsonl")


def run_inputs(record: RunRecord) -> dict[str, Any]:
    """The JSON object an audit needs to recompute ``record``'s row."""
    return {
        "version": INPUTS_VERSION,
        "run_id": record.run_id,
        "submitted_at": format_time(record.submitted_at),
        "started_at": format_time(record.started_at),
        "finished_at": format_time(record.finished_at),
        "units": record.units,
        "reading": reading_to_json(record.energy),
        "history": None if record.history is None else _history_json(record.history),
        "embodied": None if record.embodied is None else _factors_json(record.embodied),
    }


def encode_inputs(inputs: dict[str, Any]) -> str:
    """One JSON line, never a bare NaN (an unmeasured part is ``null``)."""
    return json.dumps(inputs, ensure_ascii=False, allow_nan=False) + "\n"


@dataclass(frozen=True, slots=True)
class History:
    """A recorded intensity history: ``values[i]`` covers ``start + i*step``."""

    start: datetime
    step: timedelta
    values: tuple[float, ...]
    source: str
    signal: str


@dataclass(frozen=True, slots=True)
class RunInputs:
    """One parsed inputs line."""

    run_id: str
    submitted_at: datetime
    started_at: datetime
    finished_at: datetime
    units: float
    reading: EnergyReading
    history: History | None
    embodied: EmbodiedFactors | None

    @property
    def parts(self) -> dict[str, float | None]:
        """``cpu``, ``gpu``, ``ram`` kWh; ``None`` where nothing measured the part."""
        return {part: _known(getattr(self.reading, f"{part}_kwh")) for part in PARTS}


def parse_inputs(data: Any) -> RunInputs:
    """``run_inputs``'s object back; KeyError/TypeError/ValueError on anything else."""
    history = data["history"]
    embodied = data["embodied"]
    return RunInputs(
        run_id=str(data["run_id"]),
        submitted_at=parse_time(data["submitted_at"]),
        started_at=parse_time(data["started_at"]),
        finished_at=parse_time(data["finished_at"]),
        units=float(data["units"]),
        reading=reading_from_json(data["reading"]),
        history=None if history is None else _parse_history(history),
        embodied=None if embodied is None else EmbodiedFactors(**embodied),
    )


def _history_json(history: Forecast) -> dict[str, Any]:
    return {
        "source": history.source,
        "region": history.region,
        "signal": history.signal.value,
        "start": format_time(history.start),
        "step_s": history.step.total_seconds(),
        "values": list(history.values),
        "static": history.static,
        "forecast_only": history.forecast_only,
    }


def _factors_json(factors: EmbodiedFactors) -> dict[str, Any]:
    return {
        "kg_per_gpu": factors.kg_per_gpu,
        "kg_host": factors.kg_host,
        "host_gpus": factors.host_gpus,
        "lifetime_years": factors.lifetime_years,
    }


def _parse_history(data: Any) -> History:
    return History(
        start=parse_time(data["start"]),
        step=timedelta(seconds=float(data["step_s"])),
        values=tuple(float(v) for v in data["values"]),
        source=str(data["source"]),
        signal=Signal(data["signal"]).value,
    )


def _known(value: float) -> float | None:
    return value if math.isfinite(value) else None
