"""`greenai run --submit slurm`: decide the start as `greenai run` does, then hand the job to
Slurm held until then (``sbatch --begin``) instead of waiting and running it here.

The decision is taken once, now, by the same policies (threshold: now if the grid is clean
enough, else the first forecast step at or below the threshold, else when the deferral budget
is spent; window: the greenest window before the deadline). It goes to the decision log with
the Slurm job id; the run's evidence is not written here (greenai has exited by the time Slurm
runs it): a daemon with ``--executor slurm`` follows its jobs to the end and writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from greenai.core.domain import Action, Decision
from greenai.core.time import Clock, utc_now
from greenai.executors.base import Handle, Launch
from greenai.executors.slurm import SlurmExecutor
from greenai.executors.slurm_argv import whole_second
from greenai.oneshot.child import describe_command
from greenai.oneshot.flow import OneShot, OneShotDeps, decide_on_source

log = logging.getLogger(__name__)
SCHEDULERS = ("slurm",)  # what --submit can name


@dataclass(frozen=True, slots=True)
class Submitted:
    """A job handed to Slurm: the decision, when Slurm may start it, and its handle."""

    decision: Decision
    begin: datetime
    handle: Handle

    @property
    def slurm_job_id(self) -> str:
        return str(self.handle.ref["job_id"])


def planned_begin(decision: Decision, now: datetime, clock: Clock) -> datetime:
    """The wall time Slurm may start the job: now for a start decision; for a deferral, its
    planned start (policies always give one: the threshold policy's first clean step, else
    the end of the deferral budget), from the clock's time (a trace replayed faster) to the
    wall's."""
    wall_now = utc_now()
    if decision.action is Action.START or decision.planned_start is None:
        return wall_now
    ahead = max(0.0, (decision.planned_start - now).total_seconds())
    return wall_now + timedelta(seconds=clock.to_wall_seconds(ahead))


def submit_to_slurm(
    oneshot: OneShot,
    deps: OneShotDeps,
    argv: Sequence[str],
    *,
    shell: bool,
    gpus: int,
    runs_dir: Path,
    executor: SlurmExecutor,
) -> Submitted:
    """Decide, submit held until the decided start, and log the decision with the job id."""
    now = deps.clock.now()
    decision = decide_on_source(oneshot, deps, now)
    begin = whole_second(planned_begin(decision, now, deps.clock), round_up=True)  # as Slurm
    job = oneshot.job
    command = ("/bin/sh", "-c", describe_command(argv, True)) if shell else tuple(argv)
    launch = Launch(
        job.id, 1, command, gpus, (), runs_dir / job.id / "1", max_runtime=job.max_runtime
    )
    handle = executor.submit_at(launch, begin)
    logged = replace(
        decision,
        reason=f"{decision.reason}; handed to slurm job {handle.ref['job_id']}, "
        f"held until {begin.isoformat(timespec='seconds')}",
    )
    deps.record_decision(logged)
    log.info("job %s: slurm job %s begins %s", job.id, handle.ref["job_id"], begin)
    return Submitted(logged, begin, handle)
