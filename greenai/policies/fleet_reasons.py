"""Why ``fleet`` planned each job as it did, in the words the decision log shows.

Every reason names the job's role (rigid, past the flexible fraction, or flexible) and, for a
flexible job, the room kept for rigid work where it starts and the forecast behind it, so a
reader can see the reserve at work. Texts are made once per distinct content: a 10,000-job
queue shares a few hundred.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from greenai.core.time import format_time
from greenai.policies.base import JobBatch
from greenai.policies.placement import NO_ROOM

if TYPE_CHECKING:
    from greenai.policies.fleet import FleetPlan


def fleet_reasons(jobs: JobBatch, plan: FleetPlan, fraction: float) -> list[str]:
    """One reason per job of ``plan``."""
    cutoff = float(plan.saving[plan.flexible].min()) if plan.flexible.any() else 0.0
    said: dict[tuple[object, ...], str] = {}
    reasons = []
    columns = (plan.cell, plan.flexible, plan.demoted, plan.into_reserve, plan.late,
               plan.cost, plan.now_cost, plan.saving, jobs.flexible, plan.best_cell,
               plan.passed_over, plan.best_price)  # fmt: skip
    for row in zip(*(c.tolist() for c in columns), strict=True):
        cell, flexible, demoted, into_reserve, late, cost, now_cost, saving, asked, best = row[:10]
        price = round(row[11], 1) if row[10] else None
        if flexible:
            key: tuple[object, ...] = ("f", cell, best, into_reserve, late, round(cost, 1),
                                       round(now_cost, 1), round(now_cost - saving, 1),
                                       price)  # fmt: skip
        elif demoted:
            key = ("d", cell, round(saving, 1))
        else:
            key = ("r", cell, asked)
        reason = said.get(key)
        if reason is None:
            if flexible:
                costs = (cost, now_cost, now_cost - saving)
                reason = _flexible(jobs, plan, (cell, best), into_reserve, late, costs, price)
            elif demoted:
                reason = _demoted(jobs, plan, cell, fraction, saving, cutoff)
            else:
                reason = f"{'no slack left' if asked else 'rigid job'}: {_queue(jobs, plan, cell)}"
            said[key] = reason
        reasons.append(reason)
    return reasons


def _when(jobs: JobBatch, plan: FleetPlan, cell: int) -> str:
    """A cell's start in words: the first cell starts now (at the plan's own instant, which
    would read as a time to the microsecond); the others at whole seconds."""
    if cell == 0:
        return "now"
    return str(format_time(jobs.at(float(plan.cells.edges[cell])).replace(microsecond=0)))


def _queue(jobs: JobBatch, plan: FleetPlan, cell: int) -> str:
    if cell == 0:
        return "slots free, starts now"
    if cell == NO_ROOM:
        return "waits for slots, first come first served (none in the plan's horizon)"
    return f"waits for slots, first come first served (room by {_when(jobs, plan, cell)})"


def _demoted(
    jobs: JobBatch, plan: FleetPlan, cell: int, fraction: float, saving: float, cutoff: float
) -> str:
    return (
        f"runs as rigid: at most {fraction:.0%} of {plan.queued_gpu_h:.0f} queued GPU-h may "
        f"wait, kept for jobs saving more per GPU-hour ({saving:.1f} g/kWh here, "
        f">= {cutoff:.1f} kept); {_queue(jobs, plan, cell)}"
    )


def _flexible(
    jobs: JobBatch,
    plan: FleetPlan,
    cells: tuple[int, int],
    into_reserve: bool,
    late: bool,
    costs: tuple[float, float, float],
    price: float | None = None,
) -> str:
    """Where the job starts and why there: the reserve where it starts, or, when the best
    start had no room, the reserve that was kept there; or, when the best start still has
    room, left to flexible jobs expected to arrive, its price."""
    (cell, best), (cost, now_cost, best_cost) = cells, costs
    if cell == NO_ROOM:
        return "no room in the plan's horizon: waits for slots, will be late"
    when = _when(jobs, plan, cell)
    head = (
        f"lowest-carbon room before the deadline starts {when} "
        f"(mean {cost:.1f} vs {now_cost:.1f} now)"
    )
    if late:
        head = f"no room before the deadline: earliest room starts {when}, late"
    elif into_reserve:
        head += "; the only room left is in the rigid reserve"
    if cell == best or late:
        return f"{head}; {_reserve(plan, cell)} then"
    where = _when(jobs, plan, best)
    if price is not None:
        return (
            f"{head}; the best start {where} (mean {best_cost:.1f}) is left to flexible jobs "
            f"expected to arrive (its room is priced at {price:.1f} g/kWh)"
        )
    return f"{head}; the best start {where} (mean {best_cost:.1f}) is full: {_reserve(plan, best)}"


def _reserve(plan: FleetPlan, cell: int) -> str:
    return (
        f"{plan.reserve[cell]} GPUs of {plan.slots} kept for rigid work "
        f"(forecast {plan.rigid_forecast[cell]}, {plan.forecast_how})"
    )
