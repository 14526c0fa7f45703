"""Rows of the store's tables and the records they become, plus a lean ``executemany``.

Kept apart from ``store.py`` (which holds the queries) and shared with ``store_writer.py``
(the group commit of submissions). Nothing here opens a transaction.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Dialect, RowMapping, Table, type_coerce
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.types import NullType

from greenai.core.domain import Job, JobState, OnDeadline
from greenai.storage.env_cipher import EnvCipher
from greenai.storage.models import DecisionRow, GpuClaim, Instance, RunRow, stored_utc
from greenai.storage.models import Job as JobRow
from greenai.storage.records import (
    Event,
    EventRecord,
    JobRecord,
    PlanRows,
    RunSummary,
    Submission,
    WaitingJobs,
)

_Processor = Callable[[Any], Any]

jobs = cast(Table, JobRow.__table__)
decisions = cast(Table, DecisionRow.__table__)
runs = cast(Table, RunRow.__table__)
instances = cast(Table, Instance.__table__)
gpu_claims = cast(Table, GpuClaim.__table__)
JOB_COLUMNS = tuple(column.name for column in jobs.c)
# What re-planning reads of a waiting job (``WaitingJobs``), by ``WaitingJobs`` field name;
# times come raw (``stored_utc``).
PLAN_COLUMNS = {
    "ids": jobs.c.id,
    "states": jobs.c.state,
    "policies": jobs.c.policy,
    "thresholds": jobs.c.threshold,
    "providers": jobs.c.provider,
    "submitted": type_coerce(jobs.c.submitted_at, NullType()),
    "deadlines": type_coerce(jobs.c.deadline, NullType()),
    "durations": jobs.c.duration_s,
    "interruptible": jobs.c.interruptible,
    "gpus": jobs.c.gpus,
    "flexible": jobs.c.flexible,
    "planned": type_coerce(jobs.c.planned_start, NullType()),
    "projects": jobs.c.project,
    "power_kw": jobs.c.power_kw,
    "planned_at": type_coerce(jobs.c.updated_at, NullType()),
}
_STATES = {str(state): state for state in JobState}


def bulk_execute(
    connection: Connection,
    statement: ClauseElement,
    rows: Sequence[dict[str, Any]],
    names: Sequence[str] | None = None,
) -> int:
    """``executemany`` of ``statement`` over ``rows`` (dicts keyed by bind name); returns the
    driver's row count (-1 where it has none). ``names``: the columns an INSERT sets (default:
    every key of the first row)."""
    if not rows:
        return 0
    keys = tuple(names or rows[0])
    return bulk_execute_columns(connection, statement, {k: [row[k] for row in rows] for k in keys})


def bulk_execute_columns(
    connection: Connection,
    statement: ClauseElement,
    columns: Mapping[str, Sequence[Any]],
    json_text: Collection[str] = (),
) -> int:
    """``bulk_execute`` with the parameters given as columns (bind name -> values, all of one
    length); ``json_text`` names JSON columns whose values are already ``json.dumps`` text.

    The columns' bind processing (aware UTC, JSON) is the tables' own, looked up once per
    column and applied column by column; times go through it once per distinct value (a
    re-plan writes one decision time and a few hundred planned starts for 10,000 rows).
    SQLAlchemy's per-row parameter building would cost more than the database's work.
    """
    keys = tuple(columns)
    compiled, processors = _compiled(statement, connection.dialect, keys)
    values = {
        name: _processed(columns[name], processor, name in json_text, connection.dialect)
        for name, processor in processors.items()
    }
    params: list[Any]
    if compiled.positiontup:  # qmark (SQLite): tuples in the statement's order
        params = list(zip(*(values[name] for name in compiled.positiontup), strict=True))
    else:  # named (psycopg)
        names = list(values)
        params = [dict(zip(names, row, strict=True)) for row in zip(*values.values(), strict=True)]
    if not params:
        return 0
    result = connection.exec_driver_sql(compiled.string, params)
    return int(result.rowcount)


def _processed(
    values: Sequence[Any], processor: _Processor | None, is_json_text: bool, dialect: Dialect
) -> Sequence[Any]:
    if is_json_text:  # SQLite stores the very text json.dumps wrote; others wrap the value
        if processor is None or dialect.name == "sqlite":
            return values
        return [processor(json.loads(text)) for text in values]
    if processor is None:
        return values
    if values and isinstance(values[0], datetime):
        done: dict[Any, Any] = {}
        return [done[v] if v in done else done.setdefault(v, processor(v)) for v in values]
    return [processor(v) for v in values]


def waiting_jobs(partitions: Iterable[Sequence[Any]]) -> WaitingJobs:
    """Waiting jobs from rows of ``PLAN_COLUMNS`` (in its order), read a partition at a time
    and converted column by column: the driver's rows of a whole 100,000-job queue held at
    once cost three times the columns they become (60 MB more at the loop's peak)."""
    columns: dict[str, list[Any]] = {name: [] for name in PLAN_COLUMNS}
    for rows in partitions:
        if rows:
            raw = dict(zip(PLAN_COLUMNS, zip(*rows, strict=True), strict=True))
            for name, values in _plan_values(raw).items():
                columns[name].extend(values)
    return WaitingJobs(**columns)


def _plan_values(raw: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """One partition's columns as ``WaitingJobs`` holds them; equal values share one object."""
    seconds: dict[float, float] = {}  # as ``timedelta`` keeps them: whole microseconds
    for value in set(raw["durations"]):
        seconds[value] = timedelta(seconds=value).total_seconds()
    return {
        "ids": list(raw["ids"]),
        "states": [_STATES[state] for state in raw["states"]],
        "policies": _shared(raw["policies"]),
        "thresholds": list(raw["thresholds"]),
        "providers": _shared(raw["providers"]),
        "submitted": _times(raw["submitted"]),
        "deadlines": _times(raw["deadlines"]),
        "durations": [seconds[value] for value in raw["durations"]],
        "interruptible": [bool(value) for value in raw["interruptible"]],
        "gpus": [int(value) for value in raw["gpus"]],
        "flexible": [bool(value) for value in raw["flexible"]],
        "planned": _times(raw["planned"]),
        "projects": _shared(raw["projects"]),
        "power_kw": _shared([float(value or 0.0) for value in raw["power_kw"]]),
        "planned_at": _times(raw["planned_at"]),
    }


def _shared(values: Sequence[Any]) -> list[Any]:
    """``values`` with equal ones as one object: the driver makes a string per row."""
    seen: dict[Any, Any] = {}
    return [seen.setdefault(value, value) for value in values]


def _times(values: Sequence[Any]) -> list[datetime | None]:
    """``stored_utc`` of each value, once per distinct one: a queue shares submission times
    and, once planned, a few hundred planned starts."""
    done: dict[Any, datetime | None] = {}
    return [done[v] if v in done else done.setdefault(v, stored_utc(v)) for v in values]


@functools.lru_cache(maxsize=32)
def _compiled(
    statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]
) -> tuple[SQLCompiler, dict[str, _Processor | None]]:
    """``statement`` compiled for ``executemany`` and its binds' processors, once per
    statement (the store's are module constants), dialect and column set."""
    compiled = cast(
        SQLCompiler,
        statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True),
    )
    processors: dict[str, _Processor | None] = {
        name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in dict.fromkeys(compiled.positiontup or compiled.binds)
    }
    return compiled, processors


