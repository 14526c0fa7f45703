"""``create_app(deps)``: the FastAPI application, with one handler mapping greenai's errors
to status codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from greenai.api.deps import ApiDeps
from greenai.api.routes import health, intensity, jobs
from greenai.core.errors import (
    ConfigError,
    ExecutorError,
    GreenAIError,
    InvalidTransition,
    NotFound,
    ProviderError,
)

log = logging.getLogger(__name__)

STATUS_OF: tuple[tuple[type[GreenAIError], int], ...] = (
    (NotFound, status.HTTP_404_NOT_FOUND),
    (InvalidTransition, status.HTTP_409_CONFLICT),
    (ConfigError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (ProviderError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ExecutorError, status.HTTP_500_INTERNAL_SERVER_ERROR),
)


def status_for(error: GreenAIError) -> int:
    return next((code for kind, code in STATUS_OF if isinstance(error, kind)), 500)


async def _greenai_error(request: Request, exc: Exception) -> JSONResponse:
    code = status_for(exc) if isinstance(exc, GreenAIError) else 500
    if code >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=code)


def create_app(deps: ApiDeps) -> FastAPI:
    """The REST API over ``deps``; OpenAPI at /docs."""
    app = FastAPI(title="greenai", summary="Carbon-aware job scheduler", version="0.1.0")
    app.state.deps = deps
    app.state.metrics = health.metrics_registry(deps)
    app.add_exception_handler(GreenAIError, _greenai_error)
    for router in (jobs.router, intensity.router, health.router):
        app.include_router(router)
    return app
