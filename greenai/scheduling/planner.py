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
from typing import Any

import numpy as np

from greenai.core.domain import Action, Decision, Forecast, provider_of
from greenai.policies.threshold import plan_threshold
from greenai.policies.view import EPS, ForecastView, JobTimes
from greenai.policies.window import SPENT, plan_window_arrays, window_reason
from greenai.storage.records import JobRecord, PayloadWriter, PlanRows, WaitingJobs

POLICIES = ("window", "threshold")


@dataclass(frozen=True, slots=True)
class _Context:
    """What every decision of one pass shares."""

    now: datetime
    forecast: Forecast | None
    intensity_now: float | None = None
    forecast_min: float | None = None


@dataclass(frozen=True, slots=True)
class PassPlan:
    """One pass's decisions as columns, entry ``i`` for job ``i`` of ``jobs``: a re-plan of
    10,000 jobs writes most of them and needs few as ``Decision`` objects (``decision(i)``)."""

    jobs: WaitingJobs
    context: _Context
    policies: list[str]
    thresholds: list[float | None]
    starts: list[datetime]  # the planned starts: never before now
    expected: list[float | None]
    reasons: list[str]

    def decision(self, i: int) -> Decision:
        return _decision(
            self.context,
            self.jobs.ids[i],
            self.policies[i],
            self.reasons[i],
            self.thresholds[i],
            self.starts[i],
            self.jobs.deadlines[i],
            self.expected[i],
        )

    def decisions(self) -> list[Decision]:
        return [self.decision(i) for i in range(len(self.jobs))]

    def moved(self, tolerance: timedelta) -> list[int]:
        """The jobs whose stored plan this pass changes: queued or unplanned ones, and those
        whose planned start moved by more than ``tolerance``."""
        jobs = self.jobs
        rows = zip(jobs.states, jobs.planned, self.starts, strict=True)
        return [
            i
            for i, (state, old, new) in enumerate(rows)
            if state == "queued" or old is None or abs(new - old) > tolerance
        ]

    def rows(self, indices: Sequence[int]) -> PlanRows:
        """The store rows of the decisions at ``indices``, payloads as JSON text."""
        now, jobs = self.context.now, self.jobs
        ids, starts, reasons = _pick(indices, jobs.ids, self.starts, self.reasons)
        actions = [_action(start, now) for start in starts]
        policies, thresholds, deadlines, expected = _pick(
            indices, self.policies, self.thresholds, jobs.deadlines, self.expected
        )
        writer = PayloadWriter(_decision(self.context, "", "", "", None, now, now, None))
        payloads = writer.render(
            ids, policies, actions, reasons, thresholds, starts, deadlines, expected
        )
        states = [str(jobs.states[i]) for i in indices]
        return PlanRows(ids, states, starts, [now] * len(ids), actions, reasons, payloads)


def _pick(indices: Sequence[int], *columns: list[Any]) -> list[list[Any]]:
    return [[column[i] for i in indices] for column in columns]


def effective_policy(job: JobRecord, policy: str, threshold: float | None) -> str:
    """``threshold`` only when a threshold is known for the job; otherwise ``window``."""
    return _effective(job.policy, job.threshold, policy, threshold)


def _effective(wanted: str | None, own: float | None, policy: str, threshold: float | None) -> str:
    has_threshold = own is not None or threshold is not None
    return "threshold" if (wanted or policy) == "threshold" and has_threshold else "window"


def plan_jobs(
    jobs: Sequence[JobRecord],
    forecast: Forecast | None,
    now: datetime,
    policy: str = "window",
    threshold: float | None = None,
) -> list[Decision]:
    """One decision per job (START when its planned start is now, else DEFER)."""
    return plan_waiting(WaitingJobs.of(jobs), forecast, now, policy, threshold).decisions()


