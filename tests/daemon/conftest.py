"""Fixtures for the daemon's tests: migrated SQLite files, a real PostgreSQL server started
from the system's initdb/pg_ctl, and a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn

from greenai.storage.database import make_engine, upgrade
from greenai.storage.store import Store


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'greenai.db'}"


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    port: int
    admin_dsn: str

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://greenai@127.0.0.1:{self.port}/{name}"


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(f"{name} not found: run scripts/ensure-postgres.sh")
    return found[-1]


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: use the `postgres` system user then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return "postgres"


def _as(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="greenai-pg-"))
    data, port = root / "data", free_port()
    if user:
        shutil.chown(root, user)
    run: dict[str, Any] = {"check": True, "capture_output": True, "timeout": 60}
    subprocess.run(
        _as(
            user,
            [
                _pg_bin("initdb"),
                "-D",
                str(data),
                "-U",
                "greenai",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        ),
        **run,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as(
            user,
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "start",
            ],
        ),
        **run,
    )
    try:
        yield PostgresServer(port, f"host=127.0.0.1 port={port} user=greenai dbname=postgres")
    finally:
        subprocess.run(
            _as(user, [_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), **run
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    return postgres.new_database()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'greenai.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


# -- uvicorn ---------------------------------------------------------------------------------


class LiveServer:
    """A real uvicorn serving an app on 127.0.0.1 in a thread."""

    def __init__(self, app: object) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
