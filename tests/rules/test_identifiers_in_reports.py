"""The identifier rules of spec/ctr.md § 9 as a dispensing report meets them on the wire
(`schemas/dispensing.py`, `schemas/common.py`): pharmacy number and/or P-number, a birth date only with a
fictitious number, no person born after the day of payment; each at its edge, with the reason the sender
gets back (`streams.decode.reason_of`), which never quotes the message.

Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.common import PersonRef
from schemas.dispensing import DispensingReport
from streams.decode import reason_of
from tests.messages import report


def valid(data: dict[str, Any]) -> DispensingReport:
    return DispensingReport.model_validate_json(orjson.dumps(data))


def refused(data: dict[str, Any]) -> str:
    raw = orjson.dumps(data)
    with pytest.raises(ValidationError) as caught:
        DispensingReport.model_validate_json(raw)
    reason = reason_of(caught.value, DispensingReport)
    for value in _values(data):
        assert value not in reason, (value, reason)
    return reason


def _values(data: Any) -> list[str]:
    """Every value a message carries that a reason could quote: keys, dates, numbers, ids."""
    if isinstance(data, dict):
        return [v for item in data.values() for v in _values(item)]
    if isinstance(data, list):
        return [v for item in data for v in _values(item)]
    if isinstance(data, str) and len(data) >= 5:
        return [data, data.replace("-", "")]
    return []


def with_person(key: str, birth_date: str | None = None, **extra: Any) -> dict[str, Any]:
    data = report("r-id-1", 10_000, **extra)
    data["person"] = {"key": key} if birth_date is None else {"key": key, "birth_date": birth_date}
    return data


# --- pharmacy number and/or P-number (order § 3 stk. 1 nr. 1; LMST field 5) -----------------------


def test_pharmacy_number_and_p_number_together() -> None:
    """Both given: the site is identified twice, as before."""
    m = valid(report("r-id-1", 10_000))
    assert (m.pharmacy_number, m.pharmacy_site_p_number) == ("12300", "1003456788")


def test_pharmacy_number_alone_is_enough() -> None:
    """LMST field 5: "Apoteksnummer ... og/eller Ekspeditionsstedets P-nummer"; spec § 9: either one
    identifies the site."""
    data = report("r-id-1", 10_000)
    del data["pharmacy_site_p_number"]
    m = valid(data)
    assert (m.pharmacy_number, m.pharmacy_site_p_number) == ("12300", None)


def test_p_number_alone_is_enough() -> None:
    """The P-number alone; 1006959421 is the last number of the old series and passes by the old
    weights only: 1·1 + 6·7 + 9·3 + 5·6 + 9·4 + 4·8 + 2·9 + 1·1 = 187 = 17·11."""
    data = report("r-id-1", 10_000, pharmacy_site_p_number="1006959421")
    del data["pharmacy_number"]
    m = valid(data)
    assert (m.pharmacy_number, m.pharmacy_site_p_number) == (None, "1006959421")


def test_neither_pharmacy_number_nor_p_number_is_refused() -> None:
    data = report("r-id-1", 10_000)
    del data["pharmacy_number"], data["pharmacy_site_p_number"]
    assert refused(data) == (
        "schema.value_error: message: a report needs pharmacy_number or pharmacy_site_p_number "
        "(or both)"
    )
    assert refused({**data, "pharmacy_number": None, "pharmacy_site_p_number": None}).startswith(
        "schema.value_error: message: a report needs pharmacy_number"
    )


@pytest.mark.parametrize(
    ("p_number", "ok"),
    [("1006959408", True), ("1006959421", True), ("1006959433", False)],
)
def test_p_number_on_the_wire_at_the_limit(p_number: str, ok: bool) -> None:
    """1006959408 (below the limit) and 1006959421 (the limit) pass the old weights only: accepted;
    1006959433 passes the old weights only too (1+42+27+30+36+32+27+3 = 198 = 18·11) but lies above the
    limit, where the new weights alone apply (4+42+54+25+36+12+6+3 = 182 ≡ 6): refused. Worked out in
    full in `test_rules_identifiers.test_p_number_old_weights_up_to_and_including_the_limit`."""
    data = report("r-id-1", 10_000, pharmacy_site_p_number=p_number)
    if ok:
        assert valid(data).pharmacy_site_p_number == p_number
    else:
        assert refused(data) == (
            "schema.value_error: pharmacy_site_p_number: P-number must be ten digits passing "
            "modulus 11 with the weights of its series"
        )


def test_a_wrong_pharmacy_number_is_refused_even_with_a_good_p_number() -> None:
    """And/or: what is sent must be right; one right number does not excuse a wrong one."""
    data = report("r-id-1", 10_000, pharmacy_number="1230")
    assert refused(data).startswith("schema.string_pattern_mismatch: pharmacy_number:")


# --- a birth date only with a fictitious number (spec § 9; LMST field 4) --------------------------


def test_cpr_number_without_birth_date() -> None:
    """0505601234: 5 May 1960 (7th digit 1: 1900s)."""
    m = valid(with_person("0505601234"))
    assert m.person.born() == date(1960, 5, 5)


@pytest.mark.parametrize("birth_date", ["1960-05-04", "1960-05-05", "1960-05-06"])
def test_cpr_number_with_any_birth_date_is_refused(birth_date: str) -> None:
    """0505601234: DD 05, MM 05, YY 60, 7th digit 1 (0-3: 1900s), so 5 May 1960. That date, the day
    before and the day after are all refused: a birth date is not sent with a CPR number at all (LMST
    field 4: "Fødselsdato hvis fiktivt CPR-nr."), not even one that agrees."""
    assert refused(with_person("0505601234", birth_date)) == (
        "schema.value_error: person: birth_date is sent only with a fictitious number "
        "(xLLLnnnnnn): a CPR number carries its own"
    )


def test_fictitious_number_needs_its_birth_date() -> None:
    assert valid(with_person("4208000001", "1960-05-05")).person.born() == date(1960, 5, 5)
    assert refused(with_person("4208000001")) == (
        "schema.value_error: person: a fictitious number (xLLLnnnnnn) needs birth_date"
    )


def test_system_assigned_number_carries_its_birth_month() -> None:
    """3805601234: xx 38, MM 05, YY 60 (> 36: 1900s): counted as born 1 May 1960 (DECISION, the 1st).
    Sent with a birth date it is refused, as LMST's field 4 is for fictitious numbers only."""
    assert valid(with_person("3805601234")).person.born() == date(1960, 5, 1)
    assert refused(with_person("3805601234", "1960-05-01")) == (
        "schema.value_error: person: birth_date is sent only with a fictitious number "
        "(xLLLnnnnnn): a system-assigned number carries its own"
    )


