"""Builders and fakes shared by the daemon tests."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from greenai.core.domain import Decision, EnergyReading, Forecast, RunRecord, Signal
from greenai.core.errors import ProviderError
from greenai.storage.records import NewJob, OnDeadline

T0 = datetime(2023, 5, 4, 12, 0, tzinfo=UTC)


def new_job(
    name: str = "train",
    argv: tuple[str, ...] = ("true",),
    submitted_at: datetime = T0,
    duration: timedelta = timedelta(hours=1),
    deadline: datetime | None = None,
    **kwargs: Any,
) -> NewJob:
    return NewJob(
        name=name,
        command=argv,
        submitted_at=submitted_at,
        deadline=deadline or submitted_at + timedelta(hours=12),
        duration=duration,
        **kwargs,
    )


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


def forecast(
    values: list[float], start: datetime = T0, step_minutes: int = 30, **kwargs: Any
) -> Forecast:
    return Forecast(
        start=start,
        step=timedelta(minutes=step_minutes),
        values=tuple(values),
        signal=Signal.AVERAGE,
        source=kwargs.pop("source", "fake:13"),
        region="13",
        issued_at=start,
        **kwargs,
    )


@dataclass
class FakeSource:
    """A provider chain answering with a given forecast, or failing."""

    answer: Forecast | None
    calls: list[datetime] = field(default_factory=list)

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        self.calls.append(now)
        if self.answer is None:
            raise ProviderError("fake", "down")
        return self.answer

    def history(self, start: datetime, end: datetime) -> Forecast:
        if self.answer is None:
            raise ProviderError("fake", "down")
        return self.answer


@dataclass
class FakeMeter:
    kwh: float = 0.5
    started: list[object] = field(default_factory=list)

    def start(self) -> object:
        token = object()
        self.started.append(token)
        return (token, datetime.now(UTC))

    def stop(self, token: Any) -> EnergyReading:
        return EnergyReading(T0, T0 + timedelta(hours=1), gpu_kwh=self.kwh, meter="fake")


@dataclass
class FakeEvidence:
    decisions: list[Decision] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)

    def record_decision(self, decision: Decision) -> None:
        self.decisions.append(decision)

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        self.decisions.extend(decisions)

    def record_run(self, record: RunRecord) -> None:
        self.runs.append(record)


__all__ = ["T0", "FakeEvidence", "FakeMeter", "FakeSource", "OnDeadline", "forecast", "new_job"]
