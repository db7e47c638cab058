"""Step 2 of a batch, `apply`: run the pure rules over the decoded messages, person by person, in order.

Called once per batch inside the register's unit of work (it reads persons, originals and chains from
it, and writes nothing). It fills a `BatchChanges` for step 3 and a list of outputs for step 4. One
message that raises is turned into an `internal_error` rejection; the rest of the batch goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy.exc import SQLAlchemyError

from rules.corrections import apply_balancing, apply_recomputed, recompute_period
from rules.deadlines import due_immediately, due_same_day, seconds_late
from rules.deferral import apply_deferral
from rules.dispensing import RulesConfig, apply_dispensing
from rules.grants import apply_grant
from rules.municipal import apply_municipal
from rules.outcomes import Applied, Parked, PurchaseRecord, PurchaseResult, Refused
from rules.privacy import pseudonym
from rules.scales import Scale, ScaleBook, scale_problems
from rules.state import PersonState
from schemas.corrections import Correction
from schemas.decisions import PurchaseDecision, SettlementStatement
from schemas.deferrals import DeferralAgreement
from schemas.dispensing import DispensingReport
from schemas.grants import IndividualGrant
from schemas.monitoring import Alert, Change
from schemas.municipal import MunicipalDecision
from schemas.scales import SubsidyScale
from sinks.changes import BatchChanges
from sinks.publisher import Outgoing
from sinks.register import RegisterUnitOfWork
from streams.decode import Decoded, Rejected
from streams.topics import (
    ALERTS,
    CHANGES,
    CORRECTIONS,
    DEAD_LETTER,
    DECISIONS,
    DISPENSINGS,
    SUBSIDY_SCALES,
    TopicNames,
)

log = logging.getLogger(__name__)
COPENHAGEN = ZoneInfo("Europe/Copenhagen")


@dataclass(frozen=True, slots=True)
class ApplyConfig:
    group_id: str
    report_grace_seconds: int
    pseudonym_secret: bytes
    rules: RulesConfig = field(default_factory=RulesConfig)
    dead_letter_alert_ratio: float = 0.5
    dead_letter_alert_min_messages: int = 20


@dataclass
class Applier:
    """Applies one batch; holds the batch's changes and outputs while it does."""

    uow: RegisterUnitOfWork
    names: TopicNames
    config: ApplyConfig
    scales: ScaleBook
    changes: BatchChanges = field(default_factory=BatchChanges)
    outputs: list[Outgoing] = field(default_factory=list)
    new_scales: list[Scale] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    _now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _scales_reloaded: bool = False
    _rejected_at: dict[tuple[str, int], int] = field(default_factory=dict)
    _replacing: set[tuple[str, str]] = field(default_factory=set)
    _republish: list[str] = field(default_factory=list)

    async def run(self, decoded: list[Decoded], rejected: list[Rejected]) -> None:
        """Apply a batch: rejections first become dead letters; then each message in topic order."""
        for r in rejected:
            self.reject(r)
        known = await self._known(decoded)
        fresh = [d for d in decoded if not self._duplicate(d, known)]
        if self._republish:
            for row in await self.uow.purchase_rows(self._republish):
                value = decision_from_row(row, status="duplicate")
                self._emit(DECISIONS, row["pharmacy_number"].encode(), value)
        keys = {d.person_key for d in fresh if d.person_key is not None}
        states = await self.uow.load_states(keys)
        self.changes.loaded.update({k: states.get(k) for k in keys})
        self._states: dict[str, PersonState] = dict(states)
        returned = [
            d.message.return_of  # type: ignore[attr-defined]
            for d in fresh
            if d.spec is DISPENSINGS and d.message.return_of  # type: ignore[attr-defined]
        ]
        targets = [
            d.message.report_id  # type: ignore[attr-defined]
            for d in fresh
            if d.spec is CORRECTIONS and d.message.report_id  # type: ignore[attr-defined]
        ]
        self._records = await self.uow.load_purchases(returned + targets)
        try:
            await self._apply_all(fresh)
        finally:
            self._dead_letter_ratio(decoded, rejected)

    async def _apply_all(self, fresh: list[Decoded]) -> None:
        for d in fresh:
            mark = self._mark(d.person_key)
            try:
                await self._apply_one(d)
            except (SQLAlchemyError, OSError):
                raise  # the register failed: the batch is retried, never dead-lettered
            except Exception:  # a bug on one message never stops the partition
                log.exception(
                    "internal error applying %s at %s/%d",
                    d.source.topic,
                    d.source.partition,
                    d.source.offset,
                )
                self._restore(d.person_key, mark)
                self.reject(Rejected(d.source, "internal_error", d.message_id, d.person_key))

    def _mark(self, key: str | None) -> tuple[object, ...]:
        """What to roll back to if applying one message fails half-way."""
        c = self.changes
        lists = (c.purchases, c.purchase_updates, c.processed, c.corrections, c.scales, c.parked)
        return (
            self._states.get(key) if key else None,
            tuple(len(x) for x in lists),
            len(self.outputs),
        )

    def _restore(self, key: str | None, mark: tuple[object, ...]) -> None:
        state, lengths, outputs = mark
        c = self.changes
        lists = (c.purchases, c.purchase_updates, c.processed, c.corrections, c.scales, c.parked)
        for items, length in zip(lists, lengths, strict=True):  # type: ignore[call-overload]
            del items[length:]
        del self.outputs[outputs:]  # type: ignore[misc]
        if key is None:
            return
        if state is None:
            self._states.pop(key, None)
            c.persons.pop(key, None)
        else:
            self._states[key] = state  # type: ignore[assignment]
            if key in c.persons:
                c.keep(state)  # type: ignore[arg-type]

    async def _known(
        self, decoded: list[Decoded]
    ) -> dict[tuple[str, str], tuple[str, bytes | None]]:
        by_topic: dict[str, list[str]] = {}
        for d in decoded:
            by_topic.setdefault(d.source.topic, []).append(d.message_id)
        known: dict[tuple[str, str], tuple[str, bytes | None]] = {}
        for topic, ids in by_topic.items():
            for mid, value in (await self.uow.known_messages(topic, ids)).items():
                known[(topic, mid)] = value
        return known

    def _duplicate(
        self, d: Decoded, known: dict[tuple[str, str], tuple[str, bytes | None]]
    ) -> bool:
        """A message already processed is acknowledged and skipped; its decision is published again."""
        where = (d.source.topic, d.message_id)
        seen = known.get(where)
        if seen is None or seen[0] == "parked":  # parked ones are decided again when replayed
            if seen is not None:
                self._replacing.add(where)
            known[where] = ("in-batch", None)
            return False
        if d.spec is DISPENSINGS and seen[0] == "registered":
            self._republish.append(d.message_id)  # its decision is rebuilt from the register
        self._change(d, "duplicate")
        return True

    # -- per message ------------------------------------------------------------------------------

    async def _apply_one(self, d: Decoded) -> None:
        m: Any = d.message
        if d.spec is SUBSIDY_SCALES:
            self._apply_scale(d, m)
            return
        key = d.person_key
        assert key is not None
        state = self._states.get(key) or PersonState(key, m.person.born())
        if d.spec is DISPENSINGS:  # the hot path: decided by the topic, not by isinstance
            await self._apply_dispensing(d, m, state)
        elif isinstance(m, IndividualGrant):
            self._settle(d, state, apply_grant(state, m))
        elif isinstance(m, MunicipalDecision):
            due = due_immediately(m.decided_at, self.config.report_grace_seconds)
            reporter = f"municipality {m.sender.municipality_code}"
            self._check_deadline(d, due, reporter, "§ 8: immediately after the decision")
            self._settle(d, state, apply_municipal(state, m))
        elif isinstance(m, DeferralAgreement):
            self._apply_deferral(d, m, state)
        elif isinstance(m, Correction):
            await self._apply_correction(d, m, state)

    def _settle(
        self,
        d: Decoded,
        state: PersonState,
        outcome: Applied | Refused,
        output: bytes | None = None,
    ) -> None:
        """Keep an applied message's new state and mark it processed, or reject it."""
        if isinstance(outcome, Refused):
            self.reject(Rejected(d.source, outcome.reason, d.message_id, d.person_key))
            return
        self._states[state.key] = outcome.state
        self.changes.keep(outcome.state)
        self._processed(d, "applied", output)
        self._change(d, "applied")

    def _apply_scale(self, d: Decoded, m: SubsidyScale) -> None:
        scale = m.to_scale()
        problems = scale_problems(scale)
        if problems:
            self.reject(Rejected(d.source, "; ".join(problems), d.message_id))
            return
        self.changes.scales.append(
            {
                "effective_from": scale.effective_from,
                "valid_to": scale.valid_to,
                "t1": scale.t1,
                "t2": scale.t2,
                "t3": scale.t3,
                "t4": scale.t4,
                "t4_child": scale.t4_child,
                "own_payment_cap": scale.own_payment_cap,
                "source": scale.source,
                "loaded_at": self._now,
            }
        )
        self.scales = self.scales.with_scale(scale)
        self.new_scales.append(scale)
        self._processed(d, "applied", None)
        self._change(d, "applied")

    async def _apply_dispensing(self, d: Decoded, m: DispensingReport, state: PersonState) -> None:
        day = m.paid_or_invoiced_at.astimezone(COPENHAGEN).date()
        original = self._original(m.return_of, state.key) if m.return_of else None
        outcome = apply_dispensing(state, m, day, self.scales, self.config.rules, original)
        if isinstance(outcome, Parked) and not self._scales_reloaded:
            # another worker may have loaded the scale since this one read them: look once per batch
            self._scales_reloaded = True
            self.scales = ScaleBook(await self.uow.load_scales())
            outcome = apply_dispensing(state, m, day, self.scales, self.config.rules, original)
        grace = self.config.report_grace_seconds
        if d.source.timestamp_ms / 1000 - m.paid_or_invoiced_at.timestamp() > grace:
            due = due_immediately(m.paid_or_invoiced_at, grace)
            self._check_deadline(d, due, m.pharmacy_number, "§ 7 stk. 1: immediately after payment")
        if isinstance(outcome, Refused):
            self.reject(Rejected(d.source, outcome.reason, d.message_id, d.person_key))
            return
        if isinstance(outcome, Parked):
            decision = PurchaseDecision(
                report_id=m.report_id,
                status="parked",
                reason=outcome.reason,
                pharmacy_number=m.pharmacy_number,
                person_key=state.key,
            )
            value = decision.model_dump_json().encode()
            self.changes.parked.append(
                {
                    "message_id": m.report_id,
                    "source_topic": d.source.topic,
                    "day": outcome.day,
                    "reason": outcome.reason,
                    "key": d.source.key,
                    "value": d.source.value,
                    "parked_at": self._now,
                    "replayed_at": None,
                }
            )
            self._processed(d, "parked", value)
            self._emit(DECISIONS, m.pharmacy_number.encode(), value)
            self._change(d, "parked", outcome.reason)
            return
        result = outcome.purchase
        assert result is not None
        before = {b.balance_id: b.remaining for b in state.balances}
        for b in outcome.state.balances:
            if before.get(b.balance_id, b.remaining) != b.remaining:
                self.changes.settled_by[b.balance_id] = m.report_id
        self._states[state.key] = outcome.state
        self.changes.keep(outcome.state)
        if m.return_of and original is not None:
            self._note_returned(m.return_of, original, -result.basis)
        row = _purchase_row(d, m, state.key, result, self._now)
        self.changes.purchases.append(row)
        self._processed(d, "registered", None)  # the purchase row is its record
        self._emit(DECISIONS, m.pharmacy_number.encode(), decision_from_row(row, "registered"))

    def _apply_deferral(self, d: Decoded, m: DeferralAgreement, state: PersonState) -> None:
        if m.action != "settle":
            due = due_same_day(m.date)
            self._check_deadline(d, due, m.pharmacy_number, "§ 7 stk. 4: the same day")
        outcome = apply_deferral(state, m)
        if isinstance(outcome, Refused):
            self._settle(d, state, outcome)
            return
        applied, statement = outcome
        output = None
        if statement is not None:
            period = state.period
            output = (
                SettlementStatement(
                    message_id=m.message_id,
                    agreement_id=statement.agreement_id,
                    pharmacy_number=statement.pharmacy_number,
                    person_key=state.key,
                    period_start=period.start if period else None,
                    total_own_payment=statement.total_own_payment,
                    total_rates_paid=statement.total_rates_paid,
                    difference_in_citizens_favour=statement.difference_in_citizens_favour,
                    payout_with_statement=statement.difference_in_citizens_favour > 0,
                )
                .model_dump_json()
                .encode()
            )
            self._emit(DECISIONS, m.pharmacy_number.encode(), output)
        self._settle(d, state, applied, output)

    async def _apply_correction(self, d: Decoded, m: Correction, state: PersonState) -> None:
        day = m.sent_at.astimezone(COPENHAGEN).date()
        self.changes.corrections.append(
            {
                "message_id": m.message_id,
                "person_key": state.key,
                "action": m.action,
                "report_id": m.report_id,
                "ordered_by": m.sender.ordered_by,
                "reported_by": m.sender.reported_by,
                "amount": m.amount,
                "received_at": self._now,
            }
        )
        if m.action in ("balancing", "repayment"):
            self._settle(d, state, apply_balancing(state, m, day))
            return
        assert m.report_id is not None
        target = self._original(m.report_id, state.key)
        if target is None or target.period_start is None:
            self.changes.corrections.pop()
            self.reject(
                Rejected(d.source, "rule.correction_of_unknown_report", d.message_id, state.key)
            )
            return
        loaded = await self.uow.load_chain(state.key, target.period_start)
        if loaded is None:
            self.changes.corrections.pop()
            self.reject(
                Rejected(d.source, "rule.correction_of_unknown_report", d.message_id, state.key)
            )
            return
        period, chain = loaded
        if state.period is not None and state.period.start == period.start:
            period = state.period  # the saldo as this batch has it
        pending = tuple(
            _pending_record(row)
            for row in self.changes.purchases
            if row["person_key"] == state.key and row["period_start"] == period.start
        )
        result = recompute_period(state, m, period, chain + pending, self.scales)
        if isinstance(result, Parked | Refused):
            self.changes.corrections.pop()
            reason = result.reason
            self.reject(Rejected(d.source, reason, d.message_id, state.key))
            return
        pending_ids = {r.report_id for r in pending}
        for record in result.records:
            changed = {
                "basis": record.basis,
                "subsidy_entitled": record.entitled,
                "status": record.status,
            }
            if record.report_id in pending_ids:
                row = next(r for r in self.changes.purchases if r["report_id"] == record.report_id)
                row.update(changed)
            else:
                self.changes.purchase_updates.append({"report_id": record.report_id, **changed})
        self.changes.periods[(state.key, result.period.start)] = result.period
        self._settle(d, state, Applied(apply_recomputed(state, result)))

    # -- helpers ----------------------------------------------------------------------------------

    def _original(self, report_id: str, person_key: str) -> PurchaseRecord | None:
        """A registered purchase of this person, from the register or from earlier in this batch."""
        for row in reversed(self.changes.purchases):
            if row["report_id"] == report_id:
                return _pending_record(row) if row["person_key"] == person_key else None
        found = self._records.get(report_id)
        if found is None or found[0] != person_key:
            return None
        return found[1]

    def _note_returned(self, report_id: str, original: PurchaseRecord, basis: int) -> None:
        total = original.returned_basis + basis
        for row in self.changes.purchases:
            if row["report_id"] == report_id:
                row["returned_basis"] = total
                return
        self.changes.purchase_updates.append({"report_id": report_id, "returned_basis": total})
        self._records[report_id] = (
            self._records[report_id][0],
            replace(original, returned_basis=total),
        )

    def _check_deadline(self, d: Decoded, due: datetime, reporter: str, rule: str) -> None:
        """A report received after its legal deadline becomes an alert (received = record timestamp)."""
        if d.source.timestamp_ms / 1000 <= due.timestamp():
            return
        received = datetime.fromtimestamp(d.source.timestamp_ms / 1000, UTC)
        late = seconds_late(due, received)
        if late:
            alert = Alert(
                kind="late_report",
                source_topic=d.source.topic,
                message_id=d.message_id,
                reporter=reporter,
                person=self._pseudonym(d.person_key),
                detail=f"received {late} s after its deadline {due.isoformat()} ({rule})",
                at=self._now,
            )
            self._emit(ALERTS, reporter.encode(), alert.model_dump_json().encode())

    def reject(self, r: Rejected) -> None:
        """A dead letter: original key and bytes, reason and source position in headers."""
        s = r.source
        headers = (
            ("reghub-reason", r.reason.encode()),
            ("reghub-source-topic", s.topic.encode()),
            ("reghub-source-partition", str(s.partition).encode()),
            ("reghub-source-offset", str(s.offset).encode()),
            ("reghub-message-id", (r.message_id or "").encode()),
        )
        self.outputs.append(Outgoing(self.names(DEAD_LETTER), s.key, s.value or b"", headers))
        person = r.person_key or (s.key.decode("utf-8", "replace") if s.key else None)
        change = Change(
            source_topic=s.topic,
            message_id=r.message_id or f"offset:{s.partition}:{s.offset}",
            outcome="rejected",
            reason=r.reason,
            person=self._pseudonym(person),
            at=self._now,
        )
        self._emit(CHANGES, change.person.encode(), change.model_dump_json().encode())
        self.counts["rejected"] = self.counts.get("rejected", 0) + 1
        where = (s.topic, s.partition)
        self._rejected_at[where] = self._rejected_at.get(where, 0) + 1

    def _dead_letter_ratio(self, decoded: list[Decoded], rejected: list[Rejected]) -> None:
        """Alert when most of a partition's batch was rejected; the worker itself goes on."""
        totals: dict[tuple[str, int], int] = {}
        for item in (*decoded, *rejected):
            where = (item.source.topic, item.source.partition)
            totals[where] = totals.get(where, 0) + 1
        for (topic, partition), total in totals.items():
            bad = self._rejected_at.get((topic, partition), 0)
            cfg = self.config
            if (
                total >= cfg.dead_letter_alert_min_messages
                and bad / total >= cfg.dead_letter_alert_ratio
            ):
                alert = Alert(
                    kind="dead_letter_ratio",
                    source_topic=topic,
                    detail=f"partition {partition}: {bad} of {total} messages in one batch rejected",
                    at=self._now,
                )
                self._emit(
                    ALERTS, f"{topic}/{partition}".encode(), alert.model_dump_json().encode()
                )

    def _processed(self, d: Decoded, outcome: str, output: bytes | None) -> None:
        self.changes.processed.append(
            {
                "message_id": d.message_id,
                "source_topic": d.source.topic,
                "outcome": outcome,
                "output": output,
                "processed_at": self._now,
                "replaces": (d.source.topic, d.message_id) in self._replacing,
            }
        )
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def _change(self, d: Decoded, outcome: str, reason: str | None = None) -> None:
        """The change feed carries every message except a registered dispensing (its decision says it)."""
        if d.spec is DISPENSINGS and outcome == "registered":
            return
        change = Change(
            source_topic=d.source.topic,
            message_id=d.message_id,
            outcome=outcome,  # type: ignore[arg-type]
            reason=reason,
            person=self._pseudonym(d.person_key),
            at=self._now,
        )
        self._emit(CHANGES, change.person.encode(), change.model_dump_json().encode())

    def _pseudonym(self, person_key: str | None) -> str:
        return pseudonym(person_key, self.config.pseudonym_secret) if person_key else "unknown"

    def _emit(self, spec: object, key: bytes, value: bytes) -> None:
        self.outputs.append(Outgoing(self.names(spec), key, value))  # type: ignore[arg-type]


