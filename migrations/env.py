"""Alembic environment: runs migrations on the engine ``greenai.storage.database`` hands over
(or on the URL in ``sqlalchemy.url`` / ``GREENAI_DATABASE_URL`` when alembic is called by hand)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Engine

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
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
