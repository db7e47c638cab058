"""Persons whose number changes (order § 7 stk. 5, § 3 stk. 3): aliases, merges, deaths and custody.

A person is kept under the key the register first knew them by: their internal id. Every later number is
a `persons` row of its own whose `alias_of` names that id, so the row a report under the new number
locks is the same row a renumbering inserts, and the two cannot pass each other unseen. A merge of two
persons with history is recorded in `person_merges`; custody (parent → child) comes from the CPR feed.

Revision ID: 0006_person_identity
Revises: 0005_period_last_payment
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_person_identity"
down_revision: str | Sequence[str] | None = "0005_period_last_payment"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("alias_of", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("alias_from", sa.String(length=10), nullable=True))
        batch.add_column(sa.Column("alias_since", sa.Date(), nullable=True))
        batch.add_column(sa.Column("died_on", sa.Date(), nullable=True))
    op.create_table(
        "person_merges",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("person_key", sa.String(length=10), nullable=False),
        sa.Column("merged_key", sa.String(length=10), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_person_merges_person", "person_merges", ["person_key"])
    op.create_table(
        "custody",
        sa.Column("parent_key", sa.String(length=10), nullable=False),
        sa.Column("child_key", sa.String(length=10), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("parent_key", "child_key", "valid_from"),
    )
    op.create_index("ix_custody_child", "custody", ["child_key"])


def downgrade() -> None:
    op.drop_index("ix_custody_child", table_name="custody")
    op.drop_table("custody")
    op.drop_index("ix_person_merges_person", table_name="person_merges")
    op.drop_table("person_merges")
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("died_on")
        batch.drop_column("alias_since")
        batch.drop_column("alias_from")
        batch.drop_column("alias_of")
