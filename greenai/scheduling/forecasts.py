"""The forecasts and histories the engine plans and accounts with, fetched off its thread.

A provider that hangs (a 10 s timeout and three retries: about 44 s) must not stall dispatch,
reaping, cancels or expiry. In the background mode (the daemon) each provider spec is
refreshed by a small pool of workers, one fetch per spec at a time, while the engine plans
with whatever is cached; a history for accounting is waited for only up to a deadline, after
which the cached forecast stands in (and the log says so). Without the background mode (tests,
burst mode) every fetch happens in the caller, so a tick sees its answers at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timedelta

from greenai.core.domain import Forecast, Job
from greenai.evidence.records import forecast_as_history, intensity_history
from greenai.providers.base import IntensitySource
from greenai.scheduling.config import EngineStats

log = logging.getLogger(__name__)


class ForecastBook:
    """Cached forecasts per provider spec, refreshed in the background or in the caller."""

    def __init__(
        self,
        source_for: Callable[[str], IntensitySource] | None,
        stats: EngineStats,
        *,
        horizon: timedelta,
        refresh_every: timedelta,
        background: bool = False,
        history_deadline_s: float = 5.0,
        workers: int = 2,
    ) -> None:
        self.source_for = source_for
        self.stats = stats
        self.horizon = horizon
        self.refresh_every = refresh_every
        self.history_deadline_s = history_deadline_s
        self._cache: dict[str, tuple[Forecast, datetime]] = {}
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[None]] = {}
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="greenai-fetch") if background else None
        )

    def get(self, spec: str) -> Forecast | None:
        with self._lock:
            cached = self._cache.get(spec)
        return cached[0] if cached else None

    def cached(self) -> dict[str, Forecast]:
        """Every cached forecast by provider spec (what the API shows)."""
        with self._lock:
            return {spec: forecast for spec, (forecast, _) in self._cache.items()}

    def refresh(self, specs: Iterable[str], now: datetime) -> None:
        """Bring every spec whose forecast is old or no longer covers ``now`` up to date: start
        its fetch in the background, or fetch it here."""
        if self.source_for is None:
            return
        for spec in sorted(set(specs)):
            if not self._due(spec, now):
                continue
            if self._pool is None:
                self._fetch(spec, now)
                continue
            with self._lock:
                running = self._inflight.get(spec)
                if running is None or running.done():
                    self._inflight[spec] = self._pool.submit(self._fetch, spec, now)

    def _due(self, spec: str, now: datetime) -> bool:
        with self._lock:
            cached = self._cache.get(spec)
        return not cached or now - cached[1] >= self.refresh_every or not cached[0].covers(now)

    def _fetch(self, spec: str, now: datetime) -> None:
        assert self.source_for is not None
        try:
            forecast = self.source_for(spec).forecast(now, self.horizon)
        except Exception as exc:  # a provider's failure never reaches the loop
            with self._lock:
                self.stats.provider_errors += 1
            log.warning("forecast for %s failed, keeping the cached one: %s", spec, exc)
            return
        with self._lock:
            if forecast.fallback:
                self.stats.fallbacks += 1
            self._cache[spec] = (forecast, now)

    def history(self, spec: str, job: Job, end: datetime) -> Forecast | None:
        """The intensity over the job's life, for its evidence: the source's history, waited
        for up to ``history_deadline_s`` in the background mode; else the cached forecast."""
        source = self.source_for(spec) if self.source_for is not None else None
        cached = self.get(spec)
        if self._pool is None or source is None:
            return intensity_history(source, job, end, cached)
        asked = self._pool.submit(intensity_history, source, job, end, cached)
        try:
            return asked.result(timeout=self.history_deadline_s)
        except FutureTimeout:
            log.warning(
                "intensity history for job %s took over %.0f s; using the cached forecast",
                job.id,
                self.history_deadline_s,
            )
            return forecast_as_history(cached, f"took over {self.history_deadline_s:.0f} s")

    def close(self) -> None:
        """Stop the workers (a fetch under way is left to finish on its own)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
