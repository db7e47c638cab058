"""The audit log names the treatment place a read was about: reads of `/v1/places/{place}` are audited
like a person's, and a place (a no-CVR registrant's name, home address, turnover) is personal data too.

Revision ID: 0014_read_audit_place
Revises: 0013_room_for_updates
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_read_audit_place"
down_revision: str | Sequence[str] | None = "0013_room_for_updates"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("read_audit") as batch:
        batch.add_column(sa.Column("place", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("read_audit") as batch:
        batch.drop_column("place")
