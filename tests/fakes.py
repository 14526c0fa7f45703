"""Test doubles that replace greenai's seams (clock, provider, executor, meter)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta


class FrozenClock:
    """A clock that moves only when waited on or advanced: tests never sleep."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def wait(self, seconds: float, cancel: threading.Event | None = None) -> bool:
        self.waits.append(seconds)
        if cancel is not None and cancel.is_set():
            return True
        self.advance(seconds)
        return False

    def to_wall_seconds(self, seconds: float) -> float:
        return 0.0
