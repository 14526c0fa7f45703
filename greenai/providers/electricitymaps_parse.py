"""Electricity Maps v3 bodies -> hourly points: pure functions, tested on payloads.

``latest`` is one point object; ``history`` holds ``{"history": [points]}``, ``past-range``
``{"data": [points]}`` and ``forecast`` ``{"forecast": [points]}``. A point is
``{"datetime", "carbonIntensity", "emissionFactorType", "isEstimated", ...}``; a null
``carbonIntensity`` is a missing hour (a gap, reported, never filled). A point whose
``emissionFactorType`` is not the one asked for is refused: the label must be true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from greenai.core.errors import ProviderError
from greenai.core.time import floor_time, format_time
from greenai.formats.electricitymaps import LABEL
from greenai.providers.base import describe, intensity, mapping, require, sanitise, time_field

GRANULARITY = {
    "5_minutes": timedelta(minutes=5),
    "15_minutes": timedelta(minutes=15),
    "hourly": timedelta(hours=1),
}
DEFAULT_STEP = timedelta(hours=1)
LIST_FIELDS = ("forecast", "history", "data")


@dataclass(frozen=True, slots=True)
class EmPoints:
    """One body's points: ``(start, g/kWh)``, the zone it answered for, the step, how many
    values were estimated and how many hours had no value."""

    zone: str
    step: timedelta
    points: tuple[tuple[datetime, float], ...]
    estimated: int = 0
    missing: int = 0

    def notes(self, factor: str) -> tuple[str, ...]:
        """Warnings a decision should carry about these points."""
        notes = []
        if self.estimated:
            notes.append(
                f"electricitymaps: {self.estimated} of {len(self.points)} {LABEL[factor]} "
                "values are estimates, not measurements"
            )
        if self.missing:
            notes.append(f"electricitymaps: {self.missing} hours without a value")
        return tuple(notes)


def parse_em_points(payload: Any, source: str, factor: str, zone: str) -> EmPoints:
    """The points of any carbon-intensity body (latest, history, past-range, forecast)."""
    body = mapping(payload, source, "response")
    raw = _point_list(body, source)
    answered = body.get("zone", zone)
    if not isinstance(answered, str) or not answered or len(answered) > 40:
        raise ProviderError(source, f"field 'zone' is not a zone name ({describe(answered)})")
    step = _step(body, raw, source)
    points: list[tuple[datetime, float]] = []
    estimated = missing = 0
    for item in raw:
        point = mapping(item, source, "a data point")
        at = time_field(require(point, "datetime", source, "data point"), "datetime", source)
        if at != floor_time(at, step):
            raise ProviderError(source, f"point {format_time(at)} is off the {step} grid")
        _check_factor(point, factor, source, at)
        value = point.get("carbonIntensity")
        if value is None:
            missing += 1
            continue
        points.append((at, intensity(value, "carbonIntensity", source)))
        estimated += point.get("isEstimated") is True
    if not points:
        raise ProviderError(source, "no data points with a carbonIntensity in response")
    return EmPoints(sanitise(answered, 40), step, tuple(points), estimated, missing)


def _point_list(body: Mapping[str, Any], source: str) -> list[Any]:
    for key in LIST_FIELDS:
        if key in body:
            items = body[key]
            if not isinstance(items, list):
                raise ProviderError(source, f"field {key!r} is not a list ({describe(items)})")
            if not items:
                raise ProviderError(source, f"no data points in response (empty {key!r})")
            return items
    if "datetime" in body:  # ``latest``: the body is the point
        return [body]
    raise ProviderError(source, "response holds none of 'forecast', 'history', 'data'")


def _step(body: Mapping[str, Any], raw: list[Any], source: str) -> timedelta:
    first = raw[0] if raw and isinstance(raw[0], Mapping) else {}
    granularity = body.get("temporalGranularity", first.get("temporalGranularity"))
    if granularity is None:
        return DEFAULT_STEP
    if granularity not in GRANULARITY:
        shown = granularity if isinstance(granularity, str) and len(granularity) < 20 else "?"
        raise ProviderError(source, f"temporalGranularity {sanitise(shown, 20)!r} is not sub-daily")
    return GRANULARITY[granularity]


def _check_factor(point: Mapping[str, Any], factor: str, source: str, at: datetime) -> None:
    said = point.get("emissionFactorType")
    if said is not None and said != factor:
        shown = sanitise(said, 20) if isinstance(said, str) else describe(said)
        raise ProviderError(
            source, f"asked for {factor} values, got {shown!r} at {format_time(at)}: refused"
        )
