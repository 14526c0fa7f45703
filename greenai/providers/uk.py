"""UK Carbon Intensity API (NESO): national, region-id and postcode (outcode) intensities.

Average signal, half-hour periods, no authentication. The API shapes its regional answers
inconsistently (``data`` as an object or as an array wrapping it), reports errors in a JSON
body or sometimes as an empty body, and has outages with missing periods: every one of those
becomes either a clean Forecast with warnings or a ``ProviderError`` naming the problem.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import ConfigError, ProviderError
from greenai.core.time import floor_time, format_time
from greenai.providers.base import (
    contiguous_run,
    decode_json,
    describe,
    intensity,
    mapping,
    require,
    sanitise,
    send,
    steps_between,
    time_field,
)

logger = logging.getLogger(__name__)

BASE_URL = "https://api.carbonintensity.org.uk"
STEP = timedelta(minutes=30)
FORECAST_REACH = timedelta(hours=48)
HISTORY_CHUNK = timedelta(days=14)  # the API's limit for one from/to range
REGION_IDS = range(1, 18)
_OUTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")


@dataclass(frozen=True, slots=True)
class UkRegion:
    """Where to ask: ``kind`` is ``national``, ``regionid`` or ``postcode``."""

    kind: str
    code: str = ""

    @property
    def label(self) -> str:
        return self.code or "national"

    def current_path(self) -> str:
        if self.kind == "national":
            return "/intensity"
        return f"/regional/{self.kind}/{self.code}"

    def range_path(self, start: datetime, end_or_window: str) -> str:
        span = f"{_api_time(start)}/{end_or_window}"
        if self.kind == "national":
            return f"/intensity/{span}"
        return f"/regional/intensity/{span}/{self.kind}/{self.code}"


def parse_uk_region(region: str) -> UkRegion:
    """``""``/``national`` -> national, ``1``..``17`` -> region id, an outcode -> postcode."""
    text = region.strip().upper()
    if text in ("", "NATIONAL", "GB"):
        return UkRegion("national")
    if text.isdigit():
        if int(text) not in REGION_IDS:
            raise ConfigError(
                f"uk region id {text} does not exist: use 1-17 (e.g. 13 London), "
                "a postcode outcode such as BS16, or 'national'"
            )
        return UkRegion("regionid", str(int(text)))
    if _OUTCODE.match(text):
        return UkRegion("postcode", text)
    raise ConfigError(
        f"uk region {region!r} is neither 'national', a region id 1-17 nor a postcode "
        "outcode (the first half of a postcode, e.g. BS16 or SW1A)"
    )


def _api_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%MZ")


def parse_uk_points(
    payload: Any, source: str, prefer_actual: bool = True
) -> list[tuple[datetime, float]]:
    """``(period start, intensity)`` for every period of a national or regional body.
    ``actual`` is used when present and wanted, else ``forecast``."""
    return [_parse_period(p, source, prefer_actual) for p in _periods(payload, source)]


def _periods(payload: Any, source: str) -> list[Any]:
    if isinstance(payload, Mapping) and "error" in payload:
        raise ProviderError(source, _error_message(payload["error"]))
    data = require(payload, "data", source)
    one = isinstance(data, list) and len(data) == 1 and isinstance(data[0], Mapping)
    if one and "data" in data[0]:  # the documented array wrapping one region object
        data = data[0]
    if isinstance(data, Mapping):  # the regional object as the fw48h endpoint records it
        data = require(data, "data", source, "data object")
    if not isinstance(data, list):
        raise ProviderError(source, f"field 'data' holds no list of periods ({describe(data)})")
    if not data:
        raise ProviderError(source, "no periods in response (empty 'data')")
    return data


def _parse_period(period: Any, source: str, prefer_actual: bool) -> tuple[datetime, float]:
    period = mapping(period, source, "a period")
    start = time_field(require(period, "from", source, "period"), "from", source)
    where = f"period {format_time(start)}"
    if start != floor_time(start, STEP):
        raise ProviderError(source, f"{where} is not on the half-hour grid")
    if "to" in period:  # always sent; checked where present, never required
        end = time_field(period["to"], "to", source)
        if end - start != STEP:
            raise ProviderError(source, f"{where} lasts {end - start}, not {STEP}")
    values = mapping(require(period, "intensity", source, where), source, f"{where} intensity")
    actual = values.get("actual") if prefer_actual else None
    if actual is not None:
        return start, intensity(actual, "actual", source)
    return start, intensity(require(values, "forecast", source, where), "forecast", source)


def _error_message(error: Any) -> str:
    """The API's own error text, sanitised and cut short."""
    if isinstance(error, Mapping):
        message = sanitise(error.get("message") or "error without message")
        code = sanitise(error.get("code") or "", 40)
        return f"{message} ({code})" if code else message
    return f"error {describe(error)}"


