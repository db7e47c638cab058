"""Treatment relations (order § 5 stk. 2): a doctor has a patient in current treatment at a treatment
place, from the doctor's system; the patient under their internal id, looked up by doctor and patient.

Revision ID: 0009_treatment_relations
Revises: 0008_obligations
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_treatment_relations"
down_revision: str | Sequence[str] | None = "0008_obligations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "treatment_relations",
        sa.Column("person_key", sa.String(length=10), nullable=False),
        sa.Column("authorisation_id", sa.String(length=5), nullable=False),
        sa.Column("sor_id", sa.String(length=18), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_key", "authorisation_id", "sor_id", "valid_from"),
    )
    op.create_index(
        "ix_treatment_relations_doctor",
        "treatment_relations",
        ["authorisation_id", "person_key"],
    )


def downgrade() -> None:
    op.drop_index("ix_treatment_relations_doctor", table_name="treatment_relations")
    op.drop_table("treatment_relations")
