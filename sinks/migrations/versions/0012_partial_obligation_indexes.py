"""The obligations' two secondary indexes hold only the rows their queries read.

Most obligations are written by a report that came before its payment's announcement (`reported`: no
event time, no due time). The watch reads open obligations by due time and the day's closing reads them
by event time, so neither index needs those rows; leaving them out saves two index insertions a report
(a sixth of the obligations' write, measured on the dispensing benchmark). The predicates are "IS NOT
NULL" of the column the queries compare: a comparison implies it, so PostgreSQL and SQLite both use the
indexes with bound parameters (SQLite would not prove a predicate on the state list).

Revision ID: 0012_partial_obligation_indexes
Revises: 0011_outbox_lz4
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_partial_obligation_indexes"
down_revision: str | Sequence[str] | None = "0011_outbox_lz4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE = sa.text("due_at IS NOT NULL")
TIMED = sa.text("event_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_obligations_event", table_name="obligations")
    op.drop_index("ix_obligations_state_due", table_name="obligations")
    op.create_index(
        "ix_obligations_state_due",
        "obligations",
        ["state", "due_at"],
        postgresql_where=DUE,
        sqlite_where=DUE,
    )
    op.create_index(
        "ix_obligations_event",
        "obligations",
        ["event_at"],
        postgresql_where=TIMED,
        sqlite_where=TIMED,
    )


def downgrade() -> None:
    op.drop_index("ix_obligations_event", table_name="obligations")
    op.drop_index("ix_obligations_state_due", table_name="obligations")
    op.create_index("ix_obligations_state_due", "obligations", ["state", "due_at"])
    op.create_index("ix_obligations_event", "obligations", ["event_at"])
