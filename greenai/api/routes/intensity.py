"""What the daemon sees and intends: the cached forecast and the upcoming starts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from greenai.api.deps import Deps, ReadAuthorized
from greenai.api.schemas import MAX_TEXT, JobOut, SafeStr
from greenai.core.errors import NotFound

router = APIRouter(tags=["plan"])


class PointOut(BaseModel):
    start: datetime
    value: float


class IntensityOut(BaseModel):
    source: str
    region: str
    signal: str
    fallback: str | None
    static: bool
    issued_at: datetime
    current: float | None
    forecast: list[PointOut]


@router.get("/intensity")
def intensity(
    deps: Deps, provider: Annotated[SafeStr | None, Query(max_length=MAX_TEXT)] = None
) -> IntensityOut:
    """The current intensity and forecast from the daemon's cache (no provider call)."""
    forecast = deps.engine.forecast(provider) if deps.engine else None
    if forecast is None:
        raise NotFound("no forecast cached yet for " + (provider or "the default provider"))
    now = deps.clock.now()
    return IntensityOut(
        source=forecast.source,
        region=forecast.region,
        signal=str(forecast.signal),
        fallback=forecast.fallback,
        static=forecast.static,
        issued_at=forecast.issued_at,
        current=forecast.value_at(now) if forecast.covers(now) else None,
        forecast=[PointOut(start=p.start, value=p.value) for p in forecast.since(now).points],
    )


@router.get("/plan", dependencies=[ReadAuthorized])
def plan(deps: Deps, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[JobOut]:
    """Scheduled jobs in the order the daemon means to start them."""
    return [JobOut.of(job) for job in deps.store.upcoming(limit)]
