"""Reading what ``squeue`` and ``sacct`` print (the formats ``slurm_argv`` asks for) and
turning a finished job's accounting record into an ``Exited``. Pure functions.

Slurm's states: the controller holds a job while it is ``PENDING``, ``RUNNING`` (or
``CONFIGURING``, ``COMPLETING``, ``SUSPENDED``, ...) and for ``MinJobAge`` seconds after it
ended; ``sacct`` keeps the record for good. A job whose ``ExitCode`` is ``N:S`` exited with
``N``, or was killed by signal ``S`` (then ``128 + S``, as a shell says).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from greenai.core.domain import EnergyReading
from greenai.executors.base import Exited
from greenai.meters.base import joules_to_kwh

# The states a job ends in (sacct and squeue); every other state is a job still live.
FINAL_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
ENERGY_NOTE = (
    "energy from sacct's ConsumedEnergyRaw (Slurm's acct_gather_energy plugin): "
    "what the job's nodes drew while it ran, booked as CPU energy"
)


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """One ``squeue`` line."""

    job_id: str
    state: str
    reason: str
    start: datetime | None  # Slurm's expected (pending) or actual start
    end: datetime | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def pending(self) -> bool:
        return self.state == "PENDING"


@dataclass(frozen=True, slots=True)
class AccountedJob:
    """A job's ``sacct`` record: its allocation's state, exit code and times, its batch
    step's exit code (``None``: the job never ran a batch step, e.g. cancelled while
    pending) and the energy Slurm measured (``None``: no energy plugin measured it)."""

    job_id: str
    state: str
    exit_code: str
    start: datetime | None
    end: datetime | None
    energy_j: float | None
    batch_exit_code: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES and self.end is not None


def parse_slurm_time(text: str) -> datetime | None:
    """``2026-12-03T17:19:05`` (printed under ``TZ=UTC``) -> an aware UTC datetime;
    ``None``, ``Unknown``, ``N/A`` or empty -> ``None``."""
    raw = text.strip()
    if raw in ("", "None", "NONE", "Unknown", "N/A"):
        return None
    return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def base_state(text: str) -> str:
    """``CANCELLED by 0`` -> ``CANCELLED``; ``RUNNING`` -> ``RUNNING``."""
    return text.strip().split(" ", 1)[0].rstrip("+")


def parse_squeue(text: str) -> list[QueuedJob]:
    jobs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        job_id, state, reason, start, end = line.strip().split("|")
        jobs.append(
            QueuedJob(
                job_id, base_state(state), reason, parse_slurm_time(start), parse_slurm_time(end)
            )
        )
    return jobs


def parse_sacct(text: str) -> list[AccountedJob]:
    """One record per job (its allocation line), steps (``5.batch``, ``5.extern``) folded in:
    the batch step's exit code, and the steps' energy where the allocation reports none."""
    rows: dict[str, list[str]] = {}
    step_energy: dict[str, float] = {}
    batch_exit: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.strip().split("|")
        job_id, _, step = fields[0].partition(".")
        if not step:
            rows[job_id] = fields
            continue
        step_energy[job_id] = step_energy.get(job_id, 0.0) + (_energy(fields[5]) or 0.0)
        if step == "batch":
            batch_exit[job_id] = fields[2]
    return [
        AccountedJob(
            job_id,
            base_state(fields[1]),
            fields[2],
            parse_slurm_time(fields[3]),
            parse_slurm_time(fields[4]),
            _energy(fields[5]) or step_energy.get(job_id) or None,
            batch_exit.get(job_id),
        )
        for job_id, fields in rows.items()
    ]


def _energy(text: str) -> float | None:
    """Joules, or ``None`` when Slurm measured none (empty, or 0 without an energy plugin)."""
    try:
        joules = float(text)
    except ValueError:
        return None
    return joules if joules > 0 else None


def exit_status(exit_code: str) -> tuple[int, int | None]:
    """``"3:0"`` -> ``(3, None)``; ``"0:15"`` -> ``(143, 15)``."""
    code, _, signum = exit_code.partition(":")
    sig = int(signum or 0)
    return (128 + sig, sig) if sig else (int(code), None)


def exited_from(
    record: AccountedJob, gpu_count: int, *, cancelled_signal: int | None = None
) -> Exited:
    """The ``Exited`` of a finished job, its exit status the allocation's ``ExitCode``. A
    job ``CANCELLED`` (by ``scancel``) ends as killed by ``cancelled_signal``, the signal
    greenai asked for (SIGTERM when it did not cancel it): Slurm's own record of it says
    ``0:0``, or only for a moment later ``0:15`` on the batch step, whatever it sent. One
    that never ran a batch step was cancelled while pending: it ran nothing, and ends at its
    cancel time."""
    assert record.end is not None
    code, signum = exit_status(record.exit_code)
    notes: tuple[str, ...] = ()
    limit = None
    start = record.start or record.end
    if record.state == "CANCELLED":
        signum = cancelled_signal or 15
        code = 128 + signum
        if record.batch_exit_code is None:
            start = record.end
            notes = (f"slurm job {record.job_id} was cancelled before it started",)
    elif record.state == "TIMEOUT":
        limit = f"stopped after its max runtime (slurm job {record.job_id}: TIMEOUT)"
    elif record.state == "DEADLINE":
        limit = f"stopped at its deadline (slurm job {record.job_id}: DEADLINE)"
    elif record.state not in ("COMPLETED", "FAILED"):
        notes = (f"slurm job {record.job_id} ended {record.state}",)
    reading = None
    if record.energy_j is not None:
        reading = EnergyReading(
            started_at=start,
            finished_at=record.end,
            cpu_kwh=joules_to_kwh(record.energy_j),
            meter="slurm",
            gpu_count=gpu_count,
            notes=(ENERGY_NOTE,),
        )
    return Exited(code, start, record.end, reading, signum, notes, limit)
