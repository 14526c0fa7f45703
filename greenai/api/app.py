"""``create_app(deps)``: the FastAPI application, with one handler mapping greenai's errors
to status codes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from greenai.api.dashboard import add_dashboard
from greenai.api.deps import ApiDeps
from greenai.api.docs import add_offline_docs
from greenai.api.guards import BodyLimit, HostCheck
from greenai.api.routes import budgets, health, intensity, jobs, locations, summary
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
    return JSONResponse({"detail": printable(str(exc))}, status_code=code)


def printable(value: object) -> str | int:
    """``value`` as JSON can always carry it: ints as they are, anything else as text with
    lone surrogates escaped (``\\ud800``), so an error never fails to render."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, minus the echoed ``input`` and ``ctx``: they may be NaN, bytes or a
    lone surrogate, which JSON cannot carry (the default handler then fails with a 500)."""
    errors: list[dict[str, Any]] = []
    if isinstance(exc, RequestValidationError):
        errors = [
            {
                "type": printable(error.get("type", "value_error")),
                "loc": [printable(part) for part in error.get("loc", ())],
                "msg": printable(error.get("msg", "")),
            }
            for error in exc.errors()
        ]
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def create_app(deps: ApiDeps) -> FastAPI:
    """The REST API over ``deps``; OpenAPI at /docs, the dashboard at /, both offline."""
    app = FastAPI(
        title="greenai",
        summary="Carbon-aware job scheduler",
        version="0.1.0",
        docs_url=None,  # add_offline_docs serves /docs without a CDN
        redoc_url=None,  # ReDoc fetches its logo from a CDN
    )
    app.state.deps = deps
    app.state.metrics = health.metrics_registry(deps)
    app.add_exception_handler(GreenAIError, _greenai_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(BodyLimit)
    if deps.allowed_hosts is not None:  # added last: checked first
        app.add_middleware(HostCheck, allowed=deps.allowed_hosts)
    routers = (jobs, intensity, health, summary, budgets, locations)
    for module in routers:
        app.include_router(module.router)
    add_offline_docs(app)
    add_dashboard(app)
    return app
