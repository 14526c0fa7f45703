"""The vocabulary of greenai, defined once: plain frozen data, standard library only.

- job: a command someone wants run, with a deadline (``Job``).
- forecast: intensity over time as one source reported it (``Forecast``).
- decision: what a policy chose for one job at one moment, and why (``Decision``).
- plan: what one policy pass decided for a batch of jobs (``greenai.policies``).
- run: one execution of a job's command (``RunRecord``), measured by a meter (``EnergyReading``).
- evidence: the SCI row and decision-log line written for runs and decisions.

All datetimes are timezone-aware UTC. Intensities are gCO2(e)/kWh, energy kWh, power kW.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum


class Signal(StrEnum):
    """What an intensity figure means; two signals are never compared with each other."""

    AVERAGE = "average"  # grid-average emissions of the electricity consumed (UK API, eGRID)
    MARGINAL = "marginal"  # emissions of the marginal generator (WattTime MOER)


class Action(StrEnum):
    """What a decision tells the executor to do with a job now."""

    DEFER = "defer"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    REJECT = "reject"
    EXPIRE = "expire"


class JobState(StrEnum):
    """Where a queued job is in its life; only the store moves a job between states."""

    QUEUED = "queued"  # accepted, not yet planned
    SCHEDULED = "scheduled"  # planned start known, waiting for it
    RUNNING = "running"  # command started, not yet reaped
    PAUSED = "paused"  # an interruptible job between two pieces: stopped, to be resumed
    SUCCEEDED = "succeeded"  # command exited 0
    FAILED = "failed"  # command exited non-zero, or could not start
    CANCELLED = "cancelled"  # a user cancelled it
    EXPIRED = "expired"  # its deadline passed with on_deadline=expire
    REJECTED = "rejected"  # refused at admission (its project's carbon budget): never runs

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATES


_FINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED, JobState.REJECTED}
)


@dataclass(frozen=True, slots=True)
class IntensityPoint:
    """Intensity over ``[start, start + step)`` of its forecast (piecewise constant)."""

    start: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """A regular grid of intensities from one source: ``values[i]`` covers
    ``[start + i*step, start + (i+1)*step)``.

    ``static`` marks a flat annual average (eGRID): there is no better time to wait for.
    ``source`` names who really answered (e.g. ``uk:13``, ``cache:uk:13``, ``egrid:RFCE``);
    ``fallback`` is set when that source stood in for the configured first choice.
    ``forecast_only`` marks a history whose values are forecasts, not the grid's recorded
    actuals (UK regional history; a forecast standing in for a history nobody could give).
    """

    start: datetime
    step: timedelta
    values: tuple[float, ...]
    signal: Signal
    source: str
    region: str
    issued_at: datetime
    static: bool = False
    fallback: str | None = None
    warnings: tuple[str, ...] = ()
    forecast_only: bool = False

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.issued_at.tzinfo is None:
            raise ValueError("Forecast times must be timezone-aware UTC")
        if self.step <= timedelta(0):
            raise ValueError("Forecast step must be positive")
        if not self.values:
            raise ValueError("Forecast must hold at least one value")
        if any(not math.isfinite(v) or v < 0 for v in self.values):
            raise ValueError("Forecast values must be finite and non-negative")

    @property
    def end(self) -> datetime:
        return self.start + self.step * len(self.values)

    @property
    def points(self) -> tuple[IntensityPoint, ...]:
        return tuple(
            IntensityPoint(self.start + i * self.step, v) for i, v in enumerate(self.values)
        )

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def index_at(self, at: datetime) -> int:
        """Index of the step holding ``at``; raises ``ValueError`` outside the forecast."""
        if not self.covers(at):
            raise ValueError(f"{at.isoformat()} is outside forecast {self.source}")
        return int((at - self.start) // self.step)

    def value_at(self, at: datetime) -> float:
        return self.values[self.index_at(at)]

    def since(self, at: datetime) -> Forecast:
        """The same forecast without the steps that ended at or before ``at``."""
        if not self.covers(at):
            return self
        first = self.index_at(at)
        return replace(self, start=self.start + first * self.step, values=self.values[first:])


def provider_of(source: str) -> str:
    """The provider name in a source label: ``uk:13`` -> ``uk``, ``cache:uk:13`` -> ``uk``."""
    parts = source.split(":")
    return parts[1] if parts[0] == "cache" and len(parts) > 1 else parts[0]


class OnDeadline(StrEnum):
    """What happens to a job that has not started when its deadline comes."""

    RUN = "run"  # start it anyway (late is better than never)
    EXPIRE = "expire"  # give up: the result is worthless after the deadline


@dataclass(frozen=True, slots=True)
class Job:
    """A command someone wants run and the window it may run in: it may start at
    ``submitted_at`` and must finish by ``deadline``. The one job type of greenai: `greenai run`
    builds one, the daemon stores them, `greenai simulate` reads them from a workload.

    ``policy``, ``threshold`` and ``provider`` are the job's own choices (``None``: the
    front-end's default). ``power_kw`` is a declared draw (workloads); 0 means unknown.
    A job is ``flexible`` when it may wait for a cleaner time, rigid otherwise.
    ``max_runtime`` (wall time from the command's real start) stops a run that takes longer;
    ``None``: no limit. ``pause_signal`` and ``pause_grace`` say how to pause an interruptible
    job run in pieces (so it can checkpoint), where it needs other than the daemon's.
    """

    id: str
    submitted_at: datetime
    duration: timedelta
    deadline: datetime
    _: KW_ONLY
    name: str = ""
    command: tuple[str, ...] = ()
    gpus: int = 1
    interruptible: bool = False
    flexible: bool = True
    power_kw: float = 0.0
    policy: str | None = None
    threshold: float | None = None
    provider: str | None = None
    project: str | None = None
    on_deadline: OnDeadline = OnDeadline.RUN
    cwd: str | None = None
    env: dict[str, str] | None = None
    max_runtime: timedelta | None = None
    pause_signal: str | None = None  # pauses a piece of it (``SIGUSR1``); None: the daemon's
    pause_grace: timedelta | None = None  # from that signal to SIGKILL; None: the daemon's

    def __post_init__(self) -> None:
        if self.submitted_at.tzinfo is None or self.deadline.tzinfo is None:
            raise ValueError(f"job {self.id}: times must be timezone-aware UTC")
        if self.duration < timedelta(0):
            raise ValueError(f"job {self.id}: duration must not be negative")
        if self.max_runtime is not None and self.max_runtime <= timedelta(0):
            raise ValueError(f"job {self.id}: max_runtime must be positive")

    @property
    def latest_start(self) -> datetime:
        """The last moment the job can start and still finish by its deadline."""
        return self.deadline - self.duration


@dataclass(frozen=True, slots=True)
class Decision:
    """One policy choice for one job at one moment; serialised as a decision-log line."""

    at: datetime
    job_id: str
    policy: str
    action: Action
    reason: str
    intensity: float | None = None
    threshold: float | None = None
    forecast_min: float | None = None
    planned_start: datetime | None = None
    deadline: datetime | None = None
    provider: str | None = None
    region: str | None = None
    signal: Signal | None = None
    fallback: str | None = None
    warnings: tuple[str, ...] = ()
    forecast_intensity: float | None = None  # mean expected over the planned run


NOT_MEASURED = float("nan")  # an energy nobody measured: unknown, never 0


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """Energy measured over one run. ``meter`` names what measured each part
    (``nvml``, ``codecarbon``, ``rapl``, ``estimate`` or a ``+``-joined mix);
    ``samples`` is a coarse energy timeline ``(at, cumulative_kwh)`` used to weight
    intensity over time, empty when only the totals are known. A part nobody measured is
    NaN (``NOT_MEASURED``), written as an empty cell, never as 0; ``energy_kwh`` is then
    unknown (NaN) too."""

    started_at: datetime
    finished_at: datetime
    cpu_kwh: float = 0.0
    gpu_kwh: float = 0.0
    ram_kwh: float = 0.0
    meter: str = "estimate"
    gpu_model: str = ""
    gpu_count: int = 0
    notes: tuple[str, ...] = ()
    samples: tuple[tuple[datetime, float], ...] = field(default=())

    @property
    def energy_kwh(self) -> float:
        return self.cpu_kwh + self.gpu_kwh + self.ram_kwh


@dataclass(frozen=True, slots=True)
class EmbodiedFactors:
    """The settings an embodied share was computed with (SCI ``M``), kept with the run so an
    audit can recompute it whatever the settings are later."""

    kg_per_gpu: float
    kg_host: float
    host_gpus: int
    lifetime_years: float


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One finished run, everything the SCI evidence row needs. ``history`` is the intensity
    history it was accounted with and ``embodied`` the factors of its embodied share: what
    ``greenai audit`` recomputes the row from."""

    run_id: str
    job_id: str
    job_name: str
    command: str
    host: str
    submitted_at: datetime
    started_at: datetime
    finished_at: datetime
    exit_code: int | None
    policy: str
    decision: str
    provider: str
    region: str
    signal: Signal
    forecast_intensity: float | None
    actual_intensity: float | None
    energy: EnergyReading
    operational_g: float
    embodied_g: float
    functional_unit: str
    units: float
    counterfactual_intensity: float | None
    counterfactual_g: float | None
    fallback: str | None = None
    history: Forecast | None = None
    embodied: EmbodiedFactors | None = None

    @property
    def delay_s(self) -> float:
        return (self.started_at - self.submitted_at).total_seconds()

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()
