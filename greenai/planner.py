"""Re-planning the daemon's queue with the very policies the simulator measures.

Each pass turns the queued jobs and the forecast visible now into ``greenai.policies`` inputs
(seconds from the forecast's start) and back into ``Decision``s:

- ``window`` (the default): ``plan_window_many``, the rolling-horizon best window; every tick
  re-plans, so a job whose slack outlasts the forecast keeps waiting while the horizon moves.
- ``threshold`` (a job or daemon threshold set): ``plan_threshold``: start once the current
  intensity is at or below it, or at the latest start that still meets the deadline.

Pure: no I/O, no clock; the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from greenai.domain import Action, Decision, Forecast, provider_of
from greenai.jobs import JobRecord
from greenai.policies.threshold import plan_threshold
from greenai.policies.view import EPS, ForecastView, JobTimes, StartDecision
from greenai.policies.window import plan_window_many

POLICIES = ("window", "threshold")


@dataclass(frozen=True, slots=True)
class _Context:
    """What every decision of one pass shares."""

    now: datetime
    forecast: Forecast | None
    intensity_now: float | None = None
    forecast_min: float | None = None


def effective_policy(job: JobRecord, policy: str, threshold: float | None) -> str:
    """``threshold`` only when a threshold is known for the job; otherwise ``window``."""
    wanted = job.policy or policy
    has_threshold = job.threshold is not None or threshold is not None
    return "threshold" if wanted == "threshold" and has_threshold else "window"


def plan_jobs(
    jobs: Sequence[JobRecord],
    forecast: Forecast | None,
    now: datetime,
    policy: str = "window",
    threshold: float | None = None,
) -> list[Decision]:
    """One decision per job (START when its planned start is now, else DEFER)."""
    policies = [effective_policy(job, policy, threshold) for job in jobs]
    if forecast is None or forecast.static or not forecast.covers(now):
        blind = _Context(now, forecast)
        why = _no_choice_reason(forecast, now)
        return [
            _decision(job, blind, now, None, chosen, why, None)
            for job, chosen in zip(jobs, policies, strict=True)
        ]
    visible = forecast.since(now)
    origin = visible.start
    view = ForecastView(0.0, visible.step.total_seconds(), np.asarray(visible.values))
    at = (now - origin).total_seconds()
    times = [_job_times(job, origin) for job in jobs]
    window_jobs = [i for i, chosen in enumerate(policies) if chosen == "window"]
    planned: dict[int, StartDecision] = dict(
        zip(window_jobs, plan_window_many([times[i] for i in window_jobs], view, at), strict=True)
    )
    thresholds: dict[int, float | None] = {}
    for i, chosen in enumerate(policies):
        if chosen == "threshold":
            thresholds[i] = jobs[i].threshold if jobs[i].threshold is not None else threshold
            planned[i] = plan_threshold(times[i], view, at, thresholds[i])
    context = _Context(now, visible, visible.values[0], min(visible.values))
    return [
        _decision(
            job,
            context,
            origin + timedelta(seconds=planned[i].start) if planned[i].start > at + EPS else now,
            planned[i].expected,
            policies[i],
            planned[i].reason,
            thresholds.get(i),
        )
        for i, job in enumerate(jobs)
    ]


def _job_times(job: JobRecord, origin: datetime) -> JobTimes:
    return JobTimes(
        job.id,
        (job.submitted_at - origin).total_seconds(),
        job.duration.total_seconds(),
        (job.deadline - origin).total_seconds(),
        job.interruptible,
    )


def _no_choice_reason(forecast: Forecast | None, now: datetime) -> str:
    if forecast is None:
        return "no intensity forecast available: starting as soon as a slot is free"
    if forecast.static:
        return f"{forecast.source} is a flat annual average: no better time to wait for"
    return f"forecast {forecast.source} does not cover {now.isoformat()}: starting now"


def _decision(
    job: JobRecord,
    context: _Context,
    at: datetime,
    expected: float | None,
    policy: str,
    why: str,
    threshold: float | None,
) -> Decision:
    now, forecast = context.now, context.forecast
    return Decision(
        at=now,
        job_id=job.id,
        policy=policy,
        action=Action.START if at <= now else Action.DEFER,
        reason=why,
        intensity=context.intensity_now,
        threshold=threshold,
        forecast_min=context.forecast_min,
        planned_start=max(at, now),
        deadline=job.deadline,
        provider=provider_of(forecast.source) if forecast else None,
        region=forecast.region if forecast else None,
        signal=forecast.signal if forecast else None,
        fallback=forecast.fallback if forecast else None,
        warnings=forecast.warnings if forecast else (),
        forecast_intensity=expected,
    )
