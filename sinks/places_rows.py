"""Typed rows of the treatment-place register's tables (`sinks.places_tables`), one `NamedTuple` per table,
its fields the table's columns in order (checked by tests/test_rows.py); values only, no SQL."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, NamedTuple


class CompanyRow(NamedTuple):
    company_key: str
    cvr: str | None
    form: str
    name: str
    street: str
    postal_code: str
    city: str
    phone: str | None
    website: str | None
    sor_id: str | None
    owner_municipality_code: int | None
    owner_region_code: int | None
    message_id: str
    updated_at: datetime


class UnitRow(NamedTuple):
    sor_id: str
    company_key: str
    name: str
    unit_type: str
    postal_address: str
    visiting_address: str
    activity_address: str
    phone: str | None
    website: str | None
    main_speciality: str | None
    sub_specialities: str
    parent_sor_id: str | None
    care_services: str
    treatment_starts_on: date | None
    closed_on: date | None
    replaces_sor_id: str | None
    replaced_by_sor_id: str | None
    updated_at: datetime


class PractitionerRow(NamedTuple):
    sor_id: str
    authorisation_id: str
    name: str
    ydernummer: str | None
    profession: str
    active: bool
    updated_at: datetime


class InformationRow(NamedTuple):
    sor_id: str
    version: int
    category: int | None  # None: a care-only unit (no category, spec § 3)
    fee_email: str | None
    ean: str | None
    turnover_year: int | None
    turnover: int | None
    responsible_authorisation_id: str | None
    fee_free: str | None
    message_id: str
    valid_from: datetime
    recorded_at: datetime


class NotificationRow(NamedTuple):
    message_id: str
    company_key: str
    sor_id: str | None
    exemption: str
    treatment_starts_on: date
    recorded_at: datetime


class StateRow(NamedTuple):
    sor_id: str
    company_key: str
    state: str
    since: date
    reference_number: str | None
    first_registered_on: date | None
    version: int | None
    history_seq: int
    treatment_stopped_on: date | None
    updated_at: datetime
    start_alerted_at: datetime | None = None  # `treatment_before_registration` raised (once)


class StateHistoryRow(NamedTuple):
    sor_id: str
    seq: int
    state: str
    since: date
    event: str
    message_id: str
    recorded_at: datetime


class FeeRow(NamedTuple):
    sor_id: str
    year: int
    company_key: str
    reference_number: str | None
    category: int | None
    turnover: int | None
    band: str
    amount: int | None
    invoice_channel: str | None
    invoice_address: str | None
    computed_at: datetime


class FeeTableRow(NamedTuple):
    year: int
    de_minimis_limit: int | None
    fee_1: int
    fee_2: int
    fee_3: int
    fee_4: int
    fee_5: int
    care_only_fee_free: bool
    source: str
    loaded_at: datetime
    half_1: int | None = None  # the half fees as STPS published them; None: the rounded-up half
    half_2: int | None = None
    half_3: int | None = None
    half_4: int | None = None
    half_5: int | None = None


class SorSnapshotRow(NamedTuple):
    sor_id: str
    digest: str
    unit: str
    imported_at: datetime


KEY_WIDTH: dict[type, int] = {
    CompanyRow: 1,
    UnitRow: 1,
    PractitionerRow: 2,
    InformationRow: 2,
    NotificationRow: 1,
    StateRow: 1,
    StateHistoryRow: 2,
    FeeRow: 2,
    FeeTableRow: 1,
    SorSnapshotRow: 1,
}
"""How many leading fields of each row are its table's primary key (checked by tests/test_rows.py)."""

PlaceRows = dict[type, dict[tuple[Any, ...], Any]]
"""The place register's rows as a store loaded them: row type -> primary key -> row."""


def key_of(row: Any) -> tuple[Any, ...]:
    """A place row's primary key."""
    return tuple(row[: KEY_WIDTH[type(row)]])


READ: tuple[type, ...] = (
    CompanyRow,
    UnitRow,
    PractitionerRow,
    InformationRow,
    StateRow,
    FeeRow,
    FeeTableRow,
    StateHistoryRow,
)
"""The rows a handler reads back (notifications are only written)."""