def test_system_assigned_number_without_a_month_is_refused() -> None:
    assert refused(with_person("3813601234")) == (
        "schema.value_error: person: a system-assigned number must carry its birth month and year "
        "(xxMMYYnnnn)"
    )


def test_person_ref_alone_knows_the_birth_date_rules() -> None:
    """The other topics' schemas share `PersonRef`: the same rules hold there."""
    assert PersonRef(key="050560-1234").born() == date(1960, 5, 5)
    assert PersonRef(key="3805601234").born() == date(1960, 5, 1)
    with pytest.raises(ValidationError):
        PersonRef(key="0505601234", birth_date=date(1960, 5, 5))
    with pytest.raises(ValidationError):
        PersonRef(key="4208000001")


# --- no person born after the day of payment (a CPR number from the future) -----------------------

FUTURE = (
    "schema.value_error: person: the CPR number's birth date lies after the day of payment: "
    "a date in the future"
)


@pytest.mark.parametrize(
    ("key", "ok"),
    [("1003244321", True), ("1103244321", True), ("1203244321", False)],
)
def test_cpr_number_born_the_day_before_the_day_of_and_the_day_after_payment(
    key: str, ok: bool
) -> None:
    """Paid 11 March 2024 at noon. 1003244321: DD 10, MM 03, YY 24, 7th digit 4 (24 <= 36: 2000s), born
    10 March 2024, the day before: accepted. 1103244321: the day itself: accepted (a newborn's medicine).
    1203244321: 12 March 2024, the day after: refused, and the reason names no number and no date."""
    data = with_person(key, paid_at="2024-03-11T12:00:00+01:00")
    if ok:
        assert valid(data).person.key == key
    else:
        assert refused(data) == FUTURE


