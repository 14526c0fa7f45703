"""a job's optional max runtime

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

``jobs.max_runtime_s``: wall seconds a run of the job may take from its command's start before
its supervisor stops it (SIGTERM, SIGKILL after the grace); ``NULL``, as for every job stored
before this revision, is no limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("max_runtime_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("max_runtime_s")
