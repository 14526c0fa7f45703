"""Where a task should start, as greenai's own policies decide it, in greenai's time and on
the wall. No Airflow here: the operators in ``sensors.py`` only defer for ``wall_wait_s``.

On a trace clock (``trace:`` provider, ``trace_start``, ``trace_speed``) greenai's time runs
``speed`` times faster than the wall, so a start 2 trace hours away is 2 h / speed of waiting;
a later decision (a re-check) carries greenai's time on with ``trace_start``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from greenai.core.domain import Action, Decision
from greenai.core.settings import load_settings
from greenai.core.time import ScaledClock, format_time, parse_duration, parse_time, utc_now
from greenai.evidence.decisions import encode_decision
from greenai.oneshot.advice import best_window, should_run
from greenai.providers.clock import build_clock

WINDOW_POLICIES = frozenset({"window", "window-once"})


@dataclass(frozen=True, slots=True)
class GreenStart:
    """A decision and how long to wait for it on the wall. ``final``: the wait ends at the
    planned start; otherwise (a threshold with no forecast) decide again after the wait."""

    decision: Decision
    speed: float  # greenai seconds per wall second: 1, or the trace speed
    check_interval_s: float  # greenai seconds between re-checks when nothing is planned

    @property
    def final(self) -> bool:
        return self.decision.action is not Action.DEFER or self.decision.planned_start is not None

    @property
    def wait_s(self) -> float:
        """Seconds of greenai time until the start (or the next check)."""
        if self.decision.action is not Action.DEFER:
            return 0.0
        if self.decision.planned_start is None:
            return self.check_interval_s
        return max(0.0, (self.decision.planned_start - self.decision.at).total_seconds())

    @property
    def wall_wait_s(self) -> float:
        return self.wait_s / self.speed

    def as_xcom(self) -> dict[str, Any]:
        """JSON for XCom: the decision-log line's object, and the wait."""
        return {
            "decision": json.loads(encode_decision(self.decision)),
            "wait_s": self.wait_s,
            "wall_wait_s": self.wall_wait_s,
            "speed": self.speed,
            "final": self.final,
        }


def find_green_start(
    *,
    duration: str | None,
    policy: str = "window",
    threshold: float | None = None,
    deadline: datetime | None = None,
    max_delay_s: float | None = None,
    provider: str | None = None,
    settings: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> GreenStart:
    """greenai's decision for a task that takes ``duration`` and must finish by ``deadline``
    (else start within ``max_delay_s``); ``settings`` are greenai settings by name
    (``trace_start``, ``trace_speed``, ``check_interval``...); ``now``: greenai's time when it
    is already known (a re-check on a trace clock)."""
    options = {key: value for key, value in (settings or {}).items() if value is not None}
    options.update(
        provider=provider,
        deadline=format_time(deadline),
        defer_seconds=max_delay_s,
    )
    loaded = load_settings(None, **options)
    trace = isinstance(build_clock(loaded), ScaledClock)
    if now is not None and trace:
        options["trace_start"] = format_time(now)
    if policy in WINDOW_POLICIES:
        if duration is None:
            raise ValueError(f"the {policy} policy needs a duration (e.g. '2h')")
        decision = best_window(duration, **options).decision
    else:
        decision = should_run(threshold, policy=policy, duration=duration, **options)
    speed = loaded.trace_speed if trace else 1.0
    return GreenStart(decision, speed, loaded.check_interval)


def greenai_time(xcom: Mapping[str, Any], deferred_wall: datetime) -> datetime:
    """greenai's time now, for a wait that ``as_xcom`` described and that began on the wall at
    ``deferred_wall``: the decision's time plus the wall time since, at its speed."""
    decided_at = parse_time(xcom["decision"]["at"])
    return decided_at + (utc_now() - deferred_wall) * float(xcom["speed"])


def as_deadline(value: datetime | str | None) -> datetime | None:
    """A deadline as the operators take it: a datetime, an ISO-8601 text (a rendered
    template), or nothing."""
    if value is None or isinstance(value, datetime):
        return value
    return parse_time(value)


def as_seconds(value: timedelta | float | str | None) -> float | None:
    """A delay as the operators take it: a timedelta, seconds, or a duration text ('12h')."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, str):
        return parse_duration(value).total_seconds()
    return float(value)
