"""Shared fixtures: recorded payloads, settings in a temp home, a frozen clock, mocked APIs."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from greenai.core.settings import Settings, load_settings
from tests.fakes import FrozenClock

DATA = Path(__file__).resolve().parents[1] / "data"
UK_URL = "https://api.carbonintensity.org.uk"
WT_URL = "https://api.watttime.org"
UK_NOW = datetime(2023, 5, 4, 12, 40, tzinfo=UTC)  # inside the sample's first period
WT_NOW = datetime(2022, 7, 15, 0, 2, tzinfo=UTC)  # inside the WattTime sample's first point
WT_PASSWORD = "hunter2-very-secret"
WT_TOKEN = "tok-SECRET-0123456789"


def load_json(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def uk_periods(
    start: datetime, end: datetime, *, actual_offset: float | None = None
) -> list[dict[str, Any]]:
    """Half-hour UK periods over ``[start, end)``; value = minutes since midnight % 300."""
    periods = []
    at = start
    while at < end:
        forecast = float((at.hour * 60 + at.minute) % 300)
        intensity: dict[str, Any] = {"forecast": forecast, "index": "low"}
        if actual_offset is not None:
            intensity["actual"] = forecast + actual_offset
        stamp = at.strftime("%Y-%m-%dT%H:%MZ")
        end_stamp = (at + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%MZ")
        periods.append({"from": stamp, "to": end_stamp, "intensity": intensity})
        at += timedelta(minutes=30)
    return periods


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        env={"WATTTIME_USERNAME": "alice", "WATTTIME_PASSWORD": WT_PASSWORD},
        config_file=None,
        home=tmp_path / "home",
        request_retries=2,
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A plain client (no retries): provider tests see each replayed response once."""
    with httpx.Client(timeout=5.0) as plain:
        yield plain


@pytest.fixture
def uk_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=UK_URL, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def wt_api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=WT_URL, assert_all_called=False, assert_all_mocked=True) as router:
        router.get("/login", name="login").respond(json={"token": WT_TOKEN})
        yield router


@pytest.fixture
def wt_clock() -> FrozenClock:
    return FrozenClock(WT_NOW)


@contextmanager
def loopback_server(on_connect: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A raw TCP server on 127.0.0.1 for misbehaving providers: each connection goes to
    ``on_connect`` (on the server's one thread, with the stop event) and is closed at the end.
    Yields the server's URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)
            on_connect(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        listener.close()
