"""The estimate meter: declared watts or a TDP model, always labelled as an estimate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from greenai.core.domain import EnergyReading
from greenai.meters.estimate import EstimateMeter
from tests.fakes import FrozenClock

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def run_for(meter: EstimateMeter, clock: FrozenClock, seconds: float) -> EnergyReading:
    token = meter.start()
    clock.advance(seconds)
    return meter.stop(token)


def test_declared_watts_times_clock_time_booked_on_the_gpu() -> None:
    clock = FrozenClock(T0)
    meter = EstimateMeter(clock, power_watts=300, gpu_count=1)
    reading = run_for(meter, clock, 3600)
    assert (reading.gpu_kwh, reading.cpu_kwh) == (pytest.approx(0.3), 0.0)
    assert reading.meter == "estimate"
    assert "estimate, not a measurement" in reading.notes[0]
    assert reading.samples == ((T0, 0.0), (reading.finished_at, pytest.approx(0.3)))


def test_declared_watts_without_gpu_is_booked_as_cpu() -> None:
    clock = FrozenClock(T0)
    reading = run_for(EstimateMeter(clock, power_watts=100), clock, 36)
    assert (reading.cpu_kwh, reading.gpu_kwh) == (pytest.approx(0.001), 0.0)


def test_tdp_model_when_nothing_is_declared() -> None:
    clock = FrozenClock(T0)
    meter = EstimateMeter(clock, gpu_count=2, cpu_threads=4)
    reading = run_for(meter, clock, 3600)
    assert reading.gpu_kwh == pytest.approx(0.6)  # 2 x 300 W
    assert reading.cpu_kwh == pytest.approx(0.066)  # 50 W + 4 x 4 W
    assert "TDP model" in reading.notes[0] and "not a measurement" in reading.notes[0]


def test_trace_time_not_wall_time_is_charged() -> None:
    """On a replayed trace the clock runs fast; the modelled draw follows the clock."""
    clock = FrozenClock(T0)
    meter = EstimateMeter(clock, power_watts=1000)
    token = meter.start()
    clock.advance(7200)  # two trace hours, however few wall seconds they took
    assert meter.stop(token).cpu_kwh == pytest.approx(2.0)
