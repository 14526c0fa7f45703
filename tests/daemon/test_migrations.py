"""Migrations are the schema: they match the models, upgrade idempotently, downgrade cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from greenai.storage.database import current_revision, downgrade, make_engine, upgrade
from greenai.storage.models import Base


def test_migrations_match_models_and_downgrade_cleanly(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    upgrade(engine)  # idempotent: a second upgrade is a no-op
    assert current_revision(engine) == "0001"
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert {"jobs", "decisions", "runs"} <= set(inspect(engine).get_table_names())
    downgrade(engine)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert current_revision(engine) is None
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    engine.dispose()


def test_foreign_keys_refuse_decisions_of_unknown_jobs(sqlite_url: str) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    engine = make_engine(sqlite_url)
    upgrade(engine)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO decisions (job_id, at, action, reason, payload) "
                "VALUES ('missing', '2023-01-01', 'x', 'y', '{}')"
            )
        )
    engine.dispose()
