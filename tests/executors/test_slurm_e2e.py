"""The Slurm executor against the real single-node Slurm of scripts/ensure-slurm.sh: a job
handed over ahead of its planned start waits in Slurm for it, moves when greenai re-plans,
then runs, and its outcome is what greenai reads back."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from greenai.core.errors import ExecutorError
from greenai.executors.base import Exited, Handle, Launch, Running
from greenai.executors.slurm import SlurmExecutor
from greenai.executors.slurm_parse import QueuedJob
from tests.executors.helpers import python, wait_end, wait_for
from tests.executors.slurm_kit import SlurmKit, require_slurm, slurm_executor

pytestmark = pytest.mark.slow


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[SlurmKit]:
    require_slurm()
    slurm = SlurmKit(tmp_path)
    yield slurm
    slurm.cleanup()


def whole_second(at: datetime) -> datetime:
    return at.replace(microsecond=0) + timedelta(seconds=1 if at.microsecond else 0)


def queued(executor: SlurmExecutor, handle: Handle) -> QueuedJob:
    job = executor.queued(handle)
    assert job is not None, f"slurm does not know job {handle.ref}"
    return job


def scontrol_field(job_id: str, name: str) -> str:
    out = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job_id],
        capture_output=True, text=True, check=True, env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    fields = dict(part.split("=", 1) for part in out.split() if "=" in part)
    return fields[name]


def test_a_job_waits_for_its_plan_moves_with_a_replan_then_runs(kit: SlurmKit) -> None:
    executor = slurm_executor()
    plan = datetime.now(UTC) + timedelta(minutes=10, microseconds=300_000)
    job = kit.launch("job-plan", python("print('trained')"))
    handle = executor.submit_at(job, plan)

    pending = queued(executor, handle)
    assert (pending.state, pending.reason) == ("PENDING", "BeginTime")
    assert pending.start == whole_second(plan)  # Slurm's StartTime is greenai's plan
    assert scontrol_field(handle.ref["job_id"], "StartTime") == whole_second(plan).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    assert executor.poll(handle) == Running()

    replan = datetime.now(UTC) + timedelta(seconds=5)  # a re-plan found an earlier window
    assert executor.move(handle, replan)
    # Slurm says Reason=None until its scheduler looks again (within a second here)
    wanted = ("PENDING", "BeginTime", whole_second(replan))

    def moved() -> bool:
        job = queued(executor, handle)
        return (job.state, job.reason, job.start) == wanted

    wait_for(moved, f"slurm job {handle.ref['job_id']} to wait for {replan}", timeout=4)

    status = wait_end(executor, handle, timeout=30)
    assert isinstance(status, Exited)
    assert (status.exit_code, status.signal, status.notes) == (0, None, ())
    assert whole_second(replan) <= status.started_at <= status.finished_at  # not before its plan
    assert status.started_at < whole_second(plan)  # the re-plan, not the first plan, held
    assert "trained" in job.log_path.read_text()
    assert not executor.move(handle, plan)  # it ran: nothing to move
    assert slurm_executor().attach(handle) == status  # a restarted daemon reads the same


def test_a_failed_command_is_recorded_with_its_exit_code(kit: SlurmKit) -> None:
    executor = slurm_executor()
    handle = executor.submit(kit.launch("job-fail", python("import sys; sys.exit(3)")))
    status = wait_end(executor, handle, timeout=30)
    assert isinstance(status, Exited)
    assert (status.exit_code, status.signal, status.reading) == (3, None, None)
    assert SlurmExecutor().attach(Handle.from_json(handle.to_json())) == status


def test_cancelling_a_pending_job_ends_it_before_it_runs(kit: SlurmKit) -> None:
    executor = slurm_executor()
    launch = kit.launch("job-cancel", python("open('ran', 'w')"), cwd=str(kit.root))
    handle = executor.submit_at(launch, datetime.now(UTC) + timedelta(hours=1))
    assert queued(executor, handle).pending
    slurm_executor().cancel(handle)  # from another daemon process, by the stored handle
    status = wait_end(executor, handle, timeout=30)
    assert isinstance(status, Exited)
    assert (status.exit_code, status.signal) == (143, 15)
    assert status.notes == (f"slurm job {handle.ref['job_id']} was cancelled before it started",)
    assert not (kit.root / "ran").exists()
    assert not executor.move(handle, datetime.now(UTC))


def test_a_handle_stored_before_sbatch_answered_finds_its_job_by_name(kit: SlurmKit) -> None:
    executor = slurm_executor()
    launch = kit.launch("job-name", python("print('x')"))
    stored = executor.handle_for(launch)  # what the engine stores before submitting
    started = executor.submit_at(launch, datetime.now(UTC) + timedelta(hours=1))
    found = wait_for(lambda: slurm_executor().queued(stored), "the job by name")
    assert found.job_id == started.ref["job_id"]


def test_slurm_picks_the_gpus_a_job_asks_for(kit: SlurmKit) -> None:
    executor = slurm_executor()
    show = "import os; print('gpus=' + os.environ['CUDA_VISIBLE_DEVICES'])"
    job = Launch("job-gpu", 1, python(show), 2, (), kit.root / "runs" / "job-gpu" / "1")
    kit.launches.append(job)
    status = wait_end(executor, executor.submit(job), timeout=30)
    assert isinstance(status, Exited) and status.exit_code == 0
    assert "gpus=0,1" in job.log_path.read_text()  # the node's two (fake) GPUs, from Slurm
    too_many = Launch("job-gpus", 1, python(show), 3, (), kit.root / "runs" / "job-gpus" / "1")
    with pytest.raises(ExecutorError, match=r"gres|node configuration"):
        executor.submit(too_many)
