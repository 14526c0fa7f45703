"""Where (and when) to run one job: rank locations by the carbon of their best start before
the deadline, charging data gravity. Pure: forecasts in, a ``Ranking`` out, no I/O.

Moving ``data_gb`` from where it lives takes ``T = data_gb * 8 / Gbit/s`` seconds, and the
job cannot start anywhere before its data has arrived; the move costs the origin's egress
price and an estimated transfer energy (``TRANSFER_KWH_PER_GB``, stated as an estimate).
A location is eligible only if it satisfies the job's residency tag, has the GPUs, has a link
from the data's location, and can finish by the deadline. Only like with like: a location
whose signal (marginal/average) differs from the home location's is never ranked against it.
Without a carbon price the lowest kilograms win and dollars are reported, not traded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from greenai.core.domain import Forecast, Signal
from greenai.policies.windows import Grid

# Aslan, Mayers, Koomey, France (2018), "Electricity Intensity of Internet Data Transmission",
# Journal of Industrial Ecology 22(4): 785-798: 0.06 kWh/GB for fixed-line transmission in
# 2015, halving about every two years; carried forward to 2023 (four halvings) that is
# 0.00375 kWh/GB. An estimate of an average path, not a measurement of any link.
TRANSFER_KWH_PER_GB = 0.06 * 0.5**4
TRANSFER_ESTIMATE = (
    "transfer energy is an estimate: 0.00375 kWh/GB (Aslan et al. 2018, J. Ind. Ecol. 22(4): "
    "0.06 kWh/GB in 2015, halving every 2 years, carried to 2023)"
)
BITS_PER_BYTE = 8


@dataclass(frozen=True, slots=True)
class Site:
    """A location as the ranking sees it: its forecast (``None`` with ``unavailable`` saying
    why when no source answered), capacity, residency tags, egress price and links."""

    name: str
    forecast: Forecast | None
    gpus: int = 1
    residency: frozenset[str] = frozenset()
    egress_usd_per_gb: float = 0.0
    links_gbps: Mapping[str, float] = field(default_factory=dict)
    unavailable: str = ""


@dataclass(frozen=True, slots=True)
class Question:
    """One job: run ``duration`` on ``gpus`` drawing ``power_kw`` between ``now`` and
    ``deadline``; its input (``data_gb``) lives at ``data_at``; ``residency`` must be met."""

    now: datetime
    duration: timedelta
    deadline: datetime
    power_kw: float
    gpus: int = 1
    data_gb: float = 0.0
    data_at: str | None = None
    residency: str | None = None
    usd_per_kg: float | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One location's answer: its best start and what it would cost, or why it is out."""

    location: str
    signal: Signal | None
    source: str
    why_not: str = ""
    start: datetime | None = None
    mean_intensity: float | None = None
    job_kg: float = 0.0
    transfer_s: float = 0.0
    transfer_kg: float = 0.0
    egress_usd: float = 0.0
    warnings: tuple[str, ...] = ()  # what its source said about its forecast

    @property
    def eligible(self) -> bool:
        return not self.why_not

    @property
    def total_kg(self) -> float:
        return self.job_kg + self.transfer_kg

    def score(self, usd_per_kg: float | None) -> tuple[float, ...]:
        """Smaller is better: kilograms (then dollars), or dollars with a carbon price."""
        start = self.start.timestamp() if self.start else 0.0
        if usd_per_kg is None:
            return (round(self.total_kg, 9), self.egress_usd, start)
        return (round(self.egress_usd + usd_per_kg * self.total_kg, 9), self.total_kg, start)


@dataclass(frozen=True, slots=True)
class Ranking:
    """Eligible options best first, the excluded ones with their reasons, and the home
    location (where the data lives, else the first candidate) the winner is compared with."""

    ranked: tuple[Option, ...]
    excluded: tuple[Option, ...]
    home: str
    signal: Signal | None
    notes: tuple[str, ...] = ()

    @property
    def winner(self) -> Option | None:
        return self.ranked[0] if self.ranked else None


def rank_locations(
    sites: Sequence[Site], question: Question, candidates: Sequence[str] | None = None
) -> Ranking:
    """Rank ``candidates`` (default: every site) for ``question``. ``sites`` must hold the
    data's location too, even when it is not a candidate (its links and egress price)."""
    by_name = {site.name: site for site in sites}
    names = list(candidates) if candidates is not None else list(by_name)
    missing = [n for n in [*names, question.data_at] if n is not None and n not in by_name]
    if missing:
        raise ValueError(f"unknown location {missing[0]!r}")
    if not names:
        raise ValueError("no candidate locations")
    home = question.data_at or names[0]
    signal = _reference_signal(by_name, home, names)
    options = [_option(by_name, by_name[n], question, signal) for n in names]
    ranked = sorted((o for o in options if o.eligible), key=lambda o: o.score(question.usd_per_kg))
    excluded = tuple(o for o in options if not o.eligible)
    notes = [TRANSFER_ESTIMATE] if question.data_gb > 0 else []
    if any(o.signal is not None and o.signal != signal for o in options):
        notes.append(f"only {signal} signals ranked: marginal and average are never compared")
    return Ranking(tuple(ranked), excluded, home, signal, tuple(notes))


