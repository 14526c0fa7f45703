"""Jobs: submit (idempotently), list, show with decisions and evidence, cancel."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.exceptions import RequestValidationError

from greenai.api.deps import Authorized, Deps
from greenai.api.schemas import DecisionOut, JobDetail, JobIn, JobOut, JobPage, RunOut
from greenai.domain import JobState
from greenai.jobs import NewJob, OnDeadline

router = APIRouter(tags=["jobs"])


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


@router.post(
    "/jobs",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Authorized],
    responses={200: {"model": JobOut, "description": "the job an earlier, same-key submit made"}},
)
def submit_job(
    body: JobIn,
    deps: Deps,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JobOut:
    """Queue a job. A retried request with the same ``Idempotency-Key`` returns the first job."""
    now = deps.clock.now()
    deadline = body.resolved_deadline(now, deps.default_max_delay)
    if body.deadline is not None and body.max_delay is not None:
        raise _invalid("max_delay", "give a deadline or a max_delay, not both")
    if deadline <= now:
        raise _invalid("deadline", "is in the past")
    if body.gpus > deps.gpu_slots:
        raise _invalid("gpus", f"more than the {deps.gpu_slots} GPU slots of this daemon")
    new = NewJob(
        name=body.name or os.path.basename(body.command[0]),
        command=tuple(body.command),
        submitted_at=now,
        deadline=deadline,
        duration=timedelta(seconds=body.duration),
        gpus=body.gpus,
        interruptible=body.interruptible,
        on_deadline=OnDeadline(body.on_deadline),
        cwd=body.cwd,
        env=body.env,
        policy=body.policy,
        threshold=body.threshold,
        project=body.project,
        provider=body.provider,
        idempotency_key=idempotency_key,
    )
    job, created = deps.store.submit(new, now)
    if not created:
        response.status_code = status.HTTP_200_OK
    return JobOut.of(job)


@router.get("/jobs")
def list_jobs(
    deps: Deps,
    state: Annotated[list[JobState] | None, Query()] = None,
    project: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobPage:
    """Jobs, newest first; filter by ``state`` (repeatable) and ``project``."""
    items, total = deps.store.list_jobs(state, project, limit, offset)
    return JobPage(items=[JobOut.of(j) for j in items], total=total, limit=limit, offset=offset)


@router.get("/jobs/{job_id}")
def show_job(job_id: str, deps: Deps) -> JobDetail:
    """One job with every decision taken about it and the evidence of its runs."""
    job = deps.store.get(job_id)
    return JobDetail(
        **JobOut.of(job).model_dump(),
        decisions=[DecisionOut.of(e) for e in deps.store.events(job_id)],
        evidence=[RunOut.of(r) for r in deps.store.runs(job_id)],
    )


@router.post("/jobs/{job_id}/cancel", dependencies=[Authorized])
def cancel_job(job_id: str, deps: Deps, response: Response) -> JobOut:
    """Cancel a waiting job (200), or ask a running one to stop (202); 409 once finished."""
    job = deps.store.request_cancel(job_id, deps.clock.now())
    if job.state is JobState.RUNNING:
        response.status_code = status.HTTP_202_ACCEPTED
    return JobOut.of(job)
