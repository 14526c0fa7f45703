"""CodeCarbon meter: through a fake tracker, and once through the real offline tracker."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from greenai.core.errors import MeterUnavailable
from greenai.meters.codecarbon_meter import (
    CodecarbonMeter,
    method_notes,
    offline_tracker_factory,
)
from tests.fakes import FrozenClock
from tests.meters.fakes import FakeTracker, tracker_factory

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_reads_cpu_and_ram_energy_at_stop_and_no_gpu() -> None:
    tracker = FakeTracker(cpu_kwh=0.02, ram_kwh=0.005)
    clock = FrozenClock(T0)
    meter = CodecarbonMeter(clock, tracker_factory(tracker))
    token = meter.start()
    clock.advance(60)
    reading = meter.stop(token)
    assert tracker.started and tracker.stopped
    assert (reading.cpu_kwh, reading.ram_kwh, reading.gpu_kwh) == (0.02, 0.005, 0.0)
    assert reading.meter == "codecarbon"
    assert (reading.started_at, (reading.finished_at - reading.started_at).total_seconds()) == (
        T0,
        60,
    )
    assert reading.notes == (
        "codecarbon: whole machine (Fake CPU)",
        "cpu_kwh measured by CodeCarbon from the CPU's energy counters (CPU(Intel Rapl))",
        "ram_kwh from CodeCarbon's power-per-GB model of the installed RAM, not measured",
    )


def test_a_cpu_load_figure_says_it_is_modelled_not_measured() -> None:
    tracker = FakeTracker(cpu_kwh=0.02, ram_kwh=0.005)
    tracker._conf = {"hardware": ["RAM()", "CPU(Cpu Load)"]}
    meter = CodecarbonMeter(FrozenClock(T0), tracker_factory(tracker))
    reading = meter.stop(meter.start())
    assert "cpu_kwh modelled by CodeCarbon (TDP x load), not measured" in reading.notes


@pytest.mark.parametrize(
    ("hardware", "says"),
    [
        (["CPU(Intel Rapl)"], "measured by CodeCarbon from the CPU's energy counters"),
        (["CPU(Cpu Load)"], "modelled by CodeCarbon (TDP x load), not measured"),
        (["CPU(Xeon > 125W [generic])"], "a constant share of the TDP"),
        ([], "CodeCarbon did not say how"),
    ],
)
def test_method_notes_name_how_the_cpu_figure_was_obtained(hardware: list[str], says: str) -> None:
    notes = method_notes(hardware)
    assert says in notes[1]
    assert notes[2].startswith("ram_kwh from CodeCarbon's power-per-GB model")


def test_tracker_that_cannot_start_is_unavailable() -> None:
    meter = CodecarbonMeter(FrozenClock(T0), tracker_factory(FakeTracker(0, 0, fail_start=True)))
    with pytest.raises(MeterUnavailable, match="no CPU found"):
        meter.start()


def test_tracker_without_data_at_stop_is_unavailable_not_zero() -> None:
    class Silent(FakeTracker):
        def stop(self) -> float | None:
            return None  # what CodeCarbon does when it never really started

    meter = CodecarbonMeter(FrozenClock(T0), lambda: Silent(1, 1))
    with pytest.raises(MeterUnavailable, match="no energy data"):
        meter.stop(meter.start())


def test_real_offline_tracker_measures_cpu_and_ram_without_network_or_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # CodeCarbon would write emissions.csv here if it could
    factory = offline_tracker_factory("GBR", measure_power_secs=1)
    meter = CodecarbonMeter(FrozenClock(T0), factory)
    token = meter.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        sum(i * i for i in range(10_000))  # some CPU load to measure
    reading = meter.stop(token)
    assert reading.cpu_kwh > 0 and reading.ram_kwh > 0
    assert reading.gpu_kwh == 0.0
    assert os.listdir(tmp_path) == []
    assert token.tracker._country_iso_code == "GBR"  # type: ignore[attr-defined]
    assert token.tracker._gpu_ids == []  # type: ignore[attr-defined]
