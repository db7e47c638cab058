"""The transactional outbox, content hashes of processed messages, and the log each offset belongs to.

Revision ID: 0003_outbox_and_log_ids
Revises: 0002_drop_schema_migrations
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_outbox_and_log_ids"
down_revision: str | Sequence[str] | None = "0002_drop_schema_migrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # A batch's outputs are one large blob, written once and read back at most once: PostgreSQL's
        # default (pglz compression before TOAST) costs the database CPU the worker needs.
        op.execute("ALTER TABLE outbox ALTER COLUMN payload SET STORAGE EXTERNAL")
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.add_column("processed_messages", sa.Column("content_hash", sa.BigInteger(), nullable=True))
    op.add_column("consumer_offsets", sa.Column("log_id", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("consumer_offsets") as batch:
        batch.drop_column("log_id")
    with op.batch_alter_table("processed_messages") as batch:
        batch.drop_column("content_hash")
    op.drop_index("ix_outbox_unsent", table_name="outbox")
    op.drop_table("outbox")
