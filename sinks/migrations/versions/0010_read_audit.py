"""The audit log of reads of personal data through the API (order § 5): who, role, whose data, which
fields, when, and the outcome.

Revision ID: 0010_read_audit
Revises: 0009_treatment_relations
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_read_audit"
down_revision: str | Sequence[str] | None = "0009_treatment_relations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "read_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("person_key", sa.String(length=10), nullable=True),
        sa.Column("resource", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_read_audit_person_at", "read_audit", ["person_key", "at"])
    op.create_index("ix_read_audit_at", "read_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_read_audit_at", table_name="read_audit")
    op.drop_index("ix_read_audit_person_at", table_name="read_audit")
    op.drop_table("read_audit")
