"""``GET /locations/best``: the Carbon Aware SDK's ``bylocations/best`` question with data
gravity: where (and when) one job is greenest, and what moving its data costs. Read-only:
no token, like ``/intensity``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from greenai.api.deps import Deps
from greenai.api.schemas import MAX_TEXT, SafeStr
from greenai.core.errors import ConfigError, NotFound
from greenai.oneshot.where import answer, parse_job_duration, power_for, ranking_json
from greenai.policies.where import Question

router = APIRouter(tags=["plan"])
DEFAULT_DEADLINE = timedelta(hours=48)
Text = Annotated[SafeStr | None, Query(max_length=MAX_TEXT)]


@router.get("/locations/best")
def best_location(
    deps: Deps,
    duration: Annotated[SafeStr, Query(max_length=32, description="e.g. 2h")],
    locations: Annotated[
        SafeStr | None, Query(max_length=MAX_TEXT, description="candidates, e.g. PJM,ON")
    ] = None,
    data_gb: Annotated[float, Query(ge=0, le=1e9, allow_inf_nan=False)] = 0.0,
    data_location: Text = None,
    deadline: Annotated[datetime | None, Query(description="latest finish (ISO-8601)")] = None,
    residency: Text = None,
    gpus: Annotated[int, Query(ge=1, le=100_000)] = 1,
    power_kw: Annotated[float | None, Query(ge=0, le=1e6, allow_inf_nan=False)] = None,
    usd_per_kg: Annotated[float | None, Query(ge=0, le=1e6, allow_inf_nan=False)] = None,
) -> dict[str, Any]:
    """The configured locations ranked for one job (docs/formats.md, "where")."""
    if deps.locations is None:
        raise NotFound("no locations configured (GREENAI_LOCATIONS or [locations.NAME])")
    if data_gb > 0 and not data_location:
        raise ConfigError("data_location: say where the data_gb lives")
    now = deps.clock.now()
    kw, power = power_for(gpus, power_kw, deps.locations.settings)
    question = Question(
        now=now,
        duration=parse_job_duration(duration, "duration"),
        deadline=deadline if deadline is not None else now + DEFAULT_DEADLINE,
        power_kw=kw,
        gpus=gpus,
        data_gb=data_gb,
        data_at=data_location if data_gb > 0 else None,
        residency=residency,
        usd_per_kg=usd_per_kg,
    )
    names = [n.strip() for n in locations.split(",") if n.strip()] if locations else None
    ranking, why = answer(deps.locations, question, names)
    return ranking_json(ranking, question, why, power)
