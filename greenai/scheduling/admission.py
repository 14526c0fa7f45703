"""Carbon budgets applied to a re-plan, and what each budget has used (for the API).

Used budget in a period = the measured operational grams of the project's runs that finished
in it + the estimates of its admitted jobs: running and paused ones (the work they have left,
counted in the current period) and scheduled ones (in the period of their planned start). A
held job (planned at the roll-over, its reason the budget's) counts nowhere until admitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from greenai.core.budgets import Budget, Candidate, Ledger, estimate_g, is_held
from greenai.core.domain import Decision, JobState
from greenai.meters.estimate import PowerModel
from greenai.scheduling.planner import GroupPlan
from greenai.storage.budgets import BudgetTables, Holding


def job_power_kw(declared_kw: float, gpus: int, power_watts: float | None) -> float:
    """A job's draw for its estimate: its declared ``power_kw``, else the daemon's declared
    ``power_watts``, else the estimate meter's TDP model for its GPUs (what its run would be
    charged if nothing measured it)."""
    if declared_kw > 0:
        return declared_kw
    return sum(PowerModel(power_watts, gpus).watts()) / 1000.0


def held_estimate_g(job: Holding, power_watts: float | None) -> float:
    """What a running, paused or scheduled job is expected to emit (0 with no intensity)."""
    power = job_power_kw(job.power_kw, job.gpus, power_watts)
    return estimate_g(power, job.seconds_left, job.intensity or 0.0)


def ledger_for(
    store: BudgetTables,
    budgets: Mapping[str, Budget],
    now: datetime,
    power_watts: float | None,
    *,
    scheduled: bool,
) -> Ledger:
    """The grams already counted against each budget; with ``scheduled``, the scheduled
    jobs' estimates too (a re-plan leaves them out: it admits them again)."""
    ledger = Ledger(budgets)
    for project, budget in budgets.items():
        ledger.add(project, now, store.measured_g(project, *budget.period_at(now)))
    for job in store.holdings(budgets):
        if job.state is JobState.SCHEDULED and (not scheduled or is_held(job.reason)):
            continue
        at = job.planned_start or now if job.state is JobState.SCHEDULED else now
        ledger.add(job.project, at, held_estimate_g(job, power_watts))
    return ledger


def admit_plans(
    groups: Iterable[GroupPlan], ledger: Ledger, now: datetime, power_watts: float | None
) -> int:
    """Admit the budgeted jobs of ``groups`` first come first served, each at its planned
    start; the ones refused get an override (held or rejected). Returns how many."""
    budgets = ledger.budgets
    asking = [
        (group.jobs.submitted[i], group.jobs.ids[i], group, i)
        for group in groups
        for i, project in enumerate(group.jobs.projects)
        if project in budgets
    ]
    asking.sort(key=lambda item: (item[0], item[1]))
    refused = 0
    for _, _, group, index in asking:
        decision = group.decisions[index]
        verdict = ledger.admit(_candidate(group, index, decision, power_watts), now)
        if verdict is not None:
            group.overrides[index] = replace(
                decision, action=verdict.action, reason=verdict.reason, planned_start=verdict.until
            )
            refused += 1
    return refused


def _candidate(
    group: GroupPlan, index: int, decision: Decision, power_watts: float | None
) -> Candidate:
    jobs = group.jobs
    seconds = jobs.durations[index]
    intensity = decision.forecast_intensity
    if intensity is None:
        intensity = decision.intensity
    estimate = None
    if intensity is not None:
        power = job_power_kw(jobs.power_kw[index], jobs.gpus[index], power_watts)
        estimate = estimate_g(power, seconds, intensity)
    return Candidate(
        jobs.ids[index],
        str(jobs.projects[index]),
        decision.planned_start or decision.at,
        jobs.deadlines[index] - timedelta(seconds=seconds),
        estimate,
    )


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """One budget and what its current period has used: ``measured_g`` by finished runs,
    ``estimated_g`` by admitted running, paused and scheduled jobs."""

    budget: Budget
    period_start: datetime
    period_end: datetime
    measured_g: float
    estimated_g: float

    @property
    def used_g(self) -> float:
        return self.measured_g + self.estimated_g

    @property
    def left_g(self) -> float:
        return self.budget.limit_g - self.used_g


def budget_usage(
    store: BudgetTables, budgets: Mapping[str, Budget], now: datetime, power_watts: float | None
) -> list[BudgetUsage]:
    """Each budget's current period: what it has used, measured and estimated."""
    ledger = ledger_for(store, budgets, now, power_watts, scheduled=True)
    usages = []
    for project, budget in sorted(budgets.items()):
        begin, end = budget.period_at(now)
        measured = store.measured_g(project, begin, end)
        used = ledger.used_g(project, now)
        usages.append(BudgetUsage(budget, begin, end, measured, used - measured))
    return usages
