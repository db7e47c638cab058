"""Reporting obligations (order §§ 7-8): one per reportable fact, met on time, late, missing or resolved.

A till payment arms the obligation to report it "immediately" (§ 7 stk. 1): due at the payment time plus
a grace. The dispensing report with the same pharmacy and dispensing id fulfils it: on time when it
reached the broker by the due time, late after it. A report may also come before its payment's
announcement: the obligation is then created fulfilled, and its state is decided when the payment
tells its due time. An obligation still open at its due time is *missing*: an alert is raised at that
moment (`missing`), and the report that comes after all resolves it (`resolved`, with how late).

Due times (`rules/deadlines.py`): "immediately" is the event time plus a grace per kind; "the same day"
is 24:00 Europe/Copenhagen on the event's local date, daylight saving time included.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from rules.deadlines import due_immediately, seconds_late
from rules.values import value

State = Literal["open", "rejected_open", "reported", "on_time", "late", "missing", "resolved"]
"""`open`: armed, not yet due or not yet checked; `rejected_open`: open, and a report of it came but was
rejected (dead-lettered); `reported`: the report came before its payment's announcement; `on_time` /
`late`: met; `missing`: due and not met (alert raised); `resolved`: met after its missing alert."""

OPEN_STATES: tuple[State, ...] = ("open", "rejected_open")

PAYMENT_RULE = "§ 7 stk. 1: immediately after payment"
DEFERRAL_RULE = "§ 7 stk. 4: the same day"
MUNICIPAL_RULE = "§ 8: immediately after the decision"


@value
class Obligation:
    """One obligation to report: who owes it, on what basis, for which event, by when."""

    obligation_id: str
    kind: str
    reporter: str
    legal_basis: str
    person_key: str
    event_at: datetime | None
    due_at: datetime | None
    arrived_at: datetime | None
    state: State

    @property
    def seconds_late(self) -> int | None:
        if self.due_at is None or self.arrived_at is None:
            return None
        return seconds_late(self.due_at, self.arrived_at)


def payment_obligation_id(pharmacy_number: str, dispensing_id: str) -> str:
    return f"payment:{pharmacy_number}:{dispensing_id}"


def deferral_obligation_id(pharmacy_number: str, agreement_id: str, action: str) -> str:
    return f"deferral:{pharmacy_number}:{agreement_id}:{action}"


def municipal_obligation_id(
    municipality_code: int,
    decision_id: str,
    action: str = "grant",
    decided_at: datetime | None = None,
) -> str:
    """§ 8: "efter hver underretning eller ændring", also the end ("opstået eller bortfaldet"): the
    decision's first notice, and each change and end of it, is an obligation of its own. A change or an
    end is told apart by the time it was decided, which its announcement and its report both carry."""
    if action == "grant":
        return f"municipal:{municipality_code}:{decision_id}"
    assert decided_at is not None
    at = decided_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"municipal:{municipality_code}:{decision_id}:{action}:{at}"


def arm(
    existing: Obligation | None,
    *,
    obligation_id: str,
    kind: str,
    reporter: str,
    legal_basis: str,
    person_key: str,
    event_at: datetime,
    due_at: datetime,
) -> Obligation:
    """An announced event (a payment, a deferral agreement, a municipal decision): its obligation armed,
    or, when its report came first, decided now."""
    if existing is not None and existing.state != "reported":
        return existing  # announced twice: the first announcement stands
    if existing is not None and existing.arrived_at is not None:
        state: State = "on_time" if existing.arrived_at <= due_at else "late"
        return replace(existing, event_at=event_at, due_at=due_at, state=state)
    return Obligation(
        obligation_id, kind, reporter, legal_basis, person_key, event_at, due_at, None, "open"
    )


def arm_payment(
    existing: Obligation | None,
    *,
    obligation_id: str,
    reporter: str,
    person_key: str,
    paid_at: datetime,
    grace_seconds: int,
) -> Obligation:
    """A till payment: its report is due immediately (§ 7 stk. 1)."""
    return arm(
        existing,
        obligation_id=obligation_id,
        kind="dispensing_report",
        reporter=reporter,
        legal_basis=PAYMENT_RULE,
        person_key=person_key,
        event_at=paid_at,
        due_at=due_immediately(paid_at, grace_seconds),
    )


def fulfil(
    existing: Obligation | None,
    *,
    obligation_id: str,
    reporter: str,
    person_key: str,
    arrived_at: datetime,
    kind: str = "dispensing_report",
    legal_basis: str = PAYMENT_RULE,
) -> Obligation:
    """A report: the obligation met (on time, late, or resolved after its alert), or recorded as
    reported when its event has not been announced."""
    if existing is None:
        return Obligation(
            obligation_id, kind, reporter, legal_basis, person_key, None, None, arrived_at,
            "reported",
        )  # fmt: skip
    if existing.arrived_at is not None:
        return existing  # a second report of the same dispensing: the first one met it
    if existing.state == "missing":
        return replace(existing, arrived_at=arrived_at, state="resolved")
    # open, or open after a rejected report: this valid one meets it
    assert existing.due_at is not None
    state: State = "on_time" if arrived_at <= existing.due_at else "late"
    return replace(existing, arrived_at=arrived_at, state=state)


def reject(existing: Obligation | None) -> Obligation | None:
    """A report of the obligation was rejected: it stays open, marked, until a valid report comes; its
    missing alert will say so. None when there is nothing to mark."""
    if existing is None or existing.state != "open":
        return None
    return replace(existing, state="rejected_open")


def is_overdue(obligation: Obligation, now: datetime) -> bool:
    """Whether an open obligation has passed its due time unmet: its missing alert is due now."""
    return (
        obligation.state in OPEN_STATES
        and obligation.due_at is not None
        and obligation.arrived_at is None
        and now > obligation.due_at
    )


def at_risk(lag: int, per_second: float, earliest_due: datetime | None, now: datetime) -> bool:
    """Whether the hub's own lag will make it meet obligations after their due time: records wait
    unprocessed, and at the rate the worker has been handling them they will not all be handled before
    the earliest open obligation falls due (with no progress at all, any lag is a risk)."""
    if lag <= 0 or earliest_due is None:
        return False
    if per_second <= 0:
        return True
    return now + timedelta(seconds=lag / per_second) > earliest_due
