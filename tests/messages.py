"""Wire messages for tests, with sensible defaults; amounts in øre."""

from __future__ import annotations

from typing import Any

PERSON = "0505601234"  # CPR-shaped: born 5 May 1960
NOW = "2026-11-23T12:00:00+01:00"


def report(
    report_id: str,
    price: int,
    paid_at: str = "2024-04-02T11:00:00+02:00",
    person: str = PERSON,
    **extra: Any,
) -> dict[str, Any]:
    """A dispensing report of one line whose reimbursement and actual prices are both `price`."""
    return {
        "report_id": report_id,
        "pharmacy_number": "12300",
        "pharmacy_site_p_number": "1003456788",
        "dispensing_id": f"d-{report_id}",
        "ordination_id": "01",
        "paid_or_invoiced_at": paid_at,
        "person": {"key": person},
        "lines": [{"drug_id": "028100", "reimbursement_price": price, "actual_price": price}],
        **extra,
    }


def grant(message_id: str, valid_from: str, valid_to: str, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "sent_at": NOW,
        "sender": {"user": "case-worker-7"},
        "action": "enter",
        "grant_id": message_id,
        "kind": "s145_single",
        "drug_id": "X",
        "valid_from": valid_from,
        "valid_to": valid_to,
        "person": {"key": PERSON},
        **extra,
    }


def municipal(message_id: str, code: int, percentage: str) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "sender": {"municipality_code": code, "user": "sagsbehandler"},
        "decided_at": NOW,
        "kind": "health_supplement",
        "action": "grant",
        "decision_id": message_id,
        "supplement_percentage": percentage,
        "valid_from": "2024-01-01",
        "person": {"key": PERSON},
    }


def correction(message_id: str, action: str, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "sent_at": NOW,
        "sender": {"ordered_by": "agency", "reported_by": "lmst-user-1"},
        "action": action,
        "person": {"key": PERSON},
        **extra,
    }


SCALE_2025 = {
    "message_id": "scale-2025",
    "effective_from": "2025-01-01",
    "valid_to": "2025-12-31",
    "t1": 110_000,
    "t2": 184_500,
    "t3": 400_000,
    "t4": 2_190_000,
    "t4_child": 2_679_700,
    "own_payment_cap": 469_625,
    "source": "test scale",
}
"""A scale built for the tests (2025 is not in our public sources): own payment at T4 = 4,696.25 kr."""


NEW_NUMBER = "0505601235"
"""Another CPR-shaped number of the same birth date: the person's new number in renumbering tests."""


def renumbering(
    message_id: str,
    old: str = PERSON,
    new: str = NEW_NUMBER,
    effective_on: str = "2024-03-01",
    source: str = "pharmacy",
) -> dict[str, Any]:
    """A pharmacy reports the person's new number (order § 7 stk. 5); keyed by the old one. With
    `source` "cpr_register" or "agency", the CPR register's feed or the agency's decision sends it."""
    sender = {"source": source}
    if source == "pharmacy":
        sender["pharmacy_number"] = "12300"
    return {
        "message_id": message_id,
        "sent_at": NOW,
        "sender": sender,
        "event": "number_replaced",
        "person": {"key": old},
        "new_person": {"key": new},
        "effective_on": effective_on,
    }


def death(message_id: str, died_on: str, person: str = PERSON) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "sent_at": NOW,
        "sender": {"source": "cpr_register"},
        "event": "death",
        "person": {"key": person},
        "died_on": died_on,
    }


DOCTOR = "0C4NT"
"""A doctor's authorisation id: five characters, digits or capital letters A-Z."""
SOR_ID = "1234561000016003"
"""A treatment place's SOR id: item 123456 in SOR's namespace, partition 00, its Verhoeff check digit."""


def treatment_relation(
    message_id: str,
    valid_from: str = "2024-03-01",
    valid_to: str | None = None,
    person: str = PERSON,
    **extra: Any,
) -> dict[str, Any]:
    """A doctor's system reports the patient in current treatment (order § 5 stk. 2); keyed by the
    patient. With `valid_to` it ends the relation of the same patient, doctor, place and `valid_from`."""
    message: dict[str, Any] = {
        "message_id": message_id,
        "sent_at": NOW,
        "sender": {"system": "ehr-test", "user": "doctor-1"},
        "person": {"key": person},
        "authorisation_id": DOCTOR,
        "sor_id": SOR_ID,
        "valid_from": valid_from,
        **extra,
    }
    if valid_to is not None:
        message["valid_to"] = valid_to
    return message
