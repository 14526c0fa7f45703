"""An in-memory ``Executor`` the test drives by hand: nothing runs until the test says how.

    fake = FakeExecutor(clock)
    handle = fake.submit(launch)            # Running; recorded in fake.launches
    fake.finish("job-1", code=0, reading=...)  # Exited, times from the clock unless given
    fake.lose("job-2", "its supervisor died")  # Lost
    again = fake.restarted()                # a new executor over the same runs (a restart)

``cancel`` records the call in ``fake.cancels`` and, like a command that obeys signals, ends
the run at once (143, or 137 with ``force``); ``obey_cancel=False`` leaves it running.
``pause`` records the call in ``fake.pauses`` and, like a command that checkpoints on the
signal, ends the run at once as paused (128 + the signal); each piece of a job replaces the
run of the one before it.
Commands named in ``missing_commands`` end at once as Exited 127, as the local executor
reports a command that is not found; ``fail_next_submit`` makes the next submit raise.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from signal import SIGKILL, SIGTERM

from greenai.core.domain import EnergyReading
from greenai.core.errors import ExecutorError
from greenai.core.time import Clock, SystemClock
from greenai.executors.base import Exited, Handle, Launch, Lost, Running, RunStatus


@dataclass
class FakeRun:
    launch: Launch
    handle: Handle
    started_at: datetime
    status: RunStatus = field(default_factory=Running)


@dataclass
class _World:
    """What outlives one executor instance: the runs, as supervisors would."""

    runs: dict[tuple[str, int], FakeRun] = field(default_factory=dict)


class FakeExecutor:
    name = "fake"
    picks_gpus = False
    can_pause = True

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        missing_commands: Collection[str] = (),
        obey_cancel: bool = True,
        world: _World | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.missing_commands = frozenset(missing_commands)
        self.obey_cancel = obey_cancel
        self.world = world or _World()
        self.launches: list[Launch] = []
        self.cancels: list[tuple[str, bool]] = []  # (job id, force)
        self.pauses: list[tuple[str, int]] = []  # (job id, signal)
        self.polls: list[str] = []
        self.attaches: list[str] = []
        self._submit_error: str | None = None

    def restarted(self) -> FakeExecutor:
        """Another executor over the same runs, as a restarted daemon would build."""
        return FakeExecutor(
            self.clock,
            missing_commands=self.missing_commands,
            obey_cancel=self.obey_cancel,
            world=self.world,
        )

    # --- the Executor protocol ---------------------------------------------------------------

    def handle_for(self, launch: Launch) -> Handle:
        return Handle(self.name, launch.job_id, launch.attempt, {"run": launch.job_id})

    def submit(self, launch: Launch) -> Handle:
        if self._submit_error is not None:
            message, self._submit_error = self._submit_error, None
            raise ExecutorError(f"job {launch.job_id}: {message}")
        busy = {gpu for run in self._live() for gpu in run.launch.gpu_ids}
        clash = sorted(busy & set(launch.gpu_ids))
        if clash:
            raise ExecutorError(f"job {launch.job_id}: GPUs {clash} are already in use")
        handle = self.handle_for(launch)
        run = FakeRun(launch, handle, self.clock.now())
        self.world.runs[(launch.job_id, launch.attempt)] = run
        self.launches.append(launch)
        if launch.command and launch.command[0] in self.missing_commands:
            note = f"command not found: {launch.command[0]}"
            run.status = Exited(127, run.started_at, run.started_at, notes=(note,))
        return handle

    def poll(self, handle: Handle) -> RunStatus:
        self.polls.append(handle.job_id)
        return self._status(handle)

    def attach(self, handle: Handle) -> RunStatus:
        self.attaches.append(handle.job_id)
        return self._status(handle)

    def cancel(self, handle: Handle, force: bool = False) -> None:
        self.cancels.append((handle.job_id, force))
        run = self.world.runs.get((handle.job_id, handle.attempt))
        if run is None or not isinstance(run.status, Running) or not self.obey_cancel:
            return
        signum = SIGKILL if force else SIGTERM
        run.status = Exited(128 + signum, run.started_at, self.clock.now(), signal=signum)

    def pause(self, handle: Handle, signum: int, grace_s: float) -> None:
        self.pauses.append((handle.job_id, signum))
        run = self.world.runs.get((handle.job_id, handle.attempt))
        if run is None or not isinstance(run.status, Running) or not self.obey_cancel:
            return
        now = self.clock.now()
        run.status = Exited(128 + signum, run.started_at, now, signal=signum, paused=True)

    # --- driving it --------------------------------------------------------------------------

    def finish(
        self,
        job_id: str,
        code: int = 0,
        *,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        reading: EnergyReading | None = None,
        signal: int | None = None,
        notes: tuple[str, ...] = (),
        attempt: int | None = None,
    ) -> Exited:
        """End the job's (latest) run with ``code``; times default to submit and now."""
        run = self.run(job_id, attempt)
        exited = Exited(
            code,
            started_at or run.started_at,
            finished_at or self.clock.now(),
            reading=reading,
            signal=signal,
            notes=notes,
        )
        run.status = exited
        return exited

    def lose(self, job_id: str, reason: str = "lost", *, attempt: int | None = None) -> Lost:
        run = self.run(job_id, attempt)
        run.status = Lost(reason)
        return run.status

    def fail_next_submit(self, message: str = "cannot start its supervisor") -> None:
        self._submit_error = message

    def run(self, job_id: str, attempt: int | None = None) -> FakeRun:
        """The job's run (its latest attempt unless ``attempt`` is given)."""
        runs = [r for (j, a), r in self.world.runs.items() if j == job_id and attempt in (None, a)]
        if not runs:
            raise KeyError(f"no run of job {job_id!r} (attempt {attempt})")
        return max(runs, key=lambda r: r.launch.attempt)

    def running(self) -> list[str]:
        """Job ids whose run is still running, in submit order."""
        return [run.launch.job_id for run in self._live()]

    def _live(self) -> list[FakeRun]:
        return [run for run in self.world.runs.values() if isinstance(run.status, Running)]

    def _status(self, handle: Handle) -> RunStatus:
        run = self.world.runs.get((handle.job_id, handle.attempt))
        if run is None or handle.executor != self.name:
            return Lost("never launched")
        return run.status
