"""interruptible jobs run in pieces

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

``jobs.pieces`` counts the pieces of an interruptible job launched so far (0: it runs whole) and
``jobs.ran_s`` the seconds its finished pieces ran, so a re-plan knows the work left and a
restarted daemon numbers the next piece; a job between pieces is in state ``paused``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("pieces", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("ran_s", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("ran_s")
        batch.drop_column("pieces")
