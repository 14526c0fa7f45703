"""Alembic environment: runs migrations on the engine ``greenai.storage.database`` hands over
(or on the URL in ``sqlalchemy.url`` / ``GREENAI_DATABASE_URL`` when alembic is called by hand)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, Engine

from greenai.storage.database import make_engine
from greenai.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _engine() -> Engine:
    given = config.attributes.get("engine")
    if given is not None:
        return given
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("GREENAI_DATABASE_URL")
    if not url:
        raise RuntimeError("no database: set sqlalchemy.url or GREENAI_DATABASE_URL")
    return make_engine(url)


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one: with foreign keys on,
            # that DROP would cascade to every decision and run. Off for the migration (the
            # pragma only takes effect outside a transaction), checked after, on again before
            # the connection goes back to the pool.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
            if sqlite:
                _check_foreign_keys(connection)
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"migration left rows that break foreign keys: {broken[:5]}")


run_migrations_online()
