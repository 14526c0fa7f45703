"""``EnergyReading`` as JSON, so a job's supervisor can hand its reading to the daemon.

Times are ISO-8601 UTC with ``Z`` (``format_time``), the timeline is ``[[time, kWh], ...]``
and the notes a list; a part nobody measured (NaN) is ``null``. Floats go through JSON
exactly (Python writes the shortest text that reads back as the same float), so
``reading_from_json(reading_to_json(r)) == r`` for every measured reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from greenai.core.domain import NOT_MEASURED, EnergyReading
from greenai.core.time import format_time, parse_time


def reading_to_json(reading: EnergyReading) -> dict[str, Any]:
    return {
        "started_at": _time(reading.started_at),
        "finished_at": _time(reading.finished_at),
        "cpu_kwh": _kwh(reading.cpu_kwh),
        "gpu_kwh": _kwh(reading.gpu_kwh),
        "ram_kwh": _kwh(reading.ram_kwh),
        "meter": reading.meter,
        "gpu_model": reading.gpu_model,
        "gpu_count": reading.gpu_count,
        "notes": list(reading.notes),
        "samples": [[_time(at), kwh] for at, kwh in reading.samples],
    }


def reading_from_json(data: Mapping[str, Any]) -> EnergyReading:
    """The reading ``reading_to_json`` wrote; ``ValueError`` names what is wrong."""
    try:
        return EnergyReading(
            started_at=parse_time(data["started_at"]),
            finished_at=parse_time(data["finished_at"]),
            cpu_kwh=_measured(data["cpu_kwh"]),
            gpu_kwh=_measured(data["gpu_kwh"]),
            ram_kwh=_measured(data["ram_kwh"]),
            meter=str(data["meter"]),
            gpu_model=str(data.get("gpu_model", "")),
            gpu_count=int(data.get("gpu_count", 0)),
            notes=tuple(str(note) for note in data.get("notes", ())),
            samples=tuple((parse_time(at), float(kwh)) for at, kwh in data.get("samples", ())),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not an energy reading: {exc!r}") from exc


def _kwh(value: float) -> float | None:
    """A part nobody measured (NaN) is ``null``: JSON has no NaN."""
    return None if math.isnan(value) else value


def _measured(value: Any) -> float:
    return NOT_MEASURED if value is None else float(value)


def _time(at: datetime) -> str:
    text = format_time(at)
    assert text is not None  # format_time maps only None to None
    return text
