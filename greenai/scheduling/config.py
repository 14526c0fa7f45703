"""The engine's configuration, counters and the evidence sink it writes to.

The engine is built against small interfaces (an ``Executor``, an ``IntensitySource`` per
provider spec, an ``EvidenceSink``); the daemon wires the real ones in, tests pass fakes.
"""

from __future__ import annotations

import signal
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from greenai.core.domain import Decision
from greenai.core.settings import Settings, load_settings

QUIET_LOOP = timedelta(minutes=1)  # the shortest silence /healthz calls a stalled loop


class EvidenceSink(Protocol):
    """Where decisions and finished runs are written (decision JSONL, SCI CSV)."""

    def record_decision(self, decision: Decision) -> None: ...

    def record_decisions(self, lines: Sequence[str]) -> None:
        """Many encoded decisions at once (a re-plan): one lock and one write."""
        ...

    def record_run(self, row: Mapping[str, Any], *, unless_present: bool = False) -> bool:
        """Append one SCI row; with ``unless_present``, only if its run is not there yet.
        Returns whether it appended."""
        ...


@dataclass
class EngineStats:
    """Counters for /metrics and /healthz."""

    ticks: int = 0
    provider_errors: int = 0
    fallbacks: int = 0
    start_failures: int = 0  # runs the executor could not start
    lost_runs: int = 0  # runs that ended with nothing saying how
    accounting_failures: int = 0  # runs accounted without intensity because accounting failed
    stage_errors: dict[str, int] = field(default_factory=dict)
    last_tick_at: datetime | None = None
    last_error: str | None = None
    failing_stages: dict[str, str] = field(default_factory=dict)  # of the latest tick

    def problems(
        self,
        now: datetime,
        tick_every: timedelta | None = None,
        speed: float = 1.0,
    ) -> list[str]:
        """Why the daemon is degraded (empty: it is not): stages that failed on the latest
        tick, or no tick for three intervals and at least a minute (a long re-plan of a huge
        queue is slow, not stuck). ``tick_every`` is wall time; ``speed`` is the clock's
        seconds per wall second (a daemon on a trace clock ticks in trace time)."""
        found = [f"{stage} failed: {error}" for stage, error in sorted(self.failing_stages.items())]
        if tick_every is not None and self.last_tick_at is not None:
            late = (now - self.last_tick_at) / speed
            if late > max(3 * tick_every, QUIET_LOOP):
                found.append(f"no tick for {late.total_seconds():.0f} s")
        return found


@dataclass
class EngineConfig:
    """``runs_dir`` holds one state folder per run attempt (``<job id>/<attempt>``)."""

    gpu_slots: tuple[int, ...]
    runs_dir: Path
    default_provider: str = "uk"
    policy: str = "window"
    threshold: float | None = None
    horizon: timedelta = timedelta(hours=48)
    refresh_every: timedelta = timedelta(minutes=30)
    background_fetch: bool = False  # the daemon: providers are asked off the loop's thread
    history_deadline_s: float = 5.0  # longest wait for a history when accounting a run
    retry_budget: int = 1
    cancel_grace_s: float = 10.0
    grace_s: float = 30.0  # SIGTERM to SIGKILL when a run passes its deadline
    pause_signal: int = signal.SIGTERM  # what pauses a piece of an interruptible job
    pause_grace_s: float = 30.0  # from that signal to SIGKILL: the job's time to checkpoint
    log_max_bytes: int | None = None  # a run's output.log cap (rotated), None: no cap
    log_backups: int = 2
    host: str = field(default_factory=socket.gethostname)
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))  # this daemon process
    lease: timedelta = timedelta(minutes=3)  # a daemon silent longer than this is dead
    settings: Settings = field(default_factory=lambda: load_settings(env={}))
