"""Meter selection, merging of readings, and one contract suite over every meter."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from greenai.core.domain import EnergyReading
from greenai.core.errors import ConfigError, MeterUnavailable
from greenai.core.settings import load_settings
from greenai.meters import Meter, MeterConfig, build_meter, merge_readings
from greenai.meters.codecarbon_meter import CodecarbonMeter
from greenai.meters.estimate import EstimateMeter
from greenai.meters.nvml import NvmlMeter
from greenai.meters.rapl import RaplMeter
from tests.fakes import FrozenClock
from tests.meters.fakes import (
    ClockedNvml,
    FakeNvml,
    FakeTracker,
    Monotonic,
    tracker_factory,
    write_rapl_domain,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
WH_MJ = 3_600_000


def config(**overrides: Any) -> MeterConfig:
    return MeterConfig(**overrides)


def gpu_nvml() -> FakeNvml:
    return FakeNvml([[0, 100 * WH_MJ]])  # 0.1 kWh between start and stop


def no_gpu() -> FakeNvml:
    return FakeNvml([], init_error="NVML Shared Library Not Found")


def rapl_root(tmp_path: Path) -> Path:
    write_rapl_domain(tmp_path / "intel-rapl:0", "package-0", 0, 10**12)
    return tmp_path


def test_auto_measures_gpu_with_nvml_and_host_with_codecarbon() -> None:
    clock = FrozenClock(T0)
    meter = build_meter(
        config(),
        [0],
        clock,
        nvml=gpu_nvml(),
        tracker_factory=tracker_factory(FakeTracker(0.02, 0.01)),
        record_seconds=3600,
    )
    assert meter.name == "nvml+codecarbon"
    token = meter.start()
    clock.advance(600)
    reading = meter.stop(token)
    assert reading.meter == "nvml+codecarbon"
    assert (reading.gpu_kwh, reading.cpu_kwh, reading.ram_kwh) == pytest.approx((0.1, 0.02, 0.01))
    assert (reading.gpu_count, reading.gpu_model) == (1, "NVIDIA H100 80GB HBM3")
    assert reading.samples[-1][1] == pytest.approx(reading.energy_kwh)


def test_auto_without_gpu_uses_codecarbon_and_says_the_gpu_is_unmeasured() -> None:
    meter = build_meter(
        config(),
        [0],
        FrozenClock(T0),
        nvml=no_gpu(),
        tracker_factory=tracker_factory(FakeTracker(0.02, 0.01)),
    )
    reading = meter.stop(meter.start())
    assert reading.meter == "codecarbon"
    assert any(note.startswith("GPU energy not measured") for note in reading.notes)


def test_what_will_not_be_measured_is_known_before_the_run() -> None:
    """The notes a start decision carries: the GPUs NVML cannot see; an estimate standing in."""
    clock = FrozenClock(T0)
    seams: dict[str, Any] = {"tracker_factory": tracker_factory(FakeTracker(0.02, 0.01))}
    blind = build_meter(config(), [0], clock, nvml=no_gpu(), **seams)
    assert any(note.startswith("GPU energy not measured") for note in blind.notes_at_start())
    measured = build_meter(config(), [0], clock, nvml=gpu_nvml(), **seams)
    assert measured.notes_at_start() == ()
    estimated = build_meter(config(meters="estimate"), [0], clock, nvml=gpu_nvml(), **seams)
    assert estimated.notes_at_start() == (
        "energy will be an estimate (declared power or a TDP model), not measured",
    )


def test_auto_falls_back_to_rapl_when_codecarbon_cannot_start(tmp_path: Path) -> None:
    meter = build_meter(
        config(),
        None,
        FrozenClock(T0),
        nvml=no_gpu(),
        tracker_factory=tracker_factory(FakeTracker(0, 0, fail_start=True)),
        rapl_root=rapl_root(tmp_path),
        record_seconds=3600,
    )
    reading = meter.stop(meter.start())
    assert reading.meter == "rapl"
    assert any("codecarbon unavailable" in note for note in reading.notes)


def test_a_declared_power_wins_over_the_meters_auto_finds(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    meter = build_meter(
        config(power_watts=3600),
        None,
        clock,
        nvml=no_gpu(),
        tracker_factory=tracker_factory(FakeTracker(0.5, 0.5)),  # CodeCarbon would measure
        rapl_root=tmp_path,
    )
    token = meter.start()
    clock.advance(3600)
    reading = meter.stop(token)
    assert reading.meter == "estimate"
    assert reading.energy_kwh == pytest.approx(3.6)
    assert reading.notes == (
        "estimate, not a measurement: declared 3600 W for the whole job, booked as cpu_kwh",
    )


def test_a_declared_power_next_to_named_meters_is_refused() -> None:
    with pytest.raises(ConfigError, match="power_watts: a declared power replaces the meters"):
        build_meter(config(meters="codecarbon", power_watts=200), None, FrozenClock(T0))


def test_explicit_meters_must_all_work() -> None:
    with pytest.raises(MeterUnavailable, match="nvml"):
        build_meter(config(meters="nvml,codecarbon"), None, FrozenClock(T0), nvml=no_gpu())
    meter = build_meter(
        config(meters="codecarbon"),
        None,
        FrozenClock(T0),
        tracker_factory=tracker_factory(FakeTracker(0, 0, fail_start=True)),
    )
    with pytest.raises(MeterUnavailable, match="codecarbon"):
        meter.start()


@pytest.mark.parametrize("text", ["nvml,wattmeter", "estimate,nvml"])
def test_bad_meter_lists_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="meters"):
        build_meter(config(meters=text), None, FrozenClock(T0))


def test_merged_timeline_sums_parts_at_every_sample_time() -> None:
    t = [T0 + timedelta(minutes=m) for m in (0, 10, 20)]
    gpu = EnergyReading(t[0], t[2], gpu_kwh=0.3, meter="nvml", gpu_count=1, samples=(
        (t[0], 0.0), (t[1], 0.1), (t[2], 0.3),
    ))  # fmt: skip
    cpu = EnergyReading(t[0], t[2], cpu_kwh=0.2, meter="codecarbon")  # no timeline: even
    merged = merge_readings([gpu, cpu], notes=["n"])
    assert merged.meter == "nvml+codecarbon"
    assert merged.samples == ((t[0], 0.0), (t[1], pytest.approx(0.2)), (t[2], pytest.approx(0.5)))
    assert merged.notes == ("n",)
    assert merged.energy_kwh == pytest.approx(0.5)


MeterFactory = Callable[[FrozenClock, Path], Meter]

CONTRACT: dict[str, MeterFactory] = {
    "nvml": lambda clock, _: NvmlMeter(clock, gpus=[0], nvml=gpu_nvml(), record_seconds=3600),
    "codecarbon": lambda clock, _: CodecarbonMeter(clock, tracker_factory(FakeTracker(1, 1))),
    "rapl": lambda clock, tmp: RaplMeter(clock, root=rapl_root(tmp), poll_seconds=3600),
    "estimate": lambda clock, _: EstimateMeter(clock, power_watts=100),
    "composite": lambda clock, _: build_meter(
        config(),
        None,
        clock,
        nvml=gpu_nvml(),
        tracker_factory=tracker_factory(FakeTracker(1, 1)),
        record_seconds=3600,
    ),
}


@pytest.mark.parametrize("kind", sorted(CONTRACT))
def test_every_meter_keeps_the_contract(kind: str, tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    meter = CONTRACT[kind](clock, tmp_path)
    assert isinstance(meter, Meter)
    token = meter.start()
    clock.advance(30)
    reading = meter.stop(token)
    assert reading.meter.startswith(meter.name.split("+")[0])
    assert reading.started_at == T0 and reading.finished_at == T0 + timedelta(seconds=30)
    assert reading.energy_kwh >= 0
    values = [kwh for _, kwh in reading.samples]
    assert values == sorted(values)
    if values:
        assert values[-1] == pytest.approx(reading.energy_kwh)


def test_meter_config_comes_from_settings_and_travels_as_json() -> None:
    loaded = load_settings(env={"GREENAI_METERS": "nvml", "GREENAI_POWER_WATTS": "250"})
    config = MeterConfig.from_settings(loaded)
    assert config == MeterConfig(meters="nvml", power_watts=250.0, country_iso_code="GBR")
    text = json.dumps(dataclasses.asdict(config))
    assert MeterConfig.from_json(json.loads(text)) == config
    assert MeterConfig.from_json({}) == MeterConfig()
    with pytest.raises(ValueError, match="meter config"):
        MeterConfig.from_json({"power_watts": "lots"})


def test_composite_counters_are_the_raw_values_its_parts_read(tmp_path: Path) -> None:
    mono = Monotonic(0.0)
    nvml = ClockedNvml([5_000], [360.0], mono)  # 360 W: 1 Wh every 10 s
    write_rapl_domain(tmp_path / "intel-rapl:0", "package-0", 700, 10**12)
    meter = build_meter(
        config(meters="nvml,rapl"),
        [0],
        FrozenClock(T0),
        nvml=nvml,
        rapl_root=tmp_path,
        record_seconds=3600,
    )
    token = meter.start()
    assert meter.counters(token) == {"nvml": {"0": 5_000}, "rapl": {"intel-rapl:0": 700}}
    mono.now = 10.0
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("3600700\n")  # 3.6 J
    reading = meter.stop(token)
    end = meter.counters(token)
    assert end == {"nvml": {"0": 3_605_000}, "rapl": {"intel-rapl:0": 3_600_700}}
    assert reading.gpu_kwh == pytest.approx((3_605_000 - 5_000) / 3.6e9)
    assert reading.cpu_kwh == pytest.approx((3_600_700 - 700) / 3.6e12)


def test_meters_without_counters_add_none() -> None:
    meter = build_meter(
        config(meters="codecarbon"),
        None,
        FrozenClock(T0),
        tracker_factory=tracker_factory(FakeTracker(0.1, 0.1)),
    )
    token = meter.start()
    assert meter.counters(token) == {}
    meter.stop(token)
    assert meter.counters(token) == {}
    estimate = build_meter(config(meters="estimate", power_watts=10), None, FrozenClock(T0))
    assert estimate.counters(estimate.start()) == {}


def test_a_job_given_no_gpu_is_charged_none_of_the_nodes_gpus() -> None:
    """Issue 9 #6: with neither --gpus nor CUDA_VISIBLE_DEVICES every concurrent job was
    charged every GPU of the node."""
    mono = Monotonic(0.0)
    nvml = ClockedNvml([0, 0], [360.0, 360.0], mono)
    meter = build_meter(
        config(),
        None,
        FrozenClock(T0),
        env={},
        nvml=nvml,
        tracker_factory=tracker_factory(FakeTracker(0.02, 0.01)),
        record_seconds=3600,
    )
    token = meter.start()
    mono.now = 10.0
    reading = meter.stop(token)
    assert (reading.meter, reading.gpu_kwh, reading.gpu_count) == ("codecarbon", 0.0, 0)
    assert any("given no GPU" in note for note in reading.notes)
    given = build_meter(
        config(),
        None,
        FrozenClock(T0),
        env={"CUDA_VISIBLE_DEVICES": "1"},
        nvml=ClockedNvml([0, 0], [360.0, 360.0], mono),
        record_seconds=3600,
    )
    assert given.name.startswith("nvml")


def test_gpus_given_but_not_measured_are_counted_with_an_empty_energy() -> None:
    """Issue 9 #3: without NVML, ``greenai run --gpus 0`` wrote ``gpu_kwh=0, gpu_count=0``
    (and embodied as CPU-only), saying nothing."""
    meter = build_meter(
        config(),
        [0],
        FrozenClock(T0),
        nvml=no_gpu(),
        tracker_factory=tracker_factory(FakeTracker(0.02, 0.01)),
    )
    reading = meter.stop(meter.start())
    assert (reading.meter, reading.gpu_count, reading.cpu_kwh) == ("codecarbon", 1, 0.02)
    assert math.isnan(reading.gpu_kwh) and math.isnan(reading.energy_kwh)
    assert any("NVML Shared Library Not Found" in note for note in reading.notes)
    assert any("1 GPU(s) given to the job" in note for note in reading.notes)


def test_a_daemon_job_on_two_slots_with_a_host_meter_only_is_charged_two_gpus() -> None:
    meter = build_meter(
        config(meters="codecarbon"),
        [0, 1],
        FrozenClock(T0),
        tracker_factory=tracker_factory(FakeTracker(0.02, 0.01)),
    )
    reading = meter.stop(meter.start())
    assert reading.gpu_count == 2 and math.isnan(reading.gpu_kwh)


def test_mig_instances_are_counted_and_their_energy_is_said_to_be_unmeasured() -> None:
    mono = Monotonic(0.0)
    meter = build_meter(
        config(),
        None,
        FrozenClock(T0),
        env={"CUDA_VISIBLE_DEVICES": "MIG-4f1c-aaaa,MIG-4f1c-bbbb"},
        nvml=ClockedNvml([0], [360.0], mono),
        tracker_factory=tracker_factory(FakeTracker(0.02, 0.01)),
    )
    token = meter.start()
    mono.now = 10.0
    reading = meter.stop(token)
    assert (reading.meter, reading.gpu_count) == ("codecarbon", 2)
    assert math.isnan(reading.gpu_kwh)
    assert any("MIG instance" in note and "per physical GPU" in note for note in reading.notes)
