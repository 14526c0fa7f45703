"""The Python API: the same decisions as `greenai run --dry-run`, for notebooks and scripts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenai.core.domain import Decision
from greenai.core.errors import ConfigError
from greenai.core.settings import load_settings
from greenai.oneshot.flow import fetch_forecast
from greenai.oneshot.session import build_request, build_session
from greenai.policies.oneshot import Window, best_window_in, decide


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
    request = build_request(loaded, now)
    return decide(request, fetch_forecast(session.deps, now), now)


def best_window(
    duration: str,
    *,
    provider: str | None = None,
    env: Mapping[str, str] | None = None,
    **settings: Any,
) -> Window:
    """The best start for a job of ``duration`` that must finish by its deadline
    (``deadline=ISO``, else ``defer_seconds`` + duration from now)."""
    loaded = load_settings(env, duration=duration, provider=provider, policy="window", **settings)
    session = build_session(loaded)
    now = session.clock.now()
    request = build_request(loaded, now)
    if session.deps.source is None:
        raise ConfigError("provider: best_window needs an intensity provider")
    forecast = session.deps.source.forecast(now, session.deps.horizon)
    assert request.duration is not None
    return best_window_in(forecast, request.duration, now, request.latest_start)
