"""Rows of the store's tables and the records they become, plus a lean ``executemany``.

Kept apart from ``store.py`` (which holds the queries) and shared with ``store_writer.py``
(the group commit of submissions). Nothing here opens a transaction.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Dialect, RowMapping, Table
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from greenai.domain import JobState
from greenai.jobs import Event, EventRecord, JobRecord, NewJob, OnDeadline, RunSummary
from greenai.tables import DecisionRow, Job, RunRow

jobs = cast(Table, Job.__table__)
decisions = cast(Table, DecisionRow.__table__)
runs = cast(Table, RunRow.__table__)
JOB_COLUMNS = tuple(column.name for column in jobs.c)
# What re-planning reads of a waiting job; the rest of its ``JobRecord`` keeps the defaults.
PLAN_COLUMNS = (
    jobs.c.id,
    jobs.c.name,
    jobs.c.state,
    jobs.c.on_deadline,
    jobs.c.submitted_at,
    jobs.c.deadline,
    jobs.c.duration_s,
    jobs.c.gpus,
    jobs.c.interruptible,
    jobs.c.attempts,
    jobs.c.updated_at,
    jobs.c.policy,
    jobs.c.threshold,
    jobs.c.provider,
    jobs.c.planned_start,
)
EVENT_COLUMNS = ("job_id", "at", "action", "from_state", "to_state", "reason", "payload")


def bulk_execute(
    connection: Connection,
    statement: ClauseElement,
    rows: Sequence[dict[str, Any]],
    names: Sequence[str] | None = None,
) -> int:
    """``executemany`` of ``statement`` over ``rows`` (dicts keyed by bind name); returns the
    driver's row count (-1 where it has none).

    The columns' bind processing (aware UTC, JSON) is the tables' own, looked up once per
    column; SQLAlchemy's per-row parameter building would cost more than the database's work
    on 10,000 rows. ``names``: the columns an INSERT sets (default: every key of the first row).
    """
    if not rows:
        return 0
    compiled, processors = _compiled(statement, connection.dialect, tuple(names or rows[0]))
    params: list[Any]
    if compiled.positiontup:  # qmark (SQLite): tuples in the statement's order
        order = [(name, processors[name]) for name in compiled.positiontup]
        params = [tuple(p(row[n]) if p else row[n] for n, p in order) for row in rows]
    else:  # named (psycopg)
        named = list(processors.items())
        params = [{n: (p(row[n]) if p else row[n]) for n, p in named} for row in rows]
    result = connection.exec_driver_sql(compiled.string, params)
    return int(result.rowcount)


def plan_record(
    job_id: str,
    name: str,
    state: str,
    on_deadline: str,
    submitted_at: datetime,
    deadline: datetime,
    duration_s: float,
    gpus: int,
    interruptible: bool,
    attempts: int,
    updated_at: datetime,
    policy: str | None,
    threshold: float | None,
    provider: str | None,
    planned_start: datetime | None,
) -> JobRecord:
    """A waiting job from the ``PLAN_COLUMNS`` of its row."""
    return JobRecord(
        id=job_id,
        name=name,
        command=(),
        state=JobState(state),
        on_deadline=OnDeadline(on_deadline),
        submitted_at=submitted_at,
        deadline=deadline,
        duration=timedelta(seconds=duration_s),
        gpus=gpus,
        interruptible=bool(interruptible),
        attempts=attempts,
        updated_at=updated_at,
        policy=policy,
        threshold=threshold,
        provider=provider,
        planned_start=planned_start,
    )


@functools.lru_cache(maxsize=32)
def _compiled(
    statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]
) -> tuple[SQLCompiler, dict[str, Callable[[Any], Any] | None]]:
    """``statement`` compiled for ``executemany`` and its binds' processors, once per
    statement (the store's are module constants), dialect and column set."""
    compiled = cast(
        SQLCompiler,
        statement.compile(dialect=dialect, column_keys=list(keys), for_executemany=True),
    )
    processors: dict[str, Callable[[Any], Any] | None] = {
        name: compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        for name in dict.fromkeys(compiled.positiontup or compiled.binds)
    }
    return compiled, processors


def new_row(new: NewJob, now: datetime) -> dict[str, Any]:
    """The ``jobs`` row of a fresh submission (queued, with a new id)."""
    return {
        "id": str(uuid.uuid4()),
        "name": new.name,
        "command": list(new.command),
        "cwd": new.cwd,
        "env": new.env,
        "state": str(JobState.QUEUED),
        "on_deadline": str(new.on_deadline),
        "submitted_at": new.submitted_at,
        "deadline": new.deadline,
        "duration_s": new.duration.total_seconds(),
        "gpus": new.gpus,
        "interruptible": new.interruptible,
        "policy": new.policy,
        "threshold": new.threshold,
        "project": new.project,
        "provider": new.provider,
        "planned_start": None,
        "attempts": 0,
        "idempotency_key": new.idempotency_key,
        "cancel_requested": False,
        "started_at": None,
        "finished_at": None,
        "exit_code": None,
        "host": None,
        "gpu_ids": None,
        "pid": None,
        "log_path": None,
        "updated_at": now,
    }


def job_record(row: RowMapping | dict[str, Any]) -> JobRecord:
    values = dict(row)
    duration_s = values.pop("duration_s")
    return JobRecord(
        **{
            **values,
            "command": tuple(values["command"]),
            "state": JobState(values["state"]),
            "on_deadline": OnDeadline(values["on_deadline"]),
            "duration": timedelta(seconds=duration_s),
            "gpu_ids": tuple(values["gpu_ids"] or ()),
            "interruptible": bool(values["interruptible"]),
            "cancel_requested": bool(values["cancel_requested"]),
        }
    )


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
        "payload": event.payload,
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
