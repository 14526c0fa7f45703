"""The per-job supervisor: ``python -m greenai.executors.supervisor STATE_DIR``.

The local executor starts one per run, in a session of its own, so the run outlives the
daemon (as a container runtime's shim outlives its engine). It meters the job's command,
forwards SIGTERM, SIGINT and SIGHUP to the command's process group, stops that group at the
launch's ``stop_at`` or ``max_runtime_s`` wall seconds after the command started, whichever
comes first (SIGTERM, then SIGKILL ``grace_s`` wall seconds later, even while no daemon runs;
the exit record says which limit it was), caps the output log when asked (``log_max_bytes``:
the output goes through a pipe into ``output.log``, rotated to ``output.log.1`` ...
``output.log.N``), and writes what happened into the run's state folder, where any later daemon
finds it:

- ``launch.json``: what to run (written by the executor before it starts the supervisor); the
  job's own env in it is sealed (``env_sealed``, a Fernet token) with a key that only the
  supervisor's environment holds (``GREENAI_LAUNCH_KEY``), so it is in clear on no disk
- ``supervisor.json``: ``{"pid", "at"}``, written first, once signals are handled
- ``started.json``: ``{"pid", "pgid", "started_at", "counters"}`` once the command runs
- ``exit.json``: ``{"exit_code", "signal", "started_at", "finished_at", "reading",
  "counters", "notes", "limit"}``, however the run ended (a command that cannot start is an
  exit: 127 not found, 126 otherwise); ``limit`` is the note of the limit that stopped it, else
  ``null``
- ``cancel.json``: written by the executor to stop a command that has not started yet
- ``pause.json``: ``{"signal", "grace_s", "at", "reason"}``, written by the executor to pause
  an interruptible job's piece: the supervisor sends that signal to the command's group (so it
  can checkpoint), SIGKILL ``grace_s`` later, and records the exit with ``"paused": true``
- ``output.log``: the command's stdout and stderr; ``supervisor.log``: this process's own

Records are written atomically (temporary file, fsync, rename). The folder is 0700 (the
executor makes it so) and every file in it 0600, whatever the umask. Times are on the daemon's
clock (``launch.json`` carries its ``clock_spec``). This module is the one place that knows
these files, and it imports nothing heavy: it runs once per job.
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenai.core.time import Clock, clock_from_spec, format_time, parse_time, utc_now
from greenai.executors.base import Exited, Launch
from greenai.executors.processes import cuda_device_order, stop_group
from greenai.meters.config import MeterConfig
from greenai.meters.gpu_share import JobProcesses
from greenai.meters.readings import reading_from_json, reading_to_json

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from greenai.meters.composite import CompositeMeter

log = logging.getLogger(__name__)


MODULE = "greenai.executors.supervisor"
LAUNCH, SUPERVISOR, STARTED, EXIT = "launch.json", "supervisor.json", "started.json", "exit.json"
CANCEL, OUTPUT, SUPERVISOR_LOG = "cancel.json", "output.log", "supervisor.log"
PAUSE = "pause.json"
POWER = "power.json"  # {"at", "watts", "meters"}: the command's draw now, for a live view
POWER_EVERY_S = 5.0
PAUSE_POLL_S = 0.2  # how often a running command's supervisor looks for a pause request
NOT_FOUND, CANNOT_START = 127, 126
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
FILE_MODE = 0o600  # every record and log of a run
DRAIN_AFTER_EXIT_S = 1.0  # how long output of processes the command left behind is still logged
READ_CHUNK = 1 << 16
LAUNCH_KEY = "GREENAI_LAUNCH_KEY"  # in the supervisor's environment: opens ``env_sealed``


def open_private(path: Path, truncate: bool = False) -> int:
    """An append-only descriptor on ``path``, created (or made) 0600 whatever the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(path, flags | (os.O_TRUNC if truncate else 0), FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_record(path: Path, data: Mapping[str, Any]) -> None:
    """``data`` as JSON at ``path``, atomically: a reader sees all of it or nothing."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any] | None:
    """A record's data, ``None`` while it is not there; ``ValueError`` when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable record: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """What ``launch.json`` asks for."""

    job_id: str
    attempt: int
    command: tuple[str, ...]
    cwd: str | None
    env: dict[str, str]
    gpu_ids: tuple[int, ...]
    meters: MeterConfig
    clock: dict[str, Any]  # a greenai.core.time.clock_spec
    base_env: dict[str, str] | None = None  # None (older records): the supervisor's own
    env_dropped: tuple[str, ...] = ()  # names the executor removed from the job's env
    env_sealed: str | None = None  # the job's env, sealed with the supervisor's LAUNCH_KEY
    stop_at: datetime | None = None
    grace_s: float = 30.0
    log_max_bytes: int | None = None
    log_backups: int = 2
    max_runtime_s: float | None = None  # wall seconds from the command's start
    piece: int = 0  # an interruptible job's piece (1, 2, ...); 0: the job runs whole


def launch_record(
    launch: Launch,
    meters: MeterConfig,
    clock: Mapping[str, Any],
    *,
    base_env: Mapping[str, str] | None = None,
    secret_names: Collection[str] = (),
    env_key: bytes | None = None,
) -> dict[str, Any]:
    """The ``launch.json`` of ``launch``: ``base_env`` is what the command inherits (``None``:
    the supervisor's own environment); ``secret_names`` never reach it, not even from the
    job's own env; with ``env_key`` (``new_launch_key``) the job's env is sealed with it."""
    env = dict(launch.env or {})
    dropped = sorted(name for name in env if name in secret_names)
    kept = {name: value for name, value in env.items() if name not in secret_names}
    return {
        "job_id": launch.job_id,
        "attempt": launch.attempt,
        "command": list(launch.command),
        "cwd": launch.cwd,
        "env": kept if env_key is None else {},
        "env_sealed": None if env_key is None else _fernet(env_key).encrypt(_json(kept)).decode(),
        "env_dropped": dropped,
        "base_env": None
        if base_env is None
        else {name: value for name, value in base_env.items() if name not in secret_names},
        "gpu_ids": list(launch.gpu_ids),
        "meters": asdict(meters),
        "clock": dict(clock),
        "stop_at": format_time(launch.stop_at),
        "grace_s": launch.grace_s,
        "log_max_bytes": launch.log_max_bytes,
        "log_backups": launch.log_backups,
        "max_runtime_s": None if launch.max_runtime is None else launch.max_runtime.total_seconds(),
        "piece": launch.piece,
    }


def read_launch(state_dir: Path) -> LaunchSpec:
    data = read_record(state_dir / LAUNCH)
    if data is None:
        raise ValueError(f"{state_dir / LAUNCH}: missing")
    try:
        if not isinstance(data["command"], list):
            raise TypeError(f"command must be a list of arguments, not {data['command']!r}")
        base_env, stop_at = data.get("base_env"), data.get("stop_at")
        log_max_bytes = data.get("log_max_bytes")
        return LaunchSpec(
            job_id=str(data["job_id"]),
            attempt=int(data["attempt"]),
            command=tuple(data["command"]),
            cwd=None if data.get("cwd") is None else str(data["cwd"]),
            env={str(k): str(v) for k, v in dict(data.get("env") or {}).items()},
            gpu_ids=tuple(int(gpu) for gpu in data.get("gpu_ids", ())),
            meters=MeterConfig.from_json(data.get("meters") or {}),
            clock=dict(data["clock"]),
            base_env=None
            if base_env is None
            else {str(k): str(v) for k, v in dict(base_env).items()},
            env_dropped=tuple(str(name) for name in data.get("env_dropped") or ()),
            env_sealed=None if data.get("env_sealed") is None else str(data["env_sealed"]),
            stop_at=None if stop_at is None else parse_time(stop_at),
            grace_s=max(0.0, float(data.get("grace_s", 30.0))),
            log_max_bytes=None if log_max_bytes is None else max(1, int(log_max_bytes)),
            log_backups=max(0, int(data.get("log_backups", 2))),
            max_runtime_s=_max_runtime(data.get("max_runtime_s")),
            piece=max(0, int(data.get("piece") or 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{state_dir / LAUNCH}: not a launch record: {exc!r}") from exc


def _max_runtime(value: Any) -> float | None:
    """``max_runtime_s`` of a launch record: ``None`` (none, or an older record) or positive
    finite seconds; anything else is not a limit the supervisor can keep."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ValueError(f"max_runtime_s must be positive seconds, not {value!r}")
    return seconds


def read_exit(state_dir: Path) -> Exited | None:
    """How the run ended, from ``exit.json``; ``None`` while it has not ended."""
    data = read_record(state_dir / EXIT)
    if data is None:
        return None
    try:
        reading, signum = data.get("reading"), data.get("signal")
        return Exited(
            exit_code=int(data["exit_code"]),
            started_at=parse_time(data["started_at"]),
            finished_at=parse_time(data["finished_at"]),
            reading=None if reading is None else reading_from_json(reading),
            signal=None if signum is None else int(signum),
            notes=tuple(str(note) for note in data.get("notes", ())),
            limit=None if data.get("limit") is None else str(data["limit"]),
            paused=bool(data.get("paused", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{state_dir / EXIT}: not an exit record: {exc!r}") from exc


def new_launch_key() -> bytes:
    """A key for one launch's ``env_sealed``: the executor hands it to the supervisor in its
    environment (``LAUNCH_KEY``) and keeps it nowhere, so the sealed env dies with the run."""
    from cryptography.fernet import Fernet  # only sealed launches pay for the import

    return Fernet.generate_key()


def opened(spec: LaunchSpec, environ: Mapping[str, str]) -> LaunchSpec:
    """``spec`` with its sealed env opened with ``environ[LAUNCH_KEY]``; ``ValueError`` when
    it cannot be."""
    if spec.env_sealed is None:
        return spec
    from cryptography.fernet import InvalidToken

    key = environ.get(LAUNCH_KEY)
    if not key:
        raise ValueError(f"its env is sealed and {LAUNCH_KEY} was not given")
    try:
        env = json.loads(_fernet(key.encode()).decrypt(spec.env_sealed.encode()))
    except (InvalidToken, ValueError) as exc:
        raise ValueError(f"its env cannot be opened with {LAUNCH_KEY}: {exc!r}") from exc
    return replace(spec, env={str(k): str(v) for k, v in dict(env).items()}, env_sealed=None)


def _fernet(key: bytes) -> Fernet:
    from cryptography.fernet import Fernet

    return Fernet(key)


def _json(env: Mapping[str, str]) -> bytes:
    return json.dumps(dict(env), ensure_ascii=False).encode()


def child_env(spec: LaunchSpec, base: Mapping[str, str]) -> dict[str, str]:
    """The launch's base environment (``base``, the supervisor's own less ``LAUNCH_KEY``, for
    records without one), the job's overrides, its GPUs, and the marks that identify its
    processes later. The executor has already removed secrets from both. CUDA numbers GPUs
    by PCI bus, as NVML does (``CUDA_DEVICE_ORDER=PCI_BUS_ID``), unless the job's own env
    says otherwise: else CUDA's "fastest first" order can put the job on a GPU other than
    the slot it holds and the meter reads."""
    if spec.base_env is None:
        base = {name: value for name, value in base.items() if name != LAUNCH_KEY}
    env = {**(base if spec.base_env is None else spec.base_env), **spec.env}
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in spec.gpu_ids)
    env["CUDA_DEVICE_ORDER"] = cuda_device_order(spec.env)
    env["GREENAI_JOB_ID"] = spec.job_id
    env["GREENAI_ATTEMPT"] = str(spec.attempt)
    if spec.piece:  # the interruptible contract: which piece this is, and whether to resume
        env["GREENAI_PIECE"] = str(spec.piece)
        env["GREENAI_RESUME"] = "1" if spec.piece > 1 else "0"
    return env


class StartFailed(Exception):
    """The command could not be started; ``code`` is what a shell would have exited with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def start_child(
    spec: LaunchSpec, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """The command, without a shell, in a process group of its own, output to ``log_path``;
    with ``spec.log_max_bytes``, to a pipe (``stdout``) that the caller must drain instead."""
    if not spec.command:
        raise StartFailed(NOT_FOUND, "empty command")
    name = spec.command[0]
    output: int = subprocess.PIPE
    if spec.log_max_bytes is None:
        try:
            output = open_private(log_path)
        except OSError as exc:
            raise StartFailed(CANNOT_START, f"cannot open {log_path}: {exc.strerror}") from exc
    try:
        return subprocess.Popen(
            list(spec.command),
            cwd=spec.cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    except FileNotFoundError as exc:
        if spec.cwd is not None and exc.filename == spec.cwd:
            raise StartFailed(CANNOT_START, f"working directory not found: {spec.cwd}") from exc
        raise StartFailed(NOT_FOUND, f"command not found: {name}") from exc
    except PermissionError as exc:
        raise StartFailed(CANNOT_START, f"cannot execute {exc.filename or name}: {exc}") from exc
    except (OSError, ValueError, TypeError) as exc:  # ENOEXEC, a NUL byte, a bad env name
        raise StartFailed(CANNOT_START, f"cannot start {name!r}: {exc}") from exc
    finally:
        if output != subprocess.PIPE:
            os.close(output)


class RotatingLog:
    """``path`` (0600), never above ``max_bytes``: when full it becomes ``path.1`` (``.1``
    becomes ``.2`` ... the oldest of ``backups`` is dropped) and a new one starts. A write
    that does not fit is split after the last line break that does (a line longer than
    ``max_bytes`` is split anywhere)."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max(1, max_bytes), max(0, backups)
        self._fd = open_private(path)
        self.size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.size >= self.max_bytes:
                self._rotate()
            room = self.max_bytes - self.size
            piece = view[:room]
            if len(view) > room:
                cut = bytes(piece).rfind(b"\n")
                if cut >= 0:
                    piece = piece[: cut + 1]
                elif self.size > 0:  # no line break fits: the rest goes to a new file
                    self._rotate()
                    continue
            written = os.write(self._fd, piece)
            self.size += written
            view = view[written:]

    def close(self) -> None:
        os.close(self._fd)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups:
            for number in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{number}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{number + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._fd = open_private(self.path, truncate=True)
        self.size = 0


class _Drain:
    """Copies the command's output pipe into a ``RotatingLog`` on a thread of its own, as fast
    as it comes, so the command never blocks on a full pipe."""

    def __init__(self, pipe: Any, log_file: RotatingLog) -> None:
        self._pipe, self._log = pipe, log_file
        self._stop = threading.Event()
        self.cut_short = False
        self._failed = False
        self._thread = threading.Thread(target=self._run, name="output-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        fd = self._pipe.fileno()
        while True:
            if self._stop.is_set():
                self.cut_short = True
                return
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            data = os.read(fd, READ_CHUNK)
            if not data:
                return
            try:
                self._log.write(data)
            except OSError as exc:  # keep draining (and dropping): the command must not block
                if not self._failed:
                    log.error("cannot write the output log: %s", exc)
                self._failed = True

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the end of the output, then stop reading."""
        self._thread.join(timeout)
        self._stop.set()
        self._thread.join()
        self._pipe.close()
        self._log.close()


class _Metering:
    """The run's meter, or notes saying why there is none: a meter never stops a job."""

    def __init__(self, spec: LaunchSpec, clock: Clock, env: Mapping[str, str]) -> None:
        self.notes: list[str] = []
        self._meter: CompositeMeter | None = None
        self._token: Any = None
        self.job = JobProcesses()  # its process group, set once the command runs
        try:
            from greenai.meters.composite import build_meter
            from greenai.meters.shared_host import children_cpu_seconds

            # the command is this process's one child: its rusage is the job's CPU time
            gpus = list(spec.gpu_ids) or None
            meter = build_meter(
                spec.meters, gpus, clock, env=env, job_cpu=children_cpu_seconds, job=self.job
            )
            self._token = meter.start()
            self._meter = meter
        except Exception as exc:  # hardware probes and meter libraries raise anything
            log.warning("job %s: energy not measured: %s", spec.job_id, exc)
            self.notes.append(f"energy not measured: the meter could not start: {exc}")

    def counters(self) -> dict[str, Any]:
        return {} if self._meter is None else self._meter.counters(self._token)

    def write_power(self, path: Path, clock: Clock) -> None:
        """The draw the meters can tell now, for ``GET /jobs/{id}`` and the dashboard; a
        failed read is logged and skipped (it measures nothing: the energy is the counters')."""
        if self._meter is None:
            return
        try:
            found = self._meter.power_now(self._token)
            if found is not None:
                watts, meters = found
                write_record(
                    path, {"at": format_time(clock.now()), "watts": watts, "meters": meters}
                )
        except Exception as exc:  # hardware reads raise anything; a live view is not worth a run
            log.debug("power read failed: %s", exc)

    def stop(self) -> dict[str, Any] | None:
        if self._meter is None:
            return None
        try:
            return reading_to_json(self._meter.stop(self._token))
        except Exception as exc:  # as at start: the exit must be recorded whatever the meter does
            log.warning("meter failed at stop: %s", exc)
            self.notes.append(f"energy not measured: the meter failed at stop: {exc}")
            return None


@dataclass
class _Outcome:
    exit_code: int
    started_at: datetime
    finished_at: datetime
    signal: int | None = None
    notes: list[str] = field(default_factory=list)
    limit: str | None = None
    paused: bool = False


class Supervisor:
    """Runs one launch recorded in ``state_dir`` and records how it ended."""

    def __init__(self, state_dir: Path, environ: Mapping[str, str] = os.environ) -> None:
        self.dir = state_dir
        self.environ = environ
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: int | None = None  # a signal that came before the command started
        self.forwarded: list[str] = []
        self.reaped = False
        self.paused = False  # the command was stopped on a pause request

    def run(self) -> None:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._on_signal)
        write_record(self.dir / SUPERVISOR, {"pid": os.getpid(), "at": format_time(utc_now())})
        try:
            spec = opened(read_launch(self.dir), self.environ)
            clock = clock_from_spec(spec.clock)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("cannot run: %s", exc)
            now = utc_now()
            self._record(_Outcome(CANNOT_START, now, now, notes=[f"cannot launch: {exc}"]))
            return
        env = child_env(spec, self.environ)
        metering = _Metering(spec, clock, env)
        outcome = self._supervise(spec, clock, env, metering)
        if spec.env_dropped:
            dropped = ", ".join(spec.env_dropped)
            outcome.notes.append(f"not passed on to the command (secrets): {dropped}")
        reading = metering.stop()
        outcome.notes.extend(metering.notes)
        self._record(outcome, reading, metering.counters())

    def _supervise(
        self, spec: LaunchSpec, clock: Clock, env: Mapping[str, str], metering: _Metering
    ) -> _Outcome:
        cancelled = self._cancel_signal()
        if cancelled is not None:
            now = clock.now()
            note = "cancelled before start" + self._cancel_reason()
            return _Outcome(128 + cancelled, now, now, cancelled, [note])
        if self._pause_request() is not None:
            now = clock.now()
            return _Outcome(0, now, now, notes=["paused before the command started"], paused=True)
        if spec.stop_at is not None and clock.now() >= spec.stop_at:
            now = clock.now()
            note = f"not started: its deadline {format_time(spec.stop_at)} had passed"
            return _Outcome(128 + signal.SIGTERM, now, now, signal.SIGTERM, [note], note)
        drain: _Drain | None = None
        try:
            output = None
            if spec.log_max_bytes is not None:
                output = RotatingLog(self.dir / OUTPUT, spec.log_max_bytes, spec.log_backups)
            child = start_child(spec, env, self.dir / OUTPUT)
        except OSError as exc:  # the capped log could not be opened
            log.error("job %s: cannot open its output log: %s", spec.job_id, exc)
            now = clock.now()
            return _Outcome(CANNOT_START, now, now, notes=[f"cannot open {OUTPUT}: {exc}"])
        except StartFailed as exc:
            if output is not None:
                output.close()
            log.error("job %s: %s", spec.job_id, exc)
            now = clock.now()
            return _Outcome(exc.code, now, now, notes=[str(exc)])
        if output is not None:
            drain = _Drain(child.stdout, output)
        self.child = child
        metering.job.pgid = child.pid  # start_child made it a process group's leader
        started_at, started_wall = clock.now(), time.monotonic()
        late = self._cancel_signal()  # came while the command was being started
        if late is not None:
            self._forward(late)
        started = {"pid": child.pid, "pgid": child.pid, "started_at": format_time(started_at)}
        write_record(self.dir / STARTED, {**started, "counters": metering.counters()})
        log.info("job %s: command started as pid %d", spec.job_id, child.pid)
        returncode, stop_notes = self._wait(child, spec, clock, started_wall, metering)
        finished_at = clock.now()
        notes = [f"{name} forwarded to the command" for name in dict.fromkeys(self.forwarded)]
        notes.extend(stop_notes)
        if drain is not None:
            drain.finish(DRAIN_AFTER_EXIT_S)
            if drain.cut_short:
                notes.append("output of processes the command left running was not logged")
        # a stop's first note names its limit; a pause is no limit
        limit = stop_notes[0] if stop_notes and not self.paused else None
        code, signum = (128 - returncode, -returncode) if returncode < 0 else (returncode, None)
        return _Outcome(code, started_at, finished_at, signum, notes, limit, self.paused)

    def _wait(
        self,
        child: subprocess.Popen[bytes],
        spec: LaunchSpec,
        clock: Clock,
        started: float,
        metering: _Metering,
    ) -> tuple[int, list[str]]:
        """The command's return code, once it has ended; stopped at the first of its limits
        (``started``: when it started, on ``time.monotonic``), with a note naming that limit,
        or paused when the executor asks (``pause.json``). Meanwhile ``power.json`` says the
        command's draw every ``POWER_EVERY_S``."""
        power_due = time.monotonic()
        while True:
            if time.monotonic() >= power_due:
                metering.write_power(self.dir / POWER, clock)
                power_due = time.monotonic() + POWER_EVERY_S
            request = self._pause_request()
            if request is not None:
                return self._pause(child, spec, request)
            limit = _first_limit(spec, clock, started)
            if limit is not None and limit[0] <= 0:
                return self._stop(child, spec, limit[1])
            # clock time may not pass like the wall's, and a pause may come: look again often
            timeout = PAUSE_POLL_S if limit is None else min(limit[0], PAUSE_POLL_S)
            try:
                returncode = child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
            self.reaped = True
            return returncode, []

    def _pause(
        self, child: subprocess.Popen[bytes], spec: LaunchSpec, request: Mapping[str, Any]
    ) -> tuple[int, list[str]]:
        """Stop the command as asked so it can checkpoint: the request's signal, SIGKILL after
        its grace (the supervisor keeps that grace even when no daemon runs)."""
        signum, grace_s = pause_signal(request), max(0.0, float(request.get("grace_s", 30.0)))
        name = signal.Signals(signum).name
        log.info("job %s: pausing with %s (grace %g s)", spec.job_id, name, grace_s)
        returncode, killed = stop_group(child, grace_s, signum)
        self.reaped, self.paused = True, True
        return returncode, [f"paused: {name} sent to the command", *killed]

    def _pause_request(self) -> dict[str, Any] | None:
        return self._request(PAUSE)

    def _stop(
        self, child: subprocess.Popen[bytes], spec: LaunchSpec, note: str
    ) -> tuple[int, list[str]]:
        """SIGTERM the command's group, SIGKILL what is left of it after the grace."""
        log.info("job %s: %s", spec.job_id, note)
        returncode, killed = stop_group(child, spec.grace_s)
        self.reaped = True
        return returncode, [note, *killed]

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.child is None:
            self.pending = signum
        elif not self.reaped:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        assert self.child is not None
        name = signal.Signals(signum).name
        log.info("forwarding %s to the command's process group %d", name, self.child.pid)
        self.forwarded.append(name)
        try:
            os.killpg(self.child.pid, signum)
        except ProcessLookupError:
            log.info("the command's process group had already ended")

    def _cancel_signal(self) -> int | None:
        """The signal a cancel asked for: one sent to this process, or ``cancel.json``."""
        request = self._cancel_request()
        if request is not None:
            return signal.SIGKILL if request.get("force") else signal.SIGTERM
        return self.pending

    def _cancel_request(self) -> dict[str, Any] | None:
        return self._request(CANCEL)

    def _request(self, name: str) -> dict[str, Any] | None:
        """The executor's request in ``name`` (``cancel.json``, ``pause.json``), if any."""
        try:
            return read_record(self.dir / name)
        except ValueError as exc:  # half a request is still a request
            log.warning("%s", exc)
            return {}

    def _cancel_reason(self) -> str:
        reason = (self._cancel_request() or {}).get("reason")
        return f" ({reason})" if reason else ""

    def _record(
        self,
        outcome: _Outcome,
        reading: dict[str, Any] | None = None,
        counters: Mapping[str, Any] | None = None,
    ) -> None:
        record = {
            "exit_code": outcome.exit_code,
            "signal": outcome.signal,
            "started_at": format_time(outcome.started_at),
            "finished_at": format_time(outcome.finished_at),
            "reading": reading,
            "counters": dict(counters or {}),
            "notes": outcome.notes,
            "limit": outcome.limit,
            "paused": outcome.paused,
        }
        write_record(self.dir / EXIT, record)
        log.info("recorded exit code %d", outcome.exit_code)


def _first_limit(spec: LaunchSpec, clock: Clock, started: float) -> tuple[float, str] | None:
    """Wall seconds left until the first of the run's limits (its deadline on ``clock``, its
    max runtime from ``started`` on ``time.monotonic``) and the note a stop there makes;
    ``None`` without limits."""
    limits = []
    if spec.stop_at is not None:
        left = (spec.stop_at - clock.now()).total_seconds()
        wall = clock.to_wall_seconds(left) if left > 0 else left
        limits.append((wall, f"stopped at its deadline {format_time(spec.stop_at)}"))
    if spec.max_runtime_s is not None:
        left = started + spec.max_runtime_s - time.monotonic()
        limit = timedelta(seconds=spec.max_runtime_s)
        limits.append((left, f"stopped after its max runtime {limit}"))
    return min(limits, default=None)


def pause_signal(request: Mapping[str, Any]) -> int:
    """The signal a pause request names (``"SIGTERM"``, ``"SIGINT"``, ...); SIGTERM when it
    names none the supervisor knows."""
    try:
        return int(signal.Signals[str(request.get("signal") or "SIGTERM")])
    except KeyError:
        log.warning("unknown pause signal %r: sending SIGTERM", request.get("signal"))
        return int(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(f"usage: python -m {MODULE} STATE_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        Supervisor(Path(args[0])).run()
    except OSError as exc:
        log.error("cannot keep the run's records in %s: %s", args[0], exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