def _pending_record(row: dict[str, object]) -> PurchaseRecord:
    return PurchaseRecord(
        report_id=row["report_id"],
        day=row["day"],
        period_start=row["period_start"],
        basis=row["basis"],
        entitled=row["subsidy_entitled"],
        terminal=row["terminal"],
        returned_basis=row["returned_basis"],
        status=row["status"],
        deferred=row["deferred_to_agreement"],
    )  # type: ignore[arg-type]


def decision_from_row(row: dict[str, Any], status: str) -> bytes:
    """A registered purchase's decision (`PurchaseDecision` as JSON) from its register row.

    Called once per report, and again for a redelivered one; built without the model for speed, and
    checked against the model by the tests.
    """
    return orjson.dumps(
        {
            "schema_version": 1,
            "kind": "purchase",
            "report_id": row["report_id"],
            "status": status,
            "reason": None,
            "pharmacy_number": row["pharmacy_number"],
            "person_key": row["person_key"],
            "subsidised": row["subsidised"],
            "subsidy_entitled": row["subsidy_entitled"],
            "balancing_applied": row["balancing_applied"],
            "subsidy": row["subsidy"],
            "health_supplement": row["health_supplement"],
            "rights_based": row["rights_based"],
            "citizen_pays": row["citizen_pays"],
            "deferred_to_agreement": row["deferred_to_agreement"],
            "citizen_pays_at_counter": row["citizen_pays"] - row["deferred_to_agreement"],
            "saldo_before": row["saldo_after"] - row["basis"],
            "saldo_after": row["saldo_after"],
            "period_start": row["period_start"],
            "period_end": row["period_end"],
            "previous_period_end": row["previous_period_end"],
            "under18": row["under18"],
            "remaining_balancing": row["remaining_balancing"],
            "granted_subsidy": row["granted_subsidy"],
            "deviation": row["deviation"],
        }
    )


