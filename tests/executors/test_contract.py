"""The ``Executor`` contract, kept by every implementation: the real local executor (real
supervisors, real commands) and the fake the engine tests use.

Each implementation comes with a kit that turns the suite's intentions (a command that runs
until released, one that sleeps, one that does not exist) into what that executor runs, and
that builds a *new* executor over the same runs, as a restarted daemon would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from greenai.executors.base import Executor, Exited, Handle, Launch, Lost, Running
from tests.executors.fake import FakeExecutor
from tests.executors.helpers import LocalRuns, gated, sleeping, wait_end
from tests.executors.k8s_helpers import KubeRuns
from tests.executors.slurm_kit import SlurmKit, require_slurm

MISSING = "/no/such/binary"


class Kit(Protocol):
    def new(self) -> Executor:
        """An executor over the same runs (the first call: the daemon; later: restarts)."""
        ...

    def gated(self, job_id: str, code: int) -> Launch:
        """A launch whose command runs until ``release``, then exits with ``code``."""
        ...

    def release(self, handle: Handle) -> None: ...

    def sleeping(self, job_id: str) -> Launch: ...

    def missing(self, job_id: str) -> Launch: ...


class LocalKit:
    def __init__(self, runs: LocalRuns) -> None:
        self.runs = runs

    def new(self) -> Executor:
        return self.runs.executor()

    def gated(self, job_id: str, code: int) -> Launch:
        return self.runs.launch(gated(self._gate(job_id), code), job_id=job_id)

    def release(self, handle: Handle) -> None:
        self._gate(handle.job_id).touch()

    def sleeping(self, job_id: str) -> Launch:
        return self.runs.launch(sleeping(), job_id=job_id)

    def missing(self, job_id: str) -> Launch:
        return self.runs.launch((MISSING, "--flag"), job_id=job_id)

    def _gate(self, job_id: str) -> Path:
        return self.runs.root / f"{job_id}.gate"


class FakeKit:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.first: FakeExecutor | None = None
        self.codes: dict[str, int] = {}

    def new(self) -> Executor:
        if self.first is None:
            self.first = FakeExecutor(missing_commands={MISSING})
            return self.first
        return self.first.restarted()

    def gated(self, job_id: str, code: int) -> Launch:
        self.codes[job_id] = code
        return self._launch(job_id, ("train",))

    def release(self, handle: Handle) -> None:
        assert self.first is not None
        self.first.finish(handle.job_id, self.codes[handle.job_id])

    def sleeping(self, job_id: str) -> Launch:
        return self._launch(job_id, ("sleep", "60"))

    def missing(self, job_id: str) -> Launch:
        return self._launch(job_id, (MISSING,))

    def _launch(self, job_id: str, command: tuple[str, ...]) -> Launch:
        return Launch(job_id, 1, command, 0, (), self.root / job_id / "1")


class KubeKit:
    """Jobs on a loopback API server that plays the cluster (``tests/executors/k8s_server``):
    a gated Job runs until released, then ends with its code; deleting one stops its pod."""

    def __init__(self, runs: KubeRuns) -> None:
        self.runs = runs
        self.codes: dict[str, int] = {}

    def new(self) -> Executor:
        return self.runs.executor()

    def gated(self, job_id: str, code: int) -> Launch:
        self.codes[job_id] = code
        return self.runs.launch(job_id, ("train",))

    def release(self, handle: Handle) -> None:
        self.runs.fake.finish(str(handle.ref["name"]), self.codes[handle.job_id])

    def sleeping(self, job_id: str) -> Launch:
        return self.runs.launch(job_id, ("sleep", "60"))

    def missing(self, job_id: str) -> Launch:
        return self.runs.launch(job_id, (MISSING, "--flag"))


@pytest.fixture(
    params=["local", "fake", "kubernetes", pytest.param("slurm", marks=pytest.mark.slow)]
)
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    if request.param == "fake":
        yield FakeKit(tmp_path)
    elif request.param == "kubernetes":
        yield KubeKit(request.getfixturevalue("kube"))
    elif request.param == "slurm":  # the real single-node Slurm of scripts/ensure-slurm.sh
        require_slurm()
        slurm = SlurmKit(tmp_path)
        yield slurm
        slurm.cleanup()
    else:
        yield LocalKit(request.getfixturevalue("local_runs"))


def test_handle_for_is_pure_and_is_what_submit_returns(kit: Kit) -> None:
    executor = kit.new()
    launch = kit.gated("job-a", 0)
    handle = executor.handle_for(launch)
    assert executor.handle_for(launch) == handle
    assert not launch.state_dir.exists()
    started = executor.submit(launch)  # the same, or with what starting taught (a Slurm id)
    assert (started.executor, started.job_id, started.attempt) == (
        handle.executor, handle.job_id, handle.attempt,
    )  # fmt: skip
    assert started.ref.items() >= handle.ref.items()
    assert executor.poll(handle) == executor.poll(started)  # found by either
    kit.release(handle)
    assert wait_end(executor, handle) == executor.poll(handle)


def test_handles_round_trip_through_json(kit: Kit) -> None:
    executor = kit.new()
    handle = executor.submit(kit.gated("job-a", 0))
    text = json.dumps(handle.to_json())
    assert Handle.from_json(json.loads(text)) == handle
    kit.release(handle)
    assert wait_end(executor, Handle.from_json(json.loads(text))) == executor.poll(handle)


def test_poll_says_running_then_exited_with_the_real_exit_code(kit: Kit) -> None:
    executor = kit.new()
    handle = executor.submit(kit.gated("job-a", 3))
    assert executor.poll(handle) == Running()
    kit.release(handle)
    status = wait_end(executor, handle)
    assert isinstance(status, Exited)
    assert (status.exit_code, status.signal) == (3, None)
    assert status.started_at <= status.finished_at


def test_attach_from_a_new_executor_gives_the_same_answer(kit: Kit) -> None:
    executor = kit.new()
    handle = executor.submit(kit.gated("job-a", 0))
    assert kit.new().attach(handle) == Running()
    kit.release(handle)
    status = wait_end(executor, handle)
    assert isinstance(status, Exited) and status.exit_code == 0
    assert kit.new().attach(handle) == status
    assert kit.new().poll(handle) == status


@pytest.mark.parametrize(("force", "code"), [(False, 143), (True, 137)])
def test_cancel_stops_a_running_command(kit: Kit, force: bool, code: int) -> None:
    executor = kit.new()
    handle = executor.submit(kit.sleeping("job-a"))
    assert executor.poll(handle) == Running()
    executor.cancel(handle, force=force)
    status = wait_end(executor, handle)
    assert isinstance(status, Exited)
    assert (status.exit_code, status.signal) == (code, code - 128)


def test_cancel_leaves_a_finished_run_alone(kit: Kit) -> None:
    executor = kit.new()
    handle = executor.submit(kit.gated("job-a", 5))
    kit.release(handle)
    status = wait_end(executor, handle)
    executor.cancel(handle, force=True)
    kit.new().cancel(handle)
    assert executor.poll(handle) == status


def test_a_command_that_cannot_start_ends_as_exited_127_with_a_note(kit: Kit) -> None:
    executor = kit.new()
    handle = executor.submit(kit.missing("job-a"))
    status = wait_end(executor, handle)
    assert isinstance(status, Exited)
    assert status.exit_code == 127
    assert any(MISSING in note and "not found" in note for note in status.notes)


def test_a_never_launched_handle_is_lost(kit: Kit) -> None:
    executor = kit.new()
    handle = executor.handle_for(kit.gated("job-a", 0))
    for status in (executor.poll(handle), executor.attach(handle), kit.new().attach(handle)):
        assert status == Lost("never launched")
    executor.cancel(handle)  # nothing to stop, and no error