@pytest.mark.parametrize(
    ("paid_at", "ok"),
    [
        ("2024-03-10T22:59:59+00:00", False),  # 23:59:59 on 10 March in Copenhagen (UTC+1)
        ("2024-03-10T23:00:00+00:00", True),  # 00:00 on 11 March in Copenhagen
        ("2024-03-11T00:30:00+01:00", True),
    ],
)
def test_the_day_of_payment_is_the_danish_local_date(paid_at: str, ok: bool) -> None:
    """A person born 11 March 2024 (1103244321). The day of payment is the Danish local date of the
    payment time (the day the register books the purchase by), whatever offset the time is sent with:
    22:59:59 UTC on 10 March is 23:59:59 in Copenhagen (CET, UTC+1), the day before the birth: refused;
    23:00:00 UTC is midnight, 11 March: accepted."""
    data = with_person("1103244321", paid_at=paid_at)
    if ok:
        valid(data)
    else:
        assert refused(data) == FUTURE


@pytest.mark.parametrize(
    ("birth_date", "ok"), [("2024-03-10", True), ("2024-03-11", True), ("2024-03-12", False)]
)
def test_fictitious_number_born_after_the_day_of_payment(birth_date: str, ok: bool) -> None:
    """A supplied birth date is held to the same day: 10 and 11 March accepted, 12 March refused."""
    data = with_person("4208000001", birth_date, paid_at="2024-03-11T12:00:00+01:00")
    if ok:
        valid(data)
    else:
        assert refused(data) == (
            "schema.value_error: person: birth_date lies after the day of payment: a date in the future"
        )


@pytest.mark.parametrize(
    ("paid_at", "ok"),
    [
        ("2024-02-29T12:00:00+01:00", False),
        ("2024-03-01T12:00:00+01:00", True),
        ("2024-03-02T12:00:00+01:00", True),
    ],
)
def test_system_assigned_number_born_after_the_day_of_payment(paid_at: str, ok: bool) -> None:
    """3803241234 counts as born 1 March 2024. Paid 29 February (the day before): refused; 1 March (the
    day) and 2 March (the day after): accepted."""
    data = with_person("3803241234", paid_at=paid_at)
    if ok:
        valid(data)
    else:
        assert refused(data) == (
            "schema.value_error: person: the system-assigned number's birth month lies after the day "
            "of payment: a date in the future"
        )


@pytest.mark.parametrize(
    "paid_at",
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00-14:00",
        "9999-12-31T23:59:59-14:00",
        "1999-12-31T22:59:59+00:00",
        "2100-01-01T00:00:01+00:00",
    ],
)
def test_a_payment_time_outside_the_plausible_window_is_refused_not_crashed(paid_at: str) -> None:
    """At the ends of the calendar a payment time has no Copenhagen date (it would fall in year 0 or
    10000), and no register's event is from year 1 or 9999: refused with a schema reason (before
    2000, or after 2099 when the time it reached the broker is not known), never an internal error."""
    assert refused(with_person("0505601234", paid_at=paid_at)) == (
        "schema.value_error: paid_or_invoiced_at: must be a time from 2000 to 366 days after the "
        "message reached the broker"
    )


# --- the same on every topic keyed by person: born by the day of the message ----------------------


def _other_topics() -> list[tuple[type[Any], str, dict[str, Any], str]]:
    from schemas.corrections import Correction
    from schemas.grants import IndividualGrant
    from schemas.municipal import MunicipalDecision
    from tests.messages import correction, grant, municipal

    return [
        (
            IndividualGrant,
            "sent_at",
            grant("g1", "2024-01-01", "2024-12-31"),
            "the day the grant was sent",
        ),
        (MunicipalDecision, "decided_at", municipal("m1", 101, "50"), "the day of the decision"),
        (Correction, "sent_at", correction("c1", "balancing", amount=100), "the day it was sent"),
    ]


@pytest.mark.parametrize(("model", "field", "data", "event"), _other_topics())
@pytest.mark.parametrize(("key", "ok"), [("1103244321", True), ("1203244321", False)])
def test_a_person_born_after_the_day_of_any_message_is_refused(
    model: type[Any], field: str, data: dict[str, Any], event: str, key: str, ok: bool
) -> None:
    """Sent 11 March 2024 at noon: a person born that day (1103244321) is accepted, one born the day
    after (1203244321) is refused with a reason naming the message's day, never the number or the date."""
    data = {**data, field: "2024-03-11T12:00:00+01:00", "person": {"key": key}}
    raw = orjson.dumps(data)
    if ok:
        model.model_validate_json(raw)
        return
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(raw)
    reason = reason_of(caught.value, model)
    assert reason == (
        f"schema.value_error: person: the CPR number's birth date lies after {event}: "
        "a date in the future"
    )
    assert key not in reason and "2024" not in reason
