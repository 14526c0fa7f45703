"""The shared client: timeout, User-Agent, bounded retries on transient failures only."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import respx

from greenai.core.errors import ProviderError
from greenai.core.settings import Settings, load_settings
from greenai.providers.http import build_http_client
from greenai.providers.uk import UkProvider
from tests.providers.conftest import UK_NOW, load_json, loopback_server

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


def test_gzip_bodies_are_decoded(uk_api: respx.MockRouter, client: httpx.Client) -> None:
    body = gzip.compress(json.dumps(load_json("uk_national_fw48h.json")).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    uk_api.get(URL).respond(200, content=body, headers=headers)
    assert UkProvider(client).forecast("", UK_NOW, timedelta(hours=1)).values[0] == 11.0


def test_an_oversized_body_is_refused(
    uk_api: respx.MockRouter, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("greenai.providers.base.MAX_BODY_BYTES", 1000)
    uk_api.get(URL).respond(json=load_json("uk_national_fw48h.json"))
    with pytest.raises(ProviderError, match="larger than 1000 bytes"):
        UkProvider(client).forecast("", UK_NOW, timedelta(hours=1))


def _trickle(conn: socket.socket, stop: threading.Event) -> None:
    """Headers at once, then one body byte every 50 ms until the client hangs up."""
    with conn:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.wait(0.05):
            try:
                conn.sendall(b" ")
            except OSError:
                break


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """A loopback server that sends headers at once, then one body byte every 50 ms: each
    read is quick, the body never ends in time."""
    with loopback_server(_trickle) as url:
        yield url


def test_a_trickling_body_is_cut_off_at_its_deadline(trickling_server: str, tmp_path: Path) -> None:
    settings = load_settings(
        env={}, config_file=None, home=tmp_path, request_timeout=0.2, request_retries=0
    )
    with build_http_client(settings) as client:
        began = time.monotonic()
        with pytest.raises(ProviderError, match="body still arriving"):
            UkProvider(client, base_url=trickling_server).current("", UK_NOW)
        took = time.monotonic() - began
    assert 0.6 <= took < 2.0  # BODY_DEADLINE (3) read timeouts of 0.2 s
