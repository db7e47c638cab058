"""The treatment-place register's tables (SQLAlchemy Core), beside the CTR's on the same `metadata`.

Companies, their units (one per address, by SOR id) and practitioners; the treatment-place information
in versions (every change a new row, the previous kept); notifications of exempt places; each place's
state with its history; the fee ledger per place and year, fee tables loaded per year, and the last SOR snapshot imported. Money columns are BigInteger øre.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from sinks.tables import metadata

Money = BigInteger
SorId = String(20)
CompanyKey = String(64)

companies = Table(
    "place_companies",
    metadata,
    Column("company_key", CompanyKey, primary_key=True),  # the CVR number, or the registrant's id
    Column("cvr", String(8)),
    Column("form", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("street", String(200), nullable=False),
    Column("postal_code", String(4), nullable=False),
    Column("city", String(200), nullable=False),
    Column("phone", String(20)),
    Column("website", String(200)),
    Column("sor_id", SorId),
    Column("owner_municipality_code", Integer),
    Column("owner_region_code", Integer),
    Column("message_id", String(64), nullable=False),  # the event that wrote this version of it
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

units = Table(
    "place_units",
    metadata,
    Column("sor_id", SorId, primary_key=True),
    Column("company_key", CompanyKey, nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit_type", String(200), nullable=False),
    Column("postal_address", Text, nullable=False),  # JSON: street, postal_code, city
    Column("visiting_address", Text, nullable=False),  # the postal one when none was given
    Column("activity_address", Text, nullable=False),  # the visiting one when none was given
    Column("phone", String(20)),
    Column("website", String(200)),
    Column("main_speciality", String(200)),
    Column("sub_specialities", Text, nullable=False),  # JSON list
    Column("parent_sor_id", SorId),
    Column("care_services", Text, nullable=False),  # JSON list of §§ 83-87
    Column("treatment_starts_on", Date),
    Column("closed_on", Date),
    Column("replaces_sor_id", SorId),
    Column("replaced_by_sor_id", SorId),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_place_units_company", units.c.company_key)

practitioners = Table(
    "place_practitioners",
    metadata,
    Column("sor_id", SorId, primary_key=True),
    Column("authorisation_id", String(10), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("ydernummer", String(6)),
    Column("profession", String(20), nullable=False),
    Column(
        "active", Boolean, nullable=False
    ),  # False once a change of the unit no longer names them
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

information = Table(
    "place_information",
    metadata,
    Column("sor_id", SorId, primary_key=True),
    Column("version", Integer, primary_key=True),  # 1, 2, ...: every change keeps the previous
    Column("category", Integer),  # None: a unit delivering only §§ 83-87 care (migration 0015)
    Column("fee_email", String(254)),
    Column("ean", String(13)),
    Column("turnover_year", Integer),
    Column("turnover", Money),
    Column("responsible_authorisation_id", String(10)),
    Column("fee_free", String(40)),
    Column("message_id", String(64), nullable=False),
    Column("valid_from", DateTime(timezone=True), nullable=False),  # the event's time
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

notifications = Table(
    "place_notifications",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("company_key", CompanyKey, nullable=False),
    Column("sor_id", SorId),
    Column("exemption", String(40), nullable=False),
    Column("treatment_starts_on", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)
Index("ix_place_notifications_company", notifications.c.company_key)

states = Table(
    "place_states",
    metadata,
    Column("sor_id", SorId, primary_key=True),
    Column("company_key", CompanyKey, nullable=False),
    Column("state", String(16), nullable=False),
    Column("since", Date, nullable=False),
    Column("reference_number", String(40), unique=True),  # issued when first registered
    Column("first_registered_on", Date),
    Column("version", Integer),  # the information version in force
    Column("history_seq", Integer, nullable=False),  # the latest `place_state_history` row
    Column("treatment_stopped_on", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # when `treatment_before_registration` was raised: once per place (migration 0015); never cleared
    Column("start_alerted_at", DateTime(timezone=True), info={"once": True}),
)
Index("ix_place_states_company", states.c.company_key)

state_history = Table(
    "place_state_history",
    metadata,
    Column("sor_id", SorId, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("since", Date, nullable=False),
    Column("event", String(40), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

fees = Table(
    "place_fees",
    metadata,
    Column("sor_id", SorId, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("company_key", CompanyKey, nullable=False),
    Column("reference_number", String(40)),
    Column("category", Integer),  # None: a care-only unit
    Column("turnover", Money),
    Column("band", String(20), nullable=False),  # rules.treatment_places.fees.Band, or why none
    Column("amount", Money),  # None: no fee table or no turnover for the year (never a guess)
    Column("invoice_channel", String(16)),
    Column("invoice_address", String(254)),
    Column("computed_at", DateTime(timezone=True), nullable=False),
)
Index("ix_place_fees_year", fees.c.year)

fee_tables = Table(
    "place_fee_tables",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("de_minimis_limit", Money),  # None: no limit that year
    Column("fee_1", Money, nullable=False),
    Column("fee_2", Money, nullable=False),
    Column("fee_3", Money, nullable=False),
    Column("fee_4", Money, nullable=False),
    Column("fee_5", Money, nullable=False),
    Column("care_only_fee_free", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    # the half fees as STPS published them (migration 0015); None: the half rounded up to whole kroner
    *(Column(f"half_{c}", Money) for c in range(1, 6)),
)
"""Fee tables loaded for years the bundled ones do not cover (`reghub fees load`); a loaded year wins."""

sor_snapshot = Table(
    "place_sor_snapshot",
    metadata,
    Column("sor_id", SorId, primary_key=True),
    Column("digest", String(12), nullable=False),  # rules.treatment_places.sor.SorUnit.digest
    Column("unit", Text, nullable=False),  # JSON: the unit's columns as the last import read them
    Column("imported_at", DateTime(timezone=True), nullable=False),
)
"""The last SOR snapshot imported (`reghub sor import`), the one the next import is diffed against."""

PLACE_TABLES: tuple[Table, ...] = (
    companies,
    units,
    practitioners,
    information,
    notifications,
    states,
    state_history,
    fees,
    fee_tables,
    sor_snapshot,
)
