"""How a ``batch/v1`` Job (and its pod) read from the API ended, as an ``Exited`` (pure).

A Job has ended when it has a ``Complete`` or ``Failed`` condition. The exit status, times and
node come from its pod's container (``state.terminated``: ``exitCode``, ``startedAt``,
``finishedAt``), else from the Job's own status (``startTime``, ``completionTime``, the
condition's ``lastTransitionTime``). A failed Job whose pod left no exit status ends with 1 and a
note; a container that could not start (``StartError``, ``ContainerCannotRun``) ends as a shell
would say: 127 when the command was not found, else 126.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from greenai.core.time import format_time, parse_time
from greenai.executors.base import Exited, Launch
from greenai.executors.job_manifest import CONTAINER

NOT_FOUND, CANNOT_START = 127, 126
START_FAILURES = frozenset({"StartError", "ContainerCannotRun", "RunContainerError"})


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What the Job's pod says of the run; ``None`` where it says nothing."""

    name: str | None = None
    node: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def condition(job: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for entry in (job.get("status") or {}).get("conditions") or ():
        if entry.get("type") == kind and entry.get("status") == "True":
            return entry
    return None


def ended(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The condition saying the Job has ended (``Complete`` or ``Failed``), or ``None``."""
    return condition(job, "Complete") or condition(job, "Failed")


def _time(text: object) -> datetime | None:
    """A time the API gave; ``None`` for none, and for the epoch a container that never
    started reports (``StartError``)."""
    if not isinstance(text, str) or not text:
        return None
    at = parse_time(text)
    return None if at.year <= 1970 else at


def pod_facts(pods: Sequence[Mapping[str, Any]]) -> PodFacts:
    """The facts of the newest of ``pods`` (a Job with ``backoffLimit: 0`` has one)."""
    if not pods:
        return PodFacts()
    pod = max(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", "")))
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    mine = [s for s in statuses if s.get("name") == CONTAINER] or statuses
    terminated = ((mine[0].get("state") or {}).get("terminated") if mine else None) or {}
    running = ((mine[0].get("state") or {}).get("running") if mine else None) or {}
    code = terminated.get("exitCode")
    return PodFacts(
        name=(pod.get("metadata") or {}).get("name"),
        node=(pod.get("spec") or {}).get("nodeName"),
        exit_code=code if isinstance(code, int) else None,
        reason=terminated.get("reason"),
        message=terminated.get("message"),
        started_at=_time(terminated.get("startedAt") or running.get("startedAt")),
        finished_at=_time(terminated.get("finishedAt")),
    )


def placement_note(pod: PodFacts, gpus: int) -> str:
    """Where the run ran, for the evidence row: greenai cannot meter a pod."""
    where = f"pod {pod.name}" if pod.name else "its pod"
    node = pod.node or "an unknown node"
    return f"{where} on node {node} with {gpus} GPU(s): not measured by greenai"


def _start_failure(pod: PodFacts, argv0: str) -> tuple[int, str]:
    message = pod.message or ""
    missing = "no such file" in message.lower() or "not found" in message.lower()
    code = NOT_FOUND if missing else CANNOT_START
    what = f"command not found: {argv0}" if missing else f"cannot start {argv0}"
    return code, f"{what} ({pod.reason}: {message})" if message else f"{what} ({pod.reason})"


@dataclass(frozen=True, slots=True)
class Ending:
    """What the executor knows beside the API: the launch's facts and the requests it made."""

    gpus: int
    argv0: str
    limit_note: str | None = None  # the note of the limit activeDeadlineSeconds stands for
    stop_signal: int | None = None  # 15 or 9 when greenai asked the run to stop


def exited(job: Mapping[str, Any], pod: PodFacts, ending: Ending, now: datetime) -> Exited:
    """The ``Exited`` of a Job that has ended (``ended(job)`` is not ``None``)."""
    final = ended(job) or {}
    status = job.get("status") or {}
    notes: list[str] = []
    limit = None
    if final.get("type") == "Complete":
        code = 0 if pod.exit_code is None else pod.exit_code
    elif pod.reason in START_FAILURES:
        code, note = _start_failure(pod, ending.argv0)
        notes.append(note)
    elif pod.exit_code is not None:
        code = pod.exit_code
    else:
        code = 1
        why = f"{final.get('reason') or 'Failed'}: {final.get('message') or 'no message'}"
        notes.append(f"exit status unknown: the Job failed ({why}) and its pod left none")
    if final.get("reason") == "DeadlineExceeded":
        limit = ending.limit_note or "stopped at its activeDeadlineSeconds"
        notes.insert(0, limit)
    notes.append(placement_note(pod, ending.gpus))
    started = pod.started_at or _time(status.get("startTime")) or now
    finished = (
        pod.finished_at
        or _time(status.get("completionTime"))
        or _time(final.get("lastTransitionTime"))
        or now
    )
    signal = _signal(code, ending.stop_signal if limit is None else 15)
    return Exited(code, started, max(started, finished), None, signal, tuple(notes), limit)


def _signal(code: int, asked: int | None) -> int | None:
    """The signal that ended it: only where greenai (or its deadline) sent one and the exit
    status says the command died of a signal (128 + N); a command may exit 143 on its own."""
    if asked is None or not 128 < code < 128 + 65:
        return None
    return code - 128


def limit_note(launch: Launch, deadline_s: int | None) -> str | None:
    """What the Job's ``activeDeadlineSeconds`` stands for, as the local executor says it."""
    if deadline_s is None:
        return None
    if launch.max_runtime is not None and launch.max_runtime.total_seconds() <= deadline_s:
        return f"stopped after its max runtime {launch.max_runtime}"
    if launch.stop_at is not None:
        return f"stopped at its deadline {format_time(launch.stop_at)}"
    return f"stopped after activeDeadlineSeconds {deadline_s}"


def exited_record(exited: Exited) -> dict[str, Any]:
    return {
        "exit_code": exited.exit_code,
        "started_at": format_time(exited.started_at),
        "finished_at": format_time(exited.finished_at),
        "signal": exited.signal,
        "notes": list(exited.notes),
        "limit": exited.limit,
        "paused": exited.paused,
    }


def exited_from(record: Mapping[str, Any]) -> Exited:
    return Exited(
        int(record["exit_code"]),
        parse_time(record["started_at"]),
        parse_time(record["finished_at"]),
        None,
        record.get("signal"),
        tuple(record.get("notes") or ()),
        record.get("limit"),
        bool(record.get("paused")),
    )
