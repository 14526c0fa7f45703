"""carbon budgets per project

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

``budgets`` holds one row per project label: at most ``limit_g`` grams of CO2e per
``period_s`` seconds, periods aligned from ``start``. The daemon admits a job of that project
only while its estimate fits what is left of the period's budget.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("limit_g", sa.Float(), nullable=False),
        sa.Column("period_s", sa.Float(), nullable=False),
        sa.Column("start", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("project", name=op.f("pk_budgets")),
    )


def downgrade() -> None:
    op.drop_table("budgets")
