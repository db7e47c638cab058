"""A fee table carries the half fees as STPS publishes them (rounded up to whole kroner, or 2018's
5,580.50 kr), and a place remembers that its `treatment_before_registration` alert was raised, so the
timer that raises it when the stated treatment start passes does so once. A unit delivering only
§§ 83-87 care has no category (spec § 3), so an information version and a fee row may have none.

Revision ID: 0015_fee_halves_start_alerts
Revises: 0014_read_audit_place
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_fee_halves_start_alerts"
down_revision: str | Sequence[str] | None = "0014_read_audit_place"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HALVES = [f"half_{c}" for c in range(1, 6)]


def upgrade() -> None:
    with op.batch_alter_table("place_fee_tables") as batch:
        for name in HALVES:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
    with op.batch_alter_table("place_states") as batch:
        batch.add_column(sa.Column("start_alerted_at", sa.DateTime(timezone=True), nullable=True))
    for table in ("place_information", "place_fees"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("category", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    for table in ("place_information", "place_fees"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("category", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("place_states") as batch:
        batch.drop_column("start_alerted_at")
    with op.batch_alter_table("place_fee_tables") as batch:
        for name in HALVES:
            batch.drop_column(name)
