"""GPU energy from NVML: the per-GPU energy counter, or integrated power where there is none.

``nvmlDeviceGetTotalEnergyConsumption`` (mJ since driver load, Volta and newer) costs ~3 ms a
read, so it is read at start, at stop and every ``record_seconds`` on a background thread.
Where a GPU has no counter (pre-Volta, some vGPU/MIG set-ups) its power (mW, a 1-s average) is
sampled about once a second on that thread and integrated, and the reading says so: meter
``nvml-power`` and a note naming the GPU. A counter that goes backwards (driver reload) is
counted from its reset and noted. NVML itself sits behind ``NvmlLibrary``, a small seam that
tests replace; ``PynvmlLibrary`` is the real one and the only place pynvml errors are seen.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pynvml

from greenai.core.domain import EnergyReading
from greenai.core.errors import MeterUnavailable
from greenai.core.time import Clock
from greenai.meters.base import joules_to_kwh
from greenai.meters.gpu_share import GpuShareTally, JobProcesses, process_group
from greenai.meters.sampling import CumulativeSampler

logger = logging.getLogger(__name__)


class NvmlCallError(Exception):
    """An NVML call failed (the seam's own error, so fakes need no pynvml)."""


class CounterUnsupported(NvmlCallError):
    """This GPU has no total-energy counter."""


class NoGpuGiven(MeterUnavailable):
    """The job names no GPU: it is charged none rather than every GPU of the node."""


class NvmlLibrary(Protocol):
    """The NVML calls greenai uses, by device index; errors are ``NvmlCallError``."""

    def init(self) -> None: ...
    def shutdown(self) -> None: ...
    def device_count(self) -> int: ...
    def name(self, index: int) -> str: ...
    def uuid(self, index: int) -> str: ...
    def total_energy_mj(self, index: int) -> int: ...
    def power_mw(self, index: int) -> int: ...
    def process_ids(self, index: int) -> list[int]: ...
    def process_utilization(self, index: int, since_us: int) -> list[tuple[int, int, int]]: ...
    def mig_slices(self, uuid: str) -> tuple[int, int, int] | None: ...


class PynvmlLibrary:
    """``NvmlLibrary`` over nvidia-ml-py; translates pynvml errors once, here."""

    def __init__(self) -> None:
        self._handles: dict[int, Any] = {}

    def init(self) -> None:
        self._call(pynvml.nvmlInit)

    def shutdown(self) -> None:
        self._handles.clear()
        self._call(pynvml.nvmlShutdown)

    def device_count(self) -> int:
        return int(self._call(pynvml.nvmlDeviceGetCount))

    def name(self, index: int) -> str:
        return _text(self._call(pynvml.nvmlDeviceGetName, self._handle(index)))

    def uuid(self, index: int) -> str:
        return _text(self._call(pynvml.nvmlDeviceGetUUID, self._handle(index)))

    def total_energy_mj(self, index: int) -> int:
        handle = self._handle(index)
        return int(self._call(pynvml.nvmlDeviceGetTotalEnergyConsumption, handle))

    def power_mw(self, index: int) -> int:
        return int(self._call(pynvml.nvmlDeviceGetPowerUsage, self._handle(index)))

    def process_ids(self, index: int) -> list[int]:
        """PIDs (as the host numbers them) of the compute and graphics processes on the GPU."""
        handle = self._handle(index)
        found = self._call(pynvml.nvmlDeviceGetComputeRunningProcesses, handle)
        found += self._call(pynvml.nvmlDeviceGetGraphicsRunningProcesses, handle)
        return sorted({int(process.pid) for process in found})

    def process_utilization(self, index: int, since_us: int) -> list[tuple[int, int, int]]:
        """``(pid, sm_percent, timestamp_us)`` samples newer than ``since_us``; none when the
        driver holds none (NVML's "not found")."""
        handle = self._handle(index)
        try:
            samples = pynvml.nvmlDeviceGetProcessUtilization(handle, since_us)
        except pynvml.NVMLError_NotFound:
            return []
        except pynvml.NVMLError as exc:
            raise NvmlCallError(str(exc)) from exc
        return [(int(s.pid), int(s.smUtil), int(s.timeStamp)) for s in samples]

    def mig_slices(self, uuid: str) -> tuple[int, int, int] | None:
        """``(parent GPU index, the instance's GPU slices, the GPU's slices)`` of the MIG
        instance whose UUID starts with ``uuid``; ``None`` when no GPU holds it."""
        for index in range(self.device_count()):
            parent = self._handle(index)
            try:
                count = int(self._call(pynvml.nvmlDeviceGetMaxMigDeviceCount, parent))
            except NvmlCallError:
                continue  # no MIG on this GPU
            for slot in range(count):
                try:
                    instance = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, slot)
                except pynvml.NVMLError:
                    continue  # an empty slot
                if _text(self._call(pynvml.nvmlDeviceGetUUID, instance)).startswith(uuid):
                    attributes = self._call(pynvml.nvmlDeviceGetAttributes_v2, instance)
                    return index, int(attributes.gpuInstanceSliceCount), self._slices(parent)
        return None

    def _slices(self, parent: Any) -> int:
        """The GPU's slice count: the largest GPU-instance profile it supports (7 on A100
        and H100)."""
        largest = 0
        for profile in range(pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT):
            try:
                info = pynvml.nvmlDeviceGetGpuInstanceProfileInfo(parent, profile)
            except pynvml.NVMLError:
                continue
            largest = max(largest, int(info.sliceCount))
        return largest

    def _handle(self, index: int) -> Any:
        if index not in self._handles:
            self._handles[index] = self._call(pynvml.nvmlDeviceGetHandleByIndex, index)
        return self._handles[index]

    @staticmethod
    def _call(function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except pynvml.NVMLError_NotSupported as exc:
            raise CounterUnsupported(str(exc)) from exc
        except pynvml.NVMLError as exc:
            raise NvmlCallError(str(exc)) from exc


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_visible_devices(value: str | None) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` as CUDA reads it: ``None`` when unset (every GPU), else the
    entries up to the first invalid one (``-1`` or ``""`` hide every GPU)."""
    if value is None:
        return None
    entries: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if entry.isdigit() or entry.startswith(("GPU-", "MIG-")):
            entries.append(entry)
        else:
            break
    return entries


@dataclass(frozen=True)
class GpuPart:
    """A GPU a job was given: a whole physical GPU, or a MIG instance on one (``fraction``
    of its compute slices; NVML counts energy only per physical GPU)."""

    index: int
    fraction: float = 1.0
    mig: str | None = None

    def note(self) -> str | None:
        if self.mig is None:
            return None
        return (
            f"{self.mig}: charged {self.fraction:.3g} of GPU {self.index}'s energy, its share of "
            "the GPU's compute slices (NVML has no per-instance energy counter); embodied "
            "is charged for the whole GPU"
        )


def resolve_gpus(
    nvml: NvmlLibrary, gpus: Sequence[int | str] | None, env: Mapping[str, str]
) -> list[int]:
    """NVML indices of the GPUs a job was given: ``gpus`` if given, else
    ``CUDA_VISIBLE_DEVICES``; neither: none (on a shared node a job is charged only its own
    GPUs, never the whole node). Indices and ``GPU-`` UUIDs (or unique prefixes) are
    understood."""
    return [part.index for part in resolve_gpu_parts(nvml, gpus, env)]


def resolve_gpu_parts(
    nvml: NvmlLibrary, gpus: Sequence[int | str] | None, env: Mapping[str, str]
) -> list[GpuPart]:
    """``resolve_gpus`` with MIG instances as parts of their physical GPU."""
    count = nvml.device_count()
    selection = (
        list(gpus) if gpus is not None else parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"))
    )
    if selection is None:
        return []
    parts: list[GpuPart] = []
    for entry in selection:
        part = _resolve_one(nvml, str(entry).strip(), count)
        if part is None:
            break  # CUDA ignores every device after an invalid one
        same = next((i for i, p in enumerate(parts) if p.index == part.index), None)
        if same is None:
            parts.append(part)
        elif part.mig is not None and parts[same].mig is not None:  # two instances, one GPU
            both = parts[same]
            fraction = min(1.0, both.fraction + part.fraction)
            parts[same] = GpuPart(part.index, fraction, f"{both.mig} + {part.mig}")
    return parts


def _resolve_one(nvml: NvmlLibrary, entry: str, count: int) -> GpuPart | None:
    if entry.isdigit():
        return GpuPart(int(entry)) if int(entry) < count else None
    if entry.startswith("MIG-"):
        return _mig_part(nvml, entry)
    matches = [i for i in range(count) if nvml.uuid(i).startswith(entry)]
    return GpuPart(matches[0]) if len(matches) == 1 else None


def _mig_part(nvml: NvmlLibrary, entry: str) -> GpuPart:
    found = nvml.mig_slices(entry)
    if found is None or found[1] <= 0 or found[2] <= 0:
        raise MeterUnavailable(
            f"nvml: {entry} is a MIG instance NVML could not place on a GPU; NVML gives energy "
            "per physical GPU, so its energy is not measured"
        )
    index, slices, total = found
    return GpuPart(index, min(1.0, slices / total), entry)


@dataclass
class _GpuEnergy:
    """Energy one GPU used since the run started, from its counter or from power."""

    index: int
    uses_counter: bool
    last_mj: int = 0
    last_power_w: float = 0.0
    last_power_at: float = 0.0
    joules: float = 0.0
    resets: int = 0

    def add_counter(self, value_mj: int) -> None:
        if value_mj >= self.last_mj:
            self.joules += (value_mj - self.last_mj) / 1000.0
        else:  # the counter restarted (driver reload): what it holds now is since the reset
            self.joules += value_mj / 1000.0
            self.resets += 1
        self.last_mj = value_mj

    def add_power(self, power_mw: int, at: float) -> None:
        watts = power_mw / 1000.0
        self.joules += (watts + self.last_power_w) / 2.0 * max(0.0, at - self.last_power_at)
        self.last_power_w, self.last_power_at = watts, at


class _NvmlRun:
    """One measured run: the per-GPU state and its sampler."""

    def __init__(self, meter: NvmlMeter) -> None:
        self._nvml = meter.nvml
        self._monotonic = meter.monotonic
        self.gpus = [self._begin(index) for index in meter.indices]
        self.job = meter.job
        self.parts = {part.index: part for part in meter.parts}
        # a MIG instance's share is its slices: other instances' processes are not sharers
        self.shares = {p.index: GpuShareTally(p.index) for p in meter.parts if p.mig is None}
        self.since_us = time.time_ns() // 1000
        self.share_error: str | None = None  # NVML could not list the GPUs' processes
        self.utilisation_error: str | None = None  # nor give their utilisation
        any_power = any(not gpu.uses_counter for gpu in self.gpus)
        self.sampler = CumulativeSampler(
            self.read,
            meter.clock,
            name="nvml",
            poll_seconds=meter.power_poll_seconds if any_power else meter.record_seconds,
            record_seconds=meter.record_seconds,
            monotonic=meter.monotonic,
        )

    def _begin(self, index: int) -> _GpuEnergy:
        try:
            return _GpuEnergy(index, True, last_mj=self._nvml.total_energy_mj(index))
        except CounterUnsupported:
            logger.info("GPU %d has no energy counter; integrating its power", index)
        now = self._monotonic()
        return _GpuEnergy(
            index, False, last_power_w=self._nvml.power_mw(index) / 1000.0, last_power_at=now
        )

    def counters(self) -> dict[str, int]:
        """The raw energy counter (mJ) of each GPU that has one, as last read: at start
        right after ``start``, at stop after ``stop``. No new read (the values are the
        ones the energy was computed from)."""
        return {str(gpu.index): gpu.last_mj for gpu in self.gpus if gpu.uses_counter}

    def read(self, full: bool) -> float:
        for gpu in self.gpus:
            if not gpu.uses_counter:
                gpu.add_power(self._nvml.power_mw(gpu.index), self._monotonic())
            elif full:
                gpu.add_counter(self._nvml.total_energy_mj(gpu.index))
        if full:
            self._read_processes()
        return joules_to_kwh(sum(gpu.joules for gpu in self.gpus))

    def _read_processes(self) -> None:
        """Who else used the job's GPUs since the last read (``gpu_share``). A driver that
        cannot say leaves the job charged its whole GPUs, with a note."""
        if self.job is None or self.job.pgid is None or self.share_error is not None:
            return
        for index, tally in self.shares.items():
            try:
                pids = self._nvml.process_ids(index)
            except NvmlCallError as exc:
                self.share_error = str(exc)
                return
            groups: dict[int, bool] = {}
            for pid in pids:
                group = process_group(pid)
                groups[group] = groups.get(group, False) or self.job.owns(pid)
            tally.add_processes(groups)
            if self.utilisation_error is None:
                try:
                    samples = self._nvml.process_utilization(index, self.since_us)
                except NvmlCallError as exc:  # no samples: the even split stands in
                    self.utilisation_error = str(exc)
                    continue
                tally.add_utilisation(samples, self.job.owns)

    def shared_fraction(self) -> float:
        """The part of the GPUs' energy that is the job's: each GPU's energy times its share."""
        total = sum(gpu.joules for gpu in self.gpus)
        if total <= 0:
            return 1.0
        charged = 0.0
        for gpu in self.gpus:
            tally = self.shares.get(gpu.index)
            found = None if tally is None else tally.share()
            share = self.parts[gpu.index].fraction if found is None else found[0]
            charged += gpu.joules * share
        return charged / total


class NvmlMeter:
    """GPU energy of the GPUs a job uses; raises ``MeterUnavailable`` without NVML or GPU."""

    def __init__(
        self,
        clock: Clock,
        *,
        gpus: Sequence[int | str] | None = None,
        env: Mapping[str, str] | None = None,
        nvml: NvmlLibrary | None = None,
        record_seconds: float = 15.0,
        power_poll_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        job: JobProcesses | None = None,
    ) -> None:
        self.clock = clock
        self.job = job  # the job's processes, to split a GPU it shares (``gpu_share``)
        self.nvml = nvml if nvml is not None else PynvmlLibrary()
        self.record_seconds = record_seconds
        self.power_poll_seconds = power_poll_seconds
        self.monotonic = monotonic
        self.name = "nvml"
        self._names: dict[int, str] = {}
        self.parts = self._probe(gpus, {} if env is None else env)
        self.indices = [part.index for part in self.parts]
        self.models = [self._names[part.index] for part in self.parts]

    def _probe(self, gpus: Sequence[int | str] | None, env: Mapping[str, str]) -> list[GpuPart]:
        try:
            self.nvml.init()
        except NvmlCallError as exc:
            raise MeterUnavailable(f"nvml: cannot initialise NVML: {exc}") from exc
        try:
            parts = resolve_gpu_parts(self.nvml, gpus, env)
            if not parts and gpus is None and "CUDA_VISIBLE_DEVICES" not in env:
                raise NoGpuGiven(
                    "nvml: the job was given no GPU (--gpus, CUDA_VISIBLE_DEVICES or a daemon "
                    "slot), so no GPU energy is charged to it"
                )
            if not parts:
                raise MeterUnavailable("nvml: no GPU is visible to the job")
            self._names = {part.index: self.nvml.name(part.index) for part in parts}
            return parts
        except NvmlCallError as exc:
            raise MeterUnavailable(f"nvml: cannot list GPUs: {exc}") from exc
        finally:
            self.nvml.shutdown()

    def start(self) -> _NvmlRun:
        try:
            self.nvml.init()
        except NvmlCallError as exc:
            raise MeterUnavailable(f"nvml: cannot initialise NVML: {exc}") from exc
        try:
            run = _NvmlRun(self)
        except NvmlCallError as exc:
            self.nvml.shutdown()
            raise MeterUnavailable(f"nvml: cannot read GPU energy: {exc}") from exc
        run.sampler.start()
        logger.info("nvml: measuring GPUs %s", [gpu.index for gpu in run.gpus])
        return run

    def power_now(self, token: _NvmlRun) -> float:
        """The job's GPUs' draw now (W; a MIG instance's share of its GPU's), from NVML's
        power reading, for a live view: the energy is still the counter's."""
        return sum(self.nvml.power_mw(part.index) / 1000.0 * part.fraction for part in self.parts)

    def stop(self, token: _NvmlRun) -> EnergyReading:
        samples = token.sampler.stop()
        try:
            self.nvml.shutdown()
        except NvmlCallError as exc:
            logger.warning("nvml: shutdown failed: %s", exc)
        power_only = [gpu for gpu in token.gpus if not gpu.uses_counter]
        fraction = token.shared_fraction()
        if fraction != 1.0:
            samples = tuple((at, kwh * fraction) for at, kwh in samples)
        return EnergyReading(
            started_at=samples[0][0],
            finished_at=samples[-1][0],
            gpu_kwh=samples[-1][1],
            meter="nvml-power" if power_only else "nvml",
            gpu_model=_model_name(self.models),
            gpu_count=len(token.gpus),
            notes=self._notes(token),
            samples=samples,
        )

    def _notes(self, token: _NvmlRun) -> tuple[str, ...]:
        notes = []
        for gpu in token.gpus:
            if not gpu.uses_counter:
                notes.append(
                    f"GPU {gpu.index}: no energy counter; energy integrated from power sampled "
                    f"every {self.power_poll_seconds:g} s"
                )
            if gpu.resets:
                notes.append(f"GPU {gpu.index}: energy counter reset {gpu.resets} time(s)")
        if token.sampler.failed_reads:
            notes.append(f"nvml: {token.sampler.failed_reads} failed read(s) during the run")
        notes += [note for part in token.parts.values() if (note := part.note())]
        notes += [note for tally in token.shares.values() if (note := tally.note())]
        if token.utilisation_error is not None and any(t.saw_others for t in token.shares.values()):
            notes.append(f"nvml: no per-process utilisation ({token.utilisation_error})")
        if token.share_error is not None:
            notes.append(
                f"nvml: could not tell which processes used the GPUs ({token.share_error}); "
                "the job is charged its whole GPUs"
            )
        return tuple(notes)


def _model_name(models: Sequence[str]) -> str:
    """``NVIDIA H100 80GB HBM3``, or ``2 x A100 + 1 x V100`` for a mix."""
    counts = Counter(models)
    if len(counts) == 1:
        return models[0]
    return " + ".join(f"{n} x {name}" for name, n in counts.items())
