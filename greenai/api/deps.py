"""What the API's routes depend on, built once in ``create_app`` and handed in as ``Annotated``
aliases: no globals, so tests build as many apps as they like."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from greenai.core.domain import Forecast
from greenai.core.time import Clock, SystemClock
from greenai.oneshot.where import LocationForecasts
from greenai.scheduling.config import EngineStats
from greenai.storage.store import Store
from greenai.storage.writer import SubmitWriter


class EngineView(Protocol):
    """The parts of the running engine the API reads (forecast cache, counters)."""

    stats: EngineStats

    def forecast(self, spec: str | None = None) -> Forecast | None: ...


@dataclass
class ApiDeps:
    store: Store
    token: SecretStr | None = None
    clock: Clock = field(default_factory=SystemClock)
    gpu_slots: int = 1
    default_max_delay: timedelta = timedelta(hours=1)
    evidence_path: Path | None = None
    engine: EngineView | None = None
    writer: SubmitWriter | None = None  # group commit of submissions (the daemon starts one)
    default_policy: str = "window"  # what a job that names no policy is planned with
    default_threshold: float | None = None
    public_read: bool = False  # reads (jobs, plan, evidence) skip the token
    allowed_hosts: tuple[str, ...] | None = None  # Host names served (None: any); see app.py
    tick_every: timedelta | None = None  # the loop's period: /healthz reports a loop gone quiet
    clock_speed: float = 1.0  # clock seconds per wall second (a trace clock runs faster)
    power_watts: float | None = None  # a job's declared draw: budget estimates (settings)
    locations: LocationForecasts | None = None  # configured locations: /locations/best


# The dependencies are ``async def``: they never block, and a plain ``def`` would cost each
# request a hop through the threadpool even on the ``async`` submit route.
async def get_deps(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.deps
    return deps


Deps = Annotated[ApiDeps, Depends(get_deps)]
_bearer = HTTPBearer(auto_error=False)


async def require_token(
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """State-changing endpoints need the bearer token when one is configured (the daemon
    refuses to listen beyond localhost without one)."""
    if deps.token is None:
        return
    expected = deps.token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials else b""
    if credentials is None or not secrets.compare_digest(given, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def require_read_token(
    deps: Deps,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Reads that show argv (which may hold secrets), plans or evidence need the token too,
    unless the daemon was told its reads are public."""
    if not deps.public_read:
        await require_token(deps, credentials)


Authorized = Depends(require_token)
ReadAuthorized = Depends(require_read_token)
