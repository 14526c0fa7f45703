"""executor handles, the current plan, the whole job, evidence written once

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

- ``jobs.handle`` (the executor's JSON handle of the current run) replaces ``jobs.pid``: a
  restarted daemon re-attaches to a run through its handle. A running job's stored pid becomes
  a legacy local handle, which the local executor stops (it cannot be re-attached).
- ``jobs.plan``: the decision behind the current planned start (what started the run).
- ``jobs.flexible`` and ``jobs.power_kw``: the rest of the one job type.
- ``runs.evidence_appended``: whether the run's SCI row is safely in the evidence file (rows of
  runs finished before this revision were appended when they finished).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("flexible", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("power_kw", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("plan", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("handle", sa.JSON(), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("attempts", sa.Integer),
        sa.column("pid", sa.Integer),
        sa.column("handle", sa.JSON),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(jobs.c.id, jobs.c.attempts, jobs.c.pid).where(jobs.c.pid.is_not(None))
    )
    for job_id, attempts, pid in rows.all():
        legacy = {"executor": "local", "job_id": job_id, "attempt": attempts, "ref": {"pid": pid}}
        connection.execute(sa.update(jobs).where(jobs.c.id == job_id).values(handle=legacy))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("pid")
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("evidence_appended", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("evidence_appended")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("pid", sa.Integer),
        sa.column("handle", sa.JSON),
    )
    connection = op.get_bind()
    for job_id, handle in connection.execute(sa.select(jobs.c.id, jobs.c.handle)).all():
        pid = _pid_of(handle)
        if pid is not None:
            connection.execute(sa.update(jobs).where(jobs.c.id == job_id).values(pid=pid))
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("handle")
        batch.drop_column("plan")
        batch.drop_column("power_kw")
        batch.drop_column("flexible")


def _pid_of(handle: object) -> int | None:
    data = json.loads(handle) if isinstance(handle, str) else handle
    if not isinstance(data, dict):
        return None
    pid = (data.get("ref") or {}).get("pid")
    return int(pid) if pid is not None else None
