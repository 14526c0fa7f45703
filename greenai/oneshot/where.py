"""`greenai where` and `GET /locations/best`: the configured locations' forecasts, one
``Question``, the pure ranking (``policies.where``) and one JSON shape both front-ends print.

Each location's source is an ordinary provider chain, built once and reused; a location whose
chain cannot answer is ranked out with the reason, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from greenai.core.domain import Forecast
from greenai.core.errors import ConfigError, GreenAIError
from greenai.core.settings import LocationSpec, Settings
from greenai.core.time import format_time, parse_duration
from greenai.policies.where import Option, Question, Ranking, Site, rank_locations
from greenai.policies.where_words import explain
from greenai.providers import FallbackChain, build_chain

MAX_DURATION = timedelta(days=366)  # the longest run the API accepts anywhere
ASSUMED_KW_PER_GPU = 0.7  # an H100 SXM's 700 W board limit: an assumption, said so
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?B)\s*$", re.IGNORECASE)
_GB_PER = {"KB": 1e-6, "MB": 1e-3, "GB": 1.0, "TB": 1e3, "PB": 1e6, "B": 1e-9}


def parse_size_gb(text: str, field: str = "data") -> float:
    """``40TB`` -> ``40000.0`` (decimal units); ConfigError naming ``field`` otherwise."""
    found = _SIZE.match(text)
    if not found:
        raise ConfigError(f"{field}: {text!r} is not a size such as 500GB or 40TB")
    return float(found.group(1)) * _GB_PER[found.group(2).upper()]


def parse_job_duration(text: str, field: str) -> timedelta:
    """``2h`` -> 2 hours, positive and at most a year; a ConfigError naming ``field``."""
    try:
        value = parse_duration(text.strip())
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"{field}: {exc}") from exc
    if not timedelta(0) < value <= MAX_DURATION:
        raise ConfigError(f"{field}: must be positive and at most 366 days")
    return value


def parse_data(text: str) -> tuple[float, str]:
    """``40TB@PJM`` -> ``(40000.0, "PJM")``: the job's input size and where it lives."""
    size, at, where = text.partition("@")
    if not at or not where.strip():
        raise ConfigError(f"--data: {text!r} must be SIZE@LOCATION, e.g. 40TB@PJM")
    return parse_size_gb(size, "--data"), where.strip()


def check_names(settings: Settings, names: Sequence[str], field: str) -> list[str]:
    """``names`` if every one is a configured location; a ConfigError naming ``field``."""
    if not settings.locations:
        raise ConfigError("no locations configured: add [locations.NAME] tables to greenai.toml")
    unknown = [n for n in names if n not in settings.locations]
    if unknown:
        known = ", ".join(sorted(settings.locations))
        raise ConfigError(f"{field}: unknown location {unknown[0]!r} (configured: {known})")
    return list(names)


class LocationForecasts:
    """One fallback chain per configured location, built on first use and kept. A forecast
    is reused for ``REUSE`` of clock time when it reaches as far as asked: an open read-only
    route must not turn every request into a provider call per location (quotas)."""

    REUSE = timedelta(minutes=5)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._chains: dict[str, FallbackChain] = {}
        self._recent: dict[str, tuple[datetime, datetime, Forecast]] = {}

    def sites(self, names: Sequence[str], now: datetime, horizon: timedelta) -> list[Site]:
        return [self._site(name, now, horizon) for name in dict.fromkeys(names)]

    def close(self) -> None:
        for chain in self._chains.values():
            chain.close()

    def _site(self, name: str, now: datetime, horizon: timedelta) -> Site:
        spec = self.settings.locations[name]
        kept = self._recent.get(name)
        if kept and self._reusable(*kept, now, horizon):
            return _site(name, spec, kept[2].since(now), "")
        try:
            forecast = self._chain(name, spec).forecast(now, horizon)
        except GreenAIError as exc:  # one location without a signal is out, not the answer
            return _site(name, spec, None, str(exc))
        self._recent[name] = (now, now + horizon, forecast)
        return _site(name, spec, forecast, "")

    def _reusable(
        self,
        fetched: datetime,
        reach: datetime,
        forecast: Forecast,
        now: datetime,
        horizon: timedelta,
    ) -> bool:
        fresh = timedelta(0) <= now - fetched < self.REUSE
        return fresh and reach >= now + horizon and forecast.covers(now)

    def _chain(self, name: str, spec: LocationSpec) -> FallbackChain:
        if name not in self._chains:
            self._chains[name] = build_chain(spec.source, self.settings)
        return self._chains[name]