def plan_columns(rows: PlanRows) -> dict[str, Sequence[Any]]:
    """The parameters of ``store._SET_PLAN`` for ``rows``: each job becomes scheduled."""
    return {
        "b_id": rows.job_ids,
        "b_expected": rows.expected,
        "b_state": [str(JobState.SCHEDULED)] * len(rows),
        "b_start": rows.starts,
        "b_plan": rows.payloads,
        "b_at": rows.ats,
    }


def decision_columns(rows: PlanRows) -> dict[str, Sequence[Any]]:
    """The ``decisions`` rows recording ``rows``, payloads as JSON text."""
    return {
        "job_id": rows.job_ids,
        "at": rows.ats,
        "action": rows.actions,
        "from_state": rows.expected,
        "to_state": [str(JobState.SCHEDULED)] * len(rows),
        "reason": rows.reasons,
        "payload": rows.payloads,
    }


def new_row(submission: Submission, now: datetime, env_cipher: EnvCipher) -> dict[str, Any]:
    """The ``jobs`` row of a fresh submission (queued, never run), its env sealed."""
    job = submission.job
    return {
        "id": job.id,
        "name": job.name,
        "command": list(job.command),
        "cwd": job.cwd,
        "env": env_cipher.seal(job.env),
        "state": str(JobState.QUEUED),
        "on_deadline": str(job.on_deadline),
        "submitted_at": job.submitted_at,
        "deadline": job.deadline,
        "duration_s": job.duration.total_seconds(),
        "max_runtime_s": None if job.max_runtime is None else job.max_runtime.total_seconds(),
        "pause_signal": job.pause_signal,
        "pause_grace_s": None if job.pause_grace is None else job.pause_grace.total_seconds(),
        "gpus": job.gpus,
        "interruptible": job.interruptible,
        "flexible": job.flexible,
        "power_kw": job.power_kw,
        "policy": job.policy,
        "threshold": job.threshold,
        "project": job.project,
        "provider": job.provider,
        "planned_start": None,
        "plan": None,
        "attempts": 0,
        "idempotency_key": submission.idempotency_key,
        "cancel_requested": False,
        "started_at": None,
        "finished_at": None,
        "exit_code": None,
        "host": None,
        "gpu_ids": None,
        "handle": None,
        "log_path": None,
        "instance_id": None,
        "pieces": 0,
        "ran_s": 0.0,
        "updated_at": now,
    }


