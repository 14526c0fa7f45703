"""The fallback chain and its cache: who answered is always said, nothing is made up."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import respx

from greenai.core.domain import Forecast, IntensityPoint, Signal
from greenai.core.errors import NoSignalError, ProviderError
from greenai.core.settings import Settings, load_settings
from greenai.providers import FallbackChain, build_chain
from greenai.providers.egrid import EgridProvider
from greenai.providers.fallback import ChainEntry
from greenai.providers.http import build_http_client
from greenai.providers.uk import UkProvider
from tests.fakes import FrozenClock
from tests.providers.conftest import (
    UK_NOW,
    WT_NOW,
    WT_PASSWORD,
    WT_TOKEN,
    load_json,
    loopback_server,
)

FW48H = "/regional/intensity/2023-05-04T12:30Z/fw48h/regionid/13"
HOUR = timedelta(hours=1)


@pytest.fixture
def chain(settings: Settings, client: httpx.Client) -> FallbackChain:
    return build_chain("uk:13,egrid:RFCE", settings, client=client, clock=FrozenClock(UK_NOW))


def test_live_primary_answers_without_fallback(
    uk_api: respx.MockRouter, chain: FallbackChain
) -> None:
    uk_api.get(FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    forecast = chain.forecast(UK_NOW, HOUR)
    assert (forecast.source, forecast.fallback) == ("uk:13", None)
    assert chain.is_live(forecast)
    assert chain.primary_signal is Signal.AVERAGE


def test_dead_primary_falls_back_to_egrid(uk_api: respx.MockRouter, chain: FallbackChain) -> None:
    uk_api.get(FW48H).respond(500, json={"error": {"code": "500", "message": "down"}})
    forecast = chain.forecast(UK_NOW, HOUR)
    assert forecast.source == "egrid:RFCE"
    assert forecast.fallback == "egrid:RFCE"
    assert forecast.static
    assert not chain.is_live(forecast)
    assert any("stood in for uk:13" in w and "down" in w for w in forecast.warnings)


def test_cache_serves_after_an_outage(uk_api: respx.MockRouter, chain: FallbackChain) -> None:
    route = uk_api.get(FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    live = chain.forecast(UK_NOW, timedelta(hours=48))
    route.respond(500, json={"error": {"code": "500", "message": "down"}})
    uk_api.get("/regional/intensity/2023-05-04T14:00Z/fw48h/regionid/13").respond(503)
    later = UK_NOW + timedelta(hours=1, minutes=30)  # 14:10Z
    cached = chain.forecast(later, HOUR)
    assert cached.fallback == "cache"
    assert cached.source == "cache:uk:13"
    assert cached.covers(later)
    assert cached.values[0] == live.value_at(later)
    assert any("served from cache" in w for w in cached.warnings)
    uk_api.get("/regional/regionid/13").respond(500)
    current = chain.current(later)
    assert (current.source, current.fallback, current.value) == ("cache:uk:13", "cache", 18.0)


def test_stale_cache_is_not_served(
    uk_api: respx.MockRouter, settings: Settings, client: httpx.Client
) -> None:
    chain = build_chain("uk:13,egrid:RFCE", settings, client=client)
    uk_api.get(FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    chain.forecast(UK_NOW, HOUR)
    assert chain.cache is not None
    chain.cache.max_age = timedelta(minutes=30)
    later = UK_NOW + timedelta(hours=1)
    uk_api.get("/regional/intensity/2023-05-04T13:30Z/fw48h/regionid/13").respond(500)
    assert chain.forecast(later, HOUR).source == "egrid:RFCE"


def test_cache_that_no_longer_covers_now_is_not_served(
    uk_api: respx.MockRouter, chain: FallbackChain
) -> None:
    uk_api.get(FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    chain.forecast(UK_NOW, HOUR)
    later = UK_NOW + timedelta(hours=47, minutes=50)  # 12:30Z two days on: past the 48 h
    uk_api.get("/regional/intensity/2023-05-06T12:30Z/fw48h/regionid/13").respond(500)
    assert chain.forecast(later, HOUR).fallback == "egrid:RFCE"


def test_corrupt_cache_is_ignored_with_a_warning(
    uk_api: respx.MockRouter, chain: FallbackChain, caplog: pytest.LogCaptureFixture
) -> None:
    assert chain.cache is not None
    path = chain.cache.path_for("uk:13")
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "forecast": {"start": ')
    uk_api.get(FW48H).respond(500)
    with caplog.at_level(logging.WARNING, logger="greenai.providers.cache"):
        forecast = chain.forecast(UK_NOW, HOUR)
    assert forecast.source == "egrid:RFCE"
    assert "ignoring unreadable" in caplog.text


def test_cache_writes_are_atomic_and_readable(
    uk_api: respx.MockRouter, chain: FallbackChain
) -> None:
    uk_api.get(FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    chain.forecast(UK_NOW, HOUR)
    assert chain.cache is not None
    files = sorted(p.name for p in chain.cache.directory.iterdir())
    assert len(files) == 1 and not files[0].startswith(".tmp")
    body = json.loads((chain.cache.directory / files[0]).read_text())
    assert body["key"] == "uk:13"
    assert body["forecast"]["source"] == "uk:13"


def test_static_answers_are_not_cached(settings: Settings) -> None:
    chain = build_chain("egrid:CAMX", settings)
    chain.forecast(UK_NOW, HOUR)
    assert not Path(settings.cache_dir).exists()


def test_nothing_answers_lists_every_failure(
    uk_api: respx.MockRouter, settings: Settings, client: httpx.Client, tmp_path: Path
) -> None:
    chain = build_chain(f"uk:13,trace:{_tiny_trace(tmp_path)}", settings, client=client)
    uk_api.get(FW48H).respond(200, content=b"")
    with pytest.raises(NoSignalError) as caught:
        chain.forecast(UK_NOW, HOUR)
    message = str(caught.value)
    assert "uk:13: empty response" in message
    assert "outside the trace" in message


def test_current_and_history_fall_back(uk_api: respx.MockRouter, chain: FallbackChain) -> None:
    uk_api.get("/regional/regionid/13").respond(500)
    current = chain.current(UK_NOW)
    assert (current.source, current.fallback, current.static) == ("egrid:RFCE", "egrid:RFCE", True)
    uk_api.get(path__startswith="/regional/intensity/").mock(side_effect=httpx.ConnectError("x"))
    history = chain.history(UK_NOW - timedelta(days=1), UK_NOW)
    assert history.fallback == "egrid:RFCE"
    assert len(history.values) == 25


def test_live_current_is_not_a_fallback(uk_api: respx.MockRouter, chain: FallbackChain) -> None:
    uk_api.get("/regional/regionid/13").respond(json=load_json("uk_regionid_current.json"))
    current = chain.current(UK_NOW)
    assert (current.value, current.source, current.fallback) == (11.0, "uk:13", None)
    assert chain.is_live(current)


class _RawHttpFailure:
    """A provider that lets an httpx error escape untranslated."""

    name = "raw"
    signal = Signal.AVERAGE

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        raise httpx.ConnectError("refused")

    def current(self, region: str, now: datetime) -> IntensityPoint:
        raise ProviderError("raw:x", "nope")

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        raise httpx.ReadTimeout("slow")


def test_untranslated_httpx_errors_still_fall_back() -> None:
    chain = FallbackChain([ChainEntry(_RawHttpFailure(), "x"), ChainEntry(EgridProvider(), "US")])
    assert chain.forecast(UK_NOW, HOUR).fallback == "egrid:US"
    assert chain.history(UK_NOW - HOUR, UK_NOW).fallback == "egrid:US"


def test_a_stand_in_with_another_signal_is_flagged(
    settings: Settings, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chain = build_chain("watttime:CAISO_NORTH,egrid:CAMX", settings, client=client)
    assert chain.primary_signal is Signal.MARGINAL
    with respx.mock(base_url="https://api.watttime.org") as api:
        api.get("/login").respond(json={"token": WT_TOKEN})
        api.get("/v3/forecast").respond(503, json={"message": "unavailable"})
        forecast = chain.forecast(WT_NOW, HOUR)
    assert forecast.signal is Signal.AVERAGE
    assert any("do not compare" in w for w in forecast.warnings)
    everything = " ".join([caplog.text, repr(chain.entries), *forecast.warnings])
    assert WT_PASSWORD not in everything and WT_TOKEN not in everything


def _tiny_trace(tmp_path: Path) -> str:
    path = tmp_path / "tiny.csv"
    path.write_text("timestamp,intensity\n2020-01-01T00:00:00Z,1\n2020-01-01T01:00:00Z,2\n")
    return str(path)


def test_unwritable_cache_does_not_break_the_answer(
    uk_api: respx.MockRouter, settings: Settings, client: httpx.Client
) -> None:
    settings.home.mkdir(parents=True)
    settings.cache_dir.write_text("a file where the cache folder should be")
    chain = build_chain("uk:13,egrid:RFCE", settings, client=client)
    uk_api.get(FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    assert chain.forecast(UK_NOW, HOUR).source == "uk:13"


class _Broken:
    """A provider with a bug: it raises what ``error`` makes, on every question."""

    signal = Signal.AVERAGE

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self._error = error

    def forecast(self, region: str, now: datetime, horizon: timedelta) -> Forecast:
        raise self._error

    def current(self, region: str, now: datetime) -> IntensityPoint:
        raise self._error

    def history(self, region: str, start: datetime, end: datetime) -> Forecast:
        raise self._error


@pytest.mark.parametrize(
    "error",
    [ZeroDivisionError("integer division or modulo by zero"), TypeError("'int' is not iterable")],
    ids=["ZeroDivisionError", "TypeError"],
)
def test_any_exception_of_a_provider_falls_back(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    chain = FallbackChain(
        [ChainEntry(_Broken("buggy", error), "x"), ChainEntry(EgridProvider(), "RFCE")]
    )
    with caplog.at_level(logging.WARNING, logger="greenai.providers.fallback"):
        answers = [
            chain.forecast(UK_NOW, HOUR),
            chain.current(UK_NOW),
            chain.history(UK_NOW - HOUR, UK_NOW),
        ]
    for answer in answers:
        assert (answer.source, answer.fallback) == ("egrid:RFCE", "egrid:RFCE")
        assert any(type(error).__name__ in w for w in answer.warnings)
    failures = [r.getMessage() for r in caplog.records if "provider failed" in r.getMessage()]
    assert len(failures) == 3  # once per question, with the type and the message
    assert all(f"buggy:x: {type(error).__name__}: {error}" in line for line in failures)


def test_a_provider_bug_is_served_from_the_cache_like_an_outage(
    uk_api: respx.MockRouter, settings: Settings, client: httpx.Client
) -> None:
    chain = build_chain("uk:13,egrid:RFCE", settings, client=client)
    uk_api.get(FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    chain.forecast(UK_NOW, HOUR)
    broken = _Broken("uk", ZeroDivisionError("division by zero"))
    chain = FallbackChain(
        [ChainEntry(broken, "13"), ChainEntry(EgridProvider(), "RFCE")], chain.cache
    )
    cached = chain.forecast(UK_NOW + HOUR, HOUR)
    assert (cached.source, cached.fallback) == ("cache:uk:13", "cache")


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)])
def test_interrupts_are_never_swallowed(error: BaseException) -> None:
    broken = _Broken("buggy", error)  # type: ignore[arg-type]
    chain = FallbackChain([ChainEntry(broken, "x"), ChainEntry(EgridProvider(), "RFCE")])
    with pytest.raises(type(error)):
        chain.forecast(UK_NOW, HOUR)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers: a hung provider."""
    with loopback_server(lambda conn, stop: None) as url:
        yield url


