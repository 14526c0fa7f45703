"""What the dashboard shows at a glance: the daemon's clock, jobs per state, the sums of every
finished run, and how the provider and the loop are doing.

Public, as ``/metrics`` and ``/healthz`` are: counts and sums only, never argv or a plan.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from greenai.api.deps import Deps
from greenai.core.domain import JobState

router = APIRouter(tags=["health"])


class StateCount(BaseModel):
    state: str
    count: int
    final: bool  # a job in it has ended (history, not queue)


class TotalsOut(BaseModel):
    runs: int
    energy_kwh: float
    operational_g: float
    saved_g: float  # against running each job at its submission (the counterfactual)
    deferral_s: float


class LoopOut(BaseModel):
    ticks: int
    last_tick_at: datetime | None
    provider_errors: int  # forecast refreshes that failed
    fallbacks: int  # forecasts a fallback source answered
    problems: list[str]  # why the daemon is degraded; empty when it is not


class SummaryOut(BaseModel):
    now: datetime  # the daemon's clock (a trace clock when it replays one)
    policy: str
    threshold: float | None
    states: list[StateCount]
    totals: TotalsOut
    loop: LoopOut


@router.get("/summary")
def summary(deps: Deps) -> SummaryOut:
    """Jobs per state, totals of finished runs, and the loop's and provider's counters."""
    now = deps.clock.now()
    counts = deps.store.count_by_state()
    totals = deps.store.totals()
    stats = deps.engine.stats if deps.engine else None
    return SummaryOut(
        now=now,
        policy=deps.default_policy,
        threshold=deps.default_threshold,
        states=[
            StateCount(state=str(state), count=counts.get(state, 0), final=state.is_final)
            for state in JobState
        ],
        totals=TotalsOut(
            runs=totals.runs,
            energy_kwh=totals.energy_kwh,
            operational_g=totals.operational_g,
            saved_g=totals.saved_g,
            deferral_s=totals.deferral_s,
        ),
        loop=LoopOut(
            ticks=stats.ticks if stats else 0,
            last_tick_at=stats.last_tick_at if stats else None,
            provider_errors=stats.provider_errors if stats else 0,
            fallbacks=stats.fallbacks if stats else 0,
            problems=stats.problems(now, deps.tick_every, deps.clock_speed) if stats else [],
        ),
    )
