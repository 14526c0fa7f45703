"""The API on a real uvicorn (127.0.0.1) over a temporary SQLite file, as tests/daemon does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from greenai.api import ApiDeps, create_app
from greenai.storage.store import Store
from tests.daemon.conftest import LiveServer, sqlite_store, sqlite_url  # noqa: F401 (fixtures)
from tests.daemon.helpers import T0
from tests.fakes import FrozenClock

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JOB: dict[str, Any] = {"command": ["python", "train.py"], "duration": "1h", "max_delay": "6h"}
# A job body that sets every optional field away from its default.
FULL: dict[str, Any] = {
    **JOB,
    "name": "fine-tune",
    "gpus": 2,
    "interruptible": True,
    "on_deadline": "expire",
    "flexible": False,
    "policy": "window-once",
    "threshold": 120.5,
    "project": "nlp",
    "provider": "uk:13",
    "cwd": "/srv/runs",
    "env": {"A": "1"},
    "max_runtime": "2h",
}
Serve = Callable[..., tuple[httpx.Client, LiveServer]]


@pytest.fixture
def serve(sqlite_store: Store) -> Iterator[Serve]:  # noqa: F811 (the imported fixture)
    """Start an app over the store with the given ``ApiDeps`` options; its client and server."""
    started: list[tuple[httpx.Client, LiveServer]] = []

    def start(**options: Any) -> tuple[httpx.Client, LiveServer]:
        options.setdefault("clock", FrozenClock(T0))
        options.setdefault("gpu_slots", 2)
        server = LiveServer(create_app(ApiDeps(sqlite_store, **options))).__enter__()
        client = httpx.Client(base_url=server.url, timeout=30)
        started.append((client, server))
        return client, server

    yield start
    for client, server in started:
        client.close()
        server.__exit__()


@pytest.fixture
def client(serve: Serve) -> httpx.Client:
    """A client of an app with a token, sending it."""
    client, _ = serve(token=SecretStr(TOKEN))
    client.headers.update(AUTH)
    return client
