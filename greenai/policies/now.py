"""``now``: every job starts at submit. The baseline every saving is measured against."""

from __future__ import annotations

from greenai.policies.view import JobTimes, StartDecision


def plan_now(job: JobTimes, now: float) -> StartDecision:
    """Start at once: the carbon-blind default a scheduler without greenai would apply."""
    return StartDecision(max(now, job.submit), None, "starts at submit")
