"""WattTime v3: marginal operating emissions rate (MOER), 5-minute steps, token auth.

The token (30 min) is kept and renewed early by the injected clock; a 401/403 triggers one
re-login and one retry; a 429 is honoured with ``Retry-After`` a bounded number of times
through an injected ``sleep``. Values arrive in lb/MWh and leave as g/kWh. The password and
the token are ``SecretStr`` and never reach a log line, an exception message or a repr.
``/v3/signal-index`` is deliberately not used: its percentile is not a g/kWh figure.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import SecretStr

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import ConfigError, ProviderError
from greenai.core.time import Clock, floor_time, format_time
from greenai.providers.base import (
    contiguous_run,
    decode_json,
    describe,
    intensity,
    mapping,
    period,
    require,
    sanitise,
    send,
    steps_between,
    time_field,
)

logger = logging.getLogger(__name__)

BASE_URL = "https://api.watttime.org"
SIGNAL_TYPE = "co2_moer"
UNITS = "lbs_co2_per_mwh"
G_PER_KWH_PER_LB_PER_MWH = 0.453592
STEP = timedelta(minutes=5)
TOKEN_LIFETIME = timedelta(minutes=30)
TOKEN_RENEW_MARGIN = timedelta(minutes=3)  # renew before expiry, never on the edge
MAX_HORIZON_HOURS = 72
HISTORY_CHUNK = timedelta(days=30)
REGION_CACHE_TTL = timedelta(days=1)
MAX_RATE_LIMIT_RETRIES = 2
MAX_RETRY_AFTER_S = 60.0
DEFAULT_RETRY_AFTER_S = 5.0
_LAT_LON = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$")
_REGION_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_UNIT_NAME = re.compile(r"^[a-z_]{1,32}$")  # e.g. percentile: safe to name in a message
_TOKEN = re.compile(r"^[\x21-\x7e]{1,8192}$")  # printable, no spaces: safe in a header


def parse_watttime_points(
    payload: Any, source: str
) -> tuple[list[tuple[datetime, float]], timedelta, tuple[str, ...]]:
    """``(points in g/kWh, step, warnings)`` from a forecast or historical body. Anything
    not in lb/MWh (a percentile above all) is refused rather than converted."""
    meta = mapping(require(payload, "meta", source), source, "field 'meta'")
    units = require(meta, "units", source, "meta")
    if units != UNITS:
        known = isinstance(units, str) and _UNIT_NAME.match(units)
        shown = repr(units) if known else f"({describe(units)})"
        raise ProviderError(source, f"units {shown} are not {UNITS}: refusing to use as g/kWh")
    raw_period = meta.get("data_point_period_seconds", 300)
    step = period(raw_period, "data_point_period_seconds", source)
    data = require(payload, "data", source)
    if not isinstance(data, list):
        raise ProviderError(source, f"field 'data' is not a list ({describe(data)})")
    if not data:
        raise ProviderError(source, "no data points in response (empty 'data')")
    points = [_parse_point(p, source) for p in data]
    off_grid = next((at for at, _ in points if at != floor_time(at, step)), None)
    if off_grid is not None:
        raise ProviderError(source, f"point {format_time(off_grid)} is off the {step} grid")
    return points, step, _warnings(meta.get("warnings"), source)


def _parse_point(point: Any, source: str) -> tuple[datetime, float]:
    point = mapping(point, source, "a data point")
    at = time_field(require(point, "point_time", source, "data point"), "point_time", source)
    where = f"point {format_time(at)}"
    value = intensity(require(point, "value", source, where), "value", source)
    return at, value * G_PER_KWH_PER_LB_PER_MWH


def _warnings(raw: Any, source: str) -> tuple[str, ...]:
    """``meta.warnings``: absent/null, or a list of ``{type, message}`` objects or strings."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ProviderError(source, f"field 'warnings' is not a list ({describe(raw)})")
    return tuple(_warning_text(w, source) for w in raw)


def _warning_text(warning: Any, source: str) -> str:
    if isinstance(warning, str):
        return sanitise(warning)
    if isinstance(warning, Mapping):
        kind, message = warning.get("type", "warning"), warning.get("message", "")
        if isinstance(kind, str) and isinstance(message, str):
            return f"{sanitise(kind, 40)}: {sanitise(message)}".strip()
    raise ProviderError(
        source, f"a warning is neither text nor {{type, message}} ({describe(warning)})"
    )


