"""A subsidy period remembers the time of its latest payment, so a report paid earlier is seen as late.

A report is registered by its payment date (spec/ctr.md § 7): one paid before a purchase already
registered in its period is placed before it, and the later purchases are recomputed. The column lets
the hot path tell, without reading the period's purchases, that a report is in order. Periods registered
before it have no time (null): a report is taken as in order there unless it is dated before the start.

Revision ID: 0005_period_last_payment
Revises: 0004_pharmacy_or_p_number
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_period_last_payment"
down_revision: str | Sequence[str] | None = "0004_pharmacy_or_p_number"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subsidy_periods") as batch:
        batch.add_column(sa.Column("last_paid_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subsidy_periods") as batch:
        batch.drop_column("last_paid_at")
