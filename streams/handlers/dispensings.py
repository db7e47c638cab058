"""`ctr.dispensings.v1`: a pharmacy's dispensing report, a sale or a return (§ 3 stk. 1, § 7 stk. 1).

The hot path: one call per report. Registers the purchase by the § 146 scale of its payment day, settles
open balancing amounts (§ 6), answers with a decision, parks a report dated where no scale is known.

A purchase's `lines` column (JSON) keeps what the decision needs beyond the row's other columns, so a
redelivered report is answered again with the same decision:

    {"lines": [{"drug_id", "reimbursement_price", "actual_price", "generally_reimbursed", "basis"}],
     "health_supplement_billed_to": {"municipality_code", "decision_id"} | null,
     "rights_based_billed_to": {"municipality_code", "decision_id"} | null,
     "balancing": [{"amount", "period_start", "arose_on", "origin"}],
     "agreement_id": str | null}

`basis` is the line's part of the saldo basis (§ 3 stk. 1 nr. 8). A purchase registered before the column
held this object holds the list of lines alone (see `kept`).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import orjson

from rules.deadlines import due_immediately
from rules.dispensing import apply_dispensing, is_late, price_lines
from rules.history import NewSale, Replayed, place_sale
from rules.identifiers import mask_person_numbers
from rules.lines import line_charges
from rules.obligations import PAYMENT_RULE, payment_obligation_id
from rules.outcomes import Applied, Parked, PurchaseRecord, PurchaseResult, Refused
from rules.state import Period, PersonState, Supplement
from schemas.decisions import PurchaseDecision
from schemas.dispensing import DispensingReport
from sinks.rows import Outgoing, ParkedRow, PurchaseRow
from streams.decode import Decoded
from streams.effects import Effects, Needs
from streams.handlers.base import (
    BatchView,
    Context,
    Handler,
    person_state,
    rejection,
)
from streams.obligation_effects import mark_rejected, meet
from streams.topics import DECISIONS, DISPENSINGS


def needs(d: Decoded) -> Needs:
    m: DispensingReport = d.message  # type: ignore[assignment]
    day = m.paid_day
    if m.return_of:  # its sale may lie in an earlier period
        return Needs(report_ids=(m.return_of,), parked_ids=(m.return_of,), day=day, history=True)
    return _sale_needs(day)


@functools.lru_cache(maxsize=4_096)
def _sale_needs(day: date) -> Needs:
    """A sale's needs: its day's scale. One (immutable) value per day, not one per report."""
    return Needs(day=day)


def needs_history(d: Decoded, loaded: PersonState | None, latest: dict[str, datetime]) -> bool:
    """Whether a sale may be late (`rules.dispensing.is_late`): paid before its person's period as
    loaded began, or before the latest payment of that period or of this batch so far."""
    m: DispensingReport = d.message  # type: ignore[assignment]
    key = d.person_key
    assert key is not None
    paid_at = m.paid_at_utc  # the same instant; UTC times compare without asking for offsets
    period = loaded.period if loaded is not None else None
    before = latest.get(key) or (period.last_paid_at if period is not None else None)
    if before is None or paid_at > before:
        latest[key] = paid_at
    if period is not None and m.paid_day < period.start:
        return True
    return before is not None and paid_at < before


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: DispensingReport = d.message  # type: ignore[assignment]
    state = person_state(view, d)
    day = m.paid_day
    original: PurchaseRecord | None = view.purchase(m.return_of, state.key) if m.return_of else None
    replayed: Replayed | None = None
    sale_parked = view.parked(d.source.topic, m.return_of) if m.return_of and not original else None
    if sale_parked is not None:
        # reversed on the sale's terms, so it waits with the sale and is replayed after it
        sale_day, released = sale_parked
        outcome: Applied | Parked | Refused = Parked(
            "rule.unknown_scale: the returned sale is parked: no subsidy scale in force on "
            + sale_day.isoformat(),
            sale_day,
        )
        if released:
            outcome = Parked("rule.unknown_scale: the returned sale is being replayed", sale_day)
    elif original is not None:
        history = view.history(state.key)
        outcome = apply_dispensing(
            state,
            m,
            day,
            view.scales,
            ctx.config.rules,
            original,
            sale_period=history.period_starting(original.period_start),
            earlier_returns=[
                r
                for r in history.records
                if r.return_of == original.report_id and r.status != "cancelled"
            ],
        )
    elif is_late(state, m, day):
        placed = _place_late(view, state, m, day)
        if isinstance(placed, Parked):
            outcome = placed
        else:
            replayed = placed
            state = replace(
                state,
                period=placed.current(view.history(state.key).periods),
                balances=(*state.balances, *placed.balances),
            )
            outcome = apply_dispensing(
                state, m, day, view.scales, ctx.config.rules, placement=placed.placed
            )
    else:
        outcome = apply_dispensing(state, m, day, view.scales, ctx.config.rules, original)
    outputs: list[Outgoing] = []
    grace = ctx.config.report_grace_seconds
    # the same instant as paid_or_invoiced_at; its UTC copy (kept for the row) converts faster
    if d.source.timestamp_ms / 1000 - m.paid_at_utc.timestamp() > grace:
        due = due_immediately(m.paid_or_invoiced_at, grace)
        rule = "§ 7 stk. 1: immediately after payment"
        late = ctx.out.late_report(d, due, reporter(m), rule)
        if late is not None:
            outputs.append(late)
    if state.died_on is not None and day > state.died_on and m.kind == "sale":
        outputs.append(ctx.out.purchase_after_death(d, reporter(m), state.died_on, day))
    if isinstance(outcome, Refused):
        marked = tuple(mark_rejected(view, ctx, oid) for oid in _obligation_id(d))
        rows = tuple(row for found in marked for row in found)
        return Effects(rejected=rejection(d, outcome.reason), outputs=outputs, rows=rows)
    if isinstance(outcome, Parked):
        value = (
            PurchaseDecision(
                report_id=m.report_id,
                status="parked",
                reason=outcome.reason,
                pharmacy_number=m.pharmacy_number,
                pharmacy_site_p_number=m.pharmacy_site_p_number,
                dispensing_id=m.dispensing_id,
            )
            .model_dump_json()
            .encode()
        )
        parked = ParkedRow(
            m.report_id,
            d.source.topic,
            outcome.day,
            outcome.reason,
            d.source.key,
            d.source.value or b"",
            ctx.now,
            None,
        )
        outputs.append(ctx.out.emit(DECISIONS, reporter(m).encode(), value))
        if sale_parked is not None and sale_parked[1]:
            # the sale's replay is already in the outbox, published before this batch's outputs:
            # sent back behind it, the return comes after the sale, with nothing left parked
            again = (("reghub-replay-of", m.report_id.encode()),)
            outputs.append(Outgoing(d.source.topic, d.source.key, d.source.value or b"", again))
        met_rows, resolved = _meet_obligation(view, d, m, state.key, ctx)  # it came
        outputs.extend(resolved)
        return Effects(
            outcome="parked",
            output=value,
            reason=outcome.reason,
            parked=() if sale_parked is not None and sale_parked[1] else (parked,),
            outputs=outputs,
            rows=met_rows,
        )
    result = outcome.purchase
    assert result is not None
    extra_rows, resolved = _meet_obligation(view, d, m, state.key, ctx)
    outputs.extend(resolved)
    settled_by = None
    if state.balances and replayed is None:
        before = {b.balance_id: b.remaining for b in state.balances}
        settled_by = {
            b.balance_id: m.report_id
            for b in outcome.state.balances
            if before.get(b.balance_id, b.remaining) != b.remaining
        }
    updates: tuple[tuple[str, dict[str, Any]], ...] = ()
    periods: tuple[tuple[str, Period], ...] = ()
    removed: tuple[tuple[str, date], ...] = ()
    if m.return_of and original is not None:
        updates = ((m.return_of, {"returned_basis": original.returned_basis - result.basis}),)
    if outcome.earlier_period is not None:
        periods = ((state.key, outcome.earlier_period),)
    if replayed is not None:
        updates = replayed.updates
        periods = tuple((state.key, p) for p in replayed.periods)
        removed = tuple((state.key, start) for start in replayed.removed)
    details = kept_details(m, result)
    row = purchase_row(d, m, state.key, result, ctx, details)
    answer = decision(row, "registered", details)
    outputs.append(ctx.out.emit(DECISIONS, reporter(m).encode(), answer))
    return Effects(
        outcome="registered",
        states=(outcome.state,),
        periods=periods,
        removed_periods=removed,
        purchases=(row,),
        purchase_updates=updates,
        settled_by=settled_by,
        outputs=outputs,
        rows=extra_rows,
    )


def _place_late(
    view: BatchView, state: PersonState, m: DispensingReport, day: date
) -> Replayed | Parked:
    """A sale paid before purchases already registered, placed among them by its payment date."""
    priced = price_lines(state, m.lines, day)
    sale = NewSale(
        m.report_id,
        day,
        m.paid_or_invoiced_at,
        priced.basis if priced.any_subsidised else 0,
        priced.any_subsidised,
        priced.terminal_cover,
    )
    return place_sale(state.birth_date, view.history(state.key), sale, view.scales)


def reporter(report: DispensingReport | PurchaseRow) -> str:
    """Who sent a report, as decisions are keyed: its pharmacy number, or its site's P-number when it
    named only that (§ 3 stk. 1 nr. 1: the pharmacy number and/or the P-number)."""
    found = report.pharmacy_number or report.pharmacy_site_p_number
    assert found is not None  # the schema requires one of them
    return found


def redecide(row: PurchaseRow, ctx: Context) -> Outgoing:
    """A redelivered report's decision, rebuilt from its register row."""
    answer = decision(row, "duplicate", kept(row))
    return ctx.out.emit(DECISIONS, reporter(row).encode(), answer)


