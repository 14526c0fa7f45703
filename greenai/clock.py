"""Clocks, injected everywhere time is read or waited on.

``SystemClock`` is the wall clock. ``ScaledClock`` maps the wall clock onto a trace: at
construction "now" is ``trace_start`` and trace time then runs ``speed`` times faster, so a
replayed day can pass in seconds while every duration inside greenai stays in trace time.
``wait`` returns early (``True``) when the given event is set, so waits stay cancellable.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Protocol

from greenai.timeutil import utc_now


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

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._wall_origin) * self.speed
        return self.trace_start + timedelta(seconds=elapsed)

    def wait(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        return _wait_wall(max(0.0, seconds) / self.speed, cancel)

    def to_wall_seconds(self, seconds: float) -> float:
        return seconds / self.speed


def _wait_wall(seconds: float, cancel: threading.Event | None) -> bool:
    if cancel is None:
        time.sleep(seconds)
        return False
    return cancel.wait(seconds)