def parse_watttime_forecast(
    payload: Any, *, region: str, anchor: datetime, issued_at: datetime
) -> Forecast:
    """A marginal-signal Forecast from one body: the contiguous run holding ``anchor``."""
    source = f"watttime:{region}"
    points, step, api_warnings = parse_watttime_points(payload, source)
    start, values, gap_warnings = contiguous_run(points, step, anchor, source)
    return Forecast(
        start=start,
        step=step,
        values=values,
        signal=Signal.MARGINAL,
        source=source,
        region=region,
        issued_at=issued_at,
        warnings=api_warnings + gap_warnings,
    )


def parse_lat_lon(region: str) -> tuple[float, float] | None:
    """``"51.5,-0.1"`` -> ``(51.5, -0.1)``; ``None`` when ``region`` is not a location."""
    match = _LAT_LON.match(region)
    if not match:
        return None
    lat, lon = float(match.group(1)), float(match.group(2))
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ConfigError(f"watttime location {region!r} is out of range (lat,lon)")
    return lat, lon


class WattTimeProvider:
    """WattTime over an injected client, clock and sleep; holds the token and a region cache."""

    name = "watttime"
    signal = Signal.MARGINAL
    step = STEP

    def __init__(
        self,
        client: httpx.Client,
        username: str,
        password: SecretStr,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        base_url: str = BASE_URL,
    ) -> None:
        self._client = client
        self._username = username
        self._password = password
        self._clock = clock
        self._sleep = sleep
        self._base_url = base_url.rstrip("/")
        self._token: SecretStr | None = None
        self._token_renew_at: datetime | None = None
        self._regions: dict[tuple[float, float], tuple[str, datetime]] = {}

    def __repr__(self) -> str:
        return f"WattTimeProvider(username={self._username!r}, base_url={self._base_url!r})"

    def check_region(self, region: str) -> str:
        if parse_lat_lon(region) is None and not _REGION_NAME.match(region.strip()):
            raise ConfigError(
                f"watttime region {region!r} is neither 'lat,lon' nor a WattTime region name "
                "such as CAISO_NORTH"
            )
        return region.strip()

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        name = self._resolve_region(region)
        hours = min(MAX_HORIZON_HOURS, max(0, math.ceil(horizon / timedelta(hours=1))))
        answer = self._forecast(name, now, hours)
        wanted = steps_between(floor_time(now, answer.step), now + horizon, answer.step)
        warnings = answer.warnings
        if horizon > timedelta(hours=MAX_HORIZON_HOURS):
            warnings = (*warnings, f"horizon {horizon} exceeds WattTime's 72 h forecast")
        return replace(answer, values=answer.values[:wanted], warnings=warnings)

    def current(self, region: str, now: datetime) -> IntensityPoint:
        answer = self._forecast(self._resolve_region(region), now, 0)
        return answer.points[0]

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        name = self._resolve_region(region)
        source = f"watttime:{name}"
        points: list[tuple[datetime, float]] = []
        warnings: tuple[str, ...] = ()
        step = STEP
        cursor = start
        while cursor < end:
            chunk_end = min(cursor + HISTORY_CHUNK, end)
            params = {"region": name, "signal_type": SIGNAL_TYPE}
            params |= {"start": format_time(cursor) or "", "end": format_time(chunk_end) or ""}
            chunk, step, chunk_warnings = parse_watttime_points(
                self._get("/v3/historical", params, source), source
            )
            points += chunk
            warnings += tuple(w for w in chunk_warnings if w not in warnings)
            cursor = chunk_end
        first = floor_time(start, step)
        points = [(at, v) for at, v in points if first <= at < end]
        run_start, values, gaps = contiguous_run(points, step, first, source)
        return Forecast(
            run_start, step, values, Signal.MARGINAL, source, name, end, warnings=warnings + gaps
        )

    def _forecast(self, name: str, now: datetime, hours: int) -> Forecast:
        params = {"region": name, "signal_type": SIGNAL_TYPE, "horizon_hours": str(hours)}
        payload = self._get("/v3/forecast", params, f"watttime:{name}")
        answer = parse_watttime_forecast(payload, region=name, anchor=now, issued_at=now)
        if not answer.covers(now):
            raise ProviderError(
                answer.source, f"forecast from {format_time(answer.start)} misses now"
            )
        return answer.since(now)

    def _resolve_region(self, region: str) -> str:
        """A WattTime region name; a ``lat,lon`` is looked up once a day."""
        location = parse_lat_lon(region)
        if location is None:
            return self.check_region(region)
        now = self._clock.now()
        cached = self._regions.get(location)
        if cached and now - cached[1] < REGION_CACHE_TTL:
            return cached[0]
        params = {"latitude": str(location[0]), "longitude": str(location[1])}
        params["signal_type"] = SIGNAL_TYPE
        source = f"watttime:{region}"
        payload = self._get("/v3/region-from-loc", params, source)
        name = require(payload, "region", source)
        if not isinstance(name, str) or len(name) > 64 or not _REGION_NAME.match(name):
            raise ProviderError(source, f"region-from-loc gave no region name ({describe(name)})")
        logger.info("watttime: %s is region %s", region, name)
        self._regions[location] = (name, now)
        return name

    def _get(self, path: str, params: Mapping[str, str], source: str) -> Any:
        """GET with the token; on 401/403 log in again once and retry once."""
        response = self._send(path, source, params=params, headers=self._auth_header(source))
        if response.status_code in (401, 403):
            logger.info("watttime: HTTP %d, logging in again", response.status_code)
            self._token = None
            response = self._send(path, source, params=params, headers=self._auth_header(source))
        return self._decode(response, source)

    def _auth_header(self, source: str) -> dict[str, str]:
        now = self._clock.now()
        if self._token is None or self._token_renew_at is None or now >= self._token_renew_at:
            self._token = self._login(source)
            self._token_renew_at = now + TOKEN_LIFETIME - TOKEN_RENEW_MARGIN
        return {"Authorization": f"Bearer {self._token.get_secret_value()}"}

    def _login(self, source: str) -> SecretStr:
        auth = httpx.BasicAuth(self._username, self._password.get_secret_value())
        response = self._send("/login", source, auth=auth)
        if response.status_code in (401, 403):
            raise ProviderError(
                source, "login refused: check WATTTIME_USERNAME and WATTTIME_PASSWORD"
            )
        token = require(self._decode(response, source), "token", source, "login response")
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise ProviderError(source, "login response holds no usable token")
        logger.info("watttime: logged in as %s", self._username)
        return SecretStr(token)

    def _send(self, path: str, source: str, **kwargs: Any) -> httpx.Response:
        """One request, waiting out a 429 at most ``MAX_RATE_LIMIT_RETRIES`` times."""
        for attempt in range(MAX_RATE_LIMIT_RETRIES + 1):
            response = send(self._client, source, self._base_url + path, **kwargs)
            if response.status_code != 429:
                return response
            wait = _retry_after_seconds(response, self._clock.now())
            if wait > MAX_RETRY_AFTER_S or attempt == MAX_RATE_LIMIT_RETRIES:
                break
            logger.warning("watttime: rate limited, retrying in %.0f s", wait)
            self._sleep(wait)
        raise ProviderError(source, f"rate limited (HTTP 429, Retry-After {wait:.0f} s)")

    def _decode(self, response: httpx.Response, source: str) -> Any:
        if response.status_code >= 400:
            try:
                payload = decode_json(response, source)
            except ProviderError:
                payload = None  # an error page or empty body: the status says enough
        else:
            payload = decode_json(response, source)
        if response.status_code >= 400:
            detail = ""
            if isinstance(payload, Mapping):
                detail = sanitise(payload.get("message") or payload.get("error") or "")
            raise ProviderError(source, f"HTTP {response.status_code} {detail}".strip())
        if response.status_code < 200 or response.status_code >= 300:
            raise ProviderError(source, f"HTTP {response.status_code}")
        return payload


def _retry_after_seconds(response: httpx.Response, now: datetime) -> float:
    """``Retry-After`` as seconds (a number or an HTTP date); a default when absent."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return DEFAULT_RETRY_AFTER_S
    try:
        seconds = float(raw)
    except ValueError:
        return _seconds_until(raw, now)
    if math.isnan(seconds):
        return DEFAULT_RETRY_AFTER_S
    return max(0.0, seconds)


def _seconds_until(http_date: str, now: datetime) -> float:
    try:
        return max(0.0, (parsedate_to_datetime(http_date) - now).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return DEFAULT_RETRY_AFTER_S
