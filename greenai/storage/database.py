"""Engines and migrations: how greenai connects to its database and moves its schema.

SQLite (the default) gets WAL, a busy timeout and foreign keys on every connection; a
PostgreSQL URL works the same. The schema only changes through the Alembic scripts kept inside
the package (``greenai/migrations``), so ``greenai db upgrade`` works from a checkout and from
an installed wheel alike.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import re
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import NoSuchModuleError, SQLAlchemyError

from greenai.core.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)


def _migrations_dir() -> Path:
    """The Alembic scripts, shipped as the package ``greenai.migrations`` (found, not
    imported: their ``env.py`` imports this module)."""
    spec = importlib.util.find_spec("greenai.migrations")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("greenai.migrations is missing from this installation")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


MIGRATIONS_DIR = _migrations_dir()
_REVISION = re.compile(r"^revision(?::[^=]*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"^down_revision(?::[^=]*)?=\s*(None|[\"']([^\"']+)[\"'])\s*$", re.MULTILINE
)
_READ_VERSION = "SELECT version_num FROM alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 5000


def _create_engine(parsed: URL, url: str, **kwargs: Any) -> Engine:
    """``create_engine``, with an unknown dialect or a driver that is not installed named as
    a setting's problem rather than SQLAlchemy's traceback."""
    try:
        return create_engine(parsed, **kwargs)
    except NoSuchModuleError as exc:
        raise ConfigError(
            f"database_url: no driver for {parsed.drivername!r} in {url!r} "
            "(use sqlite:///PATH or postgresql://...)"
        ) from exc
    except ImportError as exc:
        raise ConfigError(
            f"database_url: {parsed.drivername!r} needs {exc.name}, not installed"
        ) from exc


def make_engine(url: str, *, checkpoints: bool = True, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and pragmas set.

    ``checkpoints=False`` leaves SQLite's WAL checkpoints to another process's connections: a
    checkpoint copies and syncs the log into the database inside whichever commit crosses
    1,000 pages, 0.1-0.4 s here, and the API's submissions should not be the ones to pay."""
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise ConfigError(f"database_url: cannot parse {url!r}") from exc
    if parsed.get_backend_name() != "sqlite":
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs.setdefault("pool_pre_ping", True)
        return _create_engine(parsed, url, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        _private_file(Path(parsed.database))
    kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    kwargs.setdefault("pool_size", 8)
    kwargs.setdefault("max_overflow", 8)
    engine = _create_engine(parsed, url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    if not checkpoints:
        event.listen(engine, "connect", _no_checkpoints)
    return engine


class WriteLock:
    """One writer at a time on an SQLite database, across threads and processes, handed over
    promptly.

    SQLite lets one writer in and makes the others poll with growing sleeps (up to 100 ms):
    a process that writes transaction after transaction (the loop writing 10,000 plans 250 at a
    time) can starve a waiting one for seconds. Here a waiter blocks in ``flock`` on a lock file
    beside the database and the kernel wakes it the moment the lock is released. Threads of one
    process queue on a ``threading.Lock`` first (``flock`` does not exclude two threads sharing
    one open file). An in-memory database needs only the thread lock.
    """

    def __init__(self, database: Path | None) -> None:
        self._threads = threading.Lock()
        self._fd: int | None = None
        if database is not None:
            lock = database.with_name(database.name + ".lock")
            self._fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            weakref.finalize(self, os.close, self._fd)

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


def write_lock(engine: Engine) -> WriteLock | None:
    """The lock an SQLite engine's writers take (None for servers that lock rows)."""
    if not is_sqlite(engine):
        return None
    database = engine.url.database
    return WriteLock(Path(database) if database and database != ":memory:" else None)


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (0600: it holds commands and job
    environments); SQLite gives its -wal and -shm files the same mode. An existing file keeps
    the mode its owner gave it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database without waiting for anyone (PASSIVE);
    the loop process does this for a daemon whose API connections do not."""
    if is_sqlite(engine):
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


def _no_checkpoints(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


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
    """An Alembic config pointing at the packaged scripts, bound to ``engine``. Alembic is
    imported here, not with the module: the daemon's loop process never migrates, and
    Alembic's import is 10 MB of its memory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; idempotent. A database already at the head is left
    without loading Alembic: the daemon's API process migrates at every start, and Alembic's
    import is 10 MB of its memory."""
    head = script_head() if revision == "head" else None
    if head is not None and _stored_revisions(engine) == {head}:
        return
    from alembic import command

    log.info("database upgrade to %s on %s", revision, engine.url.render_as_string())
    command.upgrade(alembic_config(engine), revision)


def script_head() -> str | None:
    """The newest revision of the packaged scripts, read from their ``revision`` and
    ``down_revision`` lines; ``None`` unless they form one line (then Alembic decides)."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found = _REVISION.search(text)
        down = _DOWN_REVISION.search(text)
        if found is None or down is None:
            continue  # not a migration (``__init__.py``)
        revisions[found.group(1)] = down.group(2)
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def _stored_revisions(engine: Engine) -> set[str] | None:
    """The revisions ``alembic_version`` holds; ``None`` where it cannot be read (no table)."""
    try:
        with engine.connect() as connection:
            return {row[0] for row in connection.execute(text(_READ_VERSION))}
    except SQLAlchemyError:
        return None


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
