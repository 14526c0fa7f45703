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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

import httpx

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import ProviderError
from greenai.core.time import format_time

logger = logging.getLogger(__name__)


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
    ordered = sorted(dict(points).items())
    if not ordered:
        raise ProviderError(source, "no data points in response")
    bad = [(at, v) for at, v in ordered if not math.isfinite(v) or v < 0]
    if bad:
        raise ProviderError(source, f"impossible intensity {bad[0][1]} at {format_time(bad[0][0])}")
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
    """GET ``url``; transport failures become ``ProviderError`` (the client already retried)."""
    try:
        return client.get(url, **kwargs)
    except httpx.TimeoutException as exc:
        raise ProviderError(source, f"timed out: {type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise ProviderError(source, f"request failed: {type(exc).__name__}") from exc


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
    except UnicodeDecodeError as exc:
        raise ProviderError(source, f"malformed JSON (HTTP {response.status_code})") from exc


def require(mapping: Any, key: str, source: str, where: str = "response") -> Any:
    """``mapping[key]``, or a ``ProviderError`` naming the missing field and where it was."""
    if not isinstance(mapping, Mapping) or key not in mapping or mapping[key] is None:
        raise ProviderError(source, f"missing field {key!r} in {where}")
    return mapping[key]


def number(value: Any, key: str, source: str) -> float:
    """A JSON number as float; a string or bool where a number belongs is a ``ProviderError``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProviderError(source, f"field {key!r} is not a number: {value!r}")
    return float(value)


def steps_between(start: datetime, end: datetime, step: timedelta) -> int:
    """How many steps from ``start`` reach ``end`` (at least one: "now" is always covered)."""
    return max(1, -(-(end - start) // step))
