"""Several meters as one: GPU from NVML, CPU+RAM from CodeCarbon (or RAPL), else an estimate.

``build_meter`` picks what works here. ``config.meters == "auto"`` builds *roles*, each a list
of alternatives tried in order when a run starts: GPU = [nvml], host = [codecarbon, rapl]. A
role whose alternatives all fail is left out and said so in the notes; if no role can measure
anything, the estimate meter stands in. An explicit list (``"nvml,codecarbon"``) means
exactly those meters, and any that cannot measure raises ``MeterUnavailable``. A declared
power (``power_watts``) is the job's energy model: it wins over ``auto`` and is refused
(``ConfigError``) next to a named measuring meter.

Readings merge into one: energies add, ``meter`` is the ``+``-joined names of what really
measured (``nvml+codecarbon``), and the timelines add up at every sample time of any part (a
part without a timeline is spread evenly over its run).

On a trace clock (``ScaledClock``) the measured parts are scaled to trace time and a note
says the clock and speed (``replay``). Where ``build_meter`` is given the job's CPU clock
(``job_cpu``), the whole-machine meters (CodeCarbon, RAPL) charge the job only its CPU-time
share of the host (``host_share``).

The GPUs a job was given (``gpus``, else ``CUDA_VISIBLE_DEVICES``, ``MIG-`` instances
included) are its ``gpu_count`` whatever measured them; where nothing did, their energy is
unknown (NaN: an empty ``gpu_kwh``) and a note says so. A job given none is charged none.

``counters(token)`` gives the raw hardware counters a run's meters last read (NVML mJ per GPU,
RAPL ``energy_uj`` per domain), so a record can carry what an auditor needs to recompute the
energy; meters without counters (CodeCarbon, the estimate) add nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from greenai.core.domain import NOT_MEASURED, EnergyReading
from greenai.core.errors import ConfigError, MeterUnavailable
from greenai.core.time import Clock
from greenai.meters.base import Meter
from greenai.meters.codecarbon_meter import (
    CodecarbonMeter,
    TrackerFactory,
    offline_tracker_factory,
)
from greenai.meters.config import MeterConfig
from greenai.meters.estimate import EstimateMeter
from greenai.meters.gpu_share import JobProcesses
from greenai.meters.nvml import NoGpuGiven, NvmlLibrary, NvmlMeter, parse_visible_devices
from greenai.meters.rapl import DEFAULT_ROOT, RaplMeter
from greenai.meters.replay import replay_note, replay_speed, to_trace_time
from greenai.meters.sampling import cumulative_at
from greenai.meters.shared_host import CpuClock, HostShareMeter

logger = logging.getLogger(__name__)

METER_NAMES = ("nvml", "codecarbon", "rapl", "estimate")
MAX_SAMPLES = 2000


@dataclass
class _CompositeRun:
    parts: list[tuple[Meter, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class CompositeMeter:
    """Runs one meter per role; ``required`` roles raise instead of degrading."""

    def __init__(
        self,
        roles: Sequence[Sequence[Meter]],
        fallback: Meter,
        *,
        required: bool = False,
        notes: Sequence[str] = (),
        gpus_given: int = 0,
        replay_speed: float | None = None,
    ) -> None:
        self.roles = [list(role) for role in roles if role]
        self.replay_speed = replay_speed  # a trace clock's speed: readings go on trace time
        self.fallback = fallback
        self.required = required
        self.build_notes = tuple(notes)
        self.gpus_given = gpus_given
        parts = [role[0].name for role in self.roles] or [fallback.name]
        self.name = "+".join(parts)

    def notes_at_start(self) -> tuple[str, ...]:
        """What is already known, before the run, to be missing or estimated: the notes a
        ``start`` decision carries in its ``warnings`` (the rest come at ``stop``)."""
        notes = list(self.build_notes)
        names = {meter.name for role in self.roles for meter in role}
        if not self.roles:
            notes.append(f"nothing can measure here; {self.fallback.name} will stand in")
        if names and names <= {self.fallback.name}:
            notes.append("energy will be an estimate (declared power or a TDP model), not measured")
        return tuple(notes)

    def start(self) -> _CompositeRun:
        run = _CompositeRun(notes=list(self.build_notes))
        for role in self.roles:
            self._start_role(role, run)
        if not run.parts:
            run.notes.append(f"nothing could measure; {self.fallback.name} stands in")
            run.parts.append((self.fallback, self.fallback.start()))
        return run

    def _start_role(self, role: Sequence[Meter], run: _CompositeRun) -> None:
        for meter in role:
            try:
                run.parts.append((meter, meter.start()))
                return
            except MeterUnavailable as exc:
                if self.required:
                    raise
                logger.warning("meter %s cannot start: %s", meter.name, exc)
                run.notes.append(f"{meter.name} unavailable: {exc}")

    def stop(self, token: _CompositeRun) -> EnergyReading:
        readings: list[EnergyReading] = []
        notes = list(token.notes)
        for meter, part in token.parts:
            try:
                readings.append(meter.stop(part))
            except MeterUnavailable as exc:
                if self.required:
                    raise
                logger.warning("meter %s failed at stop: %s", meter.name, exc)
                notes.append(f"{meter.name} failed at stop, its energy is missing: {exc}")
        if not readings:
            raise MeterUnavailable("every meter failed at stop: " + "; ".join(notes))
        if self.replay_speed is not None:
            notes.append(replay_note(self.replay_speed, readings))
            readings = [to_trace_time(reading, self.replay_speed) for reading in readings]
        return count_unmeasured_gpus(merge_readings(readings, notes), self.gpus_given)

    def power_now(self, token: _CompositeRun) -> tuple[float, str] | None:
        """``(watts, meters)``: the draw now of the parts that can tell (NVML's power reading,
        the estimate's model), for a live view; ``None`` when none can (CodeCarbon, RAPL)."""
        watts, names = 0.0, []
        for meter, part in token.parts:
            read = getattr(meter, "power_now", None)
            if read is None:
                continue
            watts += float(read(part))
            names.append(meter.name)
        return (watts, "+".join(names)) if names else None

    def counters(self, token: _CompositeRun) -> dict[str, dict[str, int]]:
        """``{"nvml": {"0": mJ}, "rapl": {"intel-rapl:0": uJ}}``: the raw counters the run's
        parts last read (right after ``start``: the start values; after ``stop``: the end)."""
        found: dict[str, dict[str, int]] = {}
        for meter, part in token.parts:
            read = getattr(part, "counters", None)
            values = read() if callable(read) else None
            if values:
                found[meter.name] = dict(values)
        return found


def merge_readings(readings: Sequence[EnergyReading], notes: Sequence[str] = ()) -> EnergyReading:
    """One reading from several parts measured over the same run."""
    gpu_part = next((r for r in readings if r.gpu_count), None)
    names = list(dict.fromkeys(r.meter for r in readings))
    return EnergyReading(
        started_at=min(r.started_at for r in readings),
        finished_at=max(r.finished_at for r in readings),
        cpu_kwh=sum(r.cpu_kwh for r in readings),
        gpu_kwh=sum(r.gpu_kwh for r in readings),
        ram_kwh=sum(r.ram_kwh for r in readings),
        meter="+".join(names),
        gpu_model=gpu_part.gpu_model if gpu_part else "",
        gpu_count=gpu_part.gpu_count if gpu_part else 0,
        notes=(*notes, *(note for r in readings for note in r.notes)),
        samples=merge_timelines(readings),
    )


def count_unmeasured_gpus(reading: EnergyReading, gpus_given: int) -> EnergyReading:
    """The reading with the GPUs the job was given counted (``gpu_count``, and with it the
    embodied share) even where nothing measured them; their energy is then unknown (empty
    ``gpu_kwh``), never 0."""
    if reading.gpu_count or not gpus_given:
        return reading
    note = f"{gpus_given} GPU(s) given to the job; their energy was not measured"
    return replace(
        reading, gpu_kwh=NOT_MEASURED, gpu_count=gpus_given, notes=(*reading.notes, note)
    )


def merge_timelines(readings: Sequence[EnergyReading]) -> tuple[tuple[Any, float], ...]:
    """Sum of the parts' cumulative energy at every sample time of any part (thinned to at
    most ``MAX_SAMPLES`` times, first and last kept)."""
    timelines = [_timeline(r) for r in readings]
    times = sorted({at for timeline in timelines for at, _ in timeline})
    if len(times) > MAX_SAMPLES:
        stride = len(times) / (MAX_SAMPLES - 1)
        times = [times[round(i * stride)] for i in range(MAX_SAMPLES - 1)] + [times[-1]]
    return tuple((at, sum(cumulative_at(tl, at) for tl in timelines)) for at in times)


def _timeline(reading: EnergyReading) -> Sequence[tuple[Any, float]]:
    if len(reading.samples) >= 2:
        return reading.samples
    return ((reading.started_at, 0.0), (reading.finished_at, reading.energy_kwh))


def build_meter(
    config: MeterConfig,
    gpus: Sequence[int | str] | None,
    clock: Clock,
    *,
    env: Mapping[str, str] | None = None,
    nvml: NvmlLibrary | None = None,
    tracker_factory: TrackerFactory | None = None,
    rapl_root: Path = DEFAULT_ROOT,
    record_seconds: float = 15.0,
    job_cpu: CpuClock | None = None,
    job: JobProcesses | None = None,
) -> CompositeMeter:
    """The meter for a job using ``gpus`` (``None``: ``CUDA_VISIBLE_DEVICES``, else all).

    ``job_cpu`` (CPU seconds of the job's process tree so far, e.g. ``children_cpu_seconds``
    where the command is this process's one child): the whole-machine meters (CodeCarbon,
    RAPL) then charge the job only its CPU-time share of the host (``host_share``); without
    it they charge the whole machine. ``job`` (the command's process group, once started):
    NVML then charges a GPU other processes also used by the job's share (``gpu_share``)."""
    environment: Mapping[str, str] = {} if env is None else env

    def host(meter: Meter) -> Meter:
        return meter if job_cpu is None else HostShareMeter(meter, job_cpu=job_cpu)

    builders: dict[str, Callable[[], Meter]] = {
        "nvml": lambda: NvmlMeter(
            clock, gpus=gpus, env=environment, nvml=nvml, record_seconds=record_seconds, job=job
        ),
        "codecarbon": lambda: host(
            CodecarbonMeter(
                clock, tracker_factory or offline_tracker_factory(config.country_iso_code)
            )
        ),
        "rapl": lambda: host(RaplMeter(clock, root=rapl_root, poll_seconds=record_seconds)),
        "estimate": lambda: EstimateMeter(
            clock, power_watts=config.power_watts, gpu_count=_gpu_count(gpus, environment)
        ),
    }
    requested = _requested_meters(config.meters)
    fallback = builders["estimate"]()
    given = _gpu_count(gpus, environment)
    if config.power_watts is not None:
        meter = _declared_meter(requested, fallback, gpus_given=given)
    elif requested is None:
        meter = _auto_meter(builders, fallback, gpus_given=given)
    else:
        roles = [[fallback if name == "estimate" else builders[name]()] for name in requested]
        meter = CompositeMeter(roles, fallback, required=True, gpus_given=given)
    meter.replay_speed = replay_speed(clock)
    return meter


def check_meters(
    config: MeterConfig, gpus: Sequence[int | str] | None, clock: Clock, **seams: Any
) -> None:
    """Refuse (``ConfigError``) a daemon whose named meters cannot measure here, as
    ``greenai run`` refuses: its jobs' energy would otherwise be estimated or missing
    without anyone having asked for that. ``auto`` and ``estimate`` may estimate: no check.
    ``seams`` go to ``build_meter`` (``nvml``, ``tracker_factory``, ``rapl_root``)."""
    if config.may_estimate:
        return
    try:
        build_meter(config, gpus, clock, env={}, **seams)
    except MeterUnavailable as exc:
        raise ConfigError(
            f"meters: {config.meters} cannot measure on this host ({exc}); "
            "set meters=auto to measure what can be and estimate the rest, or meters=estimate"
        ) from exc


def _declared_meter(
    requested: list[str] | None, estimate: Meter, *, gpus_given: int
) -> CompositeMeter:
    """A declared power is what the user says the job draws: it wins over what ``auto``
    would find (a user who typed ``--power-watts 300`` expects 300 W, not CodeCarbon's
    figure), and next to named measuring meters it is a contradiction, refused."""
    if requested not in (None, ["estimate"]):
        named = ",".join(requested or ())
        raise ConfigError(
            f"power_watts: a declared power replaces the meters, but meters={named} asks for "
            "measurement; drop the declared power, or use meters=auto or estimate"
        )
    # the estimate's own note says "declared N W for the whole job"
    return CompositeMeter([[estimate]], estimate, required=True, gpus_given=gpus_given)


def _auto_meter(
    builders: Mapping[str, Callable[[], Meter]], fallback: Meter, *, gpus_given: int
) -> CompositeMeter:
    gpu_role, gpu_problems = _available(builders, ["nvml"])
    host_role, host_problems = _available(builders, ["codecarbon", "rapl"])
    notes: list[str] = []
    if gpus_given and not gpu_role:
        notes.append("GPU energy not measured: " + "; ".join(map(str, gpu_problems)))
    notes.extend(str(problem) for problem in gpu_problems if isinstance(problem, NoGpuGiven))
    if gpu_role and not host_role:
        notes.append("CPU and RAM energy not measured: " + "; ".join(map(str, host_problems)))
    return CompositeMeter([gpu_role, host_role], fallback, notes=notes, gpus_given=gpus_given)


def _available(
    builders: Mapping[str, Callable[[], Meter]], names: Sequence[str]
) -> tuple[list[Meter], list[MeterUnavailable]]:
    """The meters among ``names`` that can be built here, and why the others cannot."""
    meters: list[Meter] = []
    problems: list[MeterUnavailable] = []
    for name in names:
        try:
            meters.append(builders[name]())
        except MeterUnavailable as exc:
            logger.info("meter %s unavailable: %s", name, exc)
            problems.append(exc)
    return meters, problems


def _requested_meters(text: str) -> list[str] | None:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if names in ([], ["auto"]):
        return None
    unknown = [name for name in names if name not in METER_NAMES]
    if unknown:
        raise ConfigError(f"meters: unknown {', '.join(unknown)} (use auto or {METER_NAMES})")
    if "estimate" in names and len(names) > 1:
        raise ConfigError("meters: estimate cannot be combined with measuring meters")
    return list(dict.fromkeys(names))


def _gpu_count(gpus: Sequence[int | str] | None, env: Mapping[str, str]) -> int:
    if gpus is not None:
        return len(gpus)
    visible = parse_visible_devices(env.get("CUDA_VISIBLE_DEVICES"))
    return len(visible) if visible is not None else 0
