"""Time inside greenai: aware UTC everywhere, parsed and formatted only at the edges, and the
clocks injected wherever time is read or waited on.

``SystemClock`` is the wall clock. ``ScaledClock`` maps the wall clock onto a trace: at
construction "now" is ``trace_start`` and trace time then runs ``speed`` times faster, so a
replayed day can pass in seconds while every duration inside greenai stays in trace time.
``wait`` returns early (``True``) when the given event is set, so waits stay cancellable.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_time(text: str) -> datetime:
    """Parse ISO-8601; ``Z``, an explicit offset, or a naive time (taken as UTC)."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@functools.lru_cache(maxsize=4096)
def format_time(at: datetime | None) -> str | None:
    """``2023-05-04T12:30:00Z`` (seconds kept, microseconds only when present). Cached: a
    re-plan writes thousands of decisions that share a handful of times."""
    if at is None:
        return None
    text = at.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``2h``, ``1.5d`` -> timedelta; ValueError names the text."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d)")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNIT_SECONDS[unit])


def utc_now() -> datetime:
    return datetime.now(UTC)


def floor_time(at: datetime, step: timedelta) -> datetime:
    """The start of the ``step``-long period (aligned to the epoch) that holds ``at``."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((at - epoch) // step) * step


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        """Sleep ``seconds`` of this clock's time; ``True`` if ``cancel`` was set meanwhile."""
        ...

    def to_wall_seconds(self, seconds: float) -> float: ...


class SystemClock:
    """Real UTC time."""

    def now(self) -> datetime:
        return utc_now()

    def wait(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        return _wait_wall(max(0.0, seconds), cancel)

    def to_wall_seconds(self, seconds: float) -> float:
        return seconds


class ScaledClock:
    """Trace time: starts at ``trace_start`` and runs ``speed`` times faster than the wall."""

    def __init__(self, trace_start: datetime, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("trace speed must be positive")
        self.trace_start = trace_start
        self.speed = speed
        self._wall_origin = time.monotonic()
        self.wall_origin = utc_now()  # the wall time "now" was trace_start, for other processes

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._wall_origin) * self.speed
        return self.trace_start + timedelta(seconds=elapsed)

    def wait(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        return _wait_wall(max(0.0, seconds) / self.speed, cancel)

    def to_wall_seconds(self, seconds: float) -> float:
        return seconds / self.speed


def clock_spec(clock: Clock) -> dict[str, Any]:
    """A description of ``clock`` that another process can rebuild with ``clock_from_spec``
    (a job's supervisor records times on the daemon's clock). Only the wall clock and trace
    time can be described; any other clock (a test's frozen one) raises ``TypeError``."""
    if isinstance(clock, SystemClock):
        return {"kind": "system"}
    if isinstance(clock, ScaledClock):
        return {
            "kind": "scaled",
            "trace_start": format_time(clock.trace_start),
            "speed": clock.speed,
            "wall_origin": format_time(clock.wall_origin),
        }
    raise TypeError(f"{type(clock).__name__} cannot be described to another process")


def clock_from_spec(spec: Mapping[str, Any]) -> Clock:
    """The clock ``clock_spec`` described: trace time carries on from where it is now."""
    if spec.get("kind") == "system":
        return SystemClock()
    if spec.get("kind") == "scaled":
        speed = float(spec["speed"])
        elapsed = (utc_now() - parse_time(spec["wall_origin"])).total_seconds() * speed
        return ScaledClock(parse_time(spec["trace_start"]) + timedelta(seconds=elapsed), speed)
    raise ValueError(f"not a clock spec: {dict(spec)!r}")


def _wait_wall(seconds: float, cancel: threading.Event | None) -> bool:
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)
