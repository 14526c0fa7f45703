"""Runs jobs on this machine, each through a supervisor process that outlives the daemon.

``submit`` writes the run's ``launch.json`` into its state folder and starts
``python -m greenai.executors.supervisor STATE_DIR`` in a session of its own, so neither the
daemon's death nor a signal to the daemon's process group reaches the run. The supervisor
starts and meters the command and records how it ended (``greenai.executors.supervisor``
describes the files); ``poll`` and ``attach`` only read those records, so a restarted daemon
learns a run's real outcome instead of killing and re-running it. The handle is the folder.

A live supervisor is recognised by its pid *and* its command line naming the folder (pids get
reused). When one has died without an exit record, whatever its command left running is found
by its environment (``GREENAI_JOB_ID`` and ``GREENAI_ATTEMPT``) and stopped before the run is
reported ``Lost``.

The job's environment is an allow-list: of the daemon's environment (``base_env``) it gets only
the names in ``env_allow`` (the ``job_env_allow`` setting), then its own env, its GPUs
(``CUDA_VISIBLE_DEVICES``, numbered by PCI bus as NVML numbers them: ``CUDA_DEVICE_ORDER=
PCI_BUS_ID`` unless its own env sets an order) and its marks; the executor records that
base in ``launch.json``,
and the job's own env there sealed with a key of that launch only, which it hands to the
supervisor in its environment and keeps nowhere (a job's env may hold its credentials).
The supervisor process itself runs with that base plus what it needs to import greenai
(``SUPERVISOR_ENV``: ``PYTHONPATH``, ``VIRTUAL_ENV``, ...), which it does not pass on. Names in
``SECRET_ENV_NAMES`` reach neither, not even from the job's own env (they are dropped, and the
exit record says so). The state folder is 0700 and its files 0600.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from greenai.core.errors import ConfigError, ExecutorError, MeterUnavailable
from greenai.core.settings import SECRET_ENV_NAMES, Settings
from greenai.core.time import Clock, SystemClock, clock_spec, format_time, utc_now
from greenai.executors.base import Exited, Handle, Launch, Lost, Running, RunStatus
from greenai.executors.supervisor import (
    CANCEL,
    EXIT,
    LAUNCH,
    LAUNCH_KEY,
    MODULE,
    PAUSE,
    STARTED,
    SUPERVISOR,
    SUPERVISOR_LOG,
    launch_record,
    new_launch_key,
    open_private,
    read_exit,
    read_launch,
    read_record,
    write_record,
)
from greenai.meters.config import MeterConfig

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0  # how long a supervisor someone else started may take to say it is alive
LEGACY_STOPPED = "started by an older greenai; stopped"
LEGACY_GONE = "started by an older greenai; no longer running"
# What the supervisor process needs of the daemon's environment (to find Python and greenai,
# and a locale), whether or not jobs may have it; never passed on to the job.
SUPERVISOR_ENV = frozenset(
    {
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "LD_LIBRARY_PATH",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TMPDIR",
    }
)


def parse_env_allow(text: str) -> frozenset[str]:
    """``"PATH, HOME,,LANG"`` -> ``{"PATH", "HOME", "LANG"}``."""
    return frozenset(name.strip() for name in text.split(",") if name.strip())


DEFAULT_ENV_ALLOW = parse_env_allow(str(Settings.model_fields["job_env_allow"].default))


class LocalExecutor:
    """Non-blocking, restart-safe local runs; never two live runs on one GPU.

    ``base_env`` (default: ``os.environ`` as it is at each submit) is the daemon's environment;
    the command inherits only its names in ``env_allow`` (a collection of names, or the
    setting's comma-separated text), never ``SECRET_ENV_NAMES``; ``python`` runs the
    supervisor."""

    name = "local"
    picks_gpus = False
    can_pause = True

    def __init__(
        self,
        meters: MeterConfig,
        clock: Clock = SystemClock(),
        base_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        env_allow: Collection[str] | str = DEFAULT_ENV_ALLOW,
    ) -> None:
        self.meters = meters
        self._clock = clock_spec(clock)  # TypeError for a clock no other process can keep
        self._meter_clock = clock
        self._meter_notes: dict[tuple[int, ...], tuple[str, ...]] = {}
        self._base_env = None if base_env is None else dict(base_env)
        allow = parse_env_allow(env_allow) if isinstance(env_allow, str) else env_allow
        self.env_allow = frozenset(allow) - SECRET_ENV_NAMES
        self._python = python
        self._supervisors: dict[Path, subprocess.Popen[bytes]] = {}  # started by this process
        self._exiting: list[subprocess.Popen[bytes]] = []  # recorded an exit, not yet reaped
        self._gpus: dict[int, Handle] = {}

    def meter_notes(self, gpu_ids: tuple[int, ...]) -> tuple[str, ...]:
        """What the meter of a run on ``gpu_ids`` will not measure, known before it starts (the
        supervisor builds the same meter); worked out once per set of GPUs."""
        if gpu_ids not in self._meter_notes:
            from greenai.meters.composite import build_meter

            try:
                meter = build_meter(self.meters, list(gpu_ids) or None, self._meter_clock, env={})
                notes = meter.notes_at_start()
            except (MeterUnavailable, ConfigError) as exc:
                notes = (f"energy not measured: the meter could not start: {exc}",)
            self._meter_notes[gpu_ids] = notes
        return self._meter_notes[gpu_ids]

    def handle_for(self, launch: Launch) -> Handle:
        return Handle(
            self.name, launch.job_id, launch.attempt, {"state_dir": str(launch.state_dir)}
        )

    def submit(self, launch: Launch) -> Handle:
        handle = self.handle_for(launch)
        self._check_gpus(launch)
        state_dir = launch.state_dir.absolute()
        daemon_env = dict(os.environ if self._base_env is None else self._base_env)
        job_base = {k: v for k, v in daemon_env.items() if k in self.env_allow}
        launch_key = new_launch_key()
        record = launch_record(
            launch,
            self.meters,
            self._clock,
            base_env=job_base,
            secret_names=SECRET_ENV_NAMES,
            env_key=launch_key,
        )
        if record["env_dropped"]:
            log.warning(
                "job %s: secret variables in its env are not passed on: %s",
                launch.job_id,
                ", ".join(record["env_dropped"]),
            )
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            state_dir.chmod(0o700)
            if (state_dir / LAUNCH).exists():
                raise ExecutorError(f"job {launch.job_id}: {state_dir} was launched before")
            write_record(state_dir / LAUNCH, record)
        except OSError as exc:
            raise ExecutorError(f"job {launch.job_id}: cannot write {state_dir}: {exc}") from exc
        supervisor_env = {k: v for k, v in daemon_env.items() if k in SUPERVISOR_ENV}
        supervisor_env = {**supervisor_env, **job_base}
        for name in SECRET_ENV_NAMES:
            supervisor_env.pop(name, None)
        supervisor_env[LAUNCH_KEY] = launch_key.decode("ascii")
        self._supervisors[state_dir] = self._start_supervisor(
            launch.job_id, state_dir, supervisor_env
        )
        for gpu in launch.gpu_ids:
            self._gpus[gpu] = handle
        log.info("job %s: supervised in %s on GPUs %s", launch.job_id, state_dir, launch.gpu_ids)
        return handle

    def poll(self, handle: Handle) -> RunStatus:
        self._reap()
        if _is_legacy(handle):
            return _stop_legacy(handle)
        state_dir = _state_dir(handle)
        status = self._status(handle, state_dir)
        if not isinstance(status, Running):
            self._release(state_dir)
        return status

    def attach(self, handle: Handle) -> RunStatus:
        status = self.poll(handle)
        if isinstance(status, Running) and not _is_legacy(handle):
            self._claim_gpus(handle)
        return status

    def cancel(self, handle: Handle, force: bool = False) -> None:
        if _is_legacy(handle):
            _stop_legacy(handle)
            return
        state_dir = _state_dir(handle)
        if (state_dir / EXIT).exists() or not (state_dir / LAUNCH).exists():
            return  # finished, or never launched: nothing to stop
        sig = signal.SIGKILL if force else signal.SIGTERM
        if self._signal_command(handle, state_dir, sig):
            return
        # Not started yet: the supervisor must not start it. It reads cancel.json before it
        # starts the command; one already past that point hears SIGTERM (its handlers are set
        # before it writes supervisor.json) and passes the cancel on to the command.
        request = {"force": force, "at": format_time(utc_now()), "reason": "cancelled"}
        _write(handle, state_dir / CANCEL, request)
        pid = self._live_supervisor_pid(state_dir)
        if pid is not None:
            _kill(pid, signal.SIGTERM)
        self._signal_command(handle, state_dir, sig)

    def pause(self, handle: Handle, signum: int, grace_s: float) -> None:
        """Leave a pause request for the run's supervisor, which signals the command and keeps
        the grace (it outlives this daemon); a request already there is not repeated."""
        state_dir = _state_dir(handle)
        if (state_dir / EXIT).exists() or not (state_dir / LAUNCH).exists():
            return
        if (state_dir / PAUSE).exists():
            return
        name = signal.Signals(signum).name
        request = {"signal": name, "grace_s": grace_s, "at": format_time(utc_now()),
                   "reason": "paused"}  # fmt: skip
        _write(handle, state_dir / PAUSE, request)
        log.info("job %s: pause (%s) asked of its supervisor", handle.job_id, name)

    def close(self, timeout: float = 0.0) -> None:
        """Reap the supervisors this process started whose runs have ended, waiting up to
        ``timeout`` seconds for them to exit; the others keep running on their own."""
        deadline = time.monotonic() + timeout
        for state_dir in list(self._supervisors):
            if (state_dir / EXIT).exists():
                self._exiting.append(self._supervisors.pop(state_dir))
        for process in self._exiting:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("supervisor %d is slow to exit after its record", process.pid)
        self._reap()

    # --- status ------------------------------------------------------------------------------

    def _status(self, handle: Handle, state_dir: Path) -> RunStatus:
        exited = _exited(state_dir)
        if exited is not None:
            return exited
        if not (state_dir / LAUNCH).exists():
            return Lost("never launched")
        if self._supervisor_alive(handle, state_dir):
            return Running()
        exited = _exited(state_dir)  # its last act may have been to write the record
        if exited is not None:
            return exited
        return self._lost(handle, state_dir)

    def _supervisor_alive(self, handle: Handle, state_dir: Path) -> bool:
        process = self._supervisors.get(state_dir)
        if process is not None:
            return process.poll() is None
        if _record(state_dir / SUPERVISOR) is not None:
            return self._live_supervisor_pid(state_dir) is not None
        try:
            age = time.time() - (state_dir / LAUNCH).stat().st_mtime
        except FileNotFoundError:
            return False
        if age < GRACE_SECONDS:
            return True  # still starting (after a daemon restart)
        # Too late: make sure a supervisor that does come up never starts the command.
        request = {"force": False, "at": format_time(utc_now()), "reason": "supervisor too late"}
        _write(handle, state_dir / CANCEL, request)
        return self._live_supervisor_pid(state_dir) is not None

    def _live_supervisor_pid(self, state_dir: Path) -> int | None:
        """The pid in ``supervisor.json`` if that process is this folder's supervisor."""
        record = _record(state_dir / SUPERVISOR)
        pid = record.get("pid") if record else None
        if not isinstance(pid, int):
            return None
        process = self._supervisors.get(state_dir)
        if process is not None:
            return pid if process.pid == pid and process.poll() is None else None
        return pid if _is_supervisor(pid, state_dir) else None

    def _lost(self, handle: Handle, state_dir: Path) -> Lost:
        process = self._supervisors.get(state_dir)
        if _record(state_dir / SUPERVISOR) is None and process is None:
            reason = "its supervisor never started"
        else:
            status = f"exit status {process.returncode}; " if process is not None else ""
            reason = f"its supervisor died without recording an exit ({status}see {SUPERVISOR_LOG})"
        groups = _stop_groups(handle, None)
        if groups:
            reason += f"; stopped what its command left running (process groups {groups})"
        log.warning("job %s: run lost: %s", handle.job_id, reason)
        return Lost(reason)

    def _signal_command(self, handle: Handle, state_dir: Path, sig: int) -> bool:
        """Signal the command's process group if it has started; whether it had."""
        started = _record(state_dir / STARTED)
        if started is None:
            return False
        pgid = started.get("pgid")
        if isinstance(pgid, int):
            _stop_groups(handle, pgid, sig)
        return True

    # --- bookkeeping -------------------------------------------------------------------------

    def _start_supervisor(
        self, job_id: str, state_dir: Path, env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        argv = [self._python, "-m", MODULE, str(state_dir)]
        try:
            with open(open_private(state_dir / SUPERVISOR_LOG), "ab") as log_file:
                return subprocess.Popen(
                    argv,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except (OSError, ValueError) as exc:
            (state_dir / LAUNCH).unlink(missing_ok=True)  # never launched, as the folder says
            raise ExecutorError(f"job {job_id}: cannot start its supervisor: {exc}") from exc

    def _check_gpus(self, launch: Launch) -> None:
        holders = {id(h): h for gpu, h in self._gpus.items() if gpu in launch.gpu_ids}
        for holder in holders.values():
            self.poll(holder)  # releases the GPUs of a run that has ended since
        clash = [gpu for gpu in launch.gpu_ids if gpu in self._gpus]
        if clash:
            raise ExecutorError(f"job {launch.job_id}: GPUs {clash} are already in use")

    def _claim_gpus(self, handle: Handle) -> None:
        try:
            gpus = read_launch(_state_dir(handle)).gpu_ids
        except ValueError as exc:
            log.warning("job %s: cannot tell which GPUs it holds: %s", handle.job_id, exc)
            return
        for gpu in gpus:
            self._gpus[gpu] = handle

    def _release(self, state_dir: Path) -> None:
        for gpu, holder in list(self._gpus.items()):
            if _state_dir(holder) == state_dir:
                del self._gpus[gpu]
        process = self._supervisors.pop(state_dir, None)
        if process is not None:
            self._exiting.append(process)
        self._reap()

    def _reap(self) -> None:
        self._exiting = [process for process in self._exiting if process.poll() is None]


def _state_dir(handle: Handle) -> Path:
    if handle.executor != LocalExecutor.name:
        raise ExecutorError(f"job {handle.job_id}: not a local run ({handle.executor})")
    folder = handle.ref.get("state_dir")
    if not isinstance(folder, str) or not folder:
        raise ExecutorError(f"job {handle.job_id}: handle names no state folder: {handle.ref}")
    return Path(folder).absolute()


def _exited(state_dir: Path) -> Exited | Lost | None:
    try:
        return read_exit(state_dir)
    except ValueError as exc:
        return Lost(f"its exit record is unreadable: {exc}")


def _record(path: Path) -> dict[str, Any] | None:
    try:
        return read_record(path)
    except ValueError as exc:
        log.warning("%s", exc)
        return None


def _write(handle: Handle, path: Path, data: Mapping[str, Any]) -> None:
    try:
        write_record(path, data)
    except OSError as exc:
        raise ExecutorError(f"job {handle.job_id}: cannot write {path}: {exc}") from exc


def _is_supervisor(pid: int, state_dir: Path) -> bool:
    """Whether ``pid`` is alive and is the supervisor of ``state_dir`` (pids get reused)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return MODULE.encode() in argv and os.fsencode(state_dir) in argv


def _marks(job_id: str, attempt: int | None) -> tuple[bytes, ...]:
    marks = [f"GREENAI_JOB_ID={job_id}".encode()]
    if attempt is not None:
        marks.append(f"GREENAI_ATTEMPT={attempt}".encode())
    return tuple(marks)


def _has_marks(pid: int, marks: tuple[bytes, ...]) -> bool:
    """Whether ``pid`` is alive and its environment carries every one of ``marks``."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:  # gone, or not ours to read
        return False
    return all(mark in environ for mark in marks)


def _stop_groups(handle: Handle, pgid: int | None, sig: int = signal.SIGKILL) -> list[int]:
    """Signal the process groups that hold the run's processes: ``pgid`` when its leader
    carries the run's marks, else every group in which a process does. The groups signalled."""
    marks = _marks(handle.job_id, handle.attempt)
    if pgid is not None and _has_marks(pgid, marks):
        groups = {pgid}
    else:
        groups = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _has_marks(int(entry.name), marks):
                try:
                    groups.add(os.getpgid(int(entry.name)))
                except ProcessLookupError:
                    continue
    groups.discard(os.getpgrp())
    for group in sorted(groups):
        log.info("job %s: sending %s to process group %d", handle.job_id, sig, group)
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            log.info("process group %d had already ended", group)
    return sorted(groups)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        log.info("process %d had already ended", pid)


def _is_legacy(handle: Handle) -> bool:
    return "state_dir" not in handle.ref and "pid" in handle.ref


def _stop_legacy(handle: Handle) -> Lost:
    """A run of the old schema (a bare pid, no supervisor): nobody can learn how it ends, so
    whatever still runs for it is stopped."""
    if handle.executor != LocalExecutor.name:
        raise ExecutorError(f"job {handle.job_id}: not a local run ({handle.executor})")
    pid = handle.ref.get("pid")
    if not isinstance(pid, int) or not _has_marks(pid, _marks(handle.job_id, None)):
        return Lost(LEGACY_GONE)
    log.warning("job %s: stopping pid %d left running by an older greenai", handle.job_id, pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return Lost(LEGACY_GONE)
    return Lost(LEGACY_STOPPED)
