"""A chain of providers with an on-disk cache: the first source that answers wins, and every
answer says who really answered.

For each source in order: ask it live; if it fails, serve its last good forecast from the
cache while that still covers now and is fresh; else go on to the next. ``fallback`` on the
answer is ``None`` when the first source answered live, ``"cache"`` when a cached forecast
stood in, and the stand-in's label (``egrid:RFCE``) otherwise, so decisions and evidence can
say that a stand-in answered.

Any exception a provider raises while answering counts as a failure, not only
``ProviderError``: a provider's bug (a ``ZeroDivisionError`` on a surprising payload) is logged
once with its type and message and the chain moves on, exactly as for an outage.
``KeyboardInterrupt`` and ``SystemExit`` are not ``Exception`` and still stop the process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

import httpx

from greenai.core.domain import Forecast, Signal
from greenai.core.errors import NoSignalError, ProviderError
from greenai.core.settings import Settings
from greenai.core.time import Clock, SystemClock, format_time
from greenai.providers.base import CurrentIntensity, Provider, sanitise
from greenai.providers.cache import ForecastCache
from greenai.providers.registry import ProviderContext, create_provider, parse_chain

logger = logging.getLogger(__name__)

CHAIN_SOURCE = "chain"
_Answer = TypeVar("_Answer", Forecast, CurrentIntensity)


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One configured source: a provider and its (normalised) region."""

    provider: Provider
    region: str

    @property
    def label(self) -> str:
        return f"{self.provider.name}:{self.region}"

    @property
    def signal(self) -> Signal:
        signal_of = getattr(self.provider, "signal_of", None)
        return Signal(signal_of(self.region)) if signal_of else self.provider.signal

    @property
    def cacheable(self) -> bool:
        return bool(getattr(self.provider, "cacheable", True))


class FallbackChain:
    """Providers tried in order, with the cache between each and the next."""

    def __init__(
        self,
        entries: Sequence[ChainEntry],
        cache: ForecastCache | None = None,
        owned_clients: Sequence[httpx.Client] = (),
    ) -> None:
        if not entries:
            raise ValueError("a fallback chain needs at least one provider")
        self.entries = tuple(entries)
        self.cache = cache
        self._owned_clients = tuple(owned_clients)

    @property
    def primary(self) -> str:
        """The configured first choice, e.g. ``uk:13``."""
        return self.entries[0].label

    @property
    def primary_signal(self) -> Signal:
        return self.entries[0].signal

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(entry.label for entry in self.entries)

    @staticmethod
    def is_live(answer: Forecast | CurrentIntensity) -> bool:
        """False when only a static floor (eGRID annual average) answered: there is no
        better time to wait for, so a job should run at once."""
        return not answer.static

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        failures: list[str] = []
        for index, entry in enumerate(self.entries):
            try:
                answer = entry.provider.forecast(entry.region, now, horizon)
            except Exception as exc:  # not only ProviderError: the chain is the last defence
                failures.append(self._failure(entry, exc))
                cached = self._from_cache(entry, now, failures)
                if cached is not None:
                    return cached
                continue
            if entry.cacheable and self.cache is not None:
                try:
                    self.cache.save(entry.label, answer, now)
                except Exception as exc:  # the answer is good; keeping it is an optimisation
                    logger.warning("cache: could not keep %s: %r", entry.label, exc)
            return self._mark(answer, index, failures)
        raise self._no_signal(failures)

    def current(self, now: datetime) -> CurrentIntensity:
        failures: list[str] = []
        for index, entry in enumerate(self.entries):
            try:
                point = entry.provider.current(entry.region, now)
            except Exception as exc:  # not only ProviderError: the chain is the last defence
                failures.append(self._failure(entry, exc))
                cached = self._from_cache(entry, now, failures)
                if cached is not None:
                    return _current_from(cached, now)
                continue
            answer = CurrentIntensity(
                at=now,
                start=point.start,
                value=point.value,
                signal=entry.signal,
                source=entry.label,
                region=entry.region,
                static=bool(getattr(entry.provider, "static", False)),
            )
            return self._mark(answer, index, failures)
        raise self._no_signal(failures)

    def history(self, start: datetime, end: datetime) -> Forecast:
        failures: list[str] = []
        for index, entry in enumerate(self.entries):
            try:
                answer = entry.provider.history(entry.region, start, end)
            except Exception as exc:  # not only ProviderError: the chain is the last defence
                failures.append(self._failure(entry, exc))
                continue
            return self._mark(answer, index, failures)
        raise self._no_signal(failures)

    def close(self) -> None:
        """Close the HTTP client the chain built for itself (never an injected one)."""
        for client in self._owned_clients:
            client.close()

    def _mark(self, answer: _Answer, index: int, failures: list[str]) -> _Answer:
        if index == 0:
            return answer
        why = "; ".join(failures).removeprefix(f"{self.primary}: ")  # named once, not twice
        notes: list[str] = [f"{answer.source} stood in for {self.primary}: {why}"]
        if answer.signal != self.primary_signal:
            notes.append(
                f"signal {answer.signal.value} differs from {self.primary}'s "
                f"{self.primary_signal.value}: do not compare the two"
            )
        return replace(answer, fallback=answer.source, warnings=(*answer.warnings, *notes))

    def _from_cache(self, entry: ChainEntry, now: datetime, failures: list[str]) -> Forecast | None:
        if self.cache is None or not entry.cacheable:
            return None
        kept = self.cache.load(entry.label, now)
        if kept is None:
            return None
        forecast, saved_at = kept
        logger.warning("%s failed; serving its forecast cached at %s", entry.label, saved_at)
        note = f"served from cache saved {format_time(saved_at)}: " + "; ".join(failures)
        return replace(
            forecast,
            source=f"cache:{entry.label}",
            fallback="cache",
            warnings=(*forecast.warnings, note),
        )

    @staticmethod
    def _failure(entry: ChainEntry, exc: Exception) -> str:
        """One log line and one note per failure. A ``ProviderError`` already says what went
        wrong; anything else is a bug in that provider, named by its type and message (cut
        short: a foreign message may quote what it choked on)."""
        if isinstance(exc, ProviderError):
            text = str(exc)
        else:
            message = sanitise(exc, 160)
            text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        if not text.startswith(entry.provider.name):
            text = f"{entry.label}: {text}"
        logger.warning("provider failed: %s", text)
        return text

    @staticmethod
    def _no_signal(failures: list[str]) -> NoSignalError:
        return NoSignalError(CHAIN_SOURCE, "no source answered: " + "; ".join(failures))


def _current_from(cached: Forecast, now: datetime) -> CurrentIntensity:
    return CurrentIntensity(
        at=now,
        start=cached.start,
        value=cached.values[0],
        signal=cached.signal,
        source=cached.source,
        region=cached.region,
        static=cached.static,
        fallback=cached.fallback,
        warnings=cached.warnings,
    )


def build_chain(
    spec: str,
    settings: Settings,
    client: httpx.Client | None = None,
    clock: Clock | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    use_cache: bool = True,
) -> FallbackChain:
    """The chain for ``spec`` (e.g. ``settings.provider``). Bad names, regions, files or
    missing credentials are a ConfigError here, before any job waits on the chain."""
    ctx = ProviderContext(settings, clock or SystemClock(), sleep, given_client=client)
    entries = [
        ChainEntry(*create_provider(name, region, ctx)) for name, region in parse_chain(spec)
    ]
    max_age = timedelta(hours=settings.cache_max_age_hours)
    cache = ForecastCache(settings.cache_dir, max_age) if use_cache else None
    return FallbackChain(entries, cache, owned_clients=ctx.created_clients)