def _purchase_row(
    d: Decoded, m: DispensingReport, person_key: str, r: PurchaseResult, now: datetime
) -> dict[str, object]:
    p = r.period
    return {
        "report_id": m.report_id,
        "person_key": person_key,
        "kind": m.kind,
        "return_of": m.return_of,
        "pharmacy_number": m.pharmacy_number,
        "pharmacy_site_p_number": m.pharmacy_site_p_number,
        "dispensing_id": m.dispensing_id,
        "ordination_id": m.ordination_id,
        "paid_or_invoiced_at": m.paid_or_invoiced_at,
        "day": r.day,
        "lines": orjson.dumps(
            [
                {
                    "drug_id": ln.drug_id,
                    "reimbursement_price": ln.reimbursement_price,
                    "actual_price": ln.actual_price,
                    "generally_reimbursed": ln.generally_reimbursed,
                }
                for ln in m.lines
            ]
        ).decode(),
        "period_start": p.start if p else None,
        "period_end": p.end if p else None,
        "previous_period_end": p.previous_end if p else None,
        "under18": p.under18 if p else None,
        "terminal": r.terminal,
        "basis": r.basis,
        "subsidy_entitled": r.subsidy_entitled,
        "balancing_applied": r.balancing_applied,
        "subsidy": r.subsidy,
        "health_supplement": r.health_supplement,
        "rights_based": r.rights_based,
        "citizen_pays": r.citizen_pays,
        "deferred_to_agreement": r.deferred_to_agreement,
        "saldo_after": r.saldo_after,
        "subsidised": r.subsidised,
        "remaining_balancing": r.remaining_balancing,
        "granted_subsidy": m.granted_subsidy,
        "deviation": r.deviation,
        "returned_basis": 0,
        "status": "registered",
        "source_partition": d.source.partition,
        "source_offset": d.source.offset,
        "registered_at": now,
    }
