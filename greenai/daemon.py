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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from functools import cache
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from greenai.api import ApiDeps, create_app
from greenai.core.domain import Decision
from greenai.core.errors import ConfigError
from greenai.core.settings import Settings
from greenai.core.time import Clock, SystemClock
from greenai.evidence.decisions import append_decision, append_decisions
from greenai.evidence.sci import append_row
from greenai.executors.base import Executor, parse_gpu_slots
from greenai.policies.registry import get_policy
from greenai.providers.base import IntensitySource
from greenai.scheduling.config import EngineConfig
from greenai.scheduling.engine import Engine
from greenai.storage.database import make_engine, upgrade
from greenai.storage.store import Store
from greenai.storage.writer import SubmitWriter

log = logging.getLogger(__name__)

DEFAULT_POLICY = "window"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, has_token: bool) -> None:
    """Refuse to listen beyond this machine without a token guarding state changes."""
    if not has_token and not is_loopback(host):
        raise ConfigError(
            f"api_host: refusing to listen on {host} without GREENAI_API_TOKEN "
            "(anyone who can reach it could run commands)"
        )


@dataclass
class EvidenceFiles:
    """Writes the SCI CSV and the decision log (docs/formats.md §4, §5)."""

    settings: Settings

    def record_decision(self, decision: Decision) -> None:
        append_decision(self.settings.decision_log_path, decision)

    def record_decisions(self, lines: Sequence[str]) -> None:
        append_decisions(self.settings.decision_log_path, lines)

    def record_run(self, row: Mapping[str, str], *, unless_present: bool = False) -> bool:
        return append_row(self.settings.evidence_path, row, unless_present=unless_present)


def allowed_hosts(host: str) -> tuple[str, ...] | None:
    """The ``Host`` headers the API answers: bound to loopback, its own names only (a web page
    elsewhere cannot reach it by DNS rebinding); bound to every address (behind a reverse proxy
    that sets the Host, with a token), no check; bound to one address, that address."""
    if is_loopback(host):
        return (host, "localhost", "127.0.0.1", "::1")
    if host in ("0.0.0.0", "::"):
        return None
    return (host,)


def default_sources(settings: Settings, clock: Clock) -> Callable[[str], IntensitySource]:
    """One fallback chain per provider spec, built on first use."""
    from greenai.providers.fallback import build_chain

    @cache
    def source_for(spec: str) -> IntensitySource:
        return build_chain(spec, settings, clock=clock)

    return source_for


def _local_executor(settings: Settings, clock: Clock) -> Executor:
    from greenai.executors.local import LocalExecutor
    from greenai.meters.config import MeterConfig

    meters = MeterConfig.from_settings(settings)
    return LocalExecutor(meters, clock, env_allow=settings.job_env_allow)


# The executors `--executor` can name; Slurm and Kubernetes join here.
EXECUTORS: dict[str, Callable[[Settings, Clock], Executor]] = {"local": _local_executor}


def build_executor(settings: Settings, clock: Clock) -> Executor:
    factory = EXECUTORS.get(settings.executor)
    if factory is None:
        known = ", ".join(sorted(EXECUTORS))
        raise ConfigError(f"executor: unknown {settings.executor!r} (choose from {known})")
    return factory(settings, clock)


def daemon_policy(settings: Settings) -> str:
    """The policy jobs get when they name none; it must plan from forecasts, and a
    threshold policy needs a threshold."""
    name = settings.policy or DEFAULT_POLICY
    get_policy(name, online=True)
    if name == "threshold" and settings.threshold is None:
        raise ConfigError("threshold: the threshold policy needs GREENAI_THRESHOLD (gCO2/kWh)")
    return name


@dataclass
class Daemon:
    """Everything ``greenai serve`` runs, wired from ``settings``; seams are injectable."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    executor: Executor | None = None
    source_for: Callable[[str], IntensitySource] | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        settings = self.settings
        check_bind(settings.api_host, settings.api_token is not None)
        policy = daemon_policy(settings)
        slots = parse_gpu_slots(settings.gpu_slots)
        if not settings.home.exists():  # its owner's only; an existing one keeps its mode
            settings.home.mkdir(parents=True, mode=0o700)
        self.store = Store(make_engine(settings.resolved_database_url))
        self.writer = SubmitWriter(self.store)
        self.engine = Engine(
            self.store,
            self.executor or build_executor(settings, self.clock),
            EngineConfig(
                slots,
                settings.home / "runs",
                default_provider=settings.provider,
                policy=policy,
                threshold=settings.threshold,
                retry_budget=settings.retry_budget,
                background_fetch=True,
                grace_s=settings.grace_seconds,
                log_max_bytes=settings.log_max_bytes,
                log_backups=settings.log_backups,
                settings=settings,
            ),
            source_for=self.source_for or default_sources(settings, self.clock),
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
            default_policy=policy,
            default_threshold=settings.threshold,
            public_read=settings.public_read,
            allowed_hosts=allowed_hosts(settings.api_host),
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
        found = self.engine.reconcile(self.clock.now())
        if found:
            log.warning("found %d run(s) left running by a previous daemon", found)
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
        self.engine.close()
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
