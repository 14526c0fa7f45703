"""a job may name its own pause signal and grace

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

``jobs.pause_signal`` (a signal name such as ``SIGUSR1``) and ``jobs.pause_grace_s`` (seconds
from it to SIGKILL) override the daemon's ``pause_signal`` and ``pause_grace_seconds`` for one
interruptible job; ``NULL``: the daemon's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pause_signal", sa.String(16), nullable=True))
        batch.add_column(sa.Column("pause_grace_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("pause_grace_s")
        batch.drop_column("pause_signal")
