"""Files greenai creates are its owner's only: evidence, the decision log, the database."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from greenai.core.domain import Action, Decision
from greenai.evidence.decisions import append_decision
from greenai.storage.database import make_engine, upgrade


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_evidence_and_decision_logs_are_created_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        log = tmp_path / "decisions.jsonl"
        append_decision(
            log, Decision(datetime(2024, 1, 1, tzinfo=UTC), "j", "now", Action.START, "x")
        )
    finally:
        os.umask(old)
    assert mode(log) == 0o600 and mode(Path(f"{log}.lock")) == 0o600


def test_a_new_sqlite_database_and_its_journal_are_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'greenai.db'}")
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        os.umask(old)
    database = tmp_path / "state" / "greenai.db"
    assert mode(database) == 0o600
    assert all(mode(p) == 0o600 for p in database.parent.glob("greenai.db-*"))
    engine.dispose()
