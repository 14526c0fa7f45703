"""Runs jobs as Slurm batch jobs: ``sbatch`` to submit, ``squeue``/``sacct`` to follow,
``scancel`` to stop, ``scontrol update`` to move a pending one.

Slurm keeps the run, so the daemon keeps nothing but the handle: ``ref`` holds the Slurm job
id (once ``sbatch`` said it), the job's name (``slurm_argv.job_name``, unique per state
folder: a handle stored before ``sbatch`` answered is still found by name) and its state
folder (``output.log`` is there). A restarted daemon re-attaches by job id.

Submitting ahead is the point of Slurm here: ``submit_at(launch, begin)`` hands the job to
Slurm at once, held (``--begin``, ``Reason=BeginTime``) until its planned start; ``move``
shifts a still-pending job's start when a re-plan changes it. ``submit`` is
``submit_at(launch, None)``: eligible now.

Slurm picks the GPUs (``--gres=gpu:N``). Energy: where ``sacct`` reports
``ConsumedEnergyRaw`` (an ``acct_gather_energy`` plugin) the run's reading is it, meter
``slurm``; otherwise the run has no reading and the engine's stand-in (an estimate from the
declared power, labelled so) is its evidence.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from greenai.core.errors import ExecutorError
from greenai.core.settings import SECRET_ENV_NAMES
from greenai.executors.base import Exited, Handle, Launch, Lost, Running, RunStatus
from greenai.executors.slurm_argv import (
    job_name,
    move_argv,
    sacct_argv,
    sbatch_argv,
    scancel_argv,
    squeue_argv,
)
from greenai.executors.slurm_parse import (
    AccountedJob,
    QueuedJob,
    exited_from,
    parse_sacct,
    parse_squeue,
)
from greenai.executors.slurm_settings import SlurmSettings

log = logging.getLogger(__name__)

# Runs one Slurm command with this environment; returns its stdout, raises ExecutorError.
Runner = Callable[[Sequence[str], Mapping[str, str]], str]
NOT_FOUND_LINES = 20  # of output.log searched for the shell's "not found" on exit 127
CANCEL_MARK = "slurm-cancel"  # in the state folder: the signal greenai cancelled the job with


def run_slurm_command(argv: Sequence[str], env: Mapping[str, str], timeout: float = 30.0) -> str:
    """The real runner: ``ExecutorError`` with Slurm's own message when the command fails."""
    try:
        done = subprocess.run(
            list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExecutorError(f"{argv[0]}: {exc}") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        name = Path(argv[0]).name
        raise ExecutorError(message if message.startswith(name) else f"{name}: {message}")
    return done.stdout


class SlurmExecutor:
    """Jobs as Slurm batch jobs on the cluster this host's Slurm commands reach.

    ``base_env`` (default ``os.environ`` at each call) is the daemon's environment: the job
    inherits only its names in ``env_allow``, never ``SECRET_ENV_NAMES``, plus its own env
    and ``GREENAI_JOB_ID``/``GREENAI_ATTEMPT``."""

    name = "slurm"
    picks_gpus = True
    can_pause = False

    def __init__(
        self,
        settings: SlurmSettings | None = None,
        *,
        runner: Runner | None = None,
        base_env: Mapping[str, str] | None = None,
        env_allow: Collection[str] = (),
    ) -> None:
        self.settings = settings or SlurmSettings.from_env({})
        self._runner = runner or self._run_for_real
        self._base_env = None if base_env is None else dict(base_env)
        self.env_allow = frozenset(env_allow) - SECRET_ENV_NAMES
        self.ahead = timedelta(hours=self.settings.ahead_hours)  # SubmitsAhead

    # -- the Executor protocol -----------------------------------------------------------

    def handle_for(self, launch: Launch) -> Handle:
        ref = {
            "name": job_name(launch),
            "state_dir": str(launch.state_dir.absolute()),
            "gpus": launch.gpus,
        }
        return Handle(self.name, launch.job_id, launch.attempt, ref)

    def submit(self, launch: Launch) -> Handle:
        return self.submit_at(launch, None)

    def submit_at(self, launch: Launch, begin: datetime | None) -> Handle:
        """Hand ``launch`` to Slurm now, held until ``begin`` (``None``: eligible now)."""
        handle = self.handle_for(launch)
        try:
            launch.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ExecutorError(
                f"job {launch.job_id}: cannot create {launch.state_dir}: {exc}"
            ) from exc
        argv = sbatch_argv(
            launch,
            begin=begin,
            sbatch=self.settings.binary("sbatch"),
            partition=self.settings.partition,
            account=self.settings.account,
            extra=self.settings.extra_args,
        )
        out = self._runner(argv, self._job_env(launch))
        job_id = out.strip().split(";")[0]  # --parsable: "id" or "id;cluster"
        if not job_id.isdigit():
            raise ExecutorError(f"job {launch.job_id}: sbatch said {out.strip()!r}, not a job id")
        log.info("job %s: slurm job %s, begins %s", launch.job_id, job_id, begin or "now")
        return Handle(self.name, launch.job_id, launch.attempt, {**handle.ref, "job_id": job_id})

    def poll(self, handle: Handle) -> RunStatus:
        """``Running`` while Slurm cannot be asked (its controller or database is down): the
        job lives in Slurm whatever greenai hears, and a run reported lost would be run
        twice."""
        try:
            return self._status(handle)
        except ExecutorError as exc:
            log.warning("job %s: cannot ask Slurm, still counted running: %s", handle.job_id, exc)
            return Running()

    def _status(self, handle: Handle) -> RunStatus:
        queued = self._queued(handle)
        if queued is not None and not queued.final:
            return Running()
        accounted = self._accounted(handle, queued)
        if accounted is None:
            if queued is not None:  # the controller says it ended; accounting not yet
                return Running()
            return Lost("never launched")
        if not accounted.final:
            return Running()
        return self._exited(handle, accounted)

    def attach(self, handle: Handle) -> RunStatus:
        return self.poll(handle)

    def cancel(self, handle: Handle, force: bool = False) -> None:
        queued = self._queued(handle)
        if queued is None or queued.final:
            return  # finished, or never launched: nothing to stop
        _write_cancel_mark(handle, force)  # what it was asked, for the Exited it ends as
        argv = scancel_argv(
            queued.job_id, pending=queued.pending, force=force, scancel=self._bin("scancel")
        )
        self._runner(argv, self._slurm_env())
        log.info("job %s: slurm job %s cancelled (%s)", handle.job_id, queued.job_id,
                 "pending" if queued.pending else "KILL" if force else "TERM")  # fmt: skip

    def pause(self, handle: Handle, signum: int, grace_s: float) -> None:
        raise ExecutorError("the slurm executor cannot pause jobs: they run whole")

    # -- Slurm's own -----------------------------------------------------------------------

    def move(self, handle: Handle, begin: datetime) -> bool:
        """Move a pending job's start to ``begin``; ``False`` when it no longer pends (it
        started, or ended): a re-plan then has nothing to move."""
        queued = self._queued(handle)
        if queued is None or not queued.pending:
            return False
        self._runner(
            move_argv(queued.job_id, begin, scontrol=self._bin("scontrol")), self._slurm_env()
        )
        log.info("job %s: slurm job %s moved to %s", handle.job_id, queued.job_id, begin)
        return True

    def queued(self, handle: Handle) -> QueuedJob | None:
        """What the controller says of the job now (state, reason, expected start), if it
        still holds it."""
        return self._queued(handle)

    # -- helpers ---------------------------------------------------------------------------

    def _queued(self, handle: Handle) -> QueuedJob | None:
        job_id = handle.ref.get("job_id")
        argv = squeue_argv(
            job_id=job_id,
            name=None if job_id else str(handle.ref.get("name")),
            squeue=self._bin("squeue"),
        )
        try:
            jobs = parse_squeue(self._runner(argv, self._slurm_env()))
        except ExecutorError as exc:
            if "Invalid job id" in str(exc):  # purged from the controller: sacct knows
                return None
            raise
        return max(jobs, key=lambda job: int(job.job_id)) if jobs else None

    def _accounted(self, handle: Handle, queued: QueuedJob | None) -> AccountedJob | None:
        job_id = handle.ref.get("job_id") or (queued.job_id if queued else None)
        argv = sacct_argv(
            job_id=job_id,
            name=None if job_id else str(handle.ref.get("name")),
            sacct=self._bin("sacct"),
        )
        records = parse_sacct(self._runner(argv, self._slurm_env()))
        return max(records, key=lambda record: int(record.job_id)) if records else None

    def _exited(self, handle: Handle, record: AccountedJob) -> Exited:
        cancelled = _read_cancel_mark(handle)
        exited = exited_from(record, int(handle.ref.get("gpus", 0)), cancelled_signal=cancelled)
        if exited.exit_code == 127:
            notes = (*exited.notes, *self._not_found(handle))
            exited = Exited(exited.exit_code, exited.started_at, exited.finished_at,
                            exited.reading, exited.signal, notes, exited.limit)  # fmt: skip
        return exited

    def _not_found(self, handle: Handle) -> list[str]:
        """The batch shell's own words on a command it could not run (exit 127)."""
        log_path = Path(str(handle.ref.get("state_dir", ""))) / "output.log"
        try:
            lines = log_path.read_text(errors="replace").splitlines()[-NOT_FOUND_LINES:]
        except OSError as exc:
            return [f"exit 127 (the command could not start?); {log_path}: {exc.strerror}"]
        return [line.strip() for line in lines if "not found" in line][-1:]

    def _bin(self, name: str) -> str:
        return self.settings.binary(name)

    def _daemon_env(self) -> dict[str, str]:
        return dict(os.environ if self._base_env is None else self._base_env)

    def _slurm_env(self) -> dict[str, str]:
        """What the Slurm commands themselves run with: the daemon's environment, times in
        UTC."""
        env = {k: v for k, v in self._daemon_env().items() if k not in SECRET_ENV_NAMES}
        env["TZ"] = "UTC"
        return env

    def _job_env(self, launch: Launch) -> dict[str, str]:
        """sbatch's environment, which ``--export=ALL`` hands to the job: the allowed part of
        the daemon's, Slurm's own settings (``SLURM_CONF``, ...), the job's env, its marks."""
        daemon = self._daemon_env()
        env = {k: v for k, v in daemon.items() if k in self.env_allow or k.startswith("SLURM_")}
        env.update({k: v for k, v in (launch.env or {}).items() if k not in SECRET_ENV_NAMES})
        env.update(GREENAI_JOB_ID=launch.job_id, GREENAI_ATTEMPT=str(launch.attempt), TZ="UTC")
        env.setdefault("PATH", daemon.get("PATH", os.defpath))
        return env

    def _run_for_real(self, argv: Sequence[str], env: Mapping[str, str]) -> str:
        return run_slurm_command(argv, env, self.settings.timeout_seconds)


def _write_cancel_mark(handle: Handle, force: bool) -> None:
    """Slurm's record of a cancelled job does not say which signal was asked (and a pending
    one gets none): the state folder keeps it, so its ``Exited`` says 143 or 137."""
    path = Path(str(handle.ref.get("state_dir", ""))) / CANCEL_MARK
    try:
        path.write_text(str(int(signal.SIGKILL if force else signal.SIGTERM)))
    except OSError as exc:
        log.warning("job %s: cannot write %s: %s", handle.job_id, path, exc.strerror)


def _read_cancel_mark(handle: Handle) -> int | None:
    path = Path(str(handle.ref.get("state_dir", ""))) / CANCEL_MARK
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