def _reference_signal(by_name: Mapping[str, Site], home: str, names: list[str]) -> Signal | None:
    """The home's signal where it has a forecast, else the first candidate's that has one."""
    for name in [home, *names]:
        forecast = by_name[name].forecast
        if forecast is not None:
            return forecast.signal
    return None


def transfer_seconds(data_gb: float, gbps: float) -> float:
    """``T = D / BW``: 40,000 GB over 100 Gbit/s is 3,200 s."""
    return data_gb * BITS_PER_BYTE / gbps


def link_gbps(by_name: Mapping[str, Site], origin: str, target: str) -> float | None:
    """The origin's figure for the link, else the target's (links are symmetric unless both
    ends say), else ``None``: no link, the data cannot move there."""
    given = by_name[origin].links_gbps.get(target)
    return given if given is not None else by_name[target].links_gbps.get(origin)


def _option(
    by_name: Mapping[str, Site], site: Site, question: Question, signal: Signal | None
) -> Option:
    forecast = site.forecast
    if forecast is None:
        return Option(site.name, None, "", why_not=f"no signal: {site.unavailable or 'none'}")
    out = Option(site.name, forecast.signal, forecast.source, warnings=forecast.warnings)
    if question.residency and question.residency not in site.residency:
        return _out(out, f"residency: not a {question.residency} location")
    if question.gpus > site.gpus:
        return _out(out, f"capacity: {site.gpus} GPUs, the job needs {question.gpus}")
    if forecast.signal != signal:
        return _out(out, f"{forecast.signal} signal: not ranked against {signal} ones")
    moved = question.data_gb > 0 and question.data_at not in (None, site.name)
    if not moved:
        return _best_start(out, forecast, question, question.now)
    assert question.data_at is not None
    gbps = link_gbps(by_name, question.data_at, site.name)
    if gbps is None:
        return _out(out, f"no link from {question.data_at}")
    seconds = transfer_seconds(question.data_gb, gbps)
    origin = by_name[question.data_at].forecast
    out = _with_transfer(out, question, seconds, by_name[question.data_at], origin, forecast)
    if (
        seconds + question.duration.total_seconds()
        > (question.deadline - question.now).total_seconds()
    ):
        return _out(out, f"deadline: data arrives after {duration_text(seconds)}, too late")
    return _best_start(out, forecast, question, question.now + timedelta(seconds=seconds))


def _with_transfer(
    out: Option,
    question: Question,
    seconds: float,
    origin: Site,
    origin_forecast: Forecast | None,
    forecast: Forecast,
) -> Option:
    """Transfer time, egress and the estimated transfer carbon (network energy at the mean of
    both ends' intensity now, where both are the same signal)."""
    ends = [forecast.values[0]]
    if origin_forecast is not None and origin_forecast.signal == forecast.signal:
        ends.append(origin_forecast.values[0])
    kwh = question.data_gb * TRANSFER_KWH_PER_GB
    return replace(
        out,
        transfer_s=seconds,
        transfer_kg=kwh * sum(ends) / len(ends) / 1000,
        egress_usd=question.data_gb * origin.egress_usd_per_gb,
    )


def _best_start(out: Option, forecast: Forecast, question: Question, earliest: datetime) -> Option:
    """The lowest-carbon start in ``[earliest, latest]`` on this location's forecast."""
    latest = min(question.deadline, forecast.end) - question.duration
    if earliest > latest:
        if earliest + question.duration > question.deadline:
            why = "deadline: the job would end after it"
            if out.transfer_s:
                why = f"deadline: data arrives after {duration_text(out.transfer_s)}, too late"
            return _out(out, why)
        return _out(out, f"forecast ends {forecast.end:%Y-%m-%d %H:%M}Z, before the job would")
    grid = Grid(forecast.values, forecast.step.total_seconds())
    lo = (earliest - forecast.start).total_seconds()
    hi = (latest - forecast.start).total_seconds()
    start_s, mean = grid.best_start(lo, hi, question.duration.total_seconds())
    hours = question.duration.total_seconds() / 3600
    return replace(
        out,
        start=forecast.start + timedelta(seconds=start_s),
        mean_intensity=mean,
        job_kg=mean * question.power_kw * hours / 1000,
    )


def duration_text(seconds: float) -> str:
    """``3200`` -> ``53 min``; ``25600`` -> ``7.1 h``: a transfer as people say it."""
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _out(option: Option, why: str) -> Option:
    return replace(option, why_not=why)
