"""Reporting obligations (order §§ 7-8): one row per reportable fact, with its due time and state; and
the end-of-day compliance summary per reporter.

Revision ID: 0008_obligations
Revises: 0007_treatment_places
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_obligations"
down_revision: str | Sequence[str] | None = "0007_treatment_places"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "obligations",
        sa.Column("obligation_id", sa.String(length=160), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reporter", sa.String(length=40), nullable=False),
        sa.Column("legal_basis", sa.String(length=80), nullable=False),
        sa.Column("person_key", sa.String(length=10), nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("obligation_id"),
    )
    op.create_index("ix_obligations_state_due", "obligations", ["state", "due_at"])
    op.create_index("ix_obligations_event", "obligations", ["event_at"])
    op.create_table(
        "compliance_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reporter", sa.String(length=40), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("resolved", sa.Integer(), nullable=False),
        sa.Column("worst_seconds_late", sa.Integer(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "reporter"),
    )


def downgrade() -> None:
    op.drop_table("compliance_days")
    op.drop_index("ix_obligations_event", table_name="obligations")
    op.drop_index("ix_obligations_state_due", table_name="obligations")
    op.drop_table("obligations")
