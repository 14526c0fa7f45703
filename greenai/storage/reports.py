"""Read-only queries for the API, the metrics and the replicas: job listings, counts and
totals, the daemon instances and the GPUs claimed on a host. ``Store`` builds on them."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from greenai.core.domain import JobState
from greenai.storage.env_cipher import EnvCipher
from greenai.storage.records import InstanceRecord, JobRecord
from greenai.storage.rows import decisions, gpu_claims, instances, job_record, jobs, runs


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over every finished run, for /metrics."""

    energy_kwh: float = 0.0
    operational_g: float = 0.0
    saved_g: float = 0.0
    deferral_s: float = 0.0
    runs: int = 0


class Reports:
    """Listings and sums over the store's tables, the daemon instances and GPU claims."""

    engine: Engine
    env_cipher: EnvCipher

    def list_jobs(
        self,
        states: Collection[JobState] | None = None,
        project: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[JobRecord], int]:
        """One page of jobs, newest first, and how many match in all."""
        query = select(jobs)
        counting = select(func.count()).select_from(jobs)
        if states:
            query = query.where(jobs.c.state.in_([str(s) for s in states]))
            counting = counting.where(jobs.c.state.in_([str(s) for s in states]))
        if project is not None:
            query = query.where(jobs.c.project == project)
            counting = counting.where(jobs.c.project == project)
        query = query.order_by(jobs.c.submitted_at.desc(), jobs.c.id).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            total = connection.execute(counting).scalar_one()
        return [job_record(r._mapping, self.env_cipher) for r in rows], int(total)

    def job_ids_of_project(self, project: str) -> set[str]:
        """The ids of every job labelled ``project`` (``greenai report --project``)."""
        query = select(jobs.c.id).where(jobs.c.project == project)
        with self.engine.connect() as connection:
            found: Sequence[str] = connection.execute(query).scalars().all()
        return {str(job_id) for job_id in found}

    def rigid_arrivals(
        self, since: datetime
    ) -> tuple[datetime | None, list[tuple[datetime, float, int]]]:
        """When the first job of any kind was submitted since ``since`` (hours before it were
        not observed), and ``(submitted_at, duration_s, gpus)`` of every rigid job submitted
        since then: the demand the fleet planner's reserve for rigid work is learned from."""
        first = select(func.min(jobs.c.submitted_at)).where(jobs.c.submitted_at >= since)
        rigid = select(jobs.c.submitted_at, jobs.c.duration_s, jobs.c.gpus).where(
            jobs.c.flexible.is_(False), jobs.c.submitted_at >= since
        )
        with self.engine.connect() as connection:
            observed = connection.execute(first).scalar()
            rows = [(row[0], float(row[1]), int(row[2])) for row in connection.execute(rigid)]
        return observed, rows

    def busy_gpu_ids(self, host: str) -> set[int]:
        """GPUs of ``host`` that running jobs hold (their claims)."""
        query = select(gpu_claims.c.gpu_id).where(gpu_claims.c.host == host)
        with self.engine.connect() as connection:
            found: Sequence[int] = connection.execute(query).scalars().all()
        return {int(gpu) for gpu in found}

    # -- instances -----------------------------------------------------------------------------

    def instances(self) -> list[InstanceRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(instances)).mappings().all()
        return [InstanceRecord(**dict(row)) for row in rows]

    def count_by_state(self) -> dict[JobState, int]:
        query = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        with self.engine.connect() as connection:
            rows: Sequence[Any] = connection.execute(query).all()
        counts = {JobState(s): int(n) for s, n in rows}
        return {state: counts.get(state, 0) for state in JobState}

    def count_by_action(self) -> dict[str, int]:
        query = select(decisions.c.action, func.count()).group_by(decisions.c.action)
        with self.engine.connect() as connection:
            rows: Sequence[Any] = connection.execute(query).all()
        return {str(a): int(n) for a, n in rows}

    def totals(self) -> Totals:
        query = select(
            func.coalesce(func.sum(runs.c.energy_kwh), 0.0),
            func.coalesce(func.sum(runs.c.operational_g), 0.0),
            func.coalesce(func.sum(runs.c.saved_g), 0.0),
            func.coalesce(func.sum(runs.c.delay_s), 0.0),
            func.count(),
        )
        with self.engine.connect() as connection:
            row: Any = connection.execute(query).one()
        kwh, grams, saved, delay, count = row
        return Totals(float(kwh), float(grams), float(saved), float(delay), int(count))
