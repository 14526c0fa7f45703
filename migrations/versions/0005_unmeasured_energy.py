"""a run's energy may be unknown

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

``runs.energy_kwh`` becomes nullable: ``NULL`` is a run whose energy nobody measured (its meter
could not start or stop and the meters setting allows no estimate), never stored as 0 kWh.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("energy_kwh", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("energy_kwh", existing_type=sa.Float(), nullable=False)
