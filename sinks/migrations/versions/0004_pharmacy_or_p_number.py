"""A purchase names its pharmacy number and/or its site's P-number (§ 3 stk. 1 nr. 1): both nullable.

Revision ID: 0004_pharmacy_or_p_number
Revises: 0003_outbox_and_log_ids
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_pharmacy_or_p_number"
down_revision: str | Sequence[str] | None = "0003_outbox_and_log_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("purchases") as batch:
        batch.alter_column("pharmacy_number", existing_type=sa.String(length=5), nullable=True)
        batch.alter_column(
            "pharmacy_site_p_number", existing_type=sa.String(length=10), nullable=True
        )


def downgrade() -> None:
    """Fails if a purchase names only one of them: such a register cannot go back."""
    with op.batch_alter_table("purchases") as batch:
        batch.alter_column("pharmacy_number", existing_type=sa.String(length=5), nullable=False)
        batch.alter_column(
            "pharmacy_site_p_number", existing_type=sa.String(length=10), nullable=False
        )