def kept_details(m: DispensingReport, r: PurchaseResult) -> dict[str, Any]:
    """What the purchase's `lines` column keeps (this module's docstring): the report's lines with each
    one's saldo basis, and the decision's billing, balancing and deferral details."""
    lines, line_basis = m.lines, r.line_basis
    # not `zip(…, strict=True)`: compiled, its keyword makes it a generic call of the builtin
    if len(lines) != len(line_basis):
        raise ValueError("a purchase result has one basis for each line of its report")
    return {
        "lines": [
            {
                "drug_id": ln.drug_id,
                "reimbursement_price": ln.reimbursement_price,
                "actual_price": ln.actual_price,
                "generally_reimbursed": ln.generally_reimbursed,
                "basis": line_basis[i],
            }
            for i, ln in enumerate(lines)
        ],
        "health_supplement_billed_to": _billing(r.health_supplement_by),
        "rights_based_billed_to": _billing(r.rights_based_by),
        "balancing": [
            {
                "amount": p.amount,
                "period_start": p.period_start,
                "arose_on": p.arose_on,
                "origin": p.origin,
            }
            for p in r.balancing_parts
        ],
        "agreement_id": r.agreement_id,
    }


def _billing(supplement: Supplement | None) -> dict[str, Any] | None:
    if supplement is None:
        return None
    return {
        "municipality_code": supplement.municipality_code,
        "decision_id": supplement.decision_id,
    }


