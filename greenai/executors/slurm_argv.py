"""The Slurm command lines the Slurm executor runs: pure functions of a launch and settings.

Times go to Slurm as ``YYYY-MM-DDTHH:MM:SS`` in UTC (the executor runs every Slurm command
with ``TZ=UTC``, so Slurm reads and prints them in UTC too). A planned start is rounded *up*
to the second, so Slurm never starts a job before greenai planned it; a stop time is rounded
down, so it never runs past one.
"""

from __future__ import annotations

import hashlib
import math
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from greenai.executors.base import Launch

SLURM_TIME = "%Y-%m-%dT%H:%M:%S"
SQUEUE_FORMAT = "%i|%T|%r|%S|%e"  # job id, state, reason, start, end
SACCT_FIELDS = "JobIDRaw,State,ExitCode,Start,End,ConsumedEnergyRaw"


def whole_second(at: datetime, *, round_up: bool = False) -> datetime:
    """``at`` in UTC to the whole second, down (or ``round_up``)."""
    utc = at.astimezone(UTC)
    whole = utc.replace(microsecond=0)
    return whole + timedelta(seconds=1) if round_up and whole < utc else whole


def slurm_time(at: datetime, *, round_up: bool = False) -> str:
    """``at`` as Slurm reads it (UTC, whole seconds)."""
    return whole_second(at, round_up=round_up).strftime(SLURM_TIME)


def job_name(launch: Launch) -> str:
    """``greenai-<job id>-<attempt>-<8 hex digits of its state folder>``: unique per daemon
    home too, so a lookup by name never finds another daemon's (or test's) job of that id."""
    digest = hashlib.sha256(str(launch.state_dir.absolute()).encode()).hexdigest()[:8]
    return f"greenai-{launch.job_id}-{launch.attempt}-{digest}"


def batch_script(command: Sequence[str]) -> str:
    """The ``--wrap`` text: the shell ``exec``s the command, so its exit status and the
    signals sent to the job are the command's own."""
    return "exec " + shlex.join(command)


def time_limit(limit: timedelta) -> str:
    """``--time`` as ``D-HH:MM:SS``, whole seconds rounded up (Slurm enforces it by the
    minute anyway)."""
    seconds = max(1, math.ceil(limit.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"


def sbatch_argv(
    launch: Launch,
    *,
    begin: datetime | None = None,
    sbatch: str = "sbatch",
    partition: str | None = None,
    account: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """``sbatch --parsable ...`` for ``launch``, held until ``begin`` (``None``: now)."""
    argv = [
        sbatch,
        "--parsable",
        f"--job-name={job_name(launch)}",
        f"--comment=greenai job {launch.job_id} attempt {launch.attempt}",
        f"--output={launch.log_path.absolute()}",
        f"--chdir={launch.cwd or launch.state_dir.absolute()}",
        "--export=ALL",  # the environment sbatch runs with (the executor builds it)
    ]
    if begin is not None:
        argv.append(f"--begin={slurm_time(begin, round_up=True)}")
    if launch.stop_at is not None:
        argv.append(f"--deadline={slurm_time(launch.stop_at)}")
    if launch.max_runtime is not None:
        argv.append(f"--time={time_limit(launch.max_runtime)}")
    if launch.gpus > 0:
        argv.append(f"--gres=gpu:{launch.gpus}")
    if partition:
        argv.append(f"--partition={partition}")
    if account:
        argv.append(f"--account={account}")
    argv += [*extra, f"--wrap={batch_script(launch.command)}"]
    return argv


def squeue_argv(
    *, job_id: str | None = None, name: str | None = None, squeue: str = "squeue"
) -> list[str]:
    """Every state the controller still holds, one ``SQUEUE_FORMAT`` line per job."""
    argv = [squeue, "--noheader", "--states=all", f"--format={SQUEUE_FORMAT}"]
    if job_id is not None:
        argv.append(f"--jobs={job_id}")
    if name is not None:
        argv.append(f"--name={name}")
    return argv


def sacct_argv(
    *, job_id: str | None = None, name: str | None = None, sacct: str = "sacct"
) -> list[str]:
    """The accounting records (the allocation and its steps) of one job, ``|``-separated."""
    argv = [sacct, "--noheader", "--parsable2", f"--format={SACCT_FIELDS}"]
    if job_id is not None:
        argv.append(f"--jobs={job_id}")
    if name is not None:  # without --jobs, sacct looks only from midnight unless told
        argv += [f"--name={name}", "--starttime=2000-01-01"]
    return argv


def scancel_argv(job_id: str, *, pending: bool, force: bool, scancel: str = "scancel") -> list[str]:
    """A pending job is cancelled outright (Slurm cannot signal what has not started); a
    running one gets SIGTERM (or SIGKILL with ``force``) in every process of the job,
    the batch shell's command included."""
    if pending:
        return [scancel, job_id]
    return [scancel, "--full", f"--signal={'KILL' if force else 'TERM'}", job_id]


def move_argv(job_id: str, begin: datetime, *, scontrol: str = "scontrol") -> list[str]:
    """``scontrol update`` moving a pending job's earliest start to ``begin``."""
    return [scontrol, "update", f"JobId={job_id}", f"StartTime={slurm_time(begin, round_up=True)}"]
