"""The composition root of ``greenai serve``: settings in, a running daemon out.

Start: migrate the database, settle jobs a dead daemon left ``running``, tick the engine on
APScheduler every ``tick_seconds``, serve the API on uvicorn. SIGTERM/SIGINT: stop ticking
(so nothing new starts), give running jobs ``grace_seconds`` to finish, re-queue the rest,
stop the API. uvicorn runs in a thread so this module, not uvicorn, owns the signals.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from functools import cache
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from greenai.api import ApiDeps, create_app
from greenai.core.domain import Decision, RunRecord
from greenai.core.errors import ConfigError
from greenai.core.settings import Settings
from greenai.core.time import Clock, SystemClock
from greenai.executors.base import Executor, parse_gpu_slots
from greenai.executors.local import LocalExecutor
from greenai.scheduling.config import EngineConfig, ForecastSource, Meter
from greenai.scheduling.engine import Engine
from greenai.scheduling.planner import POLICIES
from greenai.storage.database import make_engine, upgrade
from greenai.storage.store import Store
from greenai.storage.writer import SubmitWriter

log = logging.getLogger(__name__)


def check_bind(host: str, has_token: bool) -> None:
    """Refuse to listen beyond this machine without a token guarding state changes."""
    if has_token or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"api_host: refusing to listen on {host} without GREENAI_API_TOKEN "
            "(anyone who can reach it could run commands)"
        )


@dataclass
class EvidenceFiles:
    """Writes the SCI CSV and the decision log (formats.md §4, §5)."""

    settings: Settings

    def record_decision(self, decision: Decision) -> None:
        from greenai.evidence import append_decision

        append_decision(self.settings.decision_log_path, decision)

    def record_decisions(self, decisions: Sequence[Decision]) -> None:
        from greenai.evidence import append_decisions

        append_decisions(self.settings.decision_log_path, decisions)

    def record_run(self, record: RunRecord) -> None:
        from greenai.evidence import append_run

        append_run(self.settings.evidence_path, record)


def default_sources(settings: Settings, clock: Clock) -> Callable[[str], ForecastSource]:
    """One fallback chain per provider spec, built on first use."""
    from greenai.providers.fallback import build_chain

    @cache
    def source_for(spec: str) -> ForecastSource:
        return build_chain(spec, settings, clock=clock)

    return source_for


def default_meters(settings: Settings, clock: Clock) -> Callable[[tuple[int, ...]], Meter]:
    def meter_for(gpus: tuple[int, ...]) -> Meter:
        from greenai.meters import build_meter

        return build_meter(settings, list(gpus), clock)

    return meter_for


@dataclass
class Daemon:
    """Everything ``greenai serve`` runs, wired from ``settings``; seams are injectable."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    executor: Executor | None = None
    source_for: Callable[[str], ForecastSource] | None = None
    meter_for: Callable[[tuple[int, ...]], Meter] | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        settings = self.settings
        check_bind(settings.api_host, settings.api_token is not None)
        if settings.policy not in POLICIES:
            raise ConfigError(f"policy: the daemon plans with {' or '.join(POLICIES)}")
        slots = parse_gpu_slots(settings.gpu_slots)
        self.store = Store(make_engine(settings.resolved_database_url))
        self.writer = SubmitWriter(self.store)
        self.engine = Engine(
            self.store,
            self.executor or LocalExecutor(),
            EngineConfig(
                slots,
                settings.home / "logs",
                default_provider=settings.provider,
                policy=settings.policy,
                threshold=settings.threshold,
                retry_budget=settings.retry_budget,
                settings=settings,
            ),
            source_for=self.source_for or default_sources(settings, self.clock),
            meter_for=self.meter_for or default_meters(settings, self.clock),
            evidence=EvidenceFiles(settings),
        )
        deps = ApiDeps(
            self.store,
            settings.api_token,
            self.clock,
            gpu_slots=len(slots),
            default_max_delay=timedelta(seconds=settings.defer_seconds),
            evidence_path=settings.evidence_path,
            engine=self.engine,
            writer=self.writer,
        )
        config = uvicorn.Config(
            create_app(deps),
            host=settings.api_host,
            port=settings.api_port,
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self._server_thread = threading.Thread(target=self.server.run, name="api", daemon=True)

    @property
    def url(self) -> str:
        host = self.settings.api_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.settings.api_port}"

    def start(self, timeout: float = 15.0) -> None:
        """Migrate, reconcile, start ticking and serving; returns once the API listens."""
        upgrade(self.store.engine)
        settled = self.engine.reconcile(self.clock.now())
        if settled:
            log.warning("reconciled %d job(s) left running by a previous daemon", settled)
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.settings.tick_seconds,
            id="tick",
            max_instances=1,
            coalesce=True,
            next_run_time=self.clock.now(),
        )
        self.scheduler.start()
        self.writer.start()
        self._server_thread.start()
        if not self._wait_until_listening(timeout):
            self.stop()
            raise ConfigError(f"api: could not listen on {self.url} (port in use?)")
        # Start-up objects (FastAPI, pydantic, SQLAlchemy, numpy: hundreds of thousands) live as
        # long as the process: keep them out of every later full collection, which otherwise
        # stalls the API for ~100 ms several times a minute under load.
        gc.collect()
        gc.freeze()
        log.info("greenai daemon listening on %s", self.url)

    def _wait_until_listening(self, timeout: float) -> bool:
        waited = 0.0
        while not self.server.started and self._server_thread.is_alive() and waited < timeout:
            self.stop_requested.wait(0.02)
            waited += 0.02
        return bool(self.server.started)

    def tick(self) -> None:
        self.engine.tick(self.clock.now())

    def stop(self) -> None:
        """Stop dispatching, give running jobs their grace, then stop the API."""
        self.engine.dispatching = False
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.engine.drain(self.clock, self.settings.grace_seconds)
        self.server.should_exit = True
        if self._server_thread.is_alive():
            self._server_thread.join(timeout=10)
        self.writer.stop()  # after the API: what it accepted is written before we go
        self.store.engine.dispose()
        log.info("greenai daemon stopped")

    def serve_forever(self, on_ready: Callable[[str], Any] | None = None) -> None:
        """Run until SIGTERM or SIGINT."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        self.start()
        if on_ready is not None:
            on_ready(self.url)
        while not self.stop_requested.wait(0.5):
            if not self._server_thread.is_alive():
                log.error("the API server stopped unexpectedly")
                break
        self.stop()

    def _request_stop(self, signum: int, _frame: object) -> None:
        log.info("signal %s: stopping (grace %.0f s)", signum, self.settings.grace_seconds)
        self.stop_requested.set()