def job_record(row: RowMapping | dict[str, Any], env_cipher: EnvCipher) -> JobRecord:
    """A stored row as the job it holds and where that job is in its life; an env that
    ``env_cipher`` cannot open is withheld (``None``, and the record says why)."""
    env = env_cipher.open(row["env"])
    job = Job(
        row["id"],
        row["submitted_at"],
        timedelta(seconds=row["duration_s"]),
        row["deadline"],
        name=row["name"],
        command=tuple(row["command"]),
        gpus=row["gpus"],
        interruptible=bool(row["interruptible"]),
        flexible=bool(row["flexible"]),
        power_kw=row["power_kw"],
        policy=row["policy"],
        threshold=row["threshold"],
        provider=row["provider"],
        project=row["project"],
        on_deadline=OnDeadline(row["on_deadline"]),
        cwd=row["cwd"],
        env=env.env,
        max_runtime=_seconds(row["max_runtime_s"]),
        pause_signal=row["pause_signal"],
        pause_grace=_seconds(row["pause_grace_s"]),
    )
    return JobRecord(
        job=job,
        state=JobState(row["state"]),
        attempts=row["attempts"],
        updated_at=row["updated_at"],
        planned_start=row["planned_start"],
        plan=row["plan"],
        idempotency_key=row["idempotency_key"],
        cancel_requested=bool(row["cancel_requested"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        exit_code=row["exit_code"],
        host=row["host"],
        gpu_ids=tuple(row["gpu_ids"] or ()),
        handle=row["handle"],
        log_path=row["log_path"],
        instance_id=row["instance_id"],
        env_withheld=env.withheld,
        pieces=row["pieces"],
        ran_s=row["ran_s"],
    )


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def event_row(
    job_id: str, event: Event, from_state: str | None, to_state: str | None
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "at": event.at,
        "action": event.action,
        "from_state": from_state,
        "to_state": to_state,
        "reason": event.reason,
        "payload": event.payload,  # JSON text, stored as written (``json_text``)
    }


def event_record(row: RowMapping) -> EventRecord:
    return EventRecord(
        job_id=row["job_id"],
        at=row["at"],
        action=row["action"],
        reason=row["reason"],
        from_state=JobState(row["from_state"]) if row["from_state"] else None,
        to_state=JobState(row["to_state"]) if row["to_state"] else None,
        payload=dict(row["payload"]),
    )


def run_row(summary: RunSummary) -> dict[str, Any]:
    return {name: getattr(summary, name) for name in RunSummary.__slots__}
