"""NVML meter through a fake NVML: counters, resets, power integration, GPU selection."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pynvml
import pytest

from greenai.core.errors import MeterUnavailable
from greenai.meters.nvml import (
    CounterUnsupported,
    NvmlCallError,
    NvmlMeter,
    PynvmlLibrary,
    parse_visible_devices,
    resolve_gpus,
)
from tests.fakes import FrozenClock
from tests.meters.fakes import ClockedNvml, FakeNvml, Monotonic, TickingClock

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
WH_MJ = 3_600_000  # one watt-hour in millijoules = 0.001 kWh
SLOW = 3600.0  # a cadence no test reaches: only the start and stop reads happen


def meter(nvml: FakeNvml, **kwargs: object) -> NvmlMeter:
    options: dict[str, object] = {"record_seconds": SLOW, "power_poll_seconds": SLOW}
    options["gpus"] = list(range(nvml.device_count()))  # the job was given every GPU
    options.update(kwargs)
    return NvmlMeter(FrozenClock(T0), nvml=nvml, **options)  # type: ignore[arg-type]


def test_counter_delta_between_start_and_stop_per_gpu() -> None:
    nvml = FakeNvml([[10 * WH_MJ, 12 * WH_MJ], [5 * WH_MJ, 6 * WH_MJ]])
    m = meter(nvml)
    reading = m.stop(m.start())
    assert reading.gpu_kwh == pytest.approx(0.003)
    assert (reading.meter, reading.gpu_count, reading.cpu_kwh) == ("nvml", 2, 0.0)
    assert reading.gpu_model == "NVIDIA H100 80GB HBM3"
    assert reading.samples[-1][1] == pytest.approx(0.003)
    assert nvml.initialised == 0  # every init was shut down again


def test_counter_reset_counts_energy_since_the_reset_and_says_so() -> None:
    nvml = FakeNvml([[5 * WH_MJ, 7 * WH_MJ, 1 * WH_MJ]])
    m = meter(nvml, record_seconds=0.005)
    token = m.start()
    deadline = time.monotonic() + 2
    while nvml.counter_reads[0] < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    reading = m.stop(token)
    assert reading.gpu_kwh == pytest.approx(0.003)  # 2 Wh before the reset + 1 Wh after
    assert any("reset 1 time" in note for note in reading.notes)


def test_background_thread_builds_a_rising_timeline_ending_at_the_total() -> None:
    nvml = FakeNvml([[i * WH_MJ for i in range(1000)]])
    m = NvmlMeter(TickingClock(T0), nvml=nvml, gpus=[0], record_seconds=0.005)
    token = m.start()
    time.sleep(0.1)
    reading = m.stop(token)
    times = [at for at, _ in reading.samples]
    values = [kwh for _, kwh in reading.samples]
    assert len(values) >= 4
    assert times == sorted(times) and values == sorted(values)
    assert values[0] == 0.0
    assert values[-1] == pytest.approx(reading.gpu_kwh)
    assert reading.gpu_kwh == pytest.approx((nvml.counter_reads[0] - 1) * 0.001)
    assert (reading.started_at, reading.finished_at) == (times[0], times[-1])


def test_gpu_without_counter_integrates_power_and_the_meter_name_says_so() -> None:
    mono = Monotonic(100.0)
    nvml = FakeNvml([None], power_mw=[250_000])
    m = meter(nvml, monotonic=mono)
    token = m.start()
    mono.now = 110.0
    reading = m.stop(token)
    assert reading.gpu_kwh == pytest.approx(250 * 10 / 3.6e6)
    assert reading.meter == "nvml-power"
    assert any("no energy counter" in note and "GPU 0" in note for note in reading.notes)


def test_mixed_gpus_use_counter_where_present_and_power_elsewhere() -> None:
    mono = Monotonic(0.0)
    nvml = FakeNvml([[0, WH_MJ], None], power_mw=[0, 360_000])
    m = meter(nvml, monotonic=mono)
    token = m.start()
    mono.now = 10.0
    reading = m.stop(token)
    assert reading.gpu_kwh == pytest.approx(0.001 + 0.001)  # 360 W x 10 s = 1 Wh
    assert reading.meter == "nvml-power"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", []),
        ("-1", []),
        ("0,2", ["0", "2"]),
        (" 1 , 0 ", ["1", "0"]),
        ("1,-1,0", ["1"]),
        ("GPU-8f3a,3", ["GPU-8f3a", "3"]),
    ],
)
def test_cuda_visible_devices_is_read_as_cuda_reads_it(
    value: str | None, expected: list[str] | None
) -> None:
    assert parse_visible_devices(value) == expected


def test_gpu_selection_explicit_then_env_then_none() -> None:
    nvml = FakeNvml([[0]] * 4, uuids=["GPU-aaa1", "GPU-bbb2", "GPU-ccc3", "GPU-ddd4"])
    assert resolve_gpus(nvml, None, {}) == []  # a job given no GPU is charged none
    assert resolve_gpus(nvml, None, {"CUDA_VISIBLE_DEVICES": "2,0"}) == [2, 0]
    assert resolve_gpus(nvml, [3], {"CUDA_VISIBLE_DEVICES": "2,0"}) == [3]
    assert resolve_gpus(nvml, None, {"CUDA_VISIBLE_DEVICES": "GPU-ccc,GPU-aaa1"}) == [2, 0]
    assert resolve_gpus(nvml, None, {"CUDA_VISIBLE_DEVICES": "1,7,2"}) == [1]  # stops at 7
    assert resolve_gpus(nvml, None, {"CUDA_VISIBLE_DEVICES": "GPU-,1"}) == []  # ambiguous


def test_meter_measures_only_the_visible_gpus() -> None:
    nvml = FakeNvml([[0, WH_MJ], [0, 50 * WH_MJ]], names=["A100", "V100"])
    m = NvmlMeter(
        FrozenClock(T0), nvml=nvml, env={"CUDA_VISIBLE_DEVICES": "1"}, record_seconds=SLOW
    )
    reading = m.stop(m.start())
    assert reading.gpu_kwh == pytest.approx(0.05)
    assert (reading.gpu_count, reading.gpu_model) == (1, "V100")
    assert nvml.counter_reads[0] == 0


@pytest.mark.parametrize(
    ("nvml", "env", "problem"),
    [
        (FakeNvml([], init_error="NVML Shared Library Not Found"), {}, "cannot initialise"),
        (FakeNvml([]), {}, "no GPU"),
        (FakeNvml([[0]]), {"CUDA_VISIBLE_DEVICES": ""}, "no GPU"),
        (FakeNvml([[0]]), {"CUDA_VISIBLE_DEVICES": "MIG-1234"}, "MIG"),
    ],
)
def test_unavailable_without_nvml_or_visible_gpu(
    nvml: FakeNvml, env: dict[str, str], problem: str
) -> None:
    with pytest.raises(MeterUnavailable, match=problem):
        NvmlMeter(FrozenClock(T0), nvml=nvml, env=env)


def test_real_library_translates_pynvml_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_found() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    def not_supported(handle: object) -> int:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    monkeypatch.setattr(pynvml, "nvmlInit", not_found)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda index: object())
    monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", not_supported)
    library = PynvmlLibrary()
    with pytest.raises(NvmlCallError) as init_error:
        library.init()
    assert not isinstance(init_error.value, CounterUnsupported)
    with pytest.raises(CounterUnsupported):
        library.total_energy_mj(0)
    with pytest.raises(MeterUnavailable, match="cannot initialise NVML"):
        NvmlMeter(FrozenClock(T0))


def test_counters_are_the_raw_values_read_at_start_and_at_stop() -> None:
    mono = Monotonic(0.0)
    nvml = ClockedNvml([1_000, 2_000], [100.0, 200.0], mono)
    m = meter(nvml)
    token = m.start()
    assert token.counters() == {"0": 1_000, "1": 2_000}
    mono.now = 36.0  # 1 Wh and 2 Wh later
    reading = m.stop(token)
    end = token.counters()
    assert end == {"0": 1_000 + 3_600_000, "1": 2_000 + 7_200_000}
    assert nvml.counter_reads == [2, 2]  # reporting them read nothing more
    assert reading.gpu_kwh == pytest.approx(0.003)


def test_a_gpu_without_counter_has_no_counter_value() -> None:
    nvml = FakeNvml([[0, WH_MJ], None], power_mw=[0, 100_000])
    m = meter(nvml, monotonic=Monotonic(0.0))
    token = m.start()
    m.stop(token)
    assert token.counters() == {"0": WH_MJ}