def plan_waiting(
    jobs: WaitingJobs,
    forecast: Forecast | None,
    now: datetime,
    policy: str = "window",
    threshold: float | None = None,
) -> PassPlan:
    """``plan_jobs`` on columns: the daemon's re-plan of its whole queue."""
    policies = [
        _effective(wanted, own, policy, threshold)
        for wanted, own in zip(jobs.policies, jobs.thresholds, strict=True)
    ]
    count = len(jobs)
    if forecast is None or forecast.static or not forecast.covers(now):
        why = _no_choice_reason(forecast, now)
        nothing: list[float | None] = [None] * count
        blind = _Context(now, forecast)
        return PassPlan(jobs, blind, policies, nothing, [now] * count, nothing, [why] * count)
    visible = forecast.since(now)
    origin = visible.start
    view = ForecastView(0.0, visible.step.total_seconds(), np.asarray(visible.values))
    at = (now - origin).total_seconds()
    expected: list[float | None] = [None] * count
    offsets, reasons = [at] * count, [""] * count
    _plan_windows(jobs, policies, view, origin, at, (offsets, expected, reasons))
    thresholds: list[float | None] = [None] * count
    for i, chosen in enumerate(policies):
        if chosen == "threshold":
            own = jobs.thresholds[i]
            thresholds[i] = own if own is not None else threshold
            times = _job_times(jobs, i, origin)
            decided = plan_threshold(times, view, at, thresholds[i])
            offsets[i], expected[i], reasons[i] = decided.start, decided.expected, decided.reason
    context = _Context(now, visible, visible.values[0], min(visible.values))
    starts = _starts(offsets, origin, at, now)
    return PassPlan(jobs, context, policies, thresholds, starts, expected, reasons)


def _plan_windows(
    jobs: WaitingJobs,
    policies: list[str],
    view: ForecastView,
    origin: datetime,
    at: float,
    out: tuple[list[float], list[float | None], list[str]],
) -> None:
    """Plan the ``window`` jobs (one array pass), writing their starts (seconds from
    ``origin``), expected means and reasons into ``out``."""
    window = [i for i, chosen in enumerate(policies) if chosen == "window"]
    if not window:
        return
    durations = np.asarray([jobs.durations[i] for i in window], dtype=np.float64)
    deadlines = [(jobs.deadlines[i] - origin).total_seconds() for i in window]
    starts, means, kinds = plan_window_arrays(durations, np.asarray(deadlines), view, at)
    offsets, expected, reasons = out
    said: dict[tuple[int, float], str] = {}  # few distinct windows: format each reason once
    rows = zip(window, starts.tolist(), means.tolist(), kinds.tolist(), strict=True)
    for i, start, mean, kind in rows:
        offsets[i] = start
        if kind != SPENT:
            expected[i] = mean
        reason = said.get((kind, mean))
        if reason is None:
            reason = said[(kind, mean)] = window_reason(kind, mean)
        reasons[i] = reason


def _starts(offsets: list[float], origin: datetime, at: float, now: datetime) -> list[datetime]:
    """Planned starts from seconds after ``origin``; anything not after ``at`` starts now."""
    made: dict[float, datetime] = {}
    starts = []
    for offset in offsets:
        if offset > at + EPS:
            start = made.get(offset)
            if start is None:
                start = made[offset] = max(origin + timedelta(seconds=offset), now)
            starts.append(start)
        else:
            starts.append(now)
    return starts


def _job_times(jobs: WaitingJobs, i: int, origin: datetime) -> JobTimes:
    return JobTimes(
        jobs.ids[i],
        (jobs.submitted[i] - origin).total_seconds(),
        jobs.durations[i],
        (jobs.deadlines[i] - origin).total_seconds(),
        jobs.interruptible[i],
    )


def _no_choice_reason(forecast: Forecast | None, now: datetime) -> str:
    if forecast is None:
        return "no intensity forecast available: starting as soon as a slot is free"
    if forecast.static:
        return f"{forecast.source} is a flat annual average: no better time to wait for"
    return f"forecast {forecast.source} does not cover {now.isoformat()}: starting now"


def _action(start: datetime, now: datetime) -> str:
    return "start" if start <= now else "defer"


def _decision(
    context: _Context,
    job_id: str,
    policy: str,
    why: str,
    threshold: float | None,
    start: datetime,
    deadline: datetime,
    expected: float | None,
) -> Decision:
    now, forecast = context.now, context.forecast
    return Decision(
        at=now,
        job_id=job_id,
        policy=policy,
        action=Action(_action(start, now)),
        reason=why,
        intensity=context.intensity_now,
        threshold=threshold,
        forecast_min=context.forecast_min,
        planned_start=start,
        deadline=deadline,
        provider=provider_of(forecast.source) if forecast else None,
        region=forecast.region if forecast else None,
        signal=forecast.signal if forecast else None,
        fallback=forecast.fallback if forecast else None,
        warnings=forecast.warnings if forecast else (),
        forecast_intensity=expected,
    )
