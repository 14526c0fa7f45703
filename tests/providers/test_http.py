"""The shared client: timeout, User-Agent, bounded retries on transient failures only."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import respx

from greenai.core.errors import ProviderError
from greenai.core.settings import Settings
from greenai.providers.http import build_http_client
from greenai.providers.uk import UkProvider
from tests.providers.conftest import UK_NOW, load_json

URL = "/intensity/2023-05-04T12:30Z/fw48h"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def retrying(settings: Settings, sleeps: list[float]) -> httpx.Client:
    return build_http_client(settings, sleep=sleeps.append)


def test_defaults(retrying: httpx.Client, settings: Settings) -> None:
    assert retrying.timeout.read == settings.request_timeout
    assert retrying.headers["User-Agent"].startswith("greenai/")


def test_user_agent_is_sent(uk_api: respx.MockRouter, retrying: httpx.Client) -> None:
    route = uk_api.get(URL).respond(json=load_json("uk_national_fw48h.json"))
    UkProvider(retrying).forecast("", UK_NOW, timedelta(hours=1))
    assert route.calls.last.request.headers["User-Agent"].startswith("greenai/")


def test_timeouts_are_retried_then_succeed(
    uk_api: respx.MockRouter, retrying: httpx.Client, sleeps: list[float]
) -> None:
    route = uk_api.get(URL)
    route.side_effect = [
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=load_json("uk_national_fw48h.json")),
    ]
    forecast = UkProvider(retrying).forecast("", UK_NOW, timedelta(hours=1))
    assert forecast.values[0] == 11.0
    assert route.call_count == 3
    assert len(sleeps) == 2 and sleeps[1] >= sleeps[0] > 0  # backoff grows


def test_timeouts_retried_then_failing(
    uk_api: respx.MockRouter, retrying: httpx.Client, sleeps: list[float]
) -> None:
    route = uk_api.get(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ProviderError, match="timed out"):
        UkProvider(retrying).forecast("", UK_NOW, timedelta(hours=1))
    assert route.call_count == 3  # one try and settings.request_retries == 2
    assert len(sleeps) == 2


def test_connect_errors_are_retried(
    uk_api: respx.MockRouter, retrying: httpx.Client, sleeps: list[float]
) -> None:
    route = uk_api.get(URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(ProviderError, match="request failed: ConnectError"):
        UkProvider(retrying).forecast("", UK_NOW, timedelta(hours=1))
    assert route.call_count == 3


def test_5xx_is_retried_then_the_last_answer_is_read(
    uk_api: respx.MockRouter, retrying: httpx.Client
) -> None:
    body = {"error": {"code": "503", "message": "maintenance"}}
    route = uk_api.get(URL).respond(503, json=body)
    with pytest.raises(ProviderError, match="maintenance"):
        UkProvider(retrying).forecast("", UK_NOW, timedelta(hours=1))
    assert route.call_count == 3


def test_5xx_then_success(uk_api: respx.MockRouter, retrying: httpx.Client) -> None:
    route = uk_api.get(URL)
    route.side_effect = [
        httpx.Response(500),
        httpx.Response(200, json=load_json("uk_national_fw48h.json")),
    ]
    assert UkProvider(retrying).forecast("", UK_NOW, timedelta(hours=1)).values
    assert route.call_count == 2


def test_4xx_is_not_retried(uk_api: respx.MockRouter, retrying: httpx.Client) -> None:
    route = uk_api.get(URL).respond(400, json=load_json("uk_error_400.json"))
    with pytest.raises(ProviderError):
        UkProvider(retrying).forecast("", UK_NOW, timedelta(hours=1))
    assert route.call_count == 1
