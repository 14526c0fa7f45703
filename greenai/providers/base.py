"""The provider protocol and the few helpers every API module shares.

Each API module keeps a pure ``parse_*`` function (JSON -> domain objects) apart from a thin
class that does the HTTP, so parsing is tested on payloads and HTTP on replayed responses.
Foreign exceptions (httpx, json) are translated into ``ProviderError`` here, once.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import httpx

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import ProviderError
from greenai.core.time import format_time, parse_time

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024  # a 30-day 5-minute history is well under 1 MiB
BODY_DEADLINE = 3.0  # reading one body may take this many read timeouts, no more
MIN_PERIOD = timedelta(seconds=60)
MAX_PERIOD = timedelta(days=1)
MAX_INTENSITY = 10_000.0  # g/kWh (or lb/MWh): far above any grid, below any garbage
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")


@runtime_checkable
class Provider(Protocol):
    """An intensity source. ``name`` is the registry name (``uk``, ``watttime``, ...)."""

    name: str
    signal: Signal

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        """A forecast that starts at the step holding ``now`` and reaches ``now + horizon``
        where the source can (shorter answers say so in ``warnings``)."""
        ...

    def current(self, region: str, now: datetime) -> IntensityPoint:
        """The value of the step holding ``now``, measured where the source measures."""
        ...

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        """Best-known values over ``[start, end)``: actual where known, else forecast."""
        ...


class IntensitySource(Protocol):
    """A configured source as the front-ends use it: the fallback chain (``FallbackChain``),
    or a test's fake. Each answer says who really answered."""

    def forecast(self, now: datetime, horizon: timedelta) -> Forecast:
        """The forecast visible at ``now``, reaching ``now + horizon`` where it can."""
        ...

    def history(self, start: datetime, end: datetime) -> Forecast:
        """Best-known values over ``[start, end)``: actual where known, else forecast."""
        ...


@dataclass(frozen=True, slots=True)
class CurrentIntensity:
    """What a fallback chain answers for "now": the value plus who really answered it."""

    at: datetime
    start: datetime
    value: float
    signal: Signal
    source: str
    region: str
    static: bool = False
    fallback: str | None = None
    warnings: tuple[str, ...] = ()


def contiguous_run(
    points: Iterable[tuple[datetime, float]], step: timedelta, anchor: datetime, source: str
) -> tuple[datetime, tuple[float, ...], tuple[str, ...]]:
    """Turn ``(start, value)`` points into one regular run: the run holding ``anchor`` (else
    the first run after it, else the first). Gaps are reported, never filled: a filled gap
    would look like data the source never gave."""
    if not MIN_PERIOD <= step <= MAX_PERIOD:
        raise ProviderError(source, f"period {step} is outside {MIN_PERIOD}..{MAX_PERIOD}")
    ordered = sorted(dict(points).items())
    if not ordered:
        raise ProviderError(source, "no data points in response")
    bad = [(at, v) for at, v in ordered if not 0 <= v <= MAX_INTENSITY]  # NaN fails too
    if bad:
        raise ProviderError(source, f"impossible intensity {bad[0][1]} at {format_time(bad[0][0])}")
    if not (ordered[0][0] >= EARLIEST and ordered[-1][0] < LATEST):
        raise ProviderError(source, "period times outside 1990..2200")
    runs: list[list[tuple[datetime, float]]] = [[ordered[0]]]
    for at, value in ordered[1:]:
        if (at - runs[-1][-1][0]) % step:
            raise ProviderError(source, f"period {format_time(at)} is off the {step} grid")
        if at - runs[-1][-1][0] == step:
            runs[-1].append((at, value))
        else:
            runs.append([(at, value)])
    chosen = _pick_run(runs, step, anchor)
    warnings = tuple(_gap_warning(a, b, step) for a, b in itertools.pairwise(runs))
    if len(runs) > 1:
        kept = f"kept {format_time(chosen[0][0])}..{format_time(chosen[-1][0] + step)}"
        warnings = (*warnings, kept)
        logger.warning("%s: gaps in response: %s", source, "; ".join(warnings))
    return chosen[0][0], tuple(v for _, v in chosen), warnings


def _pick_run(
    runs: list[list[tuple[datetime, float]]], step: timedelta, anchor: datetime
) -> list[tuple[datetime, float]]:
    for run in runs:
        if run[0][0] <= anchor < run[-1][0] + step:
            return run
    later = [run for run in runs if run[0][0] > anchor]
    return later[0] if later else runs[0]


def _gap_warning(
    before: list[tuple[datetime, float]], after: list[tuple[datetime, float]], step: timedelta
) -> str:
    gap_start = before[-1][0] + step
    missing = (after[0][0] - gap_start) // step
    return f"gap: {missing} missing periods {format_time(gap_start)}..{format_time(after[0][0])}"


