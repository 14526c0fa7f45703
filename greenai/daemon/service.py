"""The composition root of ``greenai serve``: settings in, a running daemon out.

Start: migrate the database, start the re-planning loop (its own process, ``loop.py``: it
re-attaches to runs a dead daemon left and ticks every ``tick_seconds``), serve the API on
uvicorn. SIGTERM/SIGINT: the loop stops starting jobs, gives running ones ``grace_seconds`` to
finish and re-queues the rest; then the API stops. uvicorn runs in a thread so this module,
not uvicorn, owns the signals.

A daemon built with test seams (a fake executor, sources or clock) runs its loop on a thread
of this process instead: the same engine and stages, ticked on APScheduler.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from greenai.api import ApiDeps, create_app
from greenai.api.deps import EngineView
from greenai.core.errors import ConfigError
from greenai.core.settings import Settings
from greenai.core.time import Clock, ScaledClock, SystemClock, clock_spec, utc_now
from greenai.daemon.loop import LoopProcess, tick_wall_seconds
from greenai.daemon.wiring import (
    build_engine,
    check_executor,
    check_local_meters,
    daemon_policy,
    open_store,
    store_budgets,
)
from greenai.executors.base import Executor, parse_gpu_slots
from greenai.oneshot.where import LocationForecasts
from greenai.providers.base import IntensitySource
from greenai.providers.clock import build_clock
from greenai.scheduling.engine import Engine
from greenai.storage.database import upgrade
from greenai.storage.writer import SubmitWriter

log = logging.getLogger(__name__)


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


def allowed_hosts(host: str) -> tuple[str, ...] | None:
    """The ``Host`` headers the API answers: bound to loopback, its own names only (a web page
    elsewhere cannot reach it by DNS rebinding); bound to every address (behind a reverse proxy
    that sets the Host, with a token), no check; bound to one address, that address."""
    if is_loopback(host):
        return (host, "localhost", "127.0.0.1", "::1")
    if host in ("0.0.0.0", "::"):
        return None
    return (host,)


@dataclass
class Daemon:
    """Everything ``greenai serve`` runs, wired from ``settings``; seams are injectable.

    ``separate_loop`` (default: unless a seam is injected) runs the loop in its own process.
    """

    settings: Settings
    clock: Clock | None = None  # default: wall time, or trace time replaying a trace
    executor: Executor | None = None
    source_for: Callable[[str], IntensitySource] | None = None
    separate_loop: bool | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        settings = self.settings
        check_bind(settings.api_host, settings.api_token is not None)
        self.run_clock: Clock = self.clock or build_clock(settings)  # what the daemon runs on
        policy = daemon_policy(settings)
        slots = parse_gpu_slots(settings.gpu_slots)
        if self.executor is None and settings.executor == "local":  # measured on this host
            check_local_meters(settings, slots, self.run_clock)
        if self.separate_loop is None:
            seams = (self.executor, self.source_for)
            describable = type(self.run_clock) in (SystemClock, ScaledClock)  # ``clock_spec``
            self.separate_loop = seams == (None, None) and describable
        if not settings.home.exists():  # its owner's only; an existing one keeps its mode
            settings.home.mkdir(parents=True, mode=0o700)
        self.store = open_store(settings, checkpoints=not self.separate_loop)
        self.writer = SubmitWriter(self.store)
        self.engine: Engine | None = None
        self.loop: LoopProcess | None = None
        view: EngineView
        if self.separate_loop:
            check_executor(settings)  # a wrong one refuses here, not in the loop process
            view = self.loop = LoopProcess(settings, clock_spec(self.run_clock))
        else:
            view = self.engine = build_engine(
                settings, self.run_clock, self.store, self.executor, self.source_for
            )
        deps = ApiDeps(
            self.store,
            settings.api_token,
            self.run_clock,
            gpu_slots=len(slots),
            default_max_delay=timedelta(seconds=settings.defer_seconds),
            evidence_path=settings.evidence_path,
            engine=view,
            writer=self.writer,
            default_policy=policy,
            default_threshold=settings.threshold,
            public_read=settings.public_read,
            allowed_hosts=allowed_hosts(settings.api_host),
            tick_every=timedelta(seconds=tick_wall_seconds(settings, self.run_clock)),
            clock_speed=self.run_clock.speed if isinstance(self.run_clock, ScaledClock) else 1.0,
            power_watts=settings.power_watts,
            locations=LocationForecasts(settings) if settings.locations else None,
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
        """Migrate, start the loop, serve; returns once the API listens."""
        upgrade(self.store.engine)
        store_budgets(self.store, self.settings, self.run_clock.now())
        if self.loop is not None:
            self.loop.start()
        else:
            self._start_loop_thread()
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

    def _start_loop_thread(self) -> None:
        assert self.engine is not None
        found = self.engine.reconcile(self.run_clock.now())
        if found:
            log.warning("found %d run(s) left running by a previous daemon", found)
        self.scheduler.add_job(
            self.tick,
            "interval",
            seconds=tick_wall_seconds(self.settings, self.run_clock),
            id="tick",
            max_instances=1,
            coalesce=True,
            next_run_time=utc_now(),  # APScheduler runs on the wall, whatever our clock
        )
        self.scheduler.start()

    def _wait_until_listening(self, timeout: float) -> bool:
        waited = 0.0
        while not self.server.started and self._server_thread.is_alive() and waited < timeout:
            self.stop_requested.wait(0.02)
            waited += 0.02
        return bool(self.server.started)

    def tick(self) -> None:
        """One pass of the in-process loop (the separate loop ticks itself)."""
        if self.engine is not None:
            self.engine.tick(self.run_clock.now())

    def stop(self) -> None:
        """Stop dispatching, give running jobs their grace, then stop the API."""
        if self.loop is not None:
            self.loop.stop()
        elif self.engine is not None:
            self.engine.dispatching = False
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
            self.engine.drain(self.run_clock, self.settings.grace_seconds)
        self.server.should_exit = True
        if self._server_thread.is_alive():
            self._server_thread.join(timeout=10)
        self.writer.stop()  # after the API: what it accepted is written before we go
        if self.engine is not None:
            self.engine.close()
        self.store.engine.dispose()
        log.info("greenai daemon stopped")

    def serve_forever(self, on_ready: Callable[[str], Any] | None = None) -> bool:
        """Run until SIGTERM or SIGINT; ``False`` when a part of the daemon died instead."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        self.start()
        if on_ready is not None:
            on_ready(self.url)
        clean = True
        while not self.stop_requested.wait(0.5):
            if not self._server_thread.is_alive():
                log.error("the API server stopped unexpectedly")
                clean = False
                break
            if self.loop is not None and not self.loop.alive:
                log.error(
                    "the loop process stopped unexpectedly (exit code %s)", self.loop.exitcode
                )
                clean = False
                break
        self.stop()
        return clean

    def _request_stop(self, signum: int, _frame: object) -> None:
        log.info("signal %s: stopping (grace %.0f s)", signum, self.settings.grace_seconds)
        self.stop_requested.set()
