"""jobs, decisions, runs

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("cwd", sa.Text(), nullable=True),
        sa.Column("env", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("on_deadline", sa.String(length=8), nullable=False),
        sa.Column("submitted_at", UTC_TIME, nullable=False),
        sa.Column("deadline", UTC_TIME, nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("interruptible", sa.Boolean(), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("project", sa.String(length=200), nullable=True),
        sa.Column("provider", sa.String(length=200), nullable=True),
        sa.Column("planned_start", UTC_TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=True),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("gpu_ids", sa.JSON(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_jobs_idempotency_key")),
    )
    op.create_index(op.f("ix_jobs_project"), "jobs", ["project"])
    op.create_index(op.f("ix_jobs_state_planned_start"), "jobs", ["state", "planned_start"])

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_decisions_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_action"), "decisions", ["action"])
    op.create_index(op.f("ix_decisions_job_id"), "decisions", ["job_id"])

    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("energy_kwh", sa.Float(), nullable=False),
        sa.Column("meter", sa.String(length=64), nullable=False),
        sa.Column("actual_intensity", sa.Float(), nullable=True),
        sa.Column("operational_g", sa.Float(), nullable=True),
        sa.Column("embodied_g", sa.Float(), nullable=True),
        sa.Column("counterfactual_g", sa.Float(), nullable=True),
        sa.Column("saved_g", sa.Float(), nullable=True),
        sa.Column("delay_s", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_runs_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_job_id"), "runs", ["job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_job_id"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_decisions_job_id"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_action"), table_name="decisions")
    op.drop_table("decisions")
    op.drop_index(op.f("ix_jobs_state_planned_start"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_project"), table_name="jobs")
    op.drop_table("jobs")
