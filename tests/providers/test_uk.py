"""UK Carbon Intensity API: every recorded shape and failure, replayed with respx."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from greenai.core.domain import Signal
from greenai.core.errors import ConfigError, ProviderError
from greenai.providers.uk import UkProvider, parse_uk_points, parse_uk_region
from tests.providers.conftest import DATA, UK_NOW, load_json, uk_periods

FW48H = "/intensity/2023-05-04T12:30Z/fw48h"
POSTCODE_FW48H = "/regional/intensity/2023-05-04T12:30Z/fw48h/postcode/BS16"
REGION_FW48H = "/regional/intensity/2023-05-04T12:30Z/fw48h/regionid/13"


def sample_values() -> list[float]:
    with (DATA / "uk-postcode-forecast-48h-sample.csv").open() as handle:
        return [float(row["intensity"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize(
    ("region", "kind", "label"),
    [
        ("", "national", "national"),
        ("national", "national", "national"),
        ("13", "regionid", "13"),
        ("1", "regionid", "1"),
        ("17", "regionid", "17"),
        ("bs16", "postcode", "BS16"),
        ("SW1A", "postcode", "SW1A"),
    ],
)
def test_region_strings_are_classified(region: str, kind: str, label: str) -> None:
    parsed = parse_uk_region(region)
    assert (parsed.kind, parsed.label) == (kind, label)


@pytest.mark.parametrize("region", ["0", "18", "99", "BS16 1QY", "london!", "12345A"])
def test_bad_regions_are_config_errors(region: str) -> None:
    with pytest.raises(ConfigError, match="1-17"):
        parse_uk_region(region)


def test_postcode_forecast_with_data_as_object(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    uk_api.get(POSTCODE_FW48H).respond(json=load_json("uk_postcode_fw48h.json"))
    forecast = UkProvider(client).forecast("BS16", UK_NOW, timedelta(hours=24))
    assert forecast.source == "uk:BS16"
    assert forecast.region == "BS16"
    assert forecast.signal is Signal.AVERAGE
    assert forecast.start == datetime(2023, 5, 4, 12, 30, tzinfo=UTC)
    assert forecast.step == timedelta(minutes=30)
    assert forecast.covers(UK_NOW)
    assert forecast.end >= UK_NOW + timedelta(hours=24)
    assert list(forecast.values) == sample_values()[:49]
    assert forecast.warnings == ()
    assert not forecast.static


def test_regionid_forecast_with_data_as_array(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    uk_api.get(REGION_FW48H).respond(json=load_json("uk_regionid_fw48h_array.json"))
    forecast = UkProvider(client).forecast("13", UK_NOW, timedelta(hours=48))
    assert forecast.source == "uk:13"
    assert list(forecast.values) == sample_values()  # 96 periods: the whole 48 h


def test_national_forecast_uses_forecast_values(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    uk_api.get(FW48H).respond(json=load_json("uk_national_fw48h.json"))
    forecast = UkProvider(client).forecast("national", UK_NOW, timedelta(hours=2))
    assert forecast.source == "uk:national"
    assert list(forecast.values) == sample_values()[:5]


def test_forecast_beyond_48h_says_so(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    uk_api.get(FW48H).respond(json=load_json("uk_national_fw48h.json"))
    forecast = UkProvider(client).forecast("", UK_NOW, timedelta(hours=72))
    assert len(forecast.values) == 96
    assert any("48 h" in w for w in forecast.warnings)


def test_current_national_prefers_actual(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    uk_api.get("/intensity").respond(json=load_json("uk_national_current.json"))
    point = UkProvider(client).current("", UK_NOW)
    assert point.value == 13.0  # actual, not the forecast 11
    assert point.start == datetime(2023, 5, 4, 12, 30, tzinfo=UTC)


def test_current_regional_array_uses_forecast(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    uk_api.get("/regional/regionid/13").respond(json=load_json("uk_regionid_current.json"))
    assert UkProvider(client).current("13", UK_NOW).value == 11.0


def test_current_refuses_a_period_that_does_not_hold_now(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    uk_api.get("/intensity").respond(json=load_json("uk_national_current.json"))
    with pytest.raises(ProviderError, match="no current period"):
        UkProvider(client).current("", UK_NOW + timedelta(hours=3))


@pytest.mark.parametrize("status", [400, 500])
def test_error_body_becomes_provider_error_with_its_message(
    uk_api: respx.MockRouter, client: httpx.Client, status: int
) -> None:
    body = {"error": {"code": f"{status} Error", "message": "Please enter a valid postcode"}}
    uk_api.get(POSTCODE_FW48H).respond(status, json=body)
    with pytest.raises(ProviderError, match="Please enter a valid postcode") as caught:
        UkProvider(client).forecast("BS16", UK_NOW, timedelta(hours=1))
    assert caught.value.source == "uk:BS16"


def test_recorded_400_payload(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    uk_api.get("/regional/postcode/RG10").respond(400, json=load_json("uk_error_400.json"))
    with pytest.raises(ProviderError, match=r"valid postcode outcode.*400 Bad Request"):
        UkProvider(client).current("RG10", UK_NOW)


def test_error_status_without_error_body(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    uk_api.get(FW48H).respond(502, json={"message": "bad gateway"})
    with pytest.raises(ProviderError, match="HTTP 502"):
        UkProvider(client).forecast("", UK_NOW, timedelta(hours=1))


def test_empty_body(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    uk_api.get(POSTCODE_FW48H).respond(200, content=b"")
    with pytest.raises(ProviderError, match="empty response"):
        UkProvider(client).forecast("BS16", UK_NOW, timedelta(hours=1))


def test_malformed_json(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    uk_api.get(FW48H).respond(200, content=b'{"data": [{"from": ')
    with pytest.raises(ProviderError, match="malformed JSON"):
        UkProvider(client).forecast("", UK_NOW, timedelta(hours=1))


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"nodata": []}, "'data'"),
        ({"data": [{"to": "2023-05-04T13:00Z", "intensity": {"forecast": 1}}]}, "'from'"),
        ({"data": [{"from": "2023-05-04T12:30Z"}]}, "'intensity'"),
        ({"data": [{"from": "2023-05-04T12:30Z", "intensity": {"index": "low"}}]}, "'forecast'"),
        ({"data": {"regionid": 13, "shortname": "London"}}, "'data'"),
    ],
)
def test_missing_fields_are_named(payload: Any, field: str) -> None:
    with pytest.raises(ProviderError, match=f"missing field {field}"):
        parse_uk_points(payload, "uk:13")


def test_period_off_the_half_hour_grid_is_refused() -> None:
    payload = {"data": [{"from": "2023-05-04T12:40Z", "intensity": {"forecast": 10}}]}
    with pytest.raises(ProviderError, match="half-hour grid"):
        parse_uk_points(payload, "uk:13")


def test_negative_intensity_is_refused(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    payload = load_json("uk_national_fw48h.json")
    payload["data"][3]["intensity"]["forecast"] = -5
    uk_api.get(FW48H).respond(json=payload)
    with pytest.raises(ProviderError, match="impossible intensity -5"):
        UkProvider(client).forecast("", UK_NOW, timedelta(hours=4))


def test_non_numeric_intensity_is_refused() -> None:
    payload = {"data": [{"from": "2023-05-04T12:30Z", "intensity": {"forecast": "high"}}]}
    with pytest.raises(ProviderError, match="not a number"):
        parse_uk_points(payload, "uk:13")


def test_gap_keeps_the_run_holding_now_and_warns(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    payload = load_json("uk_postcode_fw48h.json")
    periods = payload["data"]["data"]
    del periods[10:14]  # an outage: four half-hours missing from 17:30Z
    uk_api.get(POSTCODE_FW48H).respond(json=payload)
    forecast = UkProvider(client).forecast("BS16", UK_NOW, timedelta(hours=48))
    assert list(forecast.values) == sample_values()[:10]  # never filled across the gap
    assert any("gap: 4 missing periods 2023-05-04T17:30:00Z" in w for w in forecast.warnings)


def test_gap_before_now_keeps_the_later_run(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    payload = load_json("uk_postcode_fw48h.json")
    del payload["data"]["data"][2:4]
    uk_api.get("/regional/intensity/2023-05-04T14:30Z/fw48h/postcode/BS16").respond(json=payload)
    now = datetime(2023, 5, 4, 14, 45, tzinfo=UTC)
    forecast = UkProvider(client).forecast("BS16", now, timedelta(hours=1))
    assert forecast.start == datetime(2023, 5, 4, 14, 30, tzinfo=UTC)
    assert list(forecast.values) == sample_values()[4:7]
    assert forecast.warnings  # the gap is reported even though it lies in the past


def test_forecast_that_misses_now_is_an_error(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    payload = load_json("uk_postcode_fw48h.json")
    uk_api.get("/regional/intensity/2023-05-04T10:00Z/fw48h/postcode/BS16").respond(json=payload)
    with pytest.raises(ProviderError, match="misses now"):
        UkProvider(client).forecast("BS16", datetime(2023, 5, 4, 10, 5, tzinfo=UTC), timedelta(1))


def test_history_is_chunked_in_14_days_and_prefers_actual(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    def answer(request: httpx.Request, start: str, end: str) -> httpx.Response:
        begin = datetime.strptime(start, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
        finish = datetime.strptime(end, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
        return httpx.Response(200, json={"data": uk_periods(begin, finish, actual_offset=1.0)})

    route = uk_api.get(path__regex=r"^/intensity/(?P<start>[^/]+)/(?P<end>[^/]+)$")
    route.side_effect = answer
    start = datetime(2023, 1, 1, tzinfo=UTC)
    history = UkProvider(client).history("national", start, start + timedelta(days=30))
    assert route.call_count == 3  # 14 + 14 + 2 days
    paths = [call.request.url.path for call in route.calls]
    assert paths[0] == "/intensity/2023-01-01T00:00Z/2023-01-15T00:00Z"
    assert paths[2] == "/intensity/2023-01-29T00:00Z/2023-01-31T00:00Z"
    assert len(history.values) == 30 * 48
    assert history.start == start
    assert history.values[1] == 31.0  # 00:30 -> forecast 30, actual 31
    assert history.warnings == ()


def test_regional_history_is_forecast_only_and_says_so(
    uk_api: respx.MockRouter, client: httpx.Client
) -> None:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    body = {"data": {"regionid": 13, "data": uk_periods(start, start + timedelta(hours=2))}}
    uk_api.get("/regional/intensity/2023-01-01T00:00Z/2023-01-01T02:00Z/regionid/13").respond(
        json=body
    )
    history = UkProvider(client).history("13", start, start + timedelta(hours=2))
    assert history.values == (0.0, 30.0, 60.0, 90.0)
    assert any("forecast only" in w for w in history.warnings)
