"""Carbon-budget admission in the simulator (``--budget-kg X --budget-period 7d``), through
the daemon's ``Ledger`` (``greenai.core.budgets``): every job of the workload is one project.

A job about to start is admitted when its estimate (``power_kw`` x its running time x the mean
of the forecast visible then over its run) fits what is left of the period's budget; else it
is held, and decided again by the policy when the period rolls over, or rejected (it never
runs) when it could then no longer start by its latest start. When a job ends, its estimate
gives way to its actual emissions, counted in the period it ended in: used = measured
emissions of the jobs that finished + estimates of the admitted jobs still running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from greenai.core.budgets import Budget, Candidate, Ledger, estimate_g, period_text
from greenai.core.domain import Action
from greenai.core.time import floor_time
from greenai.policies.view import ForecastView
from greenai.policies.windows import Grid
from greenai.simulate.engine import JobRun, ViewSource
from greenai.simulate.result import job_emissions_kg

PROJECT = "simulate"  # the workload has no project column: one budget for every job


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """``--budget-kg`` and ``--budget-period``."""

    kg: float
    period: timedelta


class BudgetGate:
    """The simulator engine's admission hook (``greenai.simulate.engine.Admission``)."""

    def __init__(
        self, settings: BudgetSettings, runs: list[JobRun], origin: datetime,
        forecasts: ViewSource, actual: Grid,
    ) -> None:  # fmt: skip
        start = floor_time(origin, timedelta(days=1))  # periods from midnight UTC, as serve's
        self.budget = Budget(PROJECT, settings.kg * 1000.0, settings.period, start)
        self.ledger = Ledger({PROJECT: self.budget})
        self.runs, self.origin = runs, origin
        self.forecasts, self.actual = forecasts, actual
        self.counted: dict[int, tuple[datetime, float]] = {}  # admitted: where, how much
        self.held: set[int] = set()
        self.rejected: set[int] = set()

    def admit(self, index: int, at: float) -> float | None:
        """``None``: the job may start at ``at``; else when to decide again (``inf``: never,
        the job is rejected)."""
        if index in self.counted:
            return None
        run, when = self.runs[index], self._time(at)
        grams = self._estimate_g(run, at)
        latest = self._time(run.deadline - run.remaining)
        verdict = self.ledger.admit(Candidate(run.job.id, PROJECT, when, latest, grams), when)
        if verdict is None:
            self.counted[index] = (when, grams)
            return None
        if verdict.action is Action.REJECT or verdict.until is None:
            self.rejected.add(index)
            self.held.discard(index)
            return math.inf
        self.held.add(index)
        return (verdict.until - self.origin).total_seconds()

    def finished(self, index: int, at: float) -> None:
        """The job has run all its time: its actual emissions replace its estimate."""
        counted = self.counted.get(index)
        if counted is None:
            return
        run = self.runs[index]
        when, grams = counted
        self.ledger.add(PROJECT, when, -grams)
        actual_g = job_emissions_kg(self.actual, run.segments, run.job.power_kw) * 1000.0
        self.ledger.add(PROJECT, self._time(at), actual_g)

    def _estimate_g(self, run: JobRun, at: float) -> float:
        view: ForecastView = self.forecasts.view_at(at)
        end = at + run.remaining
        grid = view.grid_until(end)
        seconds = run.remaining
        mean = float(grid.mean(at - view.origin, seconds)) if seconds > 0 else 0.0
        return estimate_g(run.job.power_kw, seconds, mean)

    def _time(self, seconds: float) -> datetime:
        return self.origin + timedelta(seconds=seconds)

    def summary(self) -> dict[str, Any]:
        """The result's ``budget`` object (docs/formats.md §3)."""
        return {
            "kg": self.budget.limit_g / 1000.0,
            "period": period_text(self.budget.period),
            "held": len(self.held),
            "rejected": len(self.rejected),
            "periods": [
                {"start": _iso(begin), "used_kg": round(grams / 1000.0, 6)}
                for begin, grams in self.ledger.periods(PROJECT)
            ],
        }


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def with_budget(result: dict[str, Any], gate: BudgetGate) -> dict[str, Any]:
    """``result`` with its ``budget`` object just before ``jobs_detail``."""
    keys = [key for key in result if key != "jobs_detail"]
    return {**{key: result[key] for key in keys}, "budget": gate.summary(),
            "jobs_detail": result["jobs_detail"]}  # fmt: skip
