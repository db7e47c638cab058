"""Drop the hand-rolled `schema_migrations` table: Alembic's `alembic_version` records the revision now.

Revision ID: 0002_drop_schema_migrations
Revises: 0001_initial_register
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0002_drop_schema_migrations"
down_revision: str | Sequence[str] | None = "0001_initial_register"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("schema_migrations")


def downgrade() -> None:
    """Recreate it as the hand-rolled migrator left it: the schema is its version 1 again."""
    schema_migrations = op.create_table(
        "schema_migrations",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
        sa.UniqueConstraint("name"),
    )
    op.bulk_insert(
        schema_migrations,
        [{"version": 1, "name": "initial_register", "applied_at": datetime.now(UTC)}],
    )
