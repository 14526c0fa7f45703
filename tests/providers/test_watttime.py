"""WattTime v3: login and token life, re-login, rate limits, regions, units, warnings."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from pydantic import SecretStr

from greenai.core.domain import Signal
from greenai.core.errors import ConfigError, ProviderError
from greenai.providers.watttime import WattTimeProvider, parse_lat_lon
from tests.fakes import FrozenClock
from tests.providers.conftest import WT_NOW, WT_PASSWORD, WT_TOKEN, load_json

LB_TO_G = 0.453592


def make(client: httpx.Client, clock: FrozenClock, sleeps: list[float]) -> WattTimeProvider:
    return WattTimeProvider(client, "alice", SecretStr(WT_PASSWORD), clock, sleep=sleeps.append)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def provider(client: httpx.Client, wt_clock: FrozenClock, sleeps: list[float]) -> WattTimeProvider:
    return make(client, wt_clock, sleeps)


def test_forecast_converts_units_and_carries_warnings(
    wt_api: respx.MockRouter, provider: WattTimeProvider
) -> None:
    route = wt_api.get("/v3/forecast").respond(json=load_json("watttime_forecast.json"))
    forecast = provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    assert forecast.signal is Signal.MARGINAL
    assert forecast.source == "watttime:CAISO_NORTH"
    assert forecast.step == timedelta(minutes=5)
    assert forecast.start == datetime(2022, 7, 15, tzinfo=UTC)
    assert forecast.values[0] == pytest.approx(1048.41 * LB_TO_G)
    assert len(forecast.values) == 13  # 00:00 .. 01:05 covers now + 1 h
    assert "EST_ONLY: This region is estimated." in forecast.warnings
    params = route.calls.last.request.url.params
    assert dict(params) == {
        "region": "CAISO_NORTH",
        "signal_type": "co2_moer",
        "horizon_hours": "1",
    }
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {WT_TOKEN}"


def test_login_uses_basic_auth(wt_api: respx.MockRouter, provider: WattTimeProvider) -> None:
    wt_api.get("/v3/forecast").respond(json=load_json("watttime_forecast.json"))
    provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    sent = wt_api["login"].calls.last.request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"alice:{WT_PASSWORD}".encode()).decode()


def test_token_is_reused_then_renewed_before_30_minutes(
    wt_api: respx.MockRouter, provider: WattTimeProvider, wt_clock: FrozenClock
) -> None:
    wt_api.get("/v3/forecast").respond(json=load_json("watttime_forecast.json"))
    provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    wt_clock.advance(20 * 60)
    provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    assert wt_api["login"].call_count == 1
    wt_clock.advance(9 * 60)  # 29 min after login: renew before the token dies
    provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    assert wt_api["login"].call_count == 2


def test_401_logs_in_again_and_retries_once(
    wt_api: respx.MockRouter, provider: WattTimeProvider
) -> None:
    route = wt_api.get("/v3/forecast")
    route.side_effect = [
        httpx.Response(401, json={"error": "expired"}),
        httpx.Response(200, json=load_json("watttime_forecast.json")),
    ]
    forecast = provider.forecast("CAISO_NORTH", WT_NOW, timedelta(minutes=5))
    assert forecast.values[0] == pytest.approx(1048.41 * LB_TO_G)
    assert wt_api["login"].call_count == 2
    assert route.call_count == 2


def test_second_403_is_an_error_not_a_loop(
    wt_api: respx.MockRouter, provider: WattTimeProvider
) -> None:
    route = wt_api.get("/v3/forecast").respond(403, json={"message": "not in your plan"})
    with pytest.raises(ProviderError, match="HTTP 403 not in your plan"):
        provider.forecast("PJM_DC", WT_NOW, timedelta(hours=1))
    assert (wt_api["login"].call_count, route.call_count) == (2, 2)


def test_login_refused(wt_api: respx.MockRouter, provider: WattTimeProvider) -> None:
    wt_api["login"].respond(401, json={"error": "bad credentials"})
    with pytest.raises(ProviderError, match="login refused"):
        provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))


def test_429_waits_retry_after_then_succeeds(
    wt_api: respx.MockRouter, provider: WattTimeProvider, sleeps: list[float]
) -> None:
    route = wt_api.get("/v3/forecast")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json=load_json("watttime_forecast.json")),
    ]
    provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    assert sleeps == [7.0]
    assert route.call_count == 2


def test_429_retries_are_bounded(
    wt_api: respx.MockRouter, provider: WattTimeProvider, sleeps: list[float]
) -> None:
    route = wt_api.get("/v3/forecast").respond(429, headers={"Retry-After": "2"})
    with pytest.raises(ProviderError, match="rate limited"):
        provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    assert sleeps == [2.0, 2.0]
    assert route.call_count == 3


def test_429_with_a_long_retry_after_fails_at_once(
    wt_api: respx.MockRouter, provider: WattTimeProvider, sleeps: list[float]
) -> None:
    wt_api.get("/v3/forecast").respond(429, headers={"Retry-After": "600"})
    with pytest.raises(ProviderError, match="Retry-After 600"):
        provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    assert sleeps == []


def test_region_from_location_is_cached_for_a_day(
    wt_api: respx.MockRouter, provider: WattTimeProvider, wt_clock: FrozenClock
) -> None:
    lookup = wt_api.get("/v3/region-from-loc").respond(
        json=load_json("watttime_region_from_loc.json")
    )
    forecasts = wt_api.get("/v3/forecast").respond(json=load_json("watttime_forecast.json"))
    first = provider.forecast("42.37,-72.52", WT_NOW, timedelta(hours=1))
    provider.forecast("42.37, -72.52", WT_NOW, timedelta(hours=1))
    assert lookup.call_count == 1
    assert first.source == "watttime:ISONE_WCMA"
    assert forecasts.calls.last.request.url.params["region"] == "ISONE_WCMA"
    assert lookup.calls.last.request.url.params["latitude"] == "42.37"
    wt_clock.advance(25 * 3600)
    provider.forecast("42.37,-72.52", WT_NOW, timedelta(hours=1))
    assert lookup.call_count == 2


def test_horizon_is_capped_at_72_hours(
    wt_api: respx.MockRouter, provider: WattTimeProvider
) -> None:
    route = wt_api.get("/v3/forecast").respond(json=load_json("watttime_forecast.json"))
    forecast = provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=100))
    assert route.calls.last.request.url.params["horizon_hours"] == "72"
    assert any("72 h" in w for w in forecast.warnings)


def test_current_is_the_first_point(wt_api: respx.MockRouter, provider: WattTimeProvider) -> None:
    route = wt_api.get("/v3/forecast").respond(json=load_json("watttime_forecast.json"))
    point = provider.current("CAISO_NORTH", datetime(2022, 7, 15, 0, 7, tzinfo=UTC))
    assert point.start == datetime(2022, 7, 15, 0, 5, tzinfo=UTC)
    assert point.value == pytest.approx(1049.2 * LB_TO_G)
    assert route.calls.last.request.url.params["horizon_hours"] == "0"


def test_percentile_is_never_taken_as_grams(
    wt_api: respx.MockRouter, provider: WattTimeProvider
) -> None:
    payload = load_json("watttime_forecast.json")
    payload["meta"]["units"] = "percentile"
    wt_api.get("/v3/forecast").respond(json=payload)
    with pytest.raises(ProviderError, match="percentile"):
        provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))


def test_missing_units_are_named(wt_api: respx.MockRouter, provider: WattTimeProvider) -> None:
    payload = load_json("watttime_forecast.json")
    del payload["meta"]["units"]
    wt_api.get("/v3/forecast").respond(json=payload)
    with pytest.raises(ProviderError, match="missing field 'units'"):
        provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))


def test_history_is_chunked_in_30_days(
    wt_api: respx.MockRouter, provider: WattTimeProvider
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        start = datetime.fromisoformat(request.url.params["start"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(request.url.params["end"].replace("Z", "+00:00"))
        points = []
        at = start
        while at < end:
            points.append({"point_time": at.isoformat(), "value": 1000.0})
            at += timedelta(hours=1)  # a coarse 1 h series keeps the test light
        meta = {"units": "lbs_co2_per_mwh", "data_point_period_seconds": 3600, "warnings": []}
        return httpx.Response(200, json={"data": points, "meta": meta})

    route = wt_api.get("/v3/historical")
    route.side_effect = answer
    start = datetime(2022, 6, 1, tzinfo=UTC)
    history = provider.history("CAISO_NORTH", start, start + timedelta(days=45))
    assert route.call_count == 2
    assert route.calls[0].request.url.params["end"] == "2022-07-01T00:00:00Z"
    assert len(history.values) == 45 * 24
    assert history.values == pytest.approx((1000 * LB_TO_G,) * (45 * 24))
    assert history.signal is Signal.MARGINAL


@pytest.mark.parametrize("region", ["CAISO NORTH", "", "91,0"])
def test_bad_regions(provider: WattTimeProvider, region: str) -> None:
    with pytest.raises(ConfigError):
        provider.check_region(region)


def test_lat_lon_parsing() -> None:
    assert parse_lat_lon("51.5,-0.12") == (51.5, -0.12)
    assert parse_lat_lon("CAISO_NORTH") is None


def test_secrets_never_leak(
    wt_api: respx.MockRouter,
    provider: WattTimeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    route = wt_api.get("/v3/forecast")
    route.side_effect = [
        httpx.Response(401),
        httpx.Response(500, json={"message": "internal"}),
    ]
    with pytest.raises(ProviderError) as caught:
        provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    wt_api["login"].respond(401)
    provider._token = None  # force a login that fails
    with pytest.raises(ProviderError) as refused:
        provider.forecast("CAISO_NORTH", WT_NOW, timedelta(hours=1))
    texts = [str(caught.value), str(refused.value), repr(provider), caplog.text]
    texts += [repr(record.args) for record in caplog.records]
    for text in texts:
        assert WT_PASSWORD not in text
        assert WT_TOKEN not in text
    assert "watttime" in caplog.text  # the records were captured at all
