"""Carbon budgets per project: read them with what their current period has used, set one.

The loop reads the stored budgets at every re-plan, so a ``PUT`` holds from the next tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel

from greenai.api.deps import ApiDeps, Authorized, Deps, ReadAuthorized
from greenai.api.schemas import MAX_TEXT, SafeStr
from greenai.core.budgets import period_text
from greenai.core.settings import BudgetSpec
from greenai.scheduling.admission import BudgetUsage, budget_usage

router = APIRouter(tags=["budgets"])
Project = Annotated[SafeStr, Path(min_length=1, max_length=MAX_TEXT)]


class BudgetOut(BaseModel):
    """A budget and its current period: ``used_kg`` = ``measured_kg`` (runs finished in the
    period) + ``estimated_kg`` (admitted running, paused and scheduled jobs)."""

    project: str
    kg: float
    period: str
    period_s: float
    period_start: datetime
    period_end: datetime
    used_kg: float
    measured_kg: float
    estimated_kg: float
    left_kg: float

    @classmethod
    def of(cls, usage: BudgetUsage) -> BudgetOut:
        budget = usage.budget
        return cls(
            project=budget.project,
            kg=budget.limit_g / 1000,
            period=period_text(budget.period),
            period_s=budget.period.total_seconds(),
            period_start=usage.period_start,
            period_end=usage.period_end,
            used_kg=round(usage.used_g / 1000, 6),
            measured_kg=round(usage.measured_g / 1000, 6),
            estimated_kg=round(usage.estimated_g / 1000, 6),
            left_kg=round(usage.left_g / 1000, 6),
        )


def usages(deps: ApiDeps, project: str | None = None) -> list[BudgetUsage]:
    budgets = deps.store.budgets()
    if project is not None:
        budgets = {project: budgets[project]} if project in budgets else {}
    return budget_usage(deps.store, budgets, deps.clock.now(), deps.power_watts)


@router.get("/budgets", dependencies=[ReadAuthorized])
def list_budgets(deps: Deps) -> list[BudgetOut]:
    """Every project's budget and what its current period has used."""
    return [BudgetOut.of(usage) for usage in usages(deps)]


@router.get("/budgets/{project}", dependencies=[ReadAuthorized])
def get_budget(project: Project, deps: Deps) -> BudgetOut:
    found = usages(deps, project)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project} has no budget")
    return BudgetOut.of(found[0])


@router.put("/budgets/{project}", dependencies=[Authorized])
def put_budget(project: Project, body: BudgetSpec, deps: Deps) -> BudgetOut:
    """Set a project's budget (kgCO2e per period). A new budget's periods start at midnight
    UTC today; a changed one keeps its periods."""
    deps.store.put_budget(project, body.kg * 1000, body.period, deps.clock.now())
    return BudgetOut.of(usages(deps, project)[0])
