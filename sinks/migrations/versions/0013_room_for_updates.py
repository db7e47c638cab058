"""Room on each page for the rows a batch updates in place.

A period's saldo and latest payment change with every purchase, and neither is indexed: with free room
on the row's page PostgreSQL writes the new version beside the old one without touching the primary
key's index (a heap-only update). With the default fill factor (100) the pages are full, so every
update also inserted an index entry. New pages are filled to 80 %; pages already written stay as they
are until the table is rewritten. SQLite has no fill factor: nothing changes there.

Revision ID: 0013_room_for_updates
Revises: 0012_partial_obligation_indexes
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013_room_for_updates"
down_revision: str | Sequence[str] | None = "0012_partial_obligation_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPDATED_IN_PLACE = ("subsidy_periods",)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in UPDATED_IN_PLACE:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in UPDATED_IN_PLACE:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
