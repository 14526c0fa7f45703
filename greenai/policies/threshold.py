"""``threshold``: start as soon as the current intensity is at or below a threshold, or when
the job's slack is spent. It looks at no forecast, so it is the policy to fall back on when
forecasts are missing or distrusted."""

from __future__ import annotations

from greenai.policies.view import EPS, ForecastView, JobTimes, StartDecision


def plan_threshold(
    job: JobTimes, view: ForecastView, now: float, threshold: float | None = None
) -> StartDecision:
    """Start now, or defer to the next step boundary (or to the latest start if sooner).

    ``threshold=None`` uses the view's ``beyond`` value (the simulator passes the trailing
    week's mean there), so a run without ``--threshold`` still means "below typical".
    """
    limit = view.beyond if threshold is None else threshold
    current = view.value_at(now)
    if current <= limit:
        return StartDecision(now, current, f"intensity {current:.1f} <= threshold {limit:.1f}")
    if now >= job.latest_start - EPS:
        return StartDecision(now, current, "slack spent: latest start reached")
    planned = min(view.next_boundary(now), job.latest_start)
    return StartDecision(planned, None, f"intensity {current:.1f} > threshold {limit:.1f}")
