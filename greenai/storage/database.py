"""Engines and migrations: how greenai connects to its database and moves its schema.

SQLite (the default) gets WAL, a busy timeout and foreign keys on every connection; a
PostgreSQL URL works the same. The schema only changes through the Alembic scripts kept inside
the package (``greenai/migrations``), so ``greenai db upgrade`` works from a checkout and from
an installed wheel alike.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import SQLAlchemyError

from greenai.core.errors import ConfigError

log = logging.getLogger(__name__)


def _migrations_dir() -> Path:
    """The Alembic scripts, shipped as the package ``greenai.migrations`` (found, not
    imported: their ``env.py`` imports this module)."""
    spec = importlib.util.find_spec("greenai.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("greenai.migrations is missing from this installation")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


MIGRATIONS_DIR = _migrations_dir()
SQLITE_BUSY_TIMEOUT_MS = 5000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and pragmas set."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise ConfigError(f"database_url: cannot parse {url!r}") from exc
    if parsed.get_backend_name() != "sqlite":
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        _private_file(Path(parsed.database))
    kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    kwargs.setdefault("pool_size", 8)
    kwargs.setdefault("max_overflow", 8)
    engine = create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (0600: it holds commands and job
    environments); SQLite gives its -wal and -shm files the same mode. An existing file keeps
    the mode its owner gave it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the one writer; NORMAL sync is durable across crashes of
    the process (only an OS crash can lose the last commits)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged scripts, bound to ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; idempotent."""
    log.info("database upgrade to %s on %s", revision, engine.url.render_as_string())
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