def send(client: httpx.Client, source: str, url: str, **kwargs: Any) -> httpx.Response:
    """GET ``url`` and read its body; transport failures become ``ProviderError`` (the client
    already retried). httpx's timeout bounds each read, not the whole body, so a server that
    trickles bytes is also cut off once reading the body takes longer than ``BODY_DEADLINE``
    times the client's read timeout, or the body outgrows ``MAX_BODY_BYTES``.
    ``httpx.InvalidURL`` and ``httpx.StreamError`` are not ``HTTPError``: caught too."""
    try:
        request = client.build_request("GET", url, **_request_args(kwargs))
        response = client.send(
            request, auth=kwargs.get("auth", httpx.USE_CLIENT_DEFAULT), stream=True
        )
        try:
            body = _read_body(response, source, _deadline_s(client))
        finally:
            response.close()
    except httpx.TimeoutException as exc:
        raise ProviderError(source, f"timed out: {type(exc).__name__}") from exc
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        raise ProviderError(source, f"request failed: {type(exc).__name__}") from exc
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _FRAMING]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )


_FRAMING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _request_args(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(kwargs) - {"params", "headers", "auth"}
    if unknown:
        raise TypeError(f"send() got unexpected arguments {sorted(unknown)}")
    return {k: v for k, v in kwargs.items() if k in ("params", "headers")}


def _deadline_s(client: httpx.Client) -> float:
    read = client.timeout.read
    return BODY_DEADLINE * (read if read is not None else 30.0)


def _read_body(response: httpx.Response, source: str, deadline_s: float) -> bytes:
    began = time.monotonic()
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProviderError(source, f"response larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if time.monotonic() - began > deadline_s:
            raise ProviderError(source, f"timed out: body still arriving after {deadline_s:g} s")
    return b"".join(chunks)


def decode_json(response: httpx.Response, source: str) -> Any:
    """The body as JSON; an empty or malformed body is a ``ProviderError`` saying which."""
    if not response.content.strip():
        raise ProviderError(source, f"empty response (HTTP {response.status_code})")
    try:
        return json.loads(response.content)
    except json.JSONDecodeError as exc:
        raise ProviderError(
            source, f"malformed JSON (HTTP {response.status_code}): {exc.msg}"
        ) from exc
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # bad bytes, huge ints
        why = type(exc).__name__
        raise ProviderError(source, f"malformed JSON (HTTP {response.status_code}): {why}") from exc


def require(mapping: Any, key: str, source: str, where: str = "response") -> Any:
    """``mapping[key]``, or a ``ProviderError`` naming the missing field and where it was."""
    if not isinstance(mapping, Mapping) or key not in mapping or mapping[key] is None:
        raise ProviderError(source, f"missing field {key!r} in {where}")
    return mapping[key]


def number(value: Any, key: str, source: str) -> float:
    """A finite JSON number as float; a string, bool, NaN or infinity where a number belongs
    is a ``ProviderError`` (saying what it got, never the value itself)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(source, f"field {key!r} is not a number (got {describe(value)})")
    try:
        result = float(value)
    except OverflowError as exc:  # an int too large for a float
        raise ProviderError(source, f"field {key!r} is out of range") from exc
    if not math.isfinite(result):
        raise ProviderError(source, f"field {key!r} is not finite ({result})")
    return result


def intensity(value: Any, key: str, source: str) -> float:
    """An intensity: a finite number in ``0..MAX_INTENSITY``."""
    result = number(value, key, source)
    if not 0 <= result <= MAX_INTENSITY:
        raise ProviderError(source, f"impossible intensity {result:g} in field {key!r}")
    return result


def period(value: Any, key: str, source: str) -> timedelta:
    """A period in seconds: a number in ``MIN_PERIOD..MAX_PERIOD`` (1 min to 1 day)."""
    seconds = number(value, key, source)
    if not MIN_PERIOD.total_seconds() <= seconds <= MAX_PERIOD.total_seconds():
        raise ProviderError(
            source, f"field {key!r} is {seconds:g} s: outside {MIN_PERIOD}..{MAX_PERIOD}"
        )
    return timedelta(seconds=seconds)


def time_field(value: Any, key: str, source: str) -> datetime:
    """An ISO-8601 time string between 1990 and 2200, as aware UTC."""
    if not isinstance(value, str):
        raise ProviderError(source, f"field {key!r} is not a time (got {describe(value)})")
    try:
        at = parse_time(value)
    except (ValueError, OverflowError) as exc:
        raise ProviderError(source, f"field {key!r} is not a time ({describe(value)})") from exc
    if not EARLIEST <= at < LATEST:
        raise ProviderError(source, f"field {key!r} is outside 1990..2200")
    return at


def mapping(value: Any, source: str, what: str) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else a ``ProviderError`` naming ``what``."""
    if not isinstance(value, Mapping):
        raise ProviderError(source, f"{what} is not an object (got {describe(value)})")
    return value


def describe(value: Any) -> str:
    """A short description of a JSON value that never repeats its content."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, Mapping):
        return f"an object of {len(value)} fields"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    return type(value).__name__


def sanitise(text: Any, limit: int = 120) -> str:
    """A provider's own free text (an error or warning message) made safe for one log line:
    printable ASCII only, whitespace collapsed, at most ``limit`` characters."""
    clean = " ".join(_UNPRINTABLE.sub(" ", str(text)).split())
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


def steps_between(start: datetime, end: datetime, step: timedelta) -> int:
    """How many steps from ``start`` reach ``end`` (at least one: "now" is always covered)."""
    return max(1, -(-(end - start) // step))
