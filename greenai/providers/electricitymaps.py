"""Electricity Maps v3: hourly consumption-mix intensity by zone (``GB``, ``US-MIDA-PJM``) or
by ``lat,lon``, with an ``auth-token`` header.

The figure is one emission factor, life-cycle by default (``electricitymaps_factor``); the
other is asked for too and kept beside it as a warning line (its mean over the same hours), so
a decision says both without the Forecast type changing. The signal is always an average.
Errors name the zone: unknown (404/400), no access with this token (403), token refused
(401). The token is a ``SecretStr``, sent only as the header, and scrubbed from any text the
API sends back before it can reach a log, a decision or evidence.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from statistics import fmean

import httpx
from pydantic import SecretStr

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import ConfigError, ProviderError
from greenai.core.time import floor_time, format_time
from greenai.formats.electricitymaps import LABEL, factor_type, other_factor
from greenai.providers.base import (
    contiguous_run,
    decode_json,
    sanitise,
    send,
    steps_between,
)
from greenai.providers.electricitymaps_parse import EmPoints, parse_em_points

logger = logging.getLogger(__name__)

BASE_URL = "https://api.electricitymap.org/v3"
PAST_RANGE_CHUNK = timedelta(days=10)  # the API's longest hourly past-range
_ZONE = re.compile(r"^[A-Z]{2,3}(-[A-Z0-9]{1,12}){0,3}$")
_LAT_LON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")


def zone_params(region: str) -> dict[str, str]:
    """``GB`` -> ``{"zone": "GB"}``; ``51.5,-0.1`` -> ``{"lat": ..., "lon": ...}``."""
    found = _LAT_LON.match(region)
    if found:
        lat, lon = float(found.group(1)), float(found.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ConfigError(f"electricitymaps location {region!r} is out of range (lat,lon)")
        return {"lat": found.group(1), "lon": found.group(2)}
    zone = region.strip().upper()
    if not _ZONE.match(zone):
        raise ConfigError(
            f"electricitymaps region {region!r} is neither a zone such as GB or US-MIDA-PJM "
            "nor 'lat,lon'"
        )
    return {"zone": zone}


class ElectricityMapsProvider:
    """The v3 API over an injected client; holds the token and the chosen factor only."""

    name = "electricitymaps"
    signal = Signal.AVERAGE
    step = timedelta(hours=1)

    def __init__(
        self,
        client: httpx.Client,
        token: SecretStr,
        factor: str = "lifecycle",
        base_url: str = BASE_URL,
    ) -> None:
        self._client = client
        self._token = token
        self.factor = factor_type(factor)
        self._base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"ElectricityMapsProvider(factor={self.factor!r}, base_url={self._base_url!r})"

    def check_region(self, region: str) -> str:
        params = zone_params(region)
        return params.get("zone") or f"{params['lat']},{params['lon']}"

    def current(self, region: str, now: datetime) -> IntensityPoint:
        points = self._points("/carbon-intensity/latest", region, self.factor, {})
        at, value = max(points.points)
        if not at <= now < at + 2 * points.step:  # one step of publishing lag is normal
            raise ProviderError(
                self._source(points.zone), f"latest value is for {format_time(at)}, not now"
            )
        return IntensityPoint(at, value)

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        figure = self._points("/carbon-intensity/forecast", region, self.factor, {})
        answer = self._forecast(figure, now, now)
        if not answer.covers(now):
            raise ProviderError(
                answer.source, f"forecast from {format_time(answer.start)} misses now"
            )
        answer = answer.since(now)
        wanted = steps_between(answer.start, now + horizon, answer.step)
        warnings = answer.warnings
        if len(answer.values) < wanted:
            warnings = (*warnings, f"forecast reaches only {format_time(answer.end)}")
        answer = replace(answer, values=answer.values[:wanted], warnings=warnings)
        return self._with_other(answer, "/carbon-intensity/forecast", region, [{}])

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        first = floor_time(start, self.step)
        points: list[tuple[datetime, float]] = []
        found: EmPoints | None = None
        for params in _chunks(first, end):
            found = self._points("/carbon-intensity/past-range", region, self.factor, params)
            points += found.points
        if found is None:
            raise ProviderError(f"electricitymaps:{region}", "empty history range")
        kept = tuple((at, v) for at, v in points if first <= at < end)
        answer = self._forecast(replace(found, points=kept), first, end)
        return self._with_other(answer, "/carbon-intensity/past-range", region, _chunks(first, end))

    def _forecast(self, found: EmPoints, anchor: datetime, issued_at: datetime) -> Forecast:
        source = self._source(found.zone)
        start, values, gaps = contiguous_run(found.points, found.step, anchor, source)
        notes = (f"electricitymaps: the figure is {LABEL[self.factor]} g/kWh",)
        return Forecast(
            start=start,
            step=found.step,
            values=values,
            signal=Signal.AVERAGE,
            source=source,
            region=found.zone,
            issued_at=issued_at,
            warnings=notes + found.notes(self.factor) + gaps,
        )

    def _with_other(
        self, answer: Forecast, path: str, region: str, chunks: list[dict[str, str]]
    ) -> Forecast:
        """``answer`` plus one line with the other factor over the same hours (or why not:
        the figure is good without it)."""
        other = other_factor(self.factor)
        try:
            points = [p for c in chunks for p in self._points(path, region, other, c).points]
        except ProviderError as exc:
            note = f"electricitymaps: {LABEL[other]} values unavailable: {exc.detail}"
            return replace(answer, warnings=(*answer.warnings, note))
        held = [v for at, v in points if answer.start <= at < answer.end]
        if not held:
            note = f"electricitymaps: no {LABEL[other]} values for the same hours"
        else:
            note = (
                f"electricitymaps: {LABEL[other]} (not the figure) over the same hours: "
                f"mean {fmean(held):.1f} g/kWh ({LABEL[self.factor]} mean "
                f"{fmean(answer.values):.1f})"
            )
        return replace(answer, warnings=(*answer.warnings, note))

    def _points(self, path: str, region: str, factor: str, params: Mapping[str, str]) -> EmPoints:
        where = zone_params(region)
        source = f"electricitymaps:{where.get('zone') or region.strip()}"
        query = {**where, **params, "emissionFactorType": factor}
        response = send(
            self._client,
            source,
            self._base_url + path,
            params=query,
            headers={"auth-token": self._token.get_secret_value()},
        )
        if not 200 <= response.status_code < 300:
            raise ProviderError(source, self._refusal(response, source, where))
        payload = decode_json(response, source)
        logger.debug("%s: GET %s -> %d", source, path, response.status_code)
        return parse_em_points(payload, source, factor, where.get("zone", region.strip()))

    def _refusal(self, response: httpx.Response, source: str, where: Mapping[str, str]) -> str:
        """What a non-2xx answer means, naming the zone and never the token."""
        status = response.status_code
        zone = where.get("zone") or f"location {where.get('lat')},{where.get('lon')}"
        detail = self._scrub(_api_message(response))
        suffix = f": {detail}" if detail else ""
        if status == 401:
            return f"HTTP 401 token refused: check ELECTRICITYMAPS_TOKEN{suffix}"
        if status == 403:
            return f"HTTP 403 no access to zone {zone} with this token{suffix}"
        if status == 404 or (status == 400 and "zone" in detail.lower()):
            return f"HTTP {status} unknown zone {zone}{suffix}"
        if status == 429:
            return f"HTTP 429 rate limited{suffix}"
        return f"HTTP {status}{suffix}"

    def _scrub(self, text: str) -> str:
        secret = self._token.get_secret_value()
        return text.replace(secret, "**********") if secret else text

    def _source(self, zone: str) -> str:
        return f"electricitymaps:{zone}"


def _api_message(response: httpx.Response) -> str:
    """The API's own words from an error body (JSON ``message``/``error`` or plain text)."""
    text = response.content[:2000].decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        payload = decode_json(response, "electricitymaps")
    except ProviderError:
        return sanitise(text)  # e.g. a plain ``Access denied``
    if isinstance(payload, Mapping):
        message = payload.get("message") or payload.get("error") or ""
        return sanitise(message) if isinstance(message, str) else ""
    return ""


def _chunks(start: datetime, end: datetime) -> list[dict[str, str]]:
    """``past-range`` parameters covering ``[start, end)`` in ranges the API accepts."""
    chunks = []
    cursor = start
    while cursor < end:
        chunk_end = min(cursor + PAST_RANGE_CHUNK, end)
        chunks.append({"start": format_time(cursor) or "", "end": format_time(chunk_end) or ""})
        cursor = chunk_end
    return chunks
