"""Waiting without fixed sleeps, commands for real processes, and local runs that a test
cleans up after itself."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from greenai.executors.base import Executor, Exited, Handle, Launch, Lost, Running
from greenai.executors.local import LocalExecutor
from greenai.meters.config import MeterConfig

T = TypeVar("T")
ESTIMATE = MeterConfig(meters="estimate", power_watts=100.0)


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """``check()`` once it is truthy, polling every 10 ms; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


def wait_end(executor: Executor, handle: Handle, timeout: float = 15.0) -> Exited | Lost:
    deadline = time.monotonic() + timeout
    while isinstance(status := executor.poll(handle), Running):
        assert time.monotonic() < deadline, f"timed out waiting for job {handle.job_id} to end"
        time.sleep(0.01)
    return status


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def gated(gate: Path, code: int = 0) -> tuple[str, ...]:
    """A command that runs until ``gate`` exists, then exits with ``code``."""
    return python(
        "import os, sys, time\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.01)\n"
        f"sys.exit({code})\n"
    )


def sleeping(seconds: float = 60) -> tuple[str, ...]:
    return python(f"import time; time.sleep({seconds})")


def process_gone(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (this machine's init may never reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


class LocalRuns:
    """Local executors and launches for one test; ``cleanup`` stops every run it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.executors: list[LocalExecutor] = []
        self.started: list[tuple[LocalExecutor, Handle]] = []

    def executor(self, **options: Any) -> LocalExecutor:
        options.setdefault("meters", ESTIMATE)
        executor = LocalExecutor(**options)
        self.executors.append(executor)
        return executor

    def launch(
        self, command: tuple[str, ...], *, gpus: tuple[int, ...] = (), **options: Any
    ) -> Launch:
        job_id = options.pop("job_id", None) or f"job-{uuid.uuid4().hex[:10]}"
        attempt = options.pop("attempt", 1)
        state_dir = self.root / "runs" / job_id / str(attempt)
        return Launch(job_id, attempt, command, len(gpus), gpus, state_dir, **options)

    def submit(self, executor: LocalExecutor, launch: Launch) -> Handle:
        handle = executor.submit(launch)
        self.started.append((executor, handle))
        return handle

    def adopt(self, handle: Handle) -> LocalExecutor:
        """A new executor that cleanup uses to stop ``handle`` (started elsewhere)."""
        executor = self.executor()
        self.started.append((executor, handle))
        return executor

    def cleanup(self) -> None:
        for executor, handle in self.started:
            executor.cancel(handle, force=True)
            wait_end(executor, handle)
        for executor in self.executors:
            executor.close(timeout=10)
