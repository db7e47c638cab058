"""Each topic's handler on plain loaded state: no database, no broker.

A handler gets the batch's view (`streams.batch.Batch` over a `Loaded` built here by hand) and a
message, and returns `Effects`; nothing it is given changes. The end-to-end tests run the same handlers
through the pipeline, the register and the broker."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from rules.history import History
from rules.obligations import Obligation, payment_obligation_id
from rules.scales import KNOWN_SCALES, ScaleBook
from rules.state import PersonState
from sinks.places_rows import CompanyRow
from sinks.rows import ObligationRow, PurchaseRow, ScaleRow, TreatmentRelationRow
from streams.batch import Batch, Loaded
from streams.decode import Decoded, Source, decode
from streams.effects import Effects
from streams.handlers import HANDLERS
from streams.handlers.base import ApplyConfig, Context
from streams.outputs import Outputs
from streams.topics import (
    CORRECTIONS,
    DECISIONS_MADE,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    MUNICIPAL_GRANTS,
    PAYMENTS,
    PERSON_EVENTS,
    REGISTRATIONS,
    SUBSIDY_SCALES,
    TREATMENT_RELATIONS,
    TopicNames,
    TopicSpec,
)
from tests.messages import (
    DOCTOR,
    PERSON,
    SCALE_2025,
    SOR_ID,
    correction,
    death,
    grant,
    municipal,
    report,
    treatment_relation,
)

NOW = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
NAMES = TopicNames("")
CONFIG = ApplyConfig("pure", 60, b"test-pseudonym-key-0123456789")
CVR = "10000009"


def decoded(spec: TopicSpec, message: dict[str, Any], key: str = PERSON) -> Decoded:
    """The message as the decode step gives it (its broker time unknown: no window on its times)."""
    source = Source(NAMES(spec), 0, 1, key.encode(), json.dumps(message).encode(), 0)
    d = decode(source, spec)
    assert isinstance(d, Decoded), d
    return d


def run(d: Decoded, loaded: Loaded | None = None) -> tuple[Effects, Batch]:
    """The message's handler on `loaded`; the batch is returned to show it was left alone."""
    out = Outputs(NAMES, CONFIG.pseudonym_secret, NOW, CONFIG.dead_letter_max_bytes)
    batch = Batch(loaded or Loaded(), ScaleBook(KNOWN_SCALES), out)
    fx = HANDLERS[d.spec].handle(batch, d, Context(NOW, CONFIG, out))
    assert batch.outputs == [] and batch.changes.persons == {} and batch.changes.rows == []
    return fx, batch


def person(born: date = date(1960, 5, 5)) -> PersonState:
    return PersonState(PERSON, born)


def test_a_dispensing_of_a_new_person_is_registered_with_its_decision() -> None:
    fx, _ = run(decoded(DISPENSINGS, report("r1", 40_000)))
    assert fx.outcome == "registered" and fx.rejected is None
    assert [type(p) for p in fx.purchases] == [PurchaseRow]
    assert fx.purchases[0].report_id == "r1"
    assert "ctr.decisions.v1" in [o.topic for o in fx.outputs]
    assert fx.states[0].key == PERSON


def test_a_return_of_an_unknown_sale_is_refused() -> None:
    fx, _ = run(
        decoded(DISPENSINGS, report("r2", -40_000, kind="return", return_of="nothing-sold"))
    )
    assert fx.rejected is not None
    assert fx.rejected.reason.startswith("rule.return_of_unknown")


def test_a_report_meets_the_obligation_its_payment_announced() -> None:
    oid = payment_obligation_id("12300", "d-r3")
    announced = Obligation(oid, "dispensing_report", "12300", "x", PERSON, NOW, NOW, None, "open")
    fx, _ = run(decoded(DISPENSINGS, report("r3", 40_000)), Loaded(obligations={oid: announced}))
    met = [r for r in fx.rows if isinstance(r, ObligationRow)]
    assert [r.obligation_id for r in met] == [oid]
    assert met[0].state != "open"


def test_a_payment_announces_the_report_it_is_owed() -> None:
    payment = {
        "message_id": "pay-1",
        "pharmacy_number": "12300",
        "dispensing_id": "d-r4",
        "paid_at": NOW.isoformat(),
        "person": {"key": PERSON},
    }
    fx, _ = run(decoded(PAYMENTS, payment))
    assert fx.outcome == "applied"
    (row,) = fx.rows
    assert isinstance(row, ObligationRow)
    assert row.obligation_id == payment_obligation_id("12300", "d-r4")


def test_a_municipal_decision_made_announces_its_decision() -> None:
    made = {
        "message_id": "made-1",
        "sender": {"municipality_code": 101, "user": "sagsbehandler"},
        "decision_id": "md-1",
        "decided_at": NOW.isoformat(),
        "person": {"key": PERSON},
        "action": "grant",
    }
    fx, _ = run(decoded(DECISIONS_MADE, made))
    assert fx.outcome == "applied"
    assert [type(r) for r in fx.rows] == [ObligationRow]