def kept(row: PurchaseRow) -> dict[str, Any]:
    """The details a purchase's `lines` column keeps, as `kept_details` made them.

    A purchase registered when the column held the list of lines alone gets each line's basis as it is
    without individual grants (the reimbursement price capped by the actual price, 0 without general
    subsidy) and no billing, balancing or deferral details (null: not kept).
    """
    stored = orjson.loads(row.lines)
    if isinstance(stored, dict):
        return stored
    lines = []
    for ln in stored:
        reimbursement, actual = ln.get("reimbursement_price", 0), ln.get("actual_price", 0)
        basis = 0
        if ln.get("generally_reimbursed", True):
            basis = min(reimbursement, actual) if actual >= 0 else max(reimbursement, actual)
        lines.append({"basis": basis, **ln, "actual_price": actual})
    return {
        "lines": lines,
        "health_supplement_billed_to": None,
        "rights_based_billed_to": None,
        "balancing": None,
        "agreement_id": None,
    }


def _shown_drug_id(drug_id: str) -> str:
    """A drug id as the decision shows it: the decisions topic never carries a CPR number, and a drug
    id is not checked for one on the way in."""
    return mask_person_numbers(drug_id) if len(drug_id) >= 10 else drug_id


def decision_lines(row: PurchaseRow, details: dict[str, Any]) -> list[dict[str, Any]]:
    """The decision's lines of a report of several: the row's totals apportioned over the kept lines
    (`rules/lines.py`). One line carries the totals, and `_lines_json` writes it directly.

    Apportioned from the subsidy, balancing, supplements and own payment the purchase was charged with,
    so the lines add up to the decision's totals also when a later correction changed the row's
    `subsidy_entitled` (the difference became a balancing amount, § 6).
    """
    lines = details["lines"]
    charges = line_charges(
        [ln["actual_price"] for ln in lines],
        [ln["basis"] for ln in lines],
        terminal=row.terminal,
        subsidy=row.subsidy,
        balancing_applied=row.balancing_applied,
        health_supplement=row.health_supplement,
        rights_based=row.rights_based,
    )
    return [
        {
            "drug_id": _shown_drug_id(ln["drug_id"]),
            "actual_price": c.actual_price,
            "subsidy": c.subsidy,
            "balancing_applied": c.balancing_applied,
            "health_supplement": c.health_supplement,
            "rights_based": c.rights_based,
            "citizen_pays": c.citizen_pays,
        }
        for ln, c in zip(lines, charges, strict=True)
    ]


