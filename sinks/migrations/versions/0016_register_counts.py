"""Counts kept as the batches are written, so `/monitor` and `/stats` read a few small rows whatever
the number of purchases (`sinks.counts`): `register_minutes` (purchases registered per minute) and
`register_totals` (the register's purchase rows, subsidy, deviating rows, persons, and reporting
obligations by state). The totals start
from what the register holds now, the minutes from its purchases of the last hour; both under slot 0.

Two partial indexes hold only the rows the dashboard counts of two more tables: the parked reports
still waiting for a scale, and the balancing amounts not yet settled.

Revision ID: 0016_register_counts
Revises: 0015_fee_halves_start_alerts
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0016_register_counts"
down_revision: str | Sequence[str] | None = "0015_fee_halves_start_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("replayed_at IS NULL")
OPEN_BALANCE = sa.text("remaining <> 0")
At = sa.DateTime(timezone=True)
STATES = ("open", "rejected_open", "reported", "on_time", "late", "missing", "resolved")
"""`rules.obligations.State` when this revision was written."""


def upgrade() -> None:
    minutes = op.create_table(
        "register_minutes",
        sa.Column("minute", At, nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("purchases", sa.BigInteger(), nullable=False),
        sa.Column("subsidy", sa.BigInteger(), nullable=False),
        sa.Column("deviations", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "slot"),
    )
    totals = op.create_table(
        "register_totals",
        sa.Column("slot", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("purchases", sa.BigInteger(), nullable=False),
        sa.Column("subsidy", sa.BigInteger(), nullable=False),
        sa.Column("deviations", sa.BigInteger(), nullable=False),
        sa.Column("persons", sa.BigInteger(), nullable=False),
        *(sa.Column(f"obligations_{state}", sa.BigInteger(), nullable=False) for state in STATES),
        sa.PrimaryKeyConstraint("slot"),
    )
    op.create_index(
        "ix_parked_messages_waiting",
        "parked_messages",
        ["day"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )
    op.create_index(
        "ix_balances_open",
        "balances",
        ["arose_on"],
        postgresql_where=OPEN_BALANCE,
        sqlite_where=OPEN_BALANCE,
    )

    bind = op.get_bind()
    purchases = sa.table(
        "purchases",
        sa.column("subsidy", sa.BigInteger()),
        sa.column("deviation", sa.BigInteger()),
        sa.column("registered_at", At),
    )
    persons = sa.table("persons", sa.column("alias_of", sa.String()))
    count, subsidy, deviations = bind.execute(
        sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(purchases.c.subsidy), 0),
            sa.func.count().filter(purchases.c.deviation != 0),
        ).select_from(purchases)
    ).one()
    own = bind.execute(
        sa.select(sa.func.count()).select_from(persons).where(persons.c.alias_of.is_(None))
    ).scalar()
    obligations = sa.table("obligations", sa.column("state", sa.String()))
    by_state = dict(
        bind.execute(
            sa.select(obligations.c.state, sa.func.count()).group_by(obligations.c.state)
        ).all()
    )
    op.bulk_insert(
        totals,
        [
            {
                "slot": 0,
                "purchases": int(count),
                "subsidy": int(subsidy),
                "deviations": int(deviations),
                "persons": int(own or 0),
                **{f"obligations_{state}": int(by_state.get(state, 0)) for state in STATES},
            }
        ],
    )
    since = datetime.now(UTC) - timedelta(hours=1)
    recent: dict[datetime, list[int]] = {}
    for at, sub, dev in bind.execute(
        sa.select(purchases.c.registered_at, purchases.c.subsidy, purchases.c.deviation).where(
            purchases.c.registered_at >= since
        )
    ):
        at = at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)
        n = recent.setdefault(at.replace(second=0, microsecond=0), [0, 0, 0])
        n[0], n[1], n[2] = n[0] + 1, n[1] + sub, n[2] + (dev != 0)
    if recent:
        op.bulk_insert(
            minutes,
            [
                {"minute": m, "slot": 0, "purchases": p, "subsidy": s, "deviations": d}
                for m, (p, s, d) in sorted(recent.items())
            ],
        )


def downgrade() -> None:
    op.drop_index("ix_balances_open", table_name="balances")
    op.drop_index("ix_parked_messages_waiting", table_name="parked_messages")
    op.drop_table("register_totals")
    op.drop_table("register_minutes")
