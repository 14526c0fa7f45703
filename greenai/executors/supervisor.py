"""The per-job supervisor: ``python -m greenai.executors.supervisor STATE_DIR``.

The local executor starts one per run, in a session of its own, so the run outlives the
daemon (as a container runtime's shim outlives its engine). It meters the job's command,
forwards SIGTERM, SIGINT and SIGHUP to the command's process group, and writes what happened
into the run's state folder, where any later daemon finds it:

- ``launch.json``: what to run (written by the executor before it starts the supervisor)
- ``supervisor.json``: ``{"pid", "at"}``, written first, once signals are handled
- ``started.json``: ``{"pid", "pgid", "started_at", "counters"}`` once the command runs
- ``exit.json``: ``{"exit_code", "signal", "started_at", "finished_at", "reading",
  "counters", "notes"}``, however the run ended (a command that cannot start is an exit:
  127 not found, 126 otherwise)
- ``cancel.json``: written by the executor to stop a command that has not started yet
- ``output.log``: the command's stdout and stderr; ``supervisor.log``: this process's own

Records are written atomically (temporary file, fsync, rename). Times are on the daemon's
clock (``launch.json`` carries its ``clock_spec``). This module is the one place that knows
these files, and it imports nothing heavy: it runs once per job.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greenai.core.time import Clock, clock_from_spec, format_time, parse_time, utc_now
from greenai.executors.base import Exited, Launch
from greenai.meters.config import MeterConfig
from greenai.meters.readings import reading_from_json, reading_to_json

if TYPE_CHECKING:
    from greenai.meters.composite import CompositeMeter

log = logging.getLogger(__name__)

MODULE = "greenai.executors.supervisor"
LAUNCH, SUPERVISOR, STARTED, EXIT = "launch.json", "supervisor.json", "started.json", "exit.json"
CANCEL, OUTPUT, SUPERVISOR_LOG = "cancel.json", "output.log", "supervisor.log"
NOT_FOUND, CANNOT_START = 127, 126
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def write_record(path: Path, data: Mapping[str, Any]) -> None:
    """``data`` as JSON at ``path``, atomically: a reader sees all of it or nothing."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
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


def launch_record(launch: Launch, meters: MeterConfig, clock: Mapping[str, Any]) -> dict[str, Any]:
    """The ``launch.json`` of ``launch``."""
    return {
        "job_id": launch.job_id,
        "attempt": launch.attempt,
        "command": list(launch.command),
        "cwd": launch.cwd,
        "env": dict(launch.env or {}),
        "gpu_ids": list(launch.gpu_ids),
        "meters": asdict(meters),
        "clock": dict(clock),
    }


def read_launch(state_dir: Path) -> LaunchSpec:
    data = read_record(state_dir / LAUNCH)
    if data is None:
        raise ValueError(f"{state_dir / LAUNCH}: missing")
    try:
        if not isinstance(data["command"], list):
            raise TypeError(f"command must be a list of arguments, not {data['command']!r}")
        return LaunchSpec(
            job_id=str(data["job_id"]),
            attempt=int(data["attempt"]),
            command=tuple(data["command"]),
            cwd=None if data.get("cwd") is None else str(data["cwd"]),
            env={str(k): str(v) for k, v in dict(data.get("env") or {}).items()},
            gpu_ids=tuple(int(gpu) for gpu in data.get("gpu_ids", ())),
            meters=MeterConfig.from_json(data.get("meters") or {}),
            clock=dict(data["clock"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{state_dir / LAUNCH}: not a launch record: {exc!r}") from exc


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
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{state_dir / EXIT}: not an exit record: {exc!r}") from exc


def child_env(spec: LaunchSpec, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the supervisor's own environment, secrets already removed by the executor),
    the job's overrides, its GPUs, and the marks that identify its processes later."""
    env = {**base, **spec.env}
    env["CUDA_VISIBLE_DEVICES"] = ",".join(str(gpu) for gpu in spec.gpu_ids)
    env["GREENAI_JOB_ID"] = spec.job_id
    env["GREENAI_ATTEMPT"] = str(spec.attempt)
    return env


class StartFailed(Exception):
    """The command could not be started; ``code`` is what a shell would have exited with."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def start_child(
    spec: LaunchSpec, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """The command, without a shell, in a process group of its own, output to ``log_path``."""
    if not spec.command:
        raise StartFailed(NOT_FOUND, "empty command")
    name = spec.command[0]
    try:
        output = log_path.open("ab")
    except OSError as exc:
        raise StartFailed(CANNOT_START, f"cannot open {log_path}: {exc.strerror}") from exc
    try:
        with output:
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


class _Metering:
    """The run's meter, or notes saying why there is none: a meter never stops a job."""

    def __init__(self, spec: LaunchSpec, clock: Clock, env: Mapping[str, str]) -> None:
        self.notes: list[str] = []
        self._meter: CompositeMeter | None = None
        self._token: Any = None
        try:
            from greenai.meters.composite import build_meter

            meter = build_meter(spec.meters, list(spec.gpu_ids) or None, clock, env=env)
            self._token = meter.start()
            self._meter = meter
        except Exception as exc:  # hardware probes and meter libraries raise anything
            log.warning("job %s: energy not measured: %s", spec.job_id, exc)
            self.notes.append(f"energy not measured: the meter could not start: {exc}")

    def counters(self) -> dict[str, Any]:
        return {} if self._meter is None else self._meter.counters(self._token)

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


class Supervisor:
    """Runs one launch recorded in ``state_dir`` and records how it ended."""

    def __init__(self, state_dir: Path, environ: Mapping[str, str] = os.environ) -> None:
        self.dir = state_dir
        self.environ = environ
        self.child: subprocess.Popen[bytes] | None = None
        self.pending: int | None = None  # a signal that came before the command started
        self.forwarded: list[str] = []
        self.reaped = False

    def run(self) -> None:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._on_signal)
        write_record(self.dir / SUPERVISOR, {"pid": os.getpid(), "at": format_time(utc_now())})
        try:
            spec = read_launch(self.dir)
            clock = clock_from_spec(spec.clock)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("cannot run: %s", exc)
            now = utc_now()
            self._record(_Outcome(CANNOT_START, now, now, notes=[f"cannot launch: {exc}"]))
            return
        env = child_env(spec, self.environ)
        metering = _Metering(spec, clock, env)
        outcome = self._supervise(spec, clock, env, metering)
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
        try:
            child = start_child(spec, env, self.dir / OUTPUT)
        except StartFailed as exc:
            log.error("job %s: %s", spec.job_id, exc)
            now = clock.now()
            return _Outcome(exc.code, now, now, notes=[str(exc)])
        self.child = child
        started_at = clock.now()
        late = self._cancel_signal()  # came while the command was being started
        if late is not None:
            self._forward(late)
        started = {"pid": child.pid, "pgid": child.pid, "started_at": format_time(started_at)}
        write_record(self.dir / STARTED, {**started, "counters": metering.counters()})
        log.info("job %s: command started as pid %d", spec.job_id, child.pid)
        returncode = child.wait()
        self.reaped = True
        finished_at = clock.now()
        notes = [f"{name} forwarded to the command" for name in dict.fromkeys(self.forwarded)]
        if returncode < 0:
            return _Outcome(128 - returncode, started_at, finished_at, -returncode, notes)
        return _Outcome(returncode, started_at, finished_at, None, notes)

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
        try:
            return read_record(self.dir / CANCEL)
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
        }
        write_record(self.dir / EXIT, record)
        log.info("recorded exit code %d", outcome.exit_code)


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
