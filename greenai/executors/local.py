"""Runs jobs as local subprocesses, each in its own session with its own log file.

Each command gets ``CUDA_VISIBLE_DEVICES`` set to the GPUs the engine gave it and
``GREENAI_JOB_ID`` set to its job, so a restarted daemon can recognise (and stop) a command
that a crashed one left running. A new session per command lets cancel stop the whole process
group, not just the first process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from pathlib import Path

from greenai.core.errors import ExecutorError
from greenai.executors.base import Handle, Launch

log = logging.getLogger(__name__)


class LocalExecutor:
    """Non-blocking local runs; never two live commands on one GPU."""

    def __init__(self, base_env: dict[str, str] | None = None) -> None:
        self._base_env = dict(os.environ if base_env is None else base_env)
        self._gpus_in_use: dict[int, str] = {}

    def submit(self, launch: Launch) -> Handle:
        clash = [gpu for gpu in launch.gpu_ids if gpu in self._gpus_in_use]
        if clash:
            raise ExecutorError(f"job {launch.job_id}: GPUs {clash} are already in use")
        launch.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with launch.log_path.open("ab") as log_file:
                process = subprocess.Popen(
                    list(launch.command),
                    cwd=launch.cwd,
                    env=self._env_for(launch),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise ExecutorError(
                f"job {launch.job_id}: cannot start {launch.command[0]!r}: {exc.strerror or exc}"
            ) from exc
        for gpu in launch.gpu_ids:
            self._gpus_in_use[gpu] = launch.job_id
        log.info("job %s started as pid %d on GPUs %s", launch.job_id, process.pid, launch.gpu_ids)
        return Handle(
            launch.job_id, launch.attempt, process.pid, launch.gpu_ids, launch.log_path, process
        )

    def _env_for(self, launch: Launch) -> dict[str, str]:
        env = {**self._base_env, **(launch.env or {})}
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in launch.gpu_ids)
        env["GREENAI_JOB_ID"] = launch.job_id
        return env

    def poll(self, handle: Handle) -> int | None:
        process: subprocess.Popen[bytes] = handle.process
        code = process.poll()
        if code is not None:
            for gpu in handle.gpu_ids:
                self._gpus_in_use.pop(gpu, None)
        return code

    def cancel(self, handle: Handle, force: bool = False) -> None:
        _signal_group(handle.pid, signal.SIGKILL if force else signal.SIGTERM)

    def stop_orphan(self, job_id: str, pid: int) -> bool:
        if not _runs_job(pid, job_id):
            return False
        log.warning("job %s: stopping pid %d left running by a previous daemon", job_id, pid)
        _signal_group(pid, signal.SIGKILL)
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The command may have exited between the poll and this call: nothing left to stop.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _runs_job(pid: int, job_id: str) -> bool:
    """Whether ``pid`` is alive and was started for ``job_id`` (pids get reused)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"GREENAI_JOB_ID={job_id}".encode() in environ.split(b"\0")
