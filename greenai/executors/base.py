"""What the scheduling core needs from anything that runs jobs, behind opaque handles.

An executor is non-blocking and restart-safe:

- ``handle_for(launch)`` says, before anything starts, where the run will be found (a local
  run's state folder, later a Kubernetes Job's name or a Slurm job's name). The engine stores
  that handle in the same transaction that marks the job running, so a daemon that dies while
  launching never leaves a run that nobody can find.
- ``submit(launch)`` starts it and returns the handle (updated when starting taught the
  executor more, e.g. a Slurm job id); ``ExecutorError`` when it cannot start.
- ``poll(handle)`` says how the run is doing: ``Running``, ``Exited`` (with its real exit
  status, times and, where the executor measures energy, the meter reading) or ``Lost``.
- ``attach(handle)`` is ``poll`` for a handle that another daemon process stored: after a
  restart the engine re-attaches to every run instead of killing it.
- ``cancel(handle, force)`` asks the run to stop (SIGTERM-like) or makes it stop.
- ``pause(handle, signum, grace_s)`` stops a piece of an interruptible job so it can
  checkpoint: ``signum`` now, SIGKILL ``grace_s`` later, kept by whatever watches the run (the
  local supervisor) even while no daemon runs; the run then ends ``Exited`` with ``paused``.
  ``can_pause`` says whether an executor can (interruptible jobs run whole where not).

GPU slots: the engine counts them and, for executors that do not pick GPUs themselves
(``picks_gpus`` false: the local one), also chooses which (``Launch.gpu_ids``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from greenai.core.domain import EnergyReading
from greenai.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Launch:
    """One attempt at running a job's command."""

    job_id: str
    attempt: int
    command: tuple[str, ...]
    gpus: int  # how many GPU slots the job holds
    gpu_ids: tuple[int, ...]  # which ones, when the engine assigns them; () otherwise
    state_dir: Path  # this attempt's own folder: output log and the executor's records
    cwd: str | None = None
    env: Mapping[str, str] | None = None
    stop_at: datetime | None = None  # SIGTERM the command then (daemon's clock); None: never
    grace_s: float = 30.0  # wall seconds from that SIGTERM to SIGKILL
    max_runtime: timedelta | None = None  # SIGTERM it this long (wall) after it starts, too
    log_max_bytes: int | None = None  # rotate output.log at this size; None: no cap
    log_backups: int = 2  # rotated logs kept (output.log.1 ... output.log.N)
    piece: int = 0  # an interruptible job's piece (1, 2, ...); 0: the job runs whole

    @property
    def log_path(self) -> Path:
        return self.state_dir / "output.log"


@dataclass(frozen=True, slots=True)
class Handle:
    """Where a launched run can be found again, from any process: JSON-able by design.

    ``ref`` is the executor's own (local: the state folder; Kubernetes: a Job name)."""

    executor: str
    job_id: str
    attempt: int
    ref: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "job_id": self.job_id,
            "attempt": self.attempt,
            "ref": dict(self.ref),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Handle:
        try:
            return cls(
                str(data["executor"]),
                str(data["job_id"]),
                int(data["attempt"]),
                dict(data.get("ref") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an executor handle: {dict(data)!r}") from exc


@dataclass(frozen=True, slots=True)
class Running:
    """Still running (or still starting)."""


@dataclass(frozen=True, slots=True)
class Exited:
    """The run ended: ``exit_code`` as a shell reports it (128 + N when killed by signal N),
    times on the daemon's clock, and the energy reading when the executor measured it.
    ``limit`` says which of the launch's limits stopped it (``stopped after its max runtime
    0:00:02``, ``stopped at its deadline ...``), whatever the command then exited with;
    ``None`` when it ended on its own or on request. ``paused``: it was stopped on a pause
    request (``Executor.pause``), whatever it exited with."""

    exit_code: int
    started_at: datetime
    finished_at: datetime
    reading: EnergyReading | None = None
    signal: int | None = None
    notes: tuple[str, ...] = ()
    limit: str | None = None
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Lost:
    """Nothing runs and nothing says how it ended (never launched, or its supervisor died).
    Whatever the run left behind has been stopped."""

    reason: str


RunStatus = Running | Exited | Lost


class Executor(Protocol):
    name: str
    picks_gpus: bool  # True: the executor (Slurm, Kubernetes) chooses GPUs itself
    can_pause: bool  # True: ``pause`` stops a piece so that it can be resumed later

    def handle_for(self, launch: Launch) -> Handle:
        """Where ``launch`` will be found once started; no side effects."""
        ...

    def submit(self, launch: Launch) -> Handle:
        """Start ``launch`` now; raises ``ExecutorError`` when it cannot start."""
        ...

    def poll(self, handle: Handle) -> RunStatus: ...

    def attach(self, handle: Handle) -> RunStatus:
        """Take over a run that another daemon process started (after a restart)."""
        ...

    def cancel(self, handle: Handle, force: bool = False) -> None:
        """Ask the run to stop, or (``force``) make it stop; a finished run is left alone."""
        ...

    def pause(self, handle: Handle, signum: int, grace_s: float) -> None:
        """Ask the run to pause (see above); asking twice, or a finished run, changes nothing."""
        ...


@runtime_checkable
class ForeseesMeterNotes(Protocol):
    """An executor that can say, before a run, what its meters will not measure (GPU energy
    without NVML, an estimate standing in): the engine puts it in the start decision."""

    def meter_notes(self, gpu_ids: tuple[int, ...]) -> tuple[str, ...]: ...


@runtime_checkable
class SubmitsAhead(Protocol):
    """An executor that takes a job before its start and holds it there (Slurm's
    ``--begin``): the engine hands a planned job over up to ``ahead`` before its planned
    start, ``move``s it when a re-plan moves the start, and claims it at the start without
    submitting it again. ``move`` is ``False`` once the run no longer waits (it started)."""

    ahead: timedelta

    def submit_at(self, launch: Launch, begin: datetime | None) -> Handle: ...

    def move(self, handle: Handle, begin: datetime) -> bool: ...


def parse_gpu_slots(text: str) -> tuple[int, ...]:
    """``"4"`` -> ``(0, 1, 2, 3)``; ``"0,2,3"`` -> ``(0, 2, 3)``; ``"0"`` -> no GPUs."""
    raw = text.strip()
    try:
        if "," not in raw:
            return tuple(range(int(raw)))
        ids = tuple(int(part) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"gpu_slots: {text!r} is neither a count nor a list of indices") from exc
    if len(set(ids)) != len(ids) or any(i < 0 for i in ids):
        raise ConfigError(f"gpu_slots: {text!r} repeats an index or has a negative one")
    return ids


def pick_gpus(slots: Collection[int], busy: Collection[int], count: int) -> tuple[int, ...] | None:
    """The first ``count`` free slots in slot order, or ``None`` when too few are free."""
    free = [gpu for gpu in slots if gpu not in busy]
    return tuple(free[:count]) if len(free) >= count else None
