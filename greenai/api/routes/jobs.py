"""Jobs: submit (idempotently), list, show with decisions and evidence, cancel."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from greenai.api.deps import ApiDeps, Authorized, Deps, ReadAuthorized
from greenai.api.schemas import (
    MAX_SPAN,
    MAX_TEXT,
    DecisionOut,
    JobDetail,
    JobIn,
    JobOut,
    JobPage,
    RunOut,
    RunsTotal,
    SafeStr,
)
from greenai.core.domain import Job, JobState, OnDeadline
from greenai.core.errors import NotFound
from greenai.storage.records import JobRecord, Submission

router = APIRouter(tags=["jobs"])


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


@router.post(
    "/jobs",
    status_code=status.HTTP_201_CREATED,
    dependencies=[Authorized],
    response_model=JobOut,
    responses={200: {"model": JobOut, "description": "the job an earlier, same-key submit made"}},
)
async def submit_job(
    body: JobIn,
    deps: Deps,
    idempotency_key: Annotated[SafeStr | None, Header(min_length=1, max_length=200)] = None,
) -> Response:
    """Queue a job. A retried request with the same ``Idempotency-Key`` returns the first job;
    a different request with a used key is a 409 (as with Stripe), never a silent mix-up.

    ``async``: the group-commit writer stores the job while this coroutine waits, so a
    submission holds no thread; 201 (or 200 for a repeated key) comes only after the commit.
    """
    new = _new_job(body, deps, idempotency_key)
    now = new.job.submitted_at
    if deps.writer is not None:
        job, created = await deps.writer.submit_async(new, now)
    else:
        job, created = await run_in_threadpool(deps.store.submit, new, now)
    if not created and not _same_request(job, new.job, body, deps):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"Idempotency-Key {idempotency_key!r} was used by a different request",
        )
    return Response(
        JobOut.of(job).model_dump_json(),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )


def _new_job(body: JobIn, deps: ApiDeps, idempotency_key: str | None) -> Submission:
    """The submission ``body`` asks for, or a 422 naming the field at fault."""
    now = deps.clock.now()
    deadline = body.resolved_deadline(now, deps.default_max_delay)
    if body.deadline is not None and body.max_delay is not None:
        raise _invalid("max_delay", "give a deadline or a max_delay, not both")
    if deadline <= now:
        raise _invalid("deadline", "is in the past")
    if body.deadline is not None and deadline > now + MAX_SPAN:
        raise _invalid("deadline", "is more than a year ahead")
    if now + timedelta(seconds=body.duration) > deadline:
        left = _hours_minutes(deadline - now)
        raise _invalid("duration", f"is longer than the {left} left before the deadline")
    if body.gpus > deps.gpu_slots:
        raise _invalid("gpus", f"more than the {deps.gpu_slots} GPU slots of this daemon")
    policy = str(body.policy) if body.policy is not None else None
    no_threshold = body.threshold is None and deps.default_threshold is None
    if (policy or deps.default_policy) == "threshold" and no_threshold:
        raise _invalid(
            "threshold", "is needed by the threshold policy (gCO2/kWh): this daemon has no default"
        )
    job = Job(
        str(uuid.uuid4()),
        now,
        timedelta(seconds=body.duration),
        deadline,
        name=body.name or os.path.basename(body.command[0]),
        command=tuple(body.command),
        gpus=body.gpus,
        interruptible=body.interruptible,
        flexible=body.flexible,
        policy=policy,
        threshold=body.threshold,
        provider=body.provider,
        project=body.project,
        power_kw=body.power_kw,
        on_deadline=OnDeadline(body.on_deadline),
        cwd=body.cwd,
        env=body.env,
        max_runtime=None if body.max_runtime is None else timedelta(seconds=body.max_runtime),
        pause_signal=body.pause_signal,
        pause_grace=None if body.pause_grace is None else timedelta(seconds=body.pause_grace),
    )
    return Submission(job, idempotency_key)


def _hours_minutes(span: timedelta) -> str:
    """``1h30m``, ``45m``: a span as a person says it."""
    hours, minutes = divmod(int(span.total_seconds()) // 60, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


_SAME_TIME = timedelta(milliseconds=1)  # what a store's datetime column may round away
_COMPARED = (
    "command",
    "name",
    "duration",
    "gpus",
    "interruptible",
    "flexible",
    "on_deadline",
    "policy",
    "threshold",
    "project",
    "provider",
    "cwd",
    "env",
    "max_runtime",
    "pause_signal",
    "pause_grace",
)


def _same_request(stored: JobRecord, new: Job, body: JobIn, deps: ApiDeps) -> bool:
    """Whether a retry asks for the job its key already made: every field the client sent,
    and its deadline, or the wait it gave (``max_delay`` resolves against the clock, so a
    later retry gets a later deadline; the stored job's wait is its deadline less its
    submission and its duration)."""
    first = stored.job
    if any(getattr(first, name) != getattr(new, name) for name in _COMPARED):
        return False
    if body.deadline is not None:
        return _close(first.deadline, body.deadline)
    wait = timedelta(seconds=body.max_delay) if body.max_delay else deps.default_max_delay
    return _close(first.deadline - first.duration - wait, first.submitted_at)


def _close(a: datetime, b: datetime) -> bool:
    return abs(a - b) <= _SAME_TIME


JobId = Annotated[SafeStr, Path(max_length=MAX_TEXT)]
AMBIGUOUS_SHOWN = 5  # candidates a 409 names for a prefix that fits several jobs


@router.get("/jobs", dependencies=[ReadAuthorized])
def list_jobs(
    deps: Deps,
    state: Annotated[list[JobState] | None, Query()] = None,
    project: Annotated[SafeStr | None, Query(max_length=MAX_TEXT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JobPage:
    """Jobs, newest first; filter by ``state`` (repeatable) and ``project``."""
    items, total = deps.store.list_jobs(state, project, limit, offset)
    return JobPage(items=[JobOut.of(j) for j in items], total=total, limit=limit, offset=offset)


def _whole_id(job_id: str, deps: ApiDeps) -> str:
    """The job a whole id or a unique prefix of one names; 404 for none, 409 naming the
    candidates when the prefix fits several."""
    found = deps.store.ids_starting(job_id, limit=AMBIGUOUS_SHOWN + 1)
    if not found:
        raise NotFound(f"job {job_id} not found")
    if len(found) > 1:
        shown = ", ".join(found[:AMBIGUOUS_SHOWN]) + (
            ", ..." if len(found) > AMBIGUOUS_SHOWN else ""
        )
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"job id prefix {job_id!r} fits several jobs: {shown}"
        )
    return found[0]


@router.get("/jobs/{job_id}", dependencies=[ReadAuthorized])
def show_job(job_id: JobId, deps: Deps) -> JobDetail:
    """One job (by its id or a unique prefix of it) with every decision taken about it and
    the evidence of its runs."""
    job_id = _whole_id(job_id, deps)
    job = deps.store.get(job_id)
    runs = deps.store.runs(job_id)
    return JobDetail(
        **JobOut.of(job).model_dump(),
        decisions=[DecisionOut.of(e) for e in deps.store.events(job_id)],
        evidence=[RunOut.of(r) for r in runs],
        total=RunsTotal.of(runs),
    )


@router.post("/jobs/{job_id}/cancel", dependencies=[Authorized])
def cancel_job(job_id: JobId, deps: Deps, response: Response) -> JobOut:
    """Cancel a waiting job (200), or ask a running one to stop (202); 409 once finished.
    The id may be a unique prefix, as for GET."""
    job = deps.store.request_cancel(_whole_id(job_id, deps), deps.clock.now())
    if job.state is JobState.RUNNING:
        response.status_code = status.HTTP_202_ACCEPTED
    return JobOut.of(job)