def decision(row: PurchaseRow, status: str, details: dict[str, Any]) -> bytes:
    """A registered purchase's decision (`PurchaseDecision` as JSON) from its register row and the
    details its `lines` column keeps.

    Called once per report, and again for a redelivered one; built without the model for speed, and
    checked against the model by the tests. Written as text, value by value, in the key order and the
    bytes `orjson.dumps` gives a dict of these values (`tests/test_decision_json.py` proves it over
    generated rows), without building that dict: the dict, its encoding and the copy of orjson's
    working buffer (which a batch's held decisions would keep alive) were a quarter of the handler's
    work. Its integers are the register's `BIGINT` columns: within the 64 bits orjson writes.
    """
    return (
        f'{{"schema_version":1,"kind":"purchase","report_id":{_text(row.report_id)},'
        f'"status":{_text(status)},"reason":null,'
        f'"pharmacy_number":{_text(row.pharmacy_number)},'
        f'"pharmacy_site_p_number":{_text(row.pharmacy_site_p_number)},'
        f'"dispensing_id":{_text(row.dispensing_id)},'
        f'"subsidised":{"true" if row.subsidised else "false"},'
        f'"subsidy_entitled":{row.subsidy_entitled},'
        f'"balancing_applied":{row.balancing_applied},'
        f'"subsidy":{row.subsidy},'
        f'"health_supplement":{row.health_supplement},'
        f'"rights_based":{row.rights_based},'
        f'"citizen_pays":{row.citizen_pays},'
        f'"deferred_to_agreement":{row.deferred_to_agreement},'
        f'"citizen_pays_at_counter":{row.citizen_pays - row.deferred_to_agreement},'
        f'"saldo_before":{row.saldo_after - row.basis},'
        f'"saldo_after":{row.saldo_after},'
        f'"period_start":{_day(row.period_start)},'
        f'"period_end":{_day(row.period_end)},'
        f'"previous_period_end":{_day(row.previous_period_end)},'
        f'"under18":{_flag(row.under18)},'
        f'"remaining_balancing":{row.remaining_balancing},'
        f'"granted_subsidy":{"null" if row.granted_subsidy is None else row.granted_subsidy},'
        f'"deviation":{row.deviation},'
        f'"lines":{_lines_json(row, details)},'
        f'"health_supplement_billed_to":{_json(details["health_supplement_billed_to"])},'
        f'"rights_based_billed_to":{_json(details["rights_based_billed_to"])},'
        f'"balancing":{_json(details["balancing"])},'
        f'"agreement_id":{_json(details["agreement_id"])}}}'
    ).encode()


