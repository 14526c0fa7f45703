"""Energy readings through JSON and back, exactly."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from greenai.core.domain import NOT_MEASURED, EnergyReading
from greenai.meters import reading_from_json, reading_to_json

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def round_trip(reading: EnergyReading) -> EnergyReading:
    return reading_from_json(json.loads(json.dumps(reading_to_json(reading))))


def test_a_reading_is_plain_json_with_utc_times_and_lists() -> None:
    later = T0 + timedelta(minutes=10, microseconds=250)
    reading = EnergyReading(
        T0,
        later,
        cpu_kwh=0.1,
        gpu_kwh=0.2,
        meter="nvml+codecarbon",
        gpu_model="NVIDIA H100 80GB HBM3",
        gpu_count=2,
        notes=("a", "b"),
        samples=((T0, 0.0), (later, 0.3)),
    )
    data = reading_to_json(reading)
    assert data["started_at"] == "2024-01-01T12:00:00Z"
    assert data["samples"] == [["2024-01-01T12:00:00Z", 0.0], ["2024-01-01T12:10:00.000250Z", 0.3]]
    assert data["notes"] == ["a", "b"]
    assert round_trip(reading) == reading


def test_other_offsets_come_back_as_the_same_instant_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    reading = EnergyReading(T0.astimezone(paris), T0.astimezone(paris) + timedelta(hours=1))
    back = round_trip(reading)
    assert back == reading and back.started_at.tzinfo == UTC


@pytest.mark.parametrize(
    "change",
    [{"started_at": "yesterday"}, {"started_at": None}, {"cpu_kwh": "x"}, {"samples": [[1]]}],
)
def test_anything_else_is_a_value_error(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not an energy reading"):
        reading_from_json({**reading_to_json(EnergyReading(T0, T0)), **change})
    with pytest.raises(ValueError, match="not an energy reading"):
        reading_from_json({})


times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
kwh = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
text = st.text(max_size=30)


@given(
    started_at=times,
    finished_at=times,
    parts=st.tuples(kwh, kwh, kwh),
    meter=text,
    gpu_model=text,
    gpu_count=st.integers(min_value=0, max_value=64),
    notes=st.lists(text, max_size=4).map(tuple),
    samples=st.lists(st.tuples(times, kwh), max_size=6).map(tuple),
)
def test_round_trip_is_exact(
    started_at: datetime,
    finished_at: datetime,
    parts: tuple[float, float, float],
    meter: str,
    gpu_model: str,
    gpu_count: int,
    notes: tuple[str, ...],
    samples: tuple[tuple[datetime, float], ...],
) -> None:
    reading = EnergyReading(
        started_at,
        finished_at,
        cpu_kwh=parts[0],
        gpu_kwh=parts[1],
        ram_kwh=parts[2],
        meter=meter,
        gpu_model=gpu_model,
        gpu_count=gpu_count,
        notes=notes,
        samples=samples,
    )
    assert round_trip(reading) == reading


def test_an_unmeasured_part_travels_as_null_and_comes_back_unknown() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    reading = EnergyReading(start, start, cpu_kwh=0.25, gpu_kwh=NOT_MEASURED, gpu_count=2)
    data = json.loads(json.dumps(reading_to_json(reading), allow_nan=False))
    assert data["gpu_kwh"] is None
    back = reading_from_json(data)
    assert math.isnan(back.gpu_kwh) and math.isnan(back.energy_kwh)
    assert (back.cpu_kwh, back.gpu_count) == (0.25, 2)