def test_a_hung_provider_gives_way_within_its_timeout(
    silent_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    timeout, retries = 0.2, 1
    settings = load_settings(
        env={}, config_file=None, home=tmp_path, request_timeout=timeout, request_retries=retries
    )
    with build_http_client(settings, sleep=lambda seconds: None) as client:
        hung = UkProvider(client, base_url=silent_server)
        chain = FallbackChain([ChainEntry(hung, "13"), ChainEntry(EgridProvider(), "RFCE")])
        began = time.monotonic()
        answer = chain.forecast(UK_NOW, HOUR)
        took = time.monotonic() - began
    assert (answer.source, answer.fallback) == ("egrid:RFCE", "egrid:RFCE")
    assert any("timed out: ReadTimeout" in w for w in answer.warnings)
    assert timeout * (retries + 1) * 0.9 <= took < timeout * (retries + 1) + 1.0


def test_a_read_timeout_falls_back_at_once(settings: Settings) -> None:
    with build_http_client(settings, sleep=lambda seconds: None) as client:
        chain = build_chain("uk:13,egrid:RFCE", settings, client=client)
        with respx.mock(assert_all_mocked=True) as router:
            route = router.route(host="api.carbonintensity.org.uk")
            route.mock(side_effect=httpx.ReadTimeout("slow"))
            answer = chain.current(UK_NOW)
    assert (answer.source, answer.fallback) == ("egrid:RFCE", "egrid:RFCE")
    assert route.call_count == settings.request_retries + 1
