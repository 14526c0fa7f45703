"""Electricity Maps v3, replayed from the documented response shapes (tests/data/README.md):
the figure and the other factor, zones and locations, errors that name the zone, the token."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from greenai.core.domain import Signal
from greenai.core.errors import ConfigError, ProviderError
from greenai.core.settings import load_settings
from greenai.formats.traces import load_trace
from greenai.providers import build_chain
from greenai.providers.electricitymaps import ElectricityMapsProvider
from tests.providers.conftest import DATA, load_json

EM_URL = "https://api.electricitymap.org/v3"
EM_TOKEN = "em-SECRET-token-42"
NOW = datetime(2023, 5, 4, 12, 20, tzinfo=UTC)  # inside the fixtures' first forecast hour
EXPORT = DATA.parents[1] / "benchmarks" / "data" / "GB_2023_hourly.electricitymaps.csv"


@pytest.fixture
def em_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=EM_URL, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


def by_factor(router: respx.MockRouter, path: str, kind: str) -> None:
    for factor in ("lifecycle", "direct"):
        router.get(path, params={"emissionFactorType": factor}).respond(
            json=load_json(f"electricitymaps_{kind}_{factor}.json")
        )


def make(client: httpx.Client, factor: str = "lifecycle") -> ElectricityMapsProvider:
    return ElectricityMapsProvider(client, SecretStr(EM_TOKEN), factor)


def test_forecast_figure_is_lifecycle_with_direct_kept_beside(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    by_factor(em_api, "/carbon-intensity/forecast", "forecast")
    forecast = make(client).forecast("GB", NOW, timedelta(hours=6))
    assert forecast.signal is Signal.AVERAGE
    assert forecast.source == "electricitymaps:GB" and forecast.region == "GB"
    assert forecast.start == datetime(2023, 5, 4, 12, tzinfo=UTC)
    assert forecast.step == timedelta(hours=1)
    assert forecast.values[0] == pytest.approx(68.21)  # GB 2023-05-04 12:00, LCA
    assert len(forecast.values) == 7  # 12:00 .. 18:00 covers now + 6 h
    assert "electricitymaps: the figure is life-cycle g/kWh" in forecast.warnings
    direct = [w for w in forecast.warnings if w.startswith("electricitymaps: direct")]
    assert direct and "mean" in direct[0]
    sent = em_api.calls.last.request
    assert sent.headers["auth-token"] == EM_TOKEN
    assert sent.url.params["zone"] == "GB"


def test_direct_setting_makes_direct_the_figure(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    by_factor(em_api, "/carbon-intensity/forecast", "forecast")
    forecast = make(client, "direct").forecast("GB", NOW, timedelta(hours=2))
    assert forecast.values[0] == pytest.approx(34.55)  # GB 2023-05-04 12:00, direct
    assert any(
        w.startswith("electricitymaps: life-cycle (not the figure)") for w in forecast.warnings
    )


def test_api_parser_and_csv_loader_agree_on_both_factors(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    by_factor(em_api, "/carbon-intensity/forecast", "forecast")
    for factor, column in (("lifecycle", "LCA"), ("direct", "direct")):
        trace = load_trace(EXPORT, column=column)
        i = trace.index_at(NOW)
        api = make(client, factor).forecast("GB", NOW, timedelta(hours=23))
        assert list(api.values) == pytest.approx(trace.actual[i : i + len(api.values)].tolist())
        assert trace.signal == api.signal.value


def test_lat_lon_asks_by_location_and_names_the_zone_answered(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    by_factor(em_api, "/carbon-intensity/forecast", "forecast")
    forecast = make(client).forecast("51.5,-0.12", NOW, timedelta(hours=1))
    params = em_api.calls.last.request.url.params
    assert (params["lat"], params["lon"]) == ("51.5", "-0.12") and "zone" not in params
    assert forecast.region == "GB"


def test_current_is_the_latest_hour(em_api: respx.MockRouter, client: httpx.Client) -> None:
    em_api.get("/carbon-intensity/latest").respond(json=load_json("electricitymaps_latest.json"))
    point = make(client).current("GB", NOW)
    assert point.start == datetime(2023, 5, 4, 12, tzinfo=UTC) and point.value == 68.21
    with pytest.raises(ProviderError, match="latest value is for 2023-05-04T12:00:00Z"):
        make(client).current("GB", NOW + timedelta(hours=3))


def test_history_uses_past_range_and_says_what_was_estimated(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    by_factor(em_api, "/carbon-intensity/past-range", "past_range")
    start = datetime(2023, 5, 4, 6, tzinfo=UTC)
    history = make(client).history("GB", start, start + timedelta(hours=6))
    assert history.start == start and len(history.values) == 6
    assert "electricitymaps: 1 of 6 life-cycle values are estimates, not measurements" in (
        history.warnings
    )
    params = em_api.calls[0].request.url.params
    assert (params["start"], params["end"]) == ("2023-05-04T06:00:00Z", "2023-05-04T12:00:00Z")


def test_long_history_is_asked_in_ten_day_ranges(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    by_factor(em_api, "/carbon-intensity/past-range", "past_range")
    start = datetime(2023, 5, 4, 6, tzinfo=UTC) - timedelta(days=15)
    make(client).history("GB", start, start + timedelta(days=15, hours=6))
    figure_calls = [
        c for c in em_api.calls if c.request.url.params["emissionFactorType"] == "lifecycle"
    ]
    assert [c.request.url.params["start"] for c in figure_calls] == [
        "2023-04-19T06:00:00Z",
        "2023-04-29T06:00:00Z",
    ]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, {"message": f"Invalid auth-token {EM_TOKEN}"}, "token refused"),
        (403, "Access denied", "no access to zone GB with this token: Access denied"),
        (404, {"message": "Zone 'GB' does not exist"}, "unknown zone GB"),
        (400, {"error": "Invalid zone parameter"}, "unknown zone GB"),
        (503, None, "HTTP 503"),
    ],
)
def test_refusals_name_the_zone_and_never_the_token(
    em_api: respx.MockRouter,
    client: httpx.Client,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: Any,
    message: str,
) -> None:
    route = em_api.get("/carbon-intensity/forecast")
    if isinstance(body, str):
        route.respond(status, text=body)
    else:
        route.respond(status, json=body)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError, match=message) as raised:
        make(client).forecast("GB", NOW, timedelta(hours=1))
    assert EM_TOKEN not in str(raised.value) and EM_TOKEN not in caplog.text
    assert EM_TOKEN not in repr(make(client))


def test_other_factor_failing_leaves_the_figure_with_a_note(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    em_api.get("/carbon-intensity/forecast", params={"emissionFactorType": "lifecycle"}).respond(
        json=load_json("electricitymaps_forecast_lifecycle.json")
    )
    em_api.get("/carbon-intensity/forecast", params={"emissionFactorType": "direct"}).respond(403)
    forecast = make(client).forecast("GB", NOW, timedelta(hours=1))
    assert forecast.values[0] == pytest.approx(68.21)
    assert any("direct values unavailable: HTTP 403" in w for w in forecast.warnings)


def test_a_value_of_the_wrong_factor_is_refused(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    body = load_json("electricitymaps_forecast_lifecycle.json")
    body["forecast"][0]["emissionFactorType"] = "direct"
    em_api.get("/carbon-intensity/forecast").respond(json=body)
    with pytest.raises(ProviderError, match="asked for lifecycle values, got 'direct'"):
        make(client).forecast("GB", NOW, timedelta(hours=1))


def test_a_missing_hour_is_a_gap_not_a_value(
    em_api: respx.MockRouter, client: httpx.Client
) -> None:
    body = load_json("electricitymaps_forecast_lifecycle.json")
    body["forecast"][3]["carbonIntensity"] = None
    em_api.get("/carbon-intensity/forecast").respond(json=body)
    forecast = make(client).forecast("GB", NOW, timedelta(hours=6))
    assert len(forecast.values) == 3  # the run holding now stops before the hole
    assert "electricitymaps: 1 hours without a value" in forecast.warnings
    assert any(w.startswith("gap: 1 missing periods") for w in forecast.warnings)


@pytest.mark.parametrize("region", ["gb!", "91,0", ""])
def test_bad_regions_are_config_errors(client: httpx.Client, region: str) -> None:
    with pytest.raises(ConfigError, match="electricitymaps"):
        make(client).check_region(region)


def test_chain_reads_the_token_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "em-token"
    secret.write_text(EM_TOKEN + "\n", encoding="utf-8")
    settings = load_settings(env={"ELECTRICITYMAPS_TOKEN_FILE": str(secret)}, home=tmp_path)
    chain = build_chain("electricitymaps:gb,egrid:RFCE", settings)
    assert chain.labels == ("electricitymaps:GB", "egrid:RFCE")
    provider = chain.entries[0].provider
    assert isinstance(provider, ElectricityMapsProvider)
    assert EM_TOKEN not in repr(settings) and EM_TOKEN not in repr(provider)
    chain.close()


def test_chain_without_a_token_says_which_variable(tmp_path: Path) -> None:
    bare = load_settings(env={}, home=tmp_path)
    with pytest.raises(ConfigError, match="ELECTRICITYMAPS_TOKEN"):
        build_chain("electricitymaps:GB", bare)


def test_factor_setting_reaches_the_provider(tmp_path: Path) -> None:
    settings = load_settings(
        env={"ELECTRICITYMAPS_TOKEN": EM_TOKEN, "GREENAI_ELECTRICITYMAPS_FACTOR": "direct"},
        home=tmp_path,
    )
    provider = build_chain("electricitymaps:GB", settings).entries[0].provider
    assert isinstance(provider, ElectricityMapsProvider) and provider.factor == "direct"
    with pytest.raises(ConfigError, match="electricitymaps_factor"):
        load_settings(env={"GREENAI_ELECTRICITYMAPS_FACTOR": "marginal"}, home=tmp_path)
