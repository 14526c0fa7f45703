"""daemon instances with heartbeats, GPU claims, the instance running each job

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Several daemons may share one database (replicas on PostgreSQL, or two on one host). Each
registers an instance and heartbeats; a running job records the instance that runs it, so only
a dead instance's runs are adopted by another. ``gpu_claims`` holds one row per GPU a running
job holds on its host: claiming a job and its GPUs is one transaction, and the primary key
makes a second claim of the same GPU fail instead of sharing it. Running jobs' GPUs are claimed
by this migration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("heartbeat_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instances")),
    )
    op.create_table(
        "gpu_claims",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("gpu_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_gpu_claims_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("host", "gpu_id", name=op.f("pk_gpu_claims")),
    )
    op.create_index(op.f("ix_gpu_claims_job_id"), "gpu_claims", ["job_id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("instance_id", sa.String(length=36), nullable=True))
    _claim_running_gpus()


def _claim_running_gpus() -> None:
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("state", sa.String),
        sa.column("host", sa.String),
        sa.column("gpu_ids", sa.JSON),
    )
    claims = sa.table(
        "gpu_claims", sa.column("host", sa.String), sa.column("gpu_id", sa.Integer),
        sa.column("job_id", sa.String),
    )  # fmt: skip
    connection = op.get_bind()
    query = sa.select(jobs.c.id, jobs.c.host, jobs.c.gpu_ids).where(jobs.c.state == "running")
    rows = []
    for job_id, host, gpu_ids in connection.execute(query).all():
        ids = json.loads(gpu_ids) if isinstance(gpu_ids, str) else gpu_ids
        rows += [{"host": host or "", "gpu_id": int(g), "job_id": job_id} for g in ids or ()]
    if rows:
        connection.execute(sa.insert(claims), rows)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("instance_id")
    op.drop_index(op.f("ix_gpu_claims_job_id"), table_name="gpu_claims")
    op.drop_table("gpu_claims")
    op.drop_table("instances")
