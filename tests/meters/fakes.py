"""Fakes for the meters' seams: NVML, CodeCarbon's tracker, a settable monotonic clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from greenai.meters.nvml import CounterUnsupported, NvmlCallError


class FakeNvml:
    """GPUs whose energy counters return ``counters[i]`` in turn (the last one repeats), or
    raise ``CounterUnsupported`` when ``counters[i]`` is ``None``; power is ``power_mw[i]``."""

    def __init__(
        self,
        counters: Sequence[Sequence[int] | None],
        *,
        names: Sequence[str] | None = None,
        uuids: Sequence[str] | None = None,
        power_mw: Sequence[int] | None = None,
        init_error: str | None = None,
    ) -> None:
        self._counters = [None if c is None else list(c) for c in counters]
        self._names = list(names or ["NVIDIA H100 80GB HBM3"] * len(counters))
        self._uuids = list(uuids or [f"GPU-{i:04d}-fake" for i in range(len(counters))])
        self._power = list(power_mw or [0] * len(counters))
        self._init_error = init_error
        self._lock = threading.Lock()
        self.counter_reads = [0] * len(counters)
        self.initialised = 0
        self.pids: dict[int, list[int]] = {}  # GPU -> PIDs on it
        self.utilization: dict[int, list[tuple[int, int, int]]] = {}  # GPU -> (pid, sm%, us)
        self.utilization_error: str | None = None
        self.migs: dict[str, tuple[int, int, int]] = {}  # MIG UUID -> (GPU, slices, of slices)

    def init(self) -> None:
        if self._init_error:
            raise NvmlCallError(self._init_error)
        self.initialised += 1

    def shutdown(self) -> None:
        self.initialised -= 1

    def device_count(self) -> int:
        return len(self._counters)

    def name(self, index: int) -> str:
        return self._names[index]

    def uuid(self, index: int) -> str:
        return self._uuids[index]

    def total_energy_mj(self, index: int) -> int:
        values = self._counters[index]
        if values is None:
            raise CounterUnsupported("Not Supported")
        with self._lock:
            read = self.counter_reads[index]
            self.counter_reads[index] += 1
        return values[min(read, len(values) - 1)]

    def power_mw(self, index: int) -> int:
        return self._power[index]

    def mig_slices(self, uuid: str) -> tuple[int, int, int] | None:
        return next((found for prefix, found in self.migs.items() if prefix.startswith(uuid)), None)

    def process_ids(self, index: int) -> list[int]:
        return list(self.pids.get(index, ()))

    def process_utilization(self, index: int, since_us: int) -> list[tuple[int, int, int]]:
        if self.utilization_error:
            raise NvmlCallError(self.utilization_error)
        return [sample for sample in self.utilization.get(index, ()) if sample[2] > since_us]


class Monotonic:
    """A monotonic clock the test sets by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ClockedNvml(FakeNvml):
    """GPUs whose energy counters advance with time, as real ones do (not with each read):
    GPU ``i`` reads ``start_mj[i] + watts[i] * 1000 * monotonic()``."""

    def __init__(
        self, start_mj: Sequence[int], watts: Sequence[float], monotonic: Monotonic
    ) -> None:
        super().__init__([[0]] * len(start_mj))
        self.start_mj, self.watts, self.monotonic = list(start_mj), list(watts), monotonic

    def total_energy_mj(self, index: int) -> int:
        with self._lock:
            self.counter_reads[index] += 1
        return self.start_mj[index] + round(self.watts[index] * 1000 * self.monotonic())


class TickingClock:
    """A greenai clock that moves one second each time it is read."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=1)
            return self._now

    def wait(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        return False

    def to_wall_seconds(self, seconds: float) -> float:
        return seconds


class FakeTracker:
    """A CodeCarbon tracker that reports fixed CPU/RAM kWh at stop."""

    def __init__(self, cpu_kwh: float, ram_kwh: float, *, fail_start: bool = False) -> None:
        self.cpu_kwh, self.ram_kwh, self.fail_start = cpu_kwh, ram_kwh, fail_start
        self.started = self.stopped = False
        self._conf = {"hardware": ["RAM()", "CPU(Intel Rapl)"]}

    def start(self) -> None:
        if self.fail_start:
            raise RuntimeError("no CPU found")
        self.started = True

    def stop(self) -> float | None:
        self.stopped = True
        self.final_emissions_data = SimpleNamespace(
            cpu_energy=self.cpu_kwh, ram_energy=self.ram_kwh, cpu_model="Fake CPU"
        )
        return 0.0


def tracker_factory(tracker: FakeTracker) -> Callable[[], FakeTracker]:
    return lambda: tracker


def write_rapl_domain(directory: Path, name: str, energy_uj: int, max_uj: int) -> None:
    """One RAPL domain folder as the kernel lays it out."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "name").write_text(name + "\n")
    (directory / "energy_uj").write_text(f"{energy_uj}\n")
    (directory / "max_energy_range_uj").write_text(f"{max_uj}\n")
