"""The Python API: the same decisions as `greenai run --dry-run`, for notebooks and scripts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from greenai.core.domain import Decision
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.oneshot.flow import decide_now, decide_on_source
from greenai.oneshot.session import build_oneshot, build_session
from greenai.policies.registry import get_policy


def should_run(
    threshold: float | None = None,
    *,
    provider: str | None = None,
    policy: str | None = None,
    env: Mapping[str, str] | None = None,
    **settings: Any,
) -> Decision:
    """Should a job submitted now start now? ``decision.action`` is ``start`` or ``defer``.

    Any setting may be passed by name (``defer_seconds=7200``, ``duration="2h"``, ...).
    """
    loaded = load_settings(env, threshold=threshold, provider=provider, policy=policy, **settings)
    session = build_session(loaded)
    now = session.clock.now()
    oneshot = build_oneshot(loaded, now)
    return decide_on_source(oneshot, session.deps, now)


@dataclass(frozen=True, slots=True)
class Window:
    """The best start found, the mean intensity expected from it, and that of starting now."""

    start: datetime
    mean: float
    now_mean: float
    decision: Decision


def best_window(
    duration: str,
    *,
    provider: str | None = None,
    env: Mapping[str, str] | None = None,
    **settings: Any,
) -> Window:
    """The best start for a job of ``duration`` that must finish by its deadline
    (``deadline=ISO``, else ``defer_seconds`` + duration from now): the ``window`` policy."""
    loaded = load_settings(env, duration=duration, provider=provider, policy="window", **settings)
    session = build_session(loaded)
    if session.deps.source is None:
        raise ConfigError("provider: best_window needs an intensity provider")
    now = session.clock.now()
    oneshot = build_oneshot(loaded, now)
    forecast = session.deps.source.forecast(now, session.deps.horizon)
    decision = decide_now(oneshot, forecast, now)
    right_away = decide_now(replace(oneshot, policy=get_policy("now")), forecast, now)
    return Window(
        decision.planned_start or now,
        _number(decision.forecast_intensity),
        _number(right_away.forecast_intensity),
        decision,
    )


def _number(value: float | None) -> float:
    return float("nan") if value is None else value