def parse_uk_forecast(
    payload: Any, *, region: str, anchor: datetime, issued_at: datetime, prefer_actual: bool
) -> Forecast:
    """A Forecast from one UK body: the contiguous run of periods holding ``anchor``."""
    source = f"uk:{region}"
    start, values, warnings = contiguous_run(
        parse_uk_points(payload, source, prefer_actual), STEP, anchor, source
    )
    return Forecast(
        start=start,
        step=STEP,
        values=values,
        signal=Signal.AVERAGE,
        source=source,
        region=region,
        issued_at=issued_at,
        warnings=warnings,
    )


class UkProvider:
    """The UK API over an injected client; stateless apart from the client."""

    name = "uk"
    signal = Signal.AVERAGE
    step = STEP

    def __init__(self, client: httpx.Client, base_url: str = BASE_URL) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")

    def check_region(self, region: str) -> str:
        return parse_uk_region(region).label

    def current(self, region: str, now: datetime) -> IntensityPoint:
        where = parse_uk_region(region)
        payload = self._get(where.current_path(), where.label)
        points = parse_uk_points(payload, f"uk:{where.label}")
        # tolerate one period of clock skew between us and the API at a period boundary
        held = [(at, v) for at, v in points if at <= now < at + 2 * STEP]
        if not held:
            raise ProviderError(f"uk:{where.label}", f"no current period holds {now:%H:%M}Z")
        start, value = max(held)
        return IntensityPoint(start, value)

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        where = parse_uk_region(region)
        period = floor_time(now, STEP)
        payload = self._get(where.range_path(period, "fw48h"), where.label)
        answer = parse_uk_forecast(
            payload, region=where.label, anchor=now, issued_at=now, prefer_actual=False
        )
        if not answer.covers(now):
            raise ProviderError(answer.source, f"forecast {answer.start:%H:%M}Z misses now")
        trimmed = answer.since(now)
        wanted = steps_between(period, now + horizon, STEP)
        warnings = answer.warnings
        if horizon > FORECAST_REACH:
            warnings = (*warnings, f"horizon {horizon} exceeds the API's 48 h forecast")
        return replace(trimmed, values=trimmed.values[:wanted], warnings=warnings)

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        where = parse_uk_region(region)
        source = f"uk:{where.label}"
        first = floor_time(start, STEP)
        points: list[tuple[datetime, float]] = []
        cursor = first
        while cursor < end:
            chunk_end = min(cursor + HISTORY_CHUNK, end)
            payload = self._get(where.range_path(cursor, _api_time(chunk_end)), where.label)
            points += parse_uk_points(payload, source, prefer_actual=True)
            cursor = chunk_end
        points = [(at, v) for at, v in points if first <= at < end]
        run_start, values, warnings = contiguous_run(points, STEP, first, source)
        regional = where.kind != "national"
        if regional:
            warnings = (*warnings, "regional history is forecast only: the API has no actuals")
        return Forecast(
            run_start,
            STEP,
            values,
            Signal.AVERAGE,
            source,
            where.label,
            end,
            warnings=warnings,
            forecast_only=regional,
        )

    def _get(self, path: str, label: str) -> Any:
        source = f"uk:{label}"
        response = send(self._client, source, self._base_url + path)
        status = response.status_code
        if not 200 <= status < 300:
            try:
                payload = decode_json(response, source)
            except ProviderError:
                payload = None  # an error page or empty body: the status says enough
            detail = ""
            if isinstance(payload, Mapping) and "error" in payload:
                detail = ": " + _error_message(payload["error"])
            raise ProviderError(source, f"HTTP {status}{detail}")
        payload = decode_json(response, source)
        if isinstance(payload, Mapping) and "error" in payload:
            raise ProviderError(source, _error_message(payload["error"]))
        logger.debug("%s: GET %s -> %d", source, path, response.status_code)
        return payload