def _site(name: str, spec: LocationSpec, forecast: Forecast | None, unavailable: str) -> Site:
    return Site(
        name=name,
        forecast=forecast,
        gpus=spec.gpus,
        residency=frozenset(spec.residency),
        egress_usd_per_gb=spec.egress_usd_per_gb,
        links_gbps=dict(spec.bandwidth_gbps),
        unavailable=unavailable,
    )


def answer(
    forecasts: LocationForecasts, question: Question, candidates: Sequence[str] | None
) -> tuple[Ranking, str]:
    """Fetch what the question needs, rank, explain."""
    settings = forecasts.settings
    names = check_names(settings, candidates or list(settings.locations), "locations")
    if question.data_at is not None:
        check_names(settings, [question.data_at], "data location")
    if question.deadline.tzinfo is None:
        raise ConfigError("deadline: give a UTC offset or Z")
    if question.deadline < question.now + question.duration:
        raise ConfigError("deadline: the job cannot finish by it even if it starts now")
    reach = timedelta(hours=settings.horizon_hours)  # no source forecasts further
    horizon = max(min(question.deadline - question.now, reach), timedelta(hours=1))
    wanted = [*names, *([question.data_at] if question.data_at else [])]
    ranking = rank_locations(forecasts.sites(wanted, question.now, horizon), question, names)
    return ranking, explain(ranking, question)


def ranking_json(ranking: Ranking, question: Question, why: str, power: str) -> dict[str, Any]:
    """The one JSON shape of a ranking (docs/formats.md, "where")."""
    winner = ranking.winner
    return {
        "winner": winner.location if winner else None,
        "why": why,
        "home": ranking.home,
        "signal": str(ranking.signal) if ranking.signal else None,
        "asked": {
            "now": format_time(question.now),
            "duration_s": question.duration.total_seconds(),
            "deadline": format_time(question.deadline),
            "gpus": question.gpus,
            "power_kw": question.power_kw,
            "power": power,
            "data_gb": question.data_gb,
            "data_location": question.data_at,
            "residency": question.residency,
            "usd_per_kg": question.usd_per_kg,
        },
        "ranked": [_option_json(o) for o in ranking.ranked],
        "excluded": [{"location": o.location, "why": o.why_not} for o in ranking.excluded],
        "notes": list(ranking.notes),
    }


def _option_json(option: Option) -> dict[str, Any]:
    return {
        "location": option.location,
        "source": option.source,
        "start": format_time(option.start),
        "mean_intensity": round(option.mean_intensity or 0.0, 3),
        "job_kg": round(option.job_kg, 6),
        "transfer_s": round(option.transfer_s, 3),
        "transfer_kg_estimate": round(option.transfer_kg, 6),
        "egress_usd": round(option.egress_usd, 2),
        "total_kg": round(option.total_kg, 6),
        "warnings": list(option.warnings),
    }


def power_for(gpus: int, power_kw: float | None, settings: Settings) -> tuple[float, str]:
    """The job's draw and where that figure came from (never presented as measured)."""
    if power_kw is not None:
        return power_kw, "declared"
    if settings.power_watts is not None:
        return settings.power_watts / 1000, "declared (power_watts)"
    return gpus * ASSUMED_KW_PER_GPU, f"assumed {ASSUMED_KW_PER_GPU * 1000:.0f} W per GPU"
