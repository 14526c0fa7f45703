"""Migrations are the schema: they match the models, upgrade idempotently, downgrade cleanly,
and carry a database of the previous revision over with its data."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, Table, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

from greenai.core.domain import JobState
from greenai.storage.database import (
    alembic_config,
    current_revision,
    downgrade,
    make_engine,
    script_head,
    upgrade,
)
from greenai.storage.models import Base
from greenai.storage.records import Event
from greenai.storage.store import Store
from tests.daemon.helpers import T0, new_job, run_summary

LEGACY = "0001"  # jobs.pid, no handle, plan, flexible, power_kw nor runs.evidence_appended
HANDLES = "0002"
CLAIMS = "0003"  # the revision before jobs.max_runtime_s


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def head(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def schema_differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def columns(engine: Engine, table: str) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(table)}


def test_the_revisions_form_one_line_starting_0001_0002(engine: Engine) -> None:
    script = ScriptDirectory.from_config(alembic_config(engine))
    chain = [rev.revision for rev in script.walk_revisions()]  # newest first
    assert chain[-2:] == [HANDLES, LEGACY]
    assert len(script.get_heads()) == 1


def test_migrations_match_models_and_downgrade_cleanly(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)  # idempotent: a second upgrade is a no-op
    assert current_revision(engine) == head(engine)
    assert schema_differences(engine) == []
    assert {"jobs", "decisions", "runs"} <= set(inspect(engine).get_table_names())
    downgrade(engine)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert current_revision(engine) is None


def test_0002_upgrades_and_downgrades_round_trip(engine: Engine) -> None:
    upgrade(engine, LEGACY)
    assert current_revision(engine) == LEGACY
    assert "pid" in columns(engine, "jobs")
    assert not {"handle", "plan", "flexible", "power_kw"} & columns(engine, "jobs")
    assert "evidence_appended" not in columns(engine, "runs")
    upgrade(engine)  # through 0002 to head, which the store reads
    assert {"handle", "plan", "flexible", "power_kw"} <= columns(engine, "jobs")
    assert "pid" not in columns(engine, "jobs")
    assert "evidence_appended" in columns(engine, "runs")
    downgrade(engine, LEGACY)
    assert current_revision(engine) == LEGACY
    assert "pid" in columns(engine, "jobs")
    assert not {"handle", "plan", "flexible", "power_kw"} & columns(engine, "jobs")
    assert "evidence_appended" not in columns(engine, "runs")
    upgrade(engine)
    assert schema_differences(engine) == []


# -- data carried over -----------------------------------------------------------------------


def legacy_job(job_id: str, state: JobState, **fields: Any) -> dict[str, Any]:
    """A ``jobs`` row as revision 0001 stored it."""
    return {
        "id": job_id,
        "name": "train",
        "command": ["python", "train.py"],
        "cwd": None,
        "env": {"A": "1"},
        "state": str(state),
        "on_deadline": "run",
        "submitted_at": T0,
        "deadline": T0 + timedelta(hours=12),
        "duration_s": 3600.0,
        "gpus": 1,
        "interruptible": False,
        "policy": None,
        "threshold": None,
        "project": None,
        "provider": None,
        "planned_start": None,
        "attempts": 0,
        "idempotency_key": None,
        "cancel_requested": False,
        "started_at": None,
        "finished_at": None,
        "exit_code": None,
        "host": None,
        "gpu_ids": None,
        "pid": None,
        "log_path": None,
        "updated_at": T0,
        **fields,
    }


def legacy_run(run_id: str, job_id: str) -> dict[str, Any]:
    return {
        "id": run_id,
        "job_id": job_id,
        "attempt": 1,
        "started_at": T0,
        "finished_at": T0 + timedelta(hours=1),
        "exit_code": 0,
        "energy_kwh": 1.5,
        "meter": "estimate",
        "actual_intensity": 120.0,
        "operational_g": 180.0,
        "embodied_g": None,
        "counterfactual_g": None,
        "saved_g": None,
        "delay_s": 0.0,
        "evidence": {"run_id": run_id, "job_id": job_id},
    }


def legacy_decision(job_id: str) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "at": T0,
        "action": "defer",
        "from_state": "queued",
        "to_state": "scheduled",
        "reason": "a cleaner window comes later",
        "payload": {"job_id": job_id, "action": "defer"},
    }


def a_legacy_database(engine: Engine) -> None:
    """Revision 0001 with a running job that has a pid, a queued job and a finished one, a
    decision of each and the finished one's run."""
    upgrade(engine, LEGACY)
    tables = MetaData()
    jobs = Table("jobs", tables, autoload_with=engine)
    decisions = Table("decisions", tables, autoload_with=engine)
    runs = Table("runs", tables, autoload_with=engine)
    running = {"started_at": T0, "attempts": 2, "host": "gpu-1", "gpu_ids": [0], "pid": 4242}
    finished = {"attempts": 1, "started_at": T0, "finished_at": T0 + timedelta(hours=1)}
    with engine.begin() as connection:
        connection.execute(
            insert(jobs),
            [
                legacy_job("running", JobState.RUNNING, **running),
                legacy_job("queued", JobState.QUEUED),
                legacy_job("finished", JobState.SUCCEEDED, exit_code=0, **finished),
            ],
        )
        connection.execute(insert(decisions), [legacy_decision(j) for j in JOB_IDS])
        connection.execute(insert(runs), [legacy_run("r1", "finished")])


JOB_IDS = ("running", "queued", "finished")


