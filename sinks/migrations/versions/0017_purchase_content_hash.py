"""A purchase row carries its report's content hash, so a registered dispensing is known by its purchase
row alone and writes no `processed_messages` row (`sinks.register.RegisterUnitOfWork.known_messages`).
Nullable: the rows registered before keep their processed row, which holds the hash.

Revision ID: 0017_purchase_content_hash
Revises: 0016_register_counts
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_purchase_content_hash"
down_revision: str | Sequence[str] | None = "0016_register_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("purchases", sa.Column("content_hash", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # the registered reports without a processed row of their own get one back first (under the
    # topic's production name: deployments use no prefix)
    op.execute(
        """INSERT INTO processed_messages (message_id, source_topic, outcome, output, processed_at,
          content_hash)
        SELECT p.report_id, 'ctr.dispensings.v1', 'registered', NULL, p.registered_at, p.content_hash
        FROM purchases p
        WHERE p.content_hash IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM processed_messages m WHERE m.message_id = p.report_id)"""
    )
    with op.batch_alter_table("purchases") as batch:
        batch.drop_column("content_hash")
