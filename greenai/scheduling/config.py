"""The engine's configuration, counters and the small interfaces it is built against.

Each interface is what the engine calls, no more: the real provider chain, meters and evidence
writers are wired in by the daemon; tests pass fakes.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from greenai.core.domain import Decision, EnergyReading, Forecast, RunRecord
from greenai.core.settings import Settings, load_settings


class ForecastSource(Protocol):
    """A provider chain as the engine uses it (``greenai.providers.fallback.build_chain``)."""

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast: ...

    def history(self, start: datetime, end: datetime) -> Forecast: ...


class Meter(Protocol):
    def start(self) -> Any: ...

    def stop(self, token: Any) -> EnergyReading: ...


class EvidenceSink(Protocol):
    """Where decisions and finished runs are written (decision JSONL, SCI CSV)."""

    def record_decision(self, decision: Decision) -> None: ...

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        """Many at once (a re-plan): one lock and one write instead of one per decision."""
        ...

    def record_run(self, record: RunRecord) -> None: ...


@dataclass
class EngineStats:
    """Counters for /metrics and /healthz."""

    ticks: int = 0
    provider_errors: int = 0
    fallbacks: int = 0
    stage_errors: dict[str, int] = field(default_factory=dict)
    last_tick_at: datetime | None = None
    last_error: str | None = None


@dataclass
class EngineConfig:
    gpu_slots: tuple[int, ...]
    log_dir: Path
    default_provider: str = "uk"
    policy: str = "window"
    threshold: float | None = None
    horizon: timedelta = timedelta(hours=48)
    refresh_every: timedelta = timedelta(minutes=30)
    retry_budget: int = 1
    cancel_grace_s: float = 10.0
    host: str = field(default_factory=socket.gethostname)
    settings: Settings = field(default_factory=lambda: load_settings(env={}))
