"""The treatment-place register (behandlingsstedsregistret) beside the CTR's: companies, units (by SOR id)
and practitioners, treatment-place information in versions, notifications of exempt places, each
place's state with its history, the fee ledger per place and year, fee tables loaded per year, and the last SOR snapshot imported
(spec/treatment-places.md).

Revision ID: 0007_treatment_places
Revises: 0006_person_identity
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_treatment_places"
down_revision: str | Sequence[str] | None = "0006_person_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "place_companies",
        sa.Column("company_key", sa.String(length=64), nullable=False),
        sa.Column("cvr", sa.String(length=8), nullable=True),
        sa.Column("form", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("street", sa.String(length=200), nullable=False),
        sa.Column("postal_code", sa.String(length=4), nullable=False),
        sa.Column("city", sa.String(length=200), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("website", sa.String(length=200), nullable=True),
        sa.Column("sor_id", sa.String(length=20), nullable=True),
        sa.Column("owner_municipality_code", sa.Integer(), nullable=True),
        sa.Column("owner_region_code", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("company_key"),
    )
    op.create_table(
        "place_units",
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column("company_key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_type", sa.String(length=200), nullable=False),
        sa.Column("postal_address", sa.Text(), nullable=False),
        sa.Column("visiting_address", sa.Text(), nullable=False),
        sa.Column("activity_address", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("website", sa.String(length=200), nullable=True),
        sa.Column("main_speciality", sa.String(length=200), nullable=True),
        sa.Column("sub_specialities", sa.Text(), nullable=False),
        sa.Column("parent_sor_id", sa.String(length=20), nullable=True),
        sa.Column("care_services", sa.Text(), nullable=False),
        sa.Column("treatment_starts_on", sa.Date(), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("replaces_sor_id", sa.String(length=20), nullable=True),
        sa.Column("replaced_by_sor_id", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sor_id"),
    )
    op.create_index("ix_place_units_company", "place_units", ["company_key"])
    op.create_table(
        "place_practitioners",
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column("authorisation_id", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ydernummer", sa.String(length=6), nullable=True),
        sa.Column("profession", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sor_id", "authorisation_id"),
    )
    op.create_table(
        "place_information",
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.Integer(), nullable=False),
        sa.Column("fee_email", sa.String(length=254), nullable=True),
        sa.Column("ean", sa.String(length=13), nullable=True),
        sa.Column("turnover_year", sa.Integer(), nullable=True),
        sa.Column("turnover", sa.BigInteger(), nullable=True),
        sa.Column("responsible_authorisation_id", sa.String(length=10), nullable=True),
        sa.Column("fee_free", sa.String(length=40), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sor_id", "version"),
    )
    op.create_table(
        "place_notifications",
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("company_key", sa.String(length=64), nullable=False),
        sa.Column("sor_id", sa.String(length=20), nullable=True),
        sa.Column("exemption", sa.String(length=40), nullable=False),
        sa.Column("treatment_starts_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_place_notifications_company", "place_notifications", ["company_key"])
    op.create_table(
        "place_states",
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column("company_key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("reference_number", sa.String(length=40), nullable=True),
        sa.Column("first_registered_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("history_seq", sa.Integer(), nullable=False),
        sa.Column("treatment_stopped_on", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sor_id"),
        sa.UniqueConstraint("reference_number"),
    )
    op.create_index("ix_place_states_company", "place_states", ["company_key"])
    op.create_table(
        "place_state_history",
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sor_id", "seq"),
    )
    op.create_table(
        "place_fees",
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("company_key", sa.String(length=64), nullable=False),
        sa.Column("reference_number", sa.String(length=40), nullable=True),
        sa.Column("category", sa.Integer(), nullable=False),
        sa.Column("turnover", sa.BigInteger(), nullable=True),
        sa.Column("band", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("invoice_channel", sa.String(length=16), nullable=True),
        sa.Column("invoice_address", sa.String(length=254), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sor_id", "year"),
    )
    op.create_index("ix_place_fees_year", "place_fees", ["year"])
    op.create_table(
        "place_fee_tables",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("de_minimis_limit", sa.BigInteger(), nullable=True),
        sa.Column("fee_1", sa.BigInteger(), nullable=False),
        sa.Column("fee_2", sa.BigInteger(), nullable=False),
        sa.Column("fee_3", sa.BigInteger(), nullable=False),
        sa.Column("fee_4", sa.BigInteger(), nullable=False),
        sa.Column("fee_5", sa.BigInteger(), nullable=False),
        sa.Column("care_only_fee_free", sa.Boolean(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "place_sor_snapshot",
        sa.Column("sor_id", sa.String(length=20), nullable=False),
        sa.Column("digest", sa.String(length=12), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sor_id"),
    )


def downgrade() -> None:
    op.drop_table("place_sor_snapshot")
    op.drop_table("place_fee_tables")
    op.drop_index("ix_place_fees_year", table_name="place_fees")
    op.drop_table("place_fees")
    op.drop_table("place_state_history")
    op.drop_index("ix_place_states_company", table_name="place_states")
    op.drop_table("place_states")
    op.drop_index("ix_place_notifications_company", table_name="place_notifications")
    op.drop_table("place_notifications")
    op.drop_table("place_information")
    op.drop_table("place_practitioners")
    op.drop_index("ix_place_units_company", table_name="place_units")
    op.drop_table("place_units")
    op.drop_table("place_companies")
