"""The only module that speaks SQL: jobs, their decisions and their runs.

Every state change is a compare-and-set (``UPDATE jobs ... WHERE id = :id AND state IN
(:expected)``) written in the same transaction as the event that explains it, so two loops can
never both start one job and no transition is ever stored without its reason. SQLite allows one
writer at a time; an in-process lock queues our own writers so they never spin on the busy
timeout (other processes still get it).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    bindparam,
    cast,
    delete,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from greenai.core.domain import JobState, OnDeadline
from greenai.core.errors import InvalidTransition, NotFound
from greenai.core.time import utc_now
from greenai.storage.budgets import BudgetTables
from greenai.storage.database import write_lock
from greenai.storage.env_cipher import EnvCipher, process_cipher
from greenai.storage.records import (
    Event,
    EventRecord,
    InstanceRecord,
    JobRecord,
    PlanRows,
    RunSummary,
    Submission,
    WaitingJobs,
)
from greenai.storage.reports import Reports
from greenai.storage.rows import (
    JOB_COLUMNS,
    PLAN_COLUMNS,
    bulk_execute,
    bulk_execute_columns,
    decision_columns,
    decisions,
    event_record,
    event_row,
    gpu_claims,
    instances,
    job_record,
    jobs,
    new_row,
    plan_columns,
    run_row,
    runs,
    waiting_jobs,
)

log = logging.getLogger(__name__)

_CHUNK = 5000
PLAN_READ_CHUNK = 5000  # rows a re-plan reads and converts at a time
_BY_ID = 1000  # up to this many plans, their jobs' states are read by id
_INSERT_JOB = insert(jobs)
_INSERT_DECISION = insert(decisions)
_SET_PLAN = (
    update(jobs)
    .where(jobs.c.id == bindparam("b_id"), jobs.c.state == bindparam("b_expected"))
    .values(
        state=bindparam("b_state"),
        planned_start=bindparam("b_start"),
        plan=bindparam("b_plan"),
        updated_at=bindparam("b_at"),
    )
)


class Store(Reports, BudgetTables):
    """Jobs, decisions and runs on one SQLAlchemy engine (SQLite or PostgreSQL); the
    read-only reports (listings, counts, instances, claims) are in ``Reports``, the budgets in
    ``BudgetTables``.

    ``env_cipher`` seals job envs (``greenai.storage.env_cipher``); the daemon passes its key
    file's. The default is a key of this process only: fine for tests, useless to a restart."""

    def __init__(self, engine: Engine, env_cipher: EnvCipher | None = None) -> None:
        self.engine = engine
        self.env_cipher = env_cipher or process_cipher()
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            write_lock(engine) or contextlib.nullcontext()
        )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as connection:
            yield connection

    # -- submissions -------------------------------------------------------------------------

    def submit(self, new: Submission, now: datetime | None = None) -> tuple[JobRecord, bool]:
        """Store ``new`` as a queued job; ``(job, created)``. A repeated idempotency key
        returns the job that key first created instead of a second one."""
        try:
            return self.submit_many([(new, now or utc_now())])[0]
        except IntegrityError:  # another writer stored the same key meanwhile
            existing = self._by_idempotency_key(new.idempotency_key or "")
            if existing is None:
                raise
            return existing, False

    def submit_many(
        self, batch: Sequence[tuple[Submission, datetime]]
    ) -> list[tuple[JobRecord, bool]]:
        """Store many submissions in one transaction: ``(job, created)`` for each, in order.

        Idempotency keys hold inside the batch as across batches: the first submission of a
        key creates the job, later ones (in this batch or in the table) get that job back.
        Raises ``IntegrityError``, with nothing of the batch written, when another writer
        stored one of its keys between our read and our insert.
        """
        rows = [new_row(new, now, self.env_cipher) for new, now in batch]
        keys = {str(row["idempotency_key"]) for row in rows if row["idempotency_key"] is not None}
        results: list[tuple[JobRecord, bool]] = []
        fresh: list[dict[str, Any]] = []
        with self._writing() as connection:
            known = self._keyed(connection, keys)
            for row in rows:
                key = row["idempotency_key"]
                if key is not None and key in known:
                    results.append((known[key], False))
                    continue
                record = job_record(row, self.env_cipher)
                if key is not None:
                    known[key] = record
                fresh.append(row)
                results.append((record, True))
            bulk_execute(connection, _INSERT_JOB, fresh, JOB_COLUMNS)
        if fresh:  # one line per commit: at a thousand submissions a second, not one each
            queued = ", ".join(f"{row['id']} ({row['name']})" for row in fresh)
            log.info("%d job(s) queued: %s", len(fresh), queued)
        return results

    def _keyed(self, connection: Connection, keys: set[str]) -> dict[str, JobRecord]:
        if not keys:
            return {}
        query = select(jobs).where(jobs.c.idempotency_key.in_(sorted(keys)))
        rows = connection.execute(query).mappings()
        return {str(row["idempotency_key"]): job_record(row, self.env_cipher) for row in rows}

    def _by_idempotency_key(self, key: str) -> JobRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(jobs).where(jobs.c.idempotency_key == key)).first()
        return job_record(row._mapping, self.env_cipher) if row is not None else None

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord:
        with self.engine.connect() as connection:
            row = connection.execute(select(jobs).where(jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"job {job_id} not found")
        return job_record(row._mapping, self.env_cipher)

    def ids_starting(self, prefix: str, limit: int = 5) -> list[str]:
        """``[prefix]`` when it is a whole id, else up to ``limit`` ids that start with it, so
        a person can type the first characters of an id (as git takes a short hash)."""
        with self.engine.connect() as connection:
            if connection.execute(select(jobs.c.id).where(jobs.c.id == prefix)).first():
                return [prefix]
            query = (
                select(jobs.c.id)
                .where(jobs.c.id.startswith(prefix, autoescape=True))
                .order_by(jobs.c.id)
                .limit(limit)
            )
            return list(connection.execute(query).scalars())

    def jobs_in(self, states: Collection[JobState]) -> list[JobRecord]:
        """Every job in ``states``, earliest deadline first (the engine's working set)."""
        query = (
            select(jobs)
            .where(jobs.c.state.in_([str(s) for s in states]))
            .order_by(jobs.c.deadline, jobs.c.submitted_at, jobs.c.id)
        )
        with self.engine.connect() as connection:
            return [job_record(r._mapping, self.env_cipher) for r in connection.execute(query)]

    def expiring(self, now: datetime) -> list[JobRecord]:
        """Waiting jobs that asked to expire at their deadline and have reached it: the few the
        engine must expire, found by the database, not by decoding every waiting job."""
        query = (
            select(jobs)
            .where(jobs.c.state.in_([str(JobState.QUEUED), str(JobState.SCHEDULED)]))
            .where(jobs.c.on_deadline == str(OnDeadline.EXPIRE))
            .where(jobs.c.deadline <= now)
            .order_by(jobs.c.deadline, jobs.c.id)
        )
        with self.engine.connect() as connection:
            return [job_record(r._mapping, self.env_cipher) for r in connection.execute(query)]

    def has_waiting(self) -> bool:
        """Whether a job waits to start or, paused between pieces, to resume."""
        waiting = (JobState.QUEUED, JobState.SCHEDULED, JobState.PAUSED)
        query = select(jobs.c.id).where(jobs.c.state.in_([str(s) for s in waiting]))
        with self.engine.connect() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def waiting_for_plan(self) -> WaitingJobs:
        """Queued and scheduled jobs, as columns of only what planning reads: re-planning
        10,000 jobs must not decode 10,000 argv lists nor build 10,000 records."""
        query = select(*PLAN_COLUMNS.values()).where(
            jobs.c.state.in_([str(JobState.QUEUED), str(JobState.SCHEDULED)])
        )
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=PLAN_READ_CHUNK).execute(query)
            return waiting_jobs(result.partitions())

    def waiting_providers(self) -> set[str | None]:
        """The provider specs waiting jobs asked for (``None``: the default)."""
        query = (
            select(jobs.c.provider)
            .distinct()
            .where(jobs.c.state.in_([str(JobState.QUEUED), str(JobState.SCHEDULED)]))
        )
        with self.engine.connect() as connection:
            return {row[0] for row in connection.execute(query)}

    def upcoming(self, limit: int = 100) -> list[JobRecord]:
        """Scheduled jobs by planned start: the plan the daemon is following."""
        query = (
            select(jobs)
            .where(jobs.c.state == str(JobState.SCHEDULED))
            .order_by(jobs.c.planned_start, jobs.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [job_record(r._mapping, self.env_cipher) for r in connection.execute(query)]

    def events(self, job_id: str) -> list[EventRecord]:
        query = select(decisions).where(decisions.c.job_id == job_id).order_by(decisions.c.id)
        with self.engine.connect() as connection:
            return [event_record(r._mapping) for r in connection.execute(query)]

    def runs(self, job_id: str) -> list[RunSummary]:
        query = select(runs).where(runs.c.job_id == job_id).order_by(runs.c.started_at)
        with self.engine.connect() as connection:
            return [RunSummary(**dict(r._mapping)) for r in connection.execute(query)]

    # -- instances ---------------------------------------------------------------------------

    def register_instance(self, instance: InstanceRecord) -> None:
        with self._writing() as connection:
            connection.execute(insert(instances), [asdict(instance)])

    def heartbeat(self, instance_id: str, at: datetime) -> None:
        statement = update(instances).where(instances.c.id == instance_id)
        with self._writing() as connection:
            connection.execute(statement.values(heartbeat_at=at))

    # -- transitions -------------------------------------------------------------------------

    def transition(
        self,
        job_id: str,
        expected: JobState | Collection[JobState],
        new: JobState,
        event: Event,
        **changes: Any,
    ) -> JobRecord:
        """Move a job from one of ``expected`` to ``new`` and record ``event``, atomically.

        Raises ``InvalidTransition`` when the job is no longer in an expected state (someone
        else moved it first) and ``NotFound`` for an unknown id.
        """
        with self._writing() as connection:
            record = self._transition(connection, job_id, expected, new, event, changes)
        log.info("job %s -> %s: %s", job_id, new, event.reason)
        return record

    def claim(
        self,
        job_id: str,
        event: Event,
        expected: JobState = JobState.SCHEDULED,
        **changes: Any,
    ) -> JobRecord:
        """Start a scheduled job (or resume a paused one: ``expected``) and claim its GPUs
        (``changes['gpu_ids']`` on ``changes['host']``) in one transaction:
        ``InvalidTransition`` when another daemon started the job or holds one of the GPUs
        (nothing is then written)."""
        host, gpu_ids = str(changes.get("host") or ""), list(changes.get("gpu_ids") or ())
        rows = [{"host": host, "gpu_id": gpu, "job_id": job_id} for gpu in gpu_ids]
        try:
            with self._writing() as connection:
                record = self._transition(
                    connection, job_id, expected, JobState.RUNNING, event, changes
                )
                if rows:
                    connection.execute(insert(gpu_claims), rows)
        except IntegrityError as exc:
            raise InvalidTransition(
                f"job {job_id}: GPUs {gpu_ids} of {host} are held by another job"
            ) from exc
        log.info("job %s -> running: %s", job_id, event.reason)
        return record

    def finish_run(
        self, job_id: str, new: JobState, event: Event, run: RunSummary, **changes: Any
    ) -> JobRecord:
        """End a running job in state ``new`` and store its run, in one transaction: a run is
        never stored for a job still running, nor a job ended without its run."""
        with self._writing() as connection:
            record = self._transition(connection, job_id, JobState.RUNNING, new, event, changes)
            connection.execute(insert(runs), run_row(run))
        log.info("job %s -> %s: %s", job_id, new, event.reason)
        return record

    def _transition(
        self,
        connection: Connection,
        job_id: str,
        expected: JobState | Collection[JobState],
        new: JobState,
        event: Event,
        changes: dict[str, Any],
    ) -> JobRecord:
        allowed = [str(expected)] if isinstance(expected, JobState) else [str(s) for s in expected]
        current = connection.execute(
            select(jobs.c.state).where(jobs.c.id == job_id).with_for_update()
        ).scalar()
        row = None
        if current in allowed:
            statement = (
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == current)
                .values(state=str(new), updated_at=event.at, **changes)
                .returning(*jobs.c)
            )
            row = connection.execute(statement).first()
        if row is None:
            raise _refusal(job_id, current, allowed, new)
        if current == str(JobState.RUNNING) and new is not JobState.RUNNING:
            connection.execute(delete(gpu_claims).where(gpu_claims.c.job_id == job_id))
        _insert_event(connection, event_row(job_id, event, current, str(new)))
        return job_record(row._mapping, self.env_cipher)

    def add_event(self, job_id: str, event: Event) -> None:
        """Record an event that changes no state (a daemon re-attaching to a run)."""
        with self._writing() as connection:
            _insert_event(connection, event_row(job_id, event, None, None))

    def update_running(self, job_id: str, **changes: Any) -> None:
        """Set fields of a running job (its run's handle) without changing its state."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == str(JobState.RUNNING))
            .values(**changes)
        )
        with self._writing() as connection:
            connection.execute(statement)

    def hand_over(self, job_id: str, handle: dict[str, Any], event: Event) -> bool:
        """Store the handle of a scheduled job that an executor now holds, waiting for its
        start (``SubmitsAhead``), with the ``event`` that says so; ``False`` when the job is
        no longer scheduled (nothing is then written)."""
        statement = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state == str(JobState.SCHEDULED))
            .values(handle=handle, updated_at=event.at)
        )
        with self._writing() as connection:
            if not connection.execute(statement).rowcount:
                return False
            _insert_event(connection, event_row(job_id, event, None, None))
        return True

    def handed_over_and_dropped(self, limit: int = 100) -> list[JobRecord]:
        """Jobs that ended before they started (cancelled, expired, rejected) while an
        executor held them for their start: the engine withdraws those runs."""
        final = [str(state) for state in JobState if state.is_final]
        query = (
            select(jobs)
            .where(
                jobs.c.state.in_(final),
                jobs.c.started_at.is_(None),
                cast(jobs.c.handle, String) != "null",  # JSON null, as a job is created
            )
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [job_record(r._mapping, self.env_cipher) for r in connection.execute(query)]

    def forget_handle(self, job_id: str) -> None:
        """The run a dropped job's handle named is withdrawn: nothing to look for any more."""
        with self._writing() as connection:
            connection.execute(update(jobs).where(jobs.c.id == job_id).values(handle=null()))

    def request_cancel(self, job_id: str, at: datetime) -> JobRecord:
        """Cancel a waiting (or paused) job now, or flag a running one for the engine to
        stop."""
        waiting = (JobState.QUEUED, JobState.SCHEDULED, JobState.PAUSED)
        try:
            return self.transition(
                job_id, waiting, JobState.CANCELLED, Event(at, "cancel", "cancelled by a user")
            )
        except InvalidTransition:
            statement = (
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == str(JobState.RUNNING))
                .values(cancel_requested=True, updated_at=at)
                .returning(*jobs.c)
            )
            with self._writing() as connection:
                row = connection.execute(statement).first()
                if row is None:
                    current = self._state_of(connection, job_id)
                    raise _refusal(
                        job_id, current, [str(JobState.RUNNING)], JobState.CANCELLED
                    ) from None
                event = Event(at, "cancel", "cancel requested by a user; stopping the command")
                _insert_event(connection, event_row(job_id, event, None, None))
            return job_record(row._mapping, self.env_cipher)

    @staticmethod
    def _state_of(connection: Connection, job_id: str) -> str | None:
        return connection.execute(select(jobs.c.state).where(jobs.c.id == job_id)).scalar()

    def set_plans(self, rows: PlanRows) -> PlanRows:
        """Apply many planned starts in one transaction (queued/scheduled -> scheduled), each
        with its decision, which also becomes the job's current plan. A job that left its
        expected state meanwhile (another planner, a cancel) is skipped. Returns the rows that
        were applied: only their decisions happened."""
        if not rows:
            return rows
        with self._writing() as connection:
            rows = rows.take(self._still_expected(connection, rows))
            changed = bulk_execute_columns(
                connection, _SET_PLAN, plan_columns(rows), json_text=("b_plan",)
            )
            if changed not in (len(rows), -1):  # cannot happen under the row locks taken
                raise InvalidTransition(f"{len(rows) - changed} plan(s) changed underneath")
            events = decision_columns(rows)
            bulk_execute_columns(connection, _INSERT_DECISION, events, json_text=("payload",))
        return rows

    @staticmethod
    def _still_expected(connection: Connection, rows: PlanRows) -> list[int]:
        """The indices of the rows whose job is still in the state they expect, rows locked
        (``FOR UPDATE``; SQLite's writer holds the whole database). A few ids are looked up by
        id; many, by reading every waiting job's state (cheaper than naming 10,000 ids)."""
        waiting = [str(JobState.QUEUED), str(JobState.SCHEDULED)]
        query = select(jobs.c.id, jobs.c.state)
        if len(rows) <= _BY_ID:
            query = query.where(jobs.c.id.in_(rows.job_ids))
        else:
            query = query.where(jobs.c.state.in_(waiting))
        found: Sequence[Any] = connection.execute(query.with_for_update()).all()
        current = {str(job_id): str(state) for job_id, state in found}
        expected = zip(rows.job_ids, rows.expected, strict=True)
        return [i for i, (job_id, state) in enumerate(expected) if current.get(job_id) == state]

    def runs_without_evidence(self) -> list[RunSummary]:
        """Finished runs whose SCI row may not be in the evidence file yet (the daemon stopped
        between storing the run and appending its row)."""
        query = select(runs).where(runs.c.evidence_appended.is_(False)).order_by(runs.c.finished_at)
        with self.engine.connect() as connection:
            return [RunSummary(**dict(r._mapping)) for r in connection.execute(query)]

    def mark_evidence_appended(self, run_id: str) -> None:
        statement = update(runs).where(runs.c.id == run_id).values(evidence_appended=True)
        with self._writing() as connection:
            connection.execute(statement)


def _insert_event(connection: Connection, row: dict[str, Any]) -> None:
    """One event row; its payload is JSON text, stored as written."""
    columns = {name: [value] for name, value in row.items()}
    bulk_execute_columns(connection, _INSERT_DECISION, columns, json_text=("payload",))


def _refusal(job_id: str, current: str | None, allowed: list[str], new: JobState) -> Exception:
    if current is None:
        return NotFound(f"job {job_id} not found")
    return InvalidTransition(
        f"job {job_id} is {current}, not {' or '.join(allowed)}; cannot move it to {new}"
    )
