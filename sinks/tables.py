"""The register's tables (SQLAlchemy Core): § 3 of BEK 764/2025 as rows, plus the hub's own bookkeeping.

PostgreSQL in production, SQLite for the embedded run; types are chosen to mean the same on both.
Money columns are BigInteger øre.
"""

from __future__ import annotations

from typing import get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    text,
)

from rules.obligations import State as ObligationState

metadata = MetaData()

OBLIGATION_STATES: tuple[str, ...] = get_args(ObligationState)

Money = BigInteger
PersonKeyCol = String(10)

persons = Table(
    "persons",
    metadata,
    Column("person_key", PersonKeyCol, primary_key=True),
    Column("birth_date", Date, nullable=False),
    Column("current_period_start", Date),
    Column("has_extras", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # another number of the person keyed `alias_of` (their internal id), since `alias_since`; it replaced
    # `alias_from` (order § 7 stk. 5, § 3 stk. 3). Null on the person's own row.
    Column("alias_of", PersonKeyCol),
    Column("alias_from", PersonKeyCol),
    Column("alias_since", Date),
    Column("died_on", Date),
)

person_merges = Table(
    "person_merges",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("person_key", PersonKeyCol, nullable=False),  # the person kept
    Column("merged_key", PersonKeyCol, nullable=False),  # the person merged into it, now an alias
    Column("effective_on", Date, nullable=False),
    Column("details", Text, nullable=False),  # JSON: periods and balancing amounts before and after
    Column("merged_at", DateTime(timezone=True), nullable=False),
)
Index("ix_person_merges_person", person_merges.c.person_key)

custody = Table(
    "custody",
    metadata,
    Column("parent_key", PersonKeyCol, primary_key=True),
    Column("child_key", PersonKeyCol, primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index("ix_custody_child", custody.c.child_key)

obligations = Table(
    "obligations",
    metadata,
    Column("obligation_id", String(160), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("reporter", String(40), nullable=False),
    Column("legal_basis", String(80), nullable=False),
    Column("person_key", PersonKeyCol, nullable=False),
    Column("event_at", DateTime(timezone=True)),
    Column("due_at", DateTime(timezone=True)),
    Column("arrived_at", DateTime(timezone=True)),
    Column("state", String(16), nullable=False),  # rules.obligations.State
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# Partial: a report that came before its payment (`reported`) is in neither (migration 0012)
_DUE = text("due_at IS NOT NULL")
_TIMED = text("event_at IS NOT NULL")
Index(
    "ix_obligations_state_due",
    obligations.c.state,
    obligations.c.due_at,
    postgresql_where=_DUE,
    sqlite_where=_DUE,
)
Index("ix_obligations_event", obligations.c.event_at, postgresql_where=_TIMED, sqlite_where=_TIMED)

compliance_days = Table(
    "compliance_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("reporter", String(40), primary_key=True),
    Column("on_time", Integer, nullable=False),
    Column("late", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    Column("resolved", Integer, nullable=False),
    Column("worst_seconds_late", Integer, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
)

subsidy_periods = Table(
    "subsidy_periods",
    metadata,
    Column("person_key", PersonKeyCol, primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("period_end", Date, nullable=False),
    Column("previous_period_end", Date),
    Column("under18", Boolean, nullable=False),
    Column("saldo", Money, nullable=False),
    Column("last_paid_at", DateTime(timezone=True)),  # the latest payment registered in it
)

purchases = Table(
    "purchases",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("report_id", String(64), nullable=False, unique=True),
    Column("person_key", PersonKeyCol, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("return_of", String(64)),
    # the pharmacy number and/or the site's P-number (§ 3 stk. 1 nr. 1): at least one of them
    Column("pharmacy_number", String(5)),
    Column("pharmacy_site_p_number", String(10)),
    Column("dispensing_id", String(64), nullable=False),
    Column("ordination_id", String(64), nullable=False),
    Column("paid_or_invoiced_at", DateTime(timezone=True), nullable=False),
    Column("day", Date, nullable=False),
    Column("lines", Text, nullable=False),  # JSON: expenditure per medicine, § 3 stk. 1 nr. 8
    Column("period_start", Date),
    Column("period_end", Date),
    Column("previous_period_end", Date),
    Column("under18", Boolean),
    Column("terminal", Boolean, nullable=False),
    Column("basis", Money, nullable=False),
    Column("subsidy_entitled", Money, nullable=False),
    Column("balancing_applied", Money, nullable=False),
    Column("subsidy", Money, nullable=False),
    Column("health_supplement", Money, nullable=False),
    Column("rights_based", Money, nullable=False),
    Column("citizen_pays", Money, nullable=False),
    Column("deferred_to_agreement", Money, nullable=False),
    Column("saldo_after", Money, nullable=False),
    Column("subsidised", Boolean, nullable=False),
    Column("remaining_balancing", Money, nullable=False),  # § 3 stk. 1 nr. 10 after this purchase
    Column("granted_subsidy", Money),
    Column("deviation", Money, nullable=False),
    Column("returned_basis", Money, nullable=False),
    Column("status", String(12), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    # the report's content hash (`processed_messages.content_hash`): a registered report is known by
    # its purchase row, and a resend of its id with other content is a conflict. NULL on rows
    # registered before the column, whose processed_messages row holds it.
    Column("content_hash", BigInteger),
)
Index("ix_purchases_person_period", purchases.c.person_key, purchases.c.period_start)

processed_messages = Table(
    "processed_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("source_topic", String(120), primary_key=True),
    Column("outcome", String(12), nullable=False),
    Column("output", LargeBinary),  # the decision published, to publish again on redelivery
    Column("processed_at", DateTime(timezone=True), nullable=False),
    # 64 bits of BLAKE2b over the canonical JSON: a resend with other content is a conflict, not a copy
    Column("content_hash", BigInteger),
)

grants = Table(
    "grants",
    metadata,
    Column("person_key", PersonKeyCol, primary_key=True),
    Column("grant_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("drug_id", String(40)),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

supplements = Table(
    "supplements",
    metadata,
    Column("person_key", PersonKeyCol, primary_key=True),
    Column("decision_id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("municipality_code", Integer, nullable=False),
    Column("percentage", Numeric(5, 2)),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

balances = Table(
    "balances",
    metadata,
    Column("balance_id", String(160), primary_key=True),
    Column("person_key", PersonKeyCol, nullable=False, index=True),
    Column("amount", Money, nullable=False),
    Column("remaining", Money, nullable=False),
    Column("arose_on", Date, nullable=False),
    Column("arose_in_period", Date),
    Column("origin", String(80), nullable=False),
    Column("skip_once", Boolean, nullable=False),
    Column("settled_at_report", String(64)),  # the purchase where the last of it was settled
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# The amounts not yet settled: counted by the dashboard. A literal predicate (no parameter), which the
# query repeats word for word, so that SQLite too can use the index.
OPEN_BALANCE = text("remaining <> 0")
Index(
    "ix_balances_open",
    balances.c.arose_on,
    postgresql_where=OPEN_BALANCE,
    sqlite_where=OPEN_BALANCE,
)

deferral_agreements = Table(
    "deferral_agreements",
    metadata,
    Column("person_key", PersonKeyCol, primary_key=True),
    Column("agreement_id", String(64), primary_key=True),
    Column("pharmacy_number", String(5), nullable=False),
    Column("entered_on", Date, nullable=False),
    Column("monthly_rate", Money, nullable=False),
    Column("rates", Integer, nullable=False),
    Column("ended_on", Date),
    Column("ended_by_default", Boolean, nullable=False),
    Column("deferred_total", Money, nullable=False),
    Column("settled", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

corrections = Table(
    "corrections",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("person_key", PersonKeyCol, nullable=False, index=True),
    Column("action", String(12), nullable=False),
    Column("report_id", String(64)),
    Column("ordered_by", String(8), nullable=False),
    Column("reported_by", String(64), nullable=False),
    Column("amount", Money),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

subsidy_scales = Table(
    "subsidy_scales",
    metadata,
    Column("effective_from", Date, primary_key=True),
    Column("valid_to", Date),
    Column("t1", Money, nullable=False),
    Column("t2", Money, nullable=False),
    Column("t3", Money, nullable=False),
    Column("t4", Money),
    Column("t4_child", Money),
    Column("own_payment_cap", Money),
    Column("source", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

parked_messages = Table(
    "parked_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("source_topic", String(120), primary_key=True),
    Column("day", Date, nullable=False),
    Column("reason", Text, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False),
    Column("replayed_at", DateTime(timezone=True)),
)
# The reports still waiting for a scale: counted by the dashboard, taken by a scale's replay.
_WAITING = text("replayed_at IS NULL")
Index(
    "ix_parked_messages_waiting",
    parked_messages.c.day,
    postgresql_where=_WAITING,
    sqlite_where=_WAITING,
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group_id", String(120), primary_key=True),
    Column("topic", String(120), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # `<cluster id>/<topic id>` of the log the offset was read from (streams/log_identity.py)
    Column("log_id", String(200)),
)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("records", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # sinks/outbox.py: the batch's outputs, framed
    Column("sent_at", DateTime(timezone=True)),
)
Index(
    "ix_outbox_unsent",
    outbox.c.id,
    postgresql_where=outbox.c.sent_at.is_(None),
    sqlite_where=outbox.c.sent_at.is_(None),
)

# Order § 5 stk. 2: a doctor (authorisation id) has the patient (their internal id) in current treatment
# at a treatment place (SOR id) from `valid_from`; `valid_to` null while open-ended.
treatment_relations = Table(
    "treatment_relations",
    metadata,
    Column("person_key", PersonKeyCol, primary_key=True),
    Column("authorisation_id", String(5), primary_key=True),
    Column("sor_id", String(18), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("valid_to", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
Index(
    "ix_treatment_relations_doctor",
    treatment_relations.c.authorisation_id,
    treatment_relations.c.person_key,
)

# The audit log of reads of personal data through the API (order § 5; sinks/read_audit.py).
read_audit = Table(
    "read_audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("subject", String(200), nullable=False),  # the token's `sub`; "-" without a valid token
    Column("role", String(16)),
    Column("actor", String(64)),  # pharmacy number, authorisation id, or the subject
    Column("person_key", PersonKeyCol),  # whose data: the internal id
    Column("place", String(40)),  # or which treatment place: as asked (SOR id or reference number)
    Column("resource", String(16), nullable=False),
    Column("purpose", String(32)),
    Column("fields", Text, nullable=False),  # JSON list of the fields served (empty when refused)
    Column("outcome", String(8), nullable=False),  # allowed | refused
    Column("status", Integer, nullable=False),
    Column("reason", Text),
)
Index("ix_read_audit_person_at", read_audit.c.person_key, read_audit.c.at)
Index("ix_read_audit_at", read_audit.c.at)

# Counts kept as the batches are written (sinks/counts.py), so the dashboard reads a few small rows
# whatever the number of purchases. `slot` spreads workers writing at once over several rows, so that
# no batch waits for another worker's commit to add its counts. No person appears in them.
register_minutes = Table(
    "register_minutes",
    metadata,
    Column("minute", DateTime(timezone=True), primary_key=True),  # UTC, seconds zero
    Column("slot", Integer, primary_key=True),
    Column("purchases", BigInteger, nullable=False),  # rows registered in the minute
    Column("subsidy", Money, nullable=False),  # their subsidy as registered
    Column("deviations", BigInteger, nullable=False),  # of them, those deviating from the register
)

register_totals = Table(
    "register_totals",
    metadata,
    Column("slot", Integer, primary_key=True, autoincrement=False),
    # the register as it is now, summed over the slots: purchase rows, their subsidy, those deviating
    # from what the pharmacy granted, and persons (own rows, not their other numbers)
    Column("purchases", BigInteger, nullable=False),
    Column("subsidy", Money, nullable=False),
    Column("deviations", BigInteger, nullable=False),
    Column("persons", BigInteger, nullable=False),
    # reporting obligations by state (`rules.obligations.State`): `obligations_on_time` and so on
    *(Column(f"obligations_{state}", BigInteger, nullable=False) for state in OBLIGATION_STATES),
)
