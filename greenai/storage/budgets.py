"""The budgets table and what counts against a budget: the measured grams of finished runs and
the jobs holding a share (running, paused, scheduled). ``Store`` builds on it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, func, insert, select, update

from greenai.core.budgets import Budget
from greenai.core.domain import JobState
from greenai.core.time import floor_time
from greenai.storage.models import BudgetRow
from greenai.storage.rows import jobs, runs

budgets = cast(Table, BudgetRow.__table__)
HOLDING = (JobState.RUNNING, JobState.PAUSED, JobState.SCHEDULED)


@dataclass(frozen=True, slots=True)
class Holding:
    """A job of a budgeted project that holds a share of its budget: what its estimate needs.
    ``intensity`` is its plan's expected mean (else the intensity when it was planned)."""

    job_id: str
    project: str
    state: JobState
    planned_start: datetime | None
    power_kw: float
    gpus: int
    seconds_left: float  # its declared duration less what its finished pieces ran
    intensity: float | None
    reason: str  # its plan's


class BudgetTables:
    """Budgets by project, stored durably, and the figures their admission reads."""

    engine: Engine
    _writing: Callable[[], contextlib.AbstractContextManager[Connection]]  # ``Store``'s

    def budgets(self) -> dict[str, Budget]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(budgets).order_by(budgets.c.project)).all()
        return {row.project: _budget(row._mapping) for row in rows}

    def put_budget(self, project: str, limit_g: float, period: timedelta, now: datetime) -> Budget:
        """Set ``project``'s budget. A new one's periods start at midnight UTC of ``now``; a
        changed one keeps its start, so its periods stay where they were."""
        values = {"limit_g": limit_g, "period_s": period.total_seconds(), "updated_at": now}
        with self._writing() as connection:
            found = connection.execute(
                select(budgets.c.start).where(budgets.c.project == project)
            ).first()
            if found is None:
                start = floor_time(now, timedelta(days=1))
                connection.execute(insert(budgets).values(project=project, start=start, **values))
            else:
                start = found.start
                statement = update(budgets).where(budgets.c.project == project).values(**values)
                connection.execute(statement)
        return Budget(project, limit_g, period, start)

    def measured_g(self, project: str, begin: datetime, end: datetime) -> float:
        """Operational grams of ``project``'s runs that finished in ``[begin, end)``."""
        query = (
            select(func.coalesce(func.sum(runs.c.operational_g), 0.0))
            .select_from(runs.join(jobs, runs.c.job_id == jobs.c.id))
            .where(jobs.c.project == project, runs.c.finished_at >= begin, runs.c.finished_at < end)
        )
        with self.engine.connect() as connection:
            return float(connection.execute(query).scalar_one())

    def holdings(self, projects: Collection[str]) -> list[Holding]:
        """The running, paused and scheduled jobs of ``projects``."""
        if not projects:
            return []
        query = select(
            jobs.c.id, jobs.c.project, jobs.c.state, jobs.c.planned_start, jobs.c.power_kw,
            jobs.c.gpus, jobs.c.duration_s, jobs.c.ran_s, jobs.c.plan,
        ).where(
            jobs.c.project.in_(list(projects)), jobs.c.state.in_([str(s) for s in HOLDING])
        )  # fmt: skip
        with self.engine.connect() as connection:
            return list(_holdings(connection.execute(query).mappings()))


def _budget(row: Any) -> Budget:
    return Budget(row["project"], row["limit_g"], timedelta(seconds=row["period_s"]), row["start"])


def _holdings(rows: Iterator[Any]) -> Iterator[Holding]:
    for row in rows:
        plan = row["plan"] or {}
        intensity = plan.get("forecast_intensity")
        yield Holding(
            row["id"],
            row["project"],
            JobState(row["state"]),
            row["planned_start"],
            float(row["power_kw"] or 0.0),
            int(row["gpus"]),
            max(0.0, float(row["duration_s"]) - float(row["ran_s"] or 0.0)),
            plan.get("intensity") if intensity is None else intensity,
            str(plan.get("reason") or ""),
        )
