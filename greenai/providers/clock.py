"""The clock a front-end runs on: wall time, or trace time when it replays a trace.

``greenai run`` and ``greenai serve`` build it the same way from the settings: a ``trace:``
provider (or ``trace_start``) puts everything (waits, deadlines, planning, the evidence's
times) in the trace's time, starting at ``trace_start`` (default: the trace's first period)
and running ``trace_speed`` times faster than the wall.
"""

from __future__ import annotations

from datetime import datetime

from greenai.core.errors import ConfigError
from greenai.core.settings import Settings
from greenai.core.time import Clock, ScaledClock, SystemClock, parse_time
from greenai.formats.traces import load_trace
from greenai.providers.registry import parse_chain


def build_clock(settings: Settings) -> Clock:
    """Wall time, or trace time when replaying a trace (``trace_start``, ``trace_speed``)."""
    trace_paths = [region for name, region in parse_chain(settings.provider) if name == "trace"]
    if settings.trace_start is not None:
        start = parse_time_setting("trace_start", settings.trace_start)
    elif trace_paths:
        start = load_trace(trace_paths[0]).start
    elif settings.trace_speed != 1.0:
        raise ConfigError("trace_speed: only meaningful with a trace: provider or --trace-start")
    else:
        return SystemClock()
    return ScaledClock(start, settings.trace_speed)


def parse_time_setting(field: str, text: str) -> datetime:
    """An ISO-8601 setting, or a ``ConfigError`` naming it."""
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ConfigError(f"{field}: {text!r} is not an ISO-8601 time") from exc
