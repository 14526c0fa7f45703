"""Trace replay (issue 9 #7): energy, duration and embodied share the trace's time base, and
the reading says the clock and the speed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.domain import EnergyReading
from greenai.core.time import ScaledClock, SystemClock
from greenai.meters import MeterConfig, build_meter
from greenai.meters.replay import replay_speed, to_trace_time
from tests.meters.fakes import FakeNvml, FakeTracker, tracker_factory

T0 = datetime(2023, 3, 15, 18, tzinfo=UTC)
WH_MJ = 3_600_000


def test_a_replayed_run_is_charged_its_measured_power_over_trace_time(tmp_path: Path) -> None:
    clock = ScaledClock(T0, 1800)
    meter = build_meter(
        MeterConfig(),
        [0],
        clock,
        nvml=FakeNvml([[0, 1 * WH_MJ]]),  # 1 Wh in wall time
        tracker_factory=tracker_factory(FakeTracker(0.002, 0.001)),
        rapl_root=tmp_path,
    )
    reading = meter.stop(meter.start())
    assert reading.gpu_kwh == pytest.approx(0.001 * 1800)
    assert (reading.cpu_kwh, reading.ram_kwh) == pytest.approx((0.002 * 1800, 0.001 * 1800))
    assert reading.samples[-1][1] == pytest.approx(reading.energy_kwh)
    assert any(
        note.startswith("trace replay: the clock is trace time at 1800x wall time; measured")
        and "scaled x1800" in note
        for note in reading.notes
    )


def test_an_estimate_is_already_on_trace_time_and_not_scaled_again() -> None:
    reading = EnergyReading(T0, T0 + timedelta(hours=1), cpu_kwh=0.3, meter="estimate")
    assert to_trace_time(reading, 1800) == reading
    meter = build_meter(MeterConfig(meters="estimate", power_watts=100), None, ScaledClock(T0, 5))
    assert any("already on trace time" in note for note in meter.stop(meter.start()).notes)


def test_wall_time_is_left_alone() -> None:
    assert replay_speed(SystemClock()) is None
    meter = build_meter(MeterConfig(meters="estimate", power_watts=100), None, SystemClock())
    assert not any("trace replay" in note for note in meter.stop(meter.start()).notes)