def _lines_json(row: PurchaseRow, details: dict[str, Any]) -> str:
    """The decision's lines as JSON: one line (the hot path) carries the row's totals and is written
    without a dict; several are apportioned by `decision_lines`."""
    lines = details["lines"]
    if len(lines) != 1:
        return orjson.dumps(decision_lines(row, details)).decode()
    line = lines[0]
    actual: int = line["actual_price"]
    return (
        f'[{{"drug_id":{_text(_shown_drug_id(line["drug_id"]))},'
        f'"actual_price":{actual},'
        f'"subsidy":{row.subsidy},'
        f'"balancing_applied":{row.balancing_applied},'
        f'"health_supplement":{row.health_supplement},'
        f'"rights_based":{row.rights_based},'
        f'"citizen_pays":{actual - row.subsidy - row.health_supplement - row.rights_based}}}]'
    )


def _text(text: str | None) -> str:
    """A string as orjson writes it: letters and digits alone need no escaping; others go to orjson."""
    if text is None:
        return "null"
    if text.isalnum():
        return '"' + text + '"'
    return orjson.dumps(text).decode()


def _flag(flag: bool | None) -> str:
    return "null" if flag is None else "true" if flag else "false"


def _day(day: date | None) -> str:
    """A date as orjson writes it (`YYYY-MM-DD`, four digits of year, as `isoformat`), kept once
    written: a decision's period dates are mostly those of decisions before it."""
    if day is None:
        return "null"
    found = _DAYS.get(day)
    if found is None:
        if len(_DAYS) >= 10_000:
            _DAYS.clear()
        found = _DAYS[day] = '"' + day.isoformat() + '"'
    return found


_DAYS: dict[date, str] = {}


def _json(value: object) -> str:
    """One of the kept details (a dict, a list, a string or null) as orjson writes it."""
    if value is None:
        return "null"
    if type(value) is list and not value:
        return "[]"
    return orjson.dumps(value).decode()


def purchase_row(
    d: Decoded,
    m: DispensingReport,
    person_key: str,
    r: PurchaseResult,
    ctx: Context,
    details: dict[str, Any],
) -> PurchaseRow:
    p = r.period
    lines = orjson.dumps(details).decode()
    # built as the tuple it is: the named tuple's own `__new__` is Python, a frame for 35 arguments
    return _new_row(
        PurchaseRow,
        (
            m.report_id,
            person_key,
            m.kind,
            m.return_of,
            m.pharmacy_number,
            m.pharmacy_site_p_number,
            m.dispensing_id,
            m.ordination_id,
            m.paid_at_utc,  # SQLite keeps no offset: stored in UTC
            r.day,
            lines,
            p.start if p else None,
            p.end if p else None,
            p.previous_end if p else None,
            p.under18 if p else None,
            r.terminal,
            r.basis,
            r.subsidy_entitled,
            r.balancing_applied,
            r.subsidy,
            r.health_supplement,
            r.rights_based,
            r.citizen_pays,
            r.deferred_to_agreement,
            r.saldo_after,
            r.subsidised,
            r.remaining_balancing,
            m.granted_subsidy,
            r.deviation,
            0,
            "registered",
            d.source.partition,
            d.source.offset,
            ctx.now,
            d.digest,
        ),
    )


_new_row = tuple.__new__


def _obligation_id(d: Decoded) -> list[str]:
    m: DispensingReport = d.message  # type: ignore[assignment]
    if m.pharmacy_number is None:  # named only by its site's P-number: no till announces it
        return []
    return [payment_obligation_id(m.pharmacy_number, m.dispensing_id)]


def _meet_obligation(
    view: BatchView, d: Decoded, m: DispensingReport, person_key: str, ctx: Context
) -> tuple[tuple[Any, ...], tuple[Outgoing, ...]]:
    """The report meets its payment's obligation (`streams.obligation_effects.meet`)."""
    ids = _obligation_id(d)
    if not ids:
        return (), ()
    assert m.pharmacy_number is not None
    return meet(
        view, d, ctx, obligation_id=ids[0], kind="dispensing_report",
        legal_basis=PAYMENT_RULE, reporter=m.pharmacy_number, person_key=person_key,
    )  # fmt: skip


TOPIC = DISPENSINGS

HANDLER = Handler(
    handle,
    needs=needs,
    redecide=redecide,
    history=needs_history,
    obligations=_obligation_id,
    known_by_purchase=True,
)