def test_a_municipal_supplement_is_applied_to_the_person() -> None:
    fx, _ = run(decoded(MUNICIPAL_GRANTS, municipal("mg-1", 101, "85")), _person_loaded())
    assert fx.outcome == "applied"
    assert fx.states[0].supplements


def test_an_individual_grant_is_applied_to_the_person() -> None:
    message = grant("g-1", "2024-01-01", "2024-12-31")
    fx, _ = run(decoded(INDIVIDUAL_GRANTS, message), _person_loaded())
    assert fx.outcome == "applied"
    assert fx.states[0].grants


def test_a_deferral_of_a_person_without_a_period_is_refused() -> None:
    agreement = {
        "message_id": "h-1-msg",
        "sent_at": NOW.isoformat(),
        "pharmacy_number": "12300",
        "action": "ended",
        "agreement_id": "h-unknown",
        "date": "2024-05-02",
        "person": {"key": PERSON},
    }
    fx, _ = run(decoded(DEFERRALS, agreement), _person_loaded())
    assert fx.rejected is not None and fx.rejected.reason.startswith("rule.")


def test_a_correction_of_an_unknown_report_is_refused() -> None:
    message = correction("c-1", "cancel", report_id="no-such-report")
    loaded = Loaded(states={PERSON: person()}, histories={PERSON: History((), ())})
    fx, _ = run(decoded(CORRECTIONS, message), loaded)
    assert fx.rejected is not None
    assert fx.rejected.reason.startswith("rule.correction_of_unknown_report")


def test_a_death_is_kept_on_the_person() -> None:
    fx, _ = run(decoded(PERSON_EVENTS, death("death-1", "2024-04-30")), _person_loaded())
    assert fx.outcome == "applied"
    assert fx.states[0].died_on == date(2024, 4, 30)


def test_a_treatment_relation_is_a_row_for_the_person() -> None:
    fx, _ = run(decoded(TREATMENT_RELATIONS, treatment_relation("tr-1")))
    assert fx.outcome == "applied"
    (row,) = fx.rows
    assert isinstance(row, TreatmentRelationRow)
    assert (row.person_key, row.authorisation_id, row.sor_id) == (PERSON, DOCTOR, SOR_ID)


def test_a_scale_is_kept_and_a_broken_one_refused() -> None:
    fx, _ = run(decoded(SUBSIDY_SCALES, SCALE_2025, key="2025-01-01"))
    assert fx.outcome == "applied"
    ((row, scale),) = fx.scales
    assert isinstance(row, ScaleRow) and scale.effective_from == date(2025, 1, 1)
    broken = {**SCALE_2025, "t2": 50_000}  # below t1
    fx, _ = run(decoded(SUBSIDY_SCALES, broken, key="2025-01-01"))
    assert fx.rejected is not None


def _registration(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "message_id": f"{kind}-1",
        "sent_at": "2024-03-01T10:00:00+01:00",
        "form": "private_cvr",
        "filer": {"role": "company", "user": "user-company"},
        "company": {"cvr": CVR},
        **fields,
    }


COMPANY = {
    "name": "Clinic",
    "address": {"street": "Nørregade 1", "postal_code": "1165", "city": "København K"},
}


def test_a_company_registers_on_an_empty_register() -> None:
    d = decoded(REGISTRATIONS, _registration("company_registered", **COMPANY), key=CVR)
    fx, _ = run(d, Loaded(places={}))
    assert fx.outcome == "applied", fx.rejected
    (row,) = fx.rows
    assert isinstance(row, CompanyRow) and row.company_key == CVR


def test_a_change_of_a_company_not_registered_is_refused() -> None:
    d = decoded(REGISTRATIONS, _registration("company_changed", **COMPANY), key=CVR)
    fx, _ = run(d, Loaded(places={}))
    assert fx.rejected is not None
    assert fx.rejected.reason == "rule.company_not_registered"


def test_a_registration_without_its_places_loaded_is_an_error_not_a_guess() -> None:
    d = decoded(REGISTRATIONS, _registration("company_registered", **COMPANY), key=CVR)
    with pytest.raises(LookupError):
        run(d, Loaded())


def test_every_handler_has_a_pure_test_here() -> None:
    tested = {
        CORRECTIONS,
        DECISIONS_MADE,
        DEFERRALS,
        DISPENSINGS,
        INDIVIDUAL_GRANTS,
        MUNICIPAL_GRANTS,
        PAYMENTS,
        PERSON_EVENTS,
        REGISTRATIONS,
        SUBSIDY_SCALES,
        TREATMENT_RELATIONS,
    }
    assert set(HANDLERS) == tested


def _person_loaded() -> Loaded:
    return Loaded(states={PERSON: person()})