def test_a_running_jobs_pid_becomes_a_legacy_local_handle(engine: Engine) -> None:
    a_legacy_database(engine)
    upgrade(engine)  # through 0002 to head, which the store reads
    store = Store(engine)
    running = store.get("running")
    assert running.handle == {
        "executor": "local",
        "job_id": "running",
        "attempt": 2,
        "ref": {"pid": 4242},
    }
    assert (running.state, running.host, running.gpu_ids) == (JobState.RUNNING, "gpu-1", (0,))
    assert store.get("queued").handle is None and store.get("finished").handle is None
    assert store.busy_gpu_ids("gpu-1") == {0}  # 0003 claimed the running job's GPU
    assert running.instance_id is None  # no daemon watches it: the next one adopts it


def test_existing_jobs_become_flexible_with_no_plan_nor_declared_power(engine: Engine) -> None:
    a_legacy_database(engine)
    upgrade(engine)  # through 0002 to head, which the store reads
    store = Store(engine)
    for job_id in JOB_IDS:
        record = store.get(job_id)
        assert (record.job.flexible, record.job.power_kw, record.plan) == (True, 0.0, None)
        assert record.job.env == {"A": "1"} and record.job.command == ("python", "train.py")
    assert store.waiting_for_plan().flexible == [True]


def test_the_upgrade_keeps_every_decision_and_run(
    engine: Engine,
) -> None:
    a_legacy_database(engine)
    upgrade(engine)  # through 0002 to head, which the store reads
    store = Store(engine)
    for job_id in JOB_IDS:
        [event] = store.events(job_id)
        assert (event.action, event.payload) == ("defer", {"job_id": job_id, "action": "defer"})
    assert [run.id for run in store.runs("finished")] == ["r1"]


def test_the_downgrade_keeps_every_decision_and_run(
    engine: Engine,
) -> None:
    upgrade(engine)  # through 0002 to head, which the store reads
    store = Store(engine)
    record, _ = store.submit(new_job(), T0)
    store.transition(record.id, JobState.QUEUED, JobState.RUNNING, Event(T0, "dispatch", "go"))
    finish = Event(T0 + timedelta(hours=1), "finish", "exit 0")
    store.finish_run(record.id, JobState.SUCCEEDED, finish, run_summary(record.id))
    downgrade(engine, LEGACY)
    with engine.connect() as connection:
        decisions = connection.execute(text("SELECT count(*) FROM decisions")).scalar()
        runs = connection.execute(text("SELECT count(*) FROM runs")).scalar()
    assert (decisions, runs) == (2, 1)


def test_existing_runs_count_as_already_in_the_evidence_file(
    engine: Engine,
) -> None:
    a_legacy_database(engine)
    upgrade(engine)  # through 0002 to head, which the store reads
    store = Store(engine)
    [run] = store.runs("finished")
    assert run.evidence_appended and run.evidence == {"run_id": "r1", "job_id": "finished"}
    assert store.runs_without_evidence() == []


def test_jobs_submitted_after_the_upgrade_keep_their_new_fields(engine: Engine) -> None:
    a_legacy_database(engine)
    upgrade(engine)  # through 0002 to head, which the store reads
    store = Store(engine)
    submission = new_job(flexible=False, power_kw=0.3)
    record, _ = store.submit(submission, T0)
    assert store.get(record.id).job == submission.job


def test_downgrade_restores_the_pid_of_a_legacy_handle(engine: Engine) -> None:
    a_legacy_database(engine)
    upgrade(engine)  # through 0002 to head, which the store reads
    store = Store(engine)
    store.submit(new_job(job_id="new-style"), T0)
    store.transition(
        "new-style",
        JobState.QUEUED,
        JobState.RUNNING,
        Event(T0, "dispatch", "started under 0002"),
        handle={
            "executor": "local",
            "job_id": "new-style",
            "attempt": 1,
            "ref": {"state_dir": "d"},
        },
    )
    downgrade(engine, LEGACY)
    jobs = Table("jobs", MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        pids: dict[str, int | None] = dict(connection.execute(select(jobs.c.id, jobs.c.pid)).all())
    assert pids == {"running": 4242, "queued": None, "finished": None, "new-style": None}


def test_0004_adds_max_runtime_and_its_downgrade_keeps_every_row(engine: Engine) -> None:
    a_legacy_database(engine)
    upgrade(engine, CLAIMS)
    assert "max_runtime_s" not in columns(engine, "jobs")
    upgrade(engine)
    store = Store(engine)
    assert all(store.get(job_id).job.max_runtime is None for job_id in JOB_IDS)  # no limit
    limited = new_job(job_id="limited", max_runtime=timedelta(minutes=90))
    store.submit(limited, T0)
    assert store.get("limited").job == limited.job
    downgrade(engine, CLAIMS)
    assert "max_runtime_s" not in columns(engine, "jobs")
    with engine.connect() as connection:
        count = {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("jobs", "decisions", "runs", "gpu_claims")
        }
    assert count == {"jobs": 4, "decisions": 3, "runs": 1, "gpu_claims": 1}
    upgrade(engine)
    assert schema_differences(engine) == []
    assert Store(engine).get("limited").job.max_runtime is None  # the downgrade dropped it


# -- connections -----------------------------------------------------------------------------


def test_sqlite_connections_use_wal_and_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 5000
    engine.dispose()


def test_foreign_keys_refuse_decisions_of_unknown_jobs(sqlite_url: str) -> None:
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


def test_the_head_read_from_the_scripts_is_alembics(engine: Engine) -> None:
    assert script_head() == head(engine)


def test_a_database_at_the_head_is_upgraded_without_alembic(engine: Engine) -> None:
    upgrade(engine)
    code = (
        "import sys; from greenai.storage.database import make_engine, upgrade;"
        f"upgrade(make_engine({engine.url.render_as_string(hide_password=False)!r}));"
        "print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_database_behind_the_head_is_still_upgraded(engine: Engine) -> None:
    upgrade(engine, CLAIMS)
    upgrade(engine)
    assert current_revision(engine) == head(engine)
