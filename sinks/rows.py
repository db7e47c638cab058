"""Typed rows of the register's tables: one `NamedTuple` per table, its fields the table's columns in order;
and the other values handlers return: an outgoing message (`Outgoing`), an obligation as its row.

The columns are defined once, here (and checked against `sinks.tables` by the tests): a row is a tuple in
column order, so PostgreSQL's `COPY` takes it as it is and SQLite gets `row._asdict()`. Values only: no
SQL, no engine (handlers import this module).
"""

from __future__ import annotations

from dataclasses import field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from rules.obligations import Obligation
from rules.values import value


@value
class Outgoing:
    """A message to publish: a handler's output, kept in the outbox and sent by the relay."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = field(default=())


def utc(at: datetime | None) -> datetime | None:
    """A time as the register stores it: in UTC. SQLite keeps no offset, so a time read back without
    one is UTC, and a time written is converted to UTC first."""
    if at is None or at.tzinfo is UTC:  # most are in UTC already (the hub's clock, broker times)
        return at
    return at.astimezone(UTC) if at.tzinfo is not None else at.replace(tzinfo=UTC)


class PersonRow(NamedTuple):
    person_key: str
    birth_date: date
    current_period_start: date | None
    has_extras: bool
    updated_at: datetime
    alias_of: str | None = None
    alias_from: str | None = None
    alias_since: date | None = None
    died_on: date | None = None


class PersonMergeRow(NamedTuple):
    message_id: str
    person_key: str
    merged_key: str
    effective_on: date
    details: str
    merged_at: datetime


class ObligationRow(NamedTuple):
    obligation_id: str
    kind: str
    reporter: str
    legal_basis: str
    person_key: str
    event_at: datetime | None
    due_at: datetime | None
    arrived_at: datetime | None
    state: str
    updated_at: datetime


def obligation_of(r: Any) -> Obligation:
    """An obligation as the rules see it, from its row (an `ObligationRow` or a result row)."""
    return Obligation(
        r.obligation_id,
        r.kind,
        r.reporter,
        r.legal_basis,
        r.person_key,
        utc(r.event_at),
        utc(r.due_at),
        utc(r.arrived_at),
        r.state,
    )


def obligation_row(o: Obligation, now: datetime) -> ObligationRow:
    """The row that keeps an obligation, updated `now`."""
    return ObligationRow(
        o.obligation_id,
        o.kind,
        o.reporter,
        o.legal_basis,
        o.person_key,
        utc(o.event_at),
        utc(o.due_at),
        utc(o.arrived_at),
        o.state,
        now,
    )


class ComplianceRow(NamedTuple):
    day: date
    reporter: str
    on_time: int
    late: int
    missing: int
    resolved: int
    worst_seconds_late: int
    closed_at: datetime


class CustodyRow(NamedTuple):
    parent_key: str
    child_key: str
    valid_from: date
    valid_to: date | None
    updated_at: datetime


class PeriodRow(NamedTuple):
    person_key: str
    period_start: date
    period_end: date
    previous_period_end: date | None
    under18: bool
    saldo: int
    last_paid_at: datetime | None


class PurchaseRow(NamedTuple):
    """A registered dispensing (§ 3 stk. 1 nr. 1-10) and the register's decision on it; `id` is the
    database's."""

    report_id: str
    person_key: str
    kind: str
    return_of: str | None
    pharmacy_number: str | None
    pharmacy_site_p_number: str | None
    dispensing_id: str
    ordination_id: str
    paid_or_invoiced_at: datetime
    day: date
    lines: str
    period_start: date | None
    period_end: date | None
    previous_period_end: date | None
    under18: bool | None
    terminal: bool
    basis: int
    subsidy_entitled: int
    balancing_applied: int
    subsidy: int
    health_supplement: int
    rights_based: int
    citizen_pays: int
    deferred_to_agreement: int
    saldo_after: int
    subsidised: bool
    remaining_balancing: int
    granted_subsidy: int | None
    deviation: int
    returned_basis: int
    status: str
    source_partition: int
    source_offset: int
    registered_at: datetime
    content_hash: int | None = None  # the report's (`streams.decode.content_hash`)


class ProcessedRow(NamedTuple):
    message_id: str
    source_topic: str
    outcome: str
    output: bytes | None
    processed_at: datetime
    content_hash: int | None


class OffsetRow(NamedTuple):
    group_id: str
    topic: str
    partition: int
    next_offset: int
    updated_at: datetime
    log_id: str | None


class CorrectionRow(NamedTuple):
    message_id: str
    person_key: str
    action: str
    report_id: str | None
    ordered_by: str
    reported_by: str
    amount: int | None
    received_at: datetime


class ScaleRow(NamedTuple):
    effective_from: date
    valid_to: date | None
    t1: int
    t2: int
    t3: int
    t4: int | None
    t4_child: int | None
    own_payment_cap: int | None
    source: str
    loaded_at: datetime


class ParkedRow(NamedTuple):
    message_id: str
    source_topic: str
    day: date
    reason: str
    key: bytes | None
    value: bytes
    parked_at: datetime
    replayed_at: datetime | None


class GrantRow(NamedTuple):
    person_key: str
    grant_id: str
    kind: str
    drug_id: str | None
    valid_from: date
    valid_to: date
    updated_at: datetime


class SupplementRow(NamedTuple):
    person_key: str
    decision_id: str
    kind: str
    municipality_code: int
    percentage: Decimal | None
    valid_from: date
    valid_to: date | None
    updated_at: datetime


class BalanceRow(NamedTuple):
    balance_id: str
    person_key: str
    amount: int
    remaining: int
    arose_on: date
    arose_in_period: date | None
    origin: str
    skip_once: bool
    settled_at_report: str | None
    updated_at: datetime


class AgreementRow(NamedTuple):
    person_key: str
    agreement_id: str
    pharmacy_number: str
    entered_on: date
    monthly_rate: int
    rates: int
    ended_on: date | None
    ended_by_default: bool
    deferred_total: int
    settled: bool
    updated_at: datetime


class TreatmentRelationRow(NamedTuple):
    """`tables.treatment_relations`: a doctor's relation to a patient (their internal id) at a place."""

    person_key: str
    authorisation_id: str
    sor_id: str
    valid_from: date
    valid_to: date | None
    updated_at: datetime
