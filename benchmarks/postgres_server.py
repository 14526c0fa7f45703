"""A throwaway PostgreSQL server in a temporary folder, started from the system's
initdb/pg_ctl (`scripts/ensure-postgres.sh` installs them): trust authentication for the user
``greenai`` on 127.0.0.1 only, fsync off, removed when done. As root it runs under the
``postgres`` system user (created if missing), since PostgreSQL refuses to run as root.

Shared by the tests' ``postgres`` fixture (`tests/daemon/conftest.py`) and the benchmarks that
need a PostgreSQL of their own (`benchmarks/replica_harness.py`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg


@dataclass(frozen=True)
class PostgresServer:
    port: int
    admin_dsn: str

    def new_database(self) -> str:
        """A new, empty database on this server, as a SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://greenai@127.0.0.1:{self.port}/{name}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_bin(name: str) -> str:
    """The newest installed PostgreSQL's ``name`` binary (Debian's layout first)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"{name} not found: run scripts/ensure-postgres.sh")
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


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server, yield it, then stop it (immediately: nothing in it is kept) and remove
    its folder."""
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="greenai-pg-"))
    data, port = root / "data", free_port()
    if user:
        shutil.chown(root, user)
    run: dict[str, Any] = {"check": True, "capture_output": True, "timeout": 60}
    try:
        initdb = [pg_bin("initdb"), "-D", str(data), "-U", "greenai", "-A", "trust"]
        subprocess.run(_as(user, [*initdb, "--no-sync", "-E", "UTF8"]), **run)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(root / "server.log")
        start = [pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"]
        subprocess.run(_as(user, start), **run)
        try:
            yield PostgresServer(port, f"host=127.0.0.1 port={port} user=greenai dbname=postgres")
        finally:
            stop = [pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
            subprocess.run(_as(user, stop), **run)
    finally:
        shutil.rmtree(root, ignore_errors=True)
