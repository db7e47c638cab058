"""Personal data on the wire (order § 5: each party sees what it needs).

Hostile names and ids go through the real broker, worker and register: an unexpected field named like a
CPR number, a CPR number as a key deep inside, a CPR number in a wrongly typed field, report and agreement
ids that are CPR numbers (plain and DDMMYY-SSSS). No change, alert or decision, no dead letter's headers
and no log line may then carry any of those numbers, nor the person key the messages travel under. A dead
letter's key and value are the producer's own, sent back on purpose, and are not searched.

Also: `reason_of` on hostile examples, the person-number check on ids, and `reghub tail`'s masking.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

import orjson
import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reghub.settings import Settings
from reghub.tail import MASK, mask_field, render, render_key
from rules.identifiers import (
    contains_person_number,
    is_p_number,
    mask_person_numbers,
    person_number_spans,
)
from schemas.decisions import PurchaseDecision, SettlementStatement
from schemas.deferrals import DeferralAgreement
from schemas.dispensing import DispensingReport
from sinks.register import Register
from streams.decode import Rejected, Source, _claimed_id, decode, reason_of
from streams.topics import (
    ALERTS,
    CHANGES,
    DEAD_LETTER,
    DECISIONS,
    DEFERRALS,
    DISPENSINGS,
    TopicNames,
)
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import PERSON, report

# CPR-shaped numbers, each a real date: none may come back anywhere but in a dead letter's own bytes
EXTRA_NAME = "0707701234"  # an unexpected field's name
DEEP_KEY = "120885-1122"  # a key inside a line, in the DDMMYY-SSSS form
DEEP_VALUE = "2302671357"  # the value under it
WRONG_TYPE = "3112994321"  # a string where an amount belongs
REPORT_ID = "1511501717"  # a report id
REPORT_ID_HYPHEN = "010203-4455"  # a report id, DDMMYY-SSSS
PERSON_FIELD = "2906781010"  # an unexpected field inside the person reference
AGREEMENT_ID = "1402881234"  # a deferral agreement id
BROKEN_JSON_ID = "0110553311"  # a report id in bytes that are not JSON

HOSTILE = (
    EXTRA_NAME,
    DEEP_KEY,
    DEEP_VALUE,
    WRONG_TYPE,
    REPORT_ID,
    REPORT_ID_HYPHEN,
    PERSON_FIELD,
    AGREEMENT_ID,
    BROKEN_JSON_ID,
)


OUR_LOGGERS = frozenset({"reghub", "streams", "sinks", "rules", "schemas", "api"})
"""The hub's loggers: clean at every level. Libraries are held to INFO and above: at DEBUG, aiokafka
logs the records it sends and fetches and aiosqlite its statements' parameters, so neither may run at
DEBUG where logs leave the machine."""


def forms(number: str) -> tuple[bytes, bytes]:
    """A CPR number as ten digits and as DDMMYY-SSSS."""
    digits = number.replace("-", "")
    return digits.encode(), f"{digits[:6]}-{digits[6:]}".encode()


FORBIDDEN = tuple(f for n in (*HOSTILE, PERSON) for f in forms(n))


def leaks(raw: bytes) -> list[bytes]:
    return [f for f in FORBIDDEN if f in raw]


def reason(model: type[BaseModel], data: Any) -> str:
    raw = data if isinstance(data, bytes) else orjson.dumps(data)
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(raw)
    return reason_of(caught.value, model)


# --- reasons: built from the schema's names, never the message's --------------------------------


def test_an_unexpected_field_is_reported_where_it_was_never_by_its_name() -> None:
    top = {**report("r-1", 100), EXTRA_NAME: 1}
    deep = report("r-1", 100)
    deep["lines"][0][DEEP_KEY] = {DEEP_VALUE: DEEP_VALUE}
    person = report("r-1", 100)
    person["person"][PERSON_FIELD] = PERSON_FIELD

    assert reason(DispensingReport, top) == "schema.extra_forbidden: message: an unexpected field"
    assert reason(DispensingReport, deep) == "schema.extra_forbidden: lines[0]: an unexpected field"
    assert reason(DispensingReport, person) == "schema.extra_forbidden: person: an unexpected field"


def test_reasons_stay_specific_and_quote_no_value() -> None:
    missing = {k: v for k, v in report("r-1", 100).items() if k != "dispensing_id"}
    wrong = report("r-1", 100, granted_subsidy=WRONG_TYPE)
    kind = report("r-1", 100, kind=WRONG_TYPE)
    drug = report("r-1", 100)
    drug["lines"][0]["drug_id"] = int(WRONG_TYPE)
    born = report("r-1", 100)
    born["person"]["birth_date"] = "1971-01-01"

    assert reason(DispensingReport, missing) == "schema.missing: dispensing_id: Field required"
    assert (
        reason(DispensingReport, wrong)
        == "schema.int_type: granted_subsidy: Input should be a valid integer"
    )
    # a literal's message quotes the schema's own values, not the input
    assert reason(DispensingReport, kind) == (
        "schema.literal_error: kind: Input should be 'sale' or 'return'"
    )
    assert reason(DispensingReport, drug) == (
        "schema.string_type: lines[0].drug_id: Input should be a valid string"
    )
    assert reason(DispensingReport, born) == (
        "schema.value_error: person: birth_date is sent only with a fictitious number "
        "(xLLLnnnnnn): a CPR number carries its own"
    )
    broken = b'{"report_id": "' + BROKEN_JSON_ID.encode() + b'", "lines": ['
    assert reason(DispensingReport, broken).startswith("schema.json_invalid: message: Invalid JSON")
    for text in (reason(DispensingReport, m) for m in (wrong, kind, drug, broken)):
        assert not leaks(text.encode()), text


class _Cat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["cat"]
    lives: int


class _Dog(BaseModel):
    kind: Literal["dog"]
    name: str


class _Hostile(BaseModel):
    """Shapes our wire schemas do not use yet: a discriminated union, a dict, an int/str union."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pet: Annotated[_Cat | _Dog, Field(discriminator="kind")] | None = None
    by_name: dict[str, _Cat] = Field(default_factory=dict)
    either: int | str = 0


def test_a_message_pydantic_would_build_from_the_input_is_replaced_by_our_own() -> None:
    with pytest.raises(ValidationError) as caught:
        _Hostile.model_validate_json(orjson.dumps({"pet": {"kind": EXTRA_NAME}}))
    assert EXTRA_NAME in str(caught.value)  # pydantic itself quotes the tag
    assert reason_of(caught.value, _Hostile) == (
        "schema.union_tag_invalid: pet: Input tag does not match any of the expected tags"
    )


def test_a_dict_key_from_the_message_never_appears_in_the_path() -> None:
    bad = {"by_name": {DEEP_KEY: {"kind": "cat", "lives": [WRONG_TYPE]}}}
    assert reason(_Hostile, bad) == (
        "schema.int_type: by_name[<name>].lives: Input should be a valid integer"
    )
    extra = {"by_name": {DEEP_KEY: {"kind": "cat", "lives": 9, EXTRA_NAME: 1}}}
    assert reason(_Hostile, extra) == (
        "schema.extra_forbidden: by_name[<name>]: an unexpected field"
    )


def test_without_a_known_model_every_name_is_neutral() -> None:
    with pytest.raises(ValidationError) as caught:
        _Hostile.model_validate_json(orjson.dumps({EXTRA_NAME: 1}))
    assert reason_of(caught.value) == "schema.extra_forbidden: message: an unexpected field"


# --- ids that may be person numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    "number", [REPORT_ID, REPORT_ID_HYPHEN, f"r-{REPORT_ID}", f"x{EXTRA_NAME}:1"]
)
def test_an_id_that_may_be_a_person_number_is_refused(number: str) -> None:
    message = report(number, 100, dispensing_id="d-1")
    assert reason(DispensingReport, message) == (
        "schema.value_error: report_id: must not contain a person number"
    )
    assert _claimed_id(orjson.dumps(message)) is None


def test_every_id_a_partner_chooses_is_checked_but_not_the_pharmacy_systems_numbers() -> None:
    back = report("r-1", 100, return_of=REPORT_ID, kind="return")
    back["lines"][0].update(reimbursement_price=-100, actual_price=-100)
    assert reason(DispensingReport, back) == (
        "schema.value_error: return_of: must not contain a person number"
    )
    # dispensing and ordination ids are the pharmacy systems' own numbers, often ten digits, and a real
    # one may read as a date (a shared scenario's): refusing it would leave a report unregistered
    for field in ("dispensing_id", "ordination_id"):
        accepted = report("r-1", 100, **{field: "2106149173"})
        DispensingReport.model_validate_json(orjson.dumps(accepted))
    deferral = {
        "message_id": "h-1",
        "sent_at": "2024-01-02T09:00:00+01:00",
        "pharmacy_number": "12300",
        "action": "entered",
        "agreement_id": AGREEMENT_ID,
        "date": "2024-01-02",
        "monthly_rate": 38_125,
        "rates": 12,
        "person": {"key": PERSON},
    }
    assert reason(DeferralAgreement, deferral) == (
        "schema.value_error: agreement_id: must not contain a person number"
    )


def test_p_numbers_and_other_numbers_that_cannot_be_a_cpr_date_are_not_person_numbers() -> None:
    p_number = "1013000006"  # day 10, month 13: no date
    assert is_p_number(p_number) and not contains_person_number(p_number)
    for fine in (p_number, "1234567890", "3801011234", "4208000001", "12300", "r-20240402110000"):
        assert not contains_person_number(fine), fine
        DispensingReport.model_validate_json(orjson.dumps(report(f"r-{fine}", 100)))
    assert person_number_spans("a 0707701234 b 120885-1122") == [(2, 12), (15, 26)]
    assert mask_person_numbers("r-0707701234-1013000006") == "r-**********-1013000006"


def test_a_claimed_id_is_kept_only_when_well_formed() -> None:
    assert _claimed_id(orjson.dumps({"report_id": "r-1", "lines": 1})) == "r-1"
    assert _claimed_id(orjson.dumps({"message_id": "m 1"})) is None
    assert _claimed_id(orjson.dumps({"message_id": "x" * 65})) is None
    assert _claimed_id(orjson.dumps({"report_id": 707701234})) is None


def test_decode_never_puts_a_person_number_into_a_rejection() -> None:
    hostile = [
        {**report("ok-1", 100), EXTRA_NAME: 1},
        report(REPORT_ID, 100, dispensing_id="d-1"),
        report(REPORT_ID_HYPHEN, 100, dispensing_id="d-1"),
    ]
    for offset, message in enumerate(hostile):
        source = Source("t", 0, offset, PERSON.encode(), orjson.dumps(message), 0)
        rejected = decode(source, DISPENSINGS)
        assert isinstance(rejected, Rejected)
        assert not leaks(f"{rejected.reason} {rejected.message_id}".encode()), rejected
    assert rejected.message_id is None


# --- reghub tail: masked by field ---------------------------------------------------------------


def test_tail_masks_person_numbers_by_field_and_shows_p_and_pharmacy_numbers() -> None:
    body = {**report(f"r-{REPORT_ID}", 100), EXTRA_NAME: {DEEP_KEY: DEEP_VALUE}}
    body["dispensing_id"] = "2106149173"  # a dispensing number, not a person's
    body["lines"][0][PERSON_FIELD] = 1
    headers = [
        ("reghub-reason", f"schema.extra_forbidden: {EXTRA_NAME}: Extra inputs".encode()),
        ("reghub-source-topic", b"ctr.dispensings.v1"),
        ("reghub-source-partition", b"1"),
        ("reghub-source-offset", b"7"),
        ("reghub-message-id", REPORT_ID_HYPHEN.encode()),
        ("other", PERSON.encode()),  # not a reghub header: not printed at all
    ]
    line = render(orjson.dumps(body), headers, show_person_keys=False)

    assert not leaks(line.encode()), line
    assert f"report_id=r-{MASK}" in line and "dispensing_id=2106149173" in line
    assert f'person={{"key":"{MASK}"}}' in line
    assert "pharmacy_number=12300" in line and "pharmacy_site_p_number=1003456788" in line
    assert f"reghub-reason=schema.extra_forbidden: {MASK}: Extra inputs" in line
    assert f"reghub-message-id={MASK}" in line
    assert "reghub-source-topic=ctr.dispensings.v1 reghub-source-partition=1" in line
    shown = render(orjson.dumps(body), headers, show_person_keys=True)
    assert PERSON in shown and EXTRA_NAME in shown


def test_tail_masks_the_person_key_field_of_older_decisions() -> None:
    old = {
        "kind": "purchase",
        "report_id": "r-1",
        "status": "registered",
        "pharmacy_number": "12300",
        "person_key": PERSON,
        "subsidy": 201_975,
    }
    line = render(orjson.dumps(old), [], show_person_keys=False)
    assert f"person_key={MASK}" in line and "subsidy=2019.75 kr" in line
    assert PERSON not in line
    assert mask_field("person_key", "3801011234") == MASK  # a substitute id too: the field decides
    assert mask_field("pharmacy_site_p_number", "1003456788") == "1003456788"


def test_tail_masks_record_keys_of_person_keyed_topics_only() -> None:
    names = TopicNames("p.")
    from_dispensings = [("reghub-source-topic", names(DISPENSINGS).encode())]
    assert render_key(PERSON.encode(), DISPENSINGS, [], names, False) == MASK
    assert render_key(PERSON.encode(), DEAD_LETTER, from_dispensings, names, False) == MASK
    assert render_key(b"12300", DECISIONS, [], names, False) == "12300"
    assert render_key(b"a1b2c3d4e5f60718", CHANGES, [], names, False) == "a1b2c3d4e5f60718"
    assert render_key(PERSON.encode(), None, [], names, False) == MASK
    assert render_key(b"1013000006", None, [], names, False) == "1013000006"
    assert render_key(PERSON.encode(), DISPENSINGS, [], names, True) == PERSON


def test_tail_masks_bodies_that_are_not_json_as_free_text() -> None:
    line = render(b"not json " + PERSON.encode() + b" 1013000006", [], show_person_keys=False)
    assert PERSON not in line and "1013000006" in line


# --- through the real broker, worker and register -----------------------------------------------


def _deferral(message_id: str, action: str, agreement_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "sent_at": "2024-01-02T09:00:00+01:00",
        "pharmacy_number": "12300",
        "action": action,
        "agreement_id": agreement_id,
        "date": "2024-01-02",
        "person": {"key": PERSON},
        **extra,
    }


@pytest.mark.broker
@pytest.mark.database
async def test_no_person_number_leaves_the_hub_except_in_the_producers_own_bytes(
    settings: Settings, register: Register, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    late = settings.model_copy(update={"report_grace_seconds": 60})  # so alerts are raised too
    names = TopicNames(late.topic_prefix)
    key = PERSON.encode()

    extra_field = {**report("hostile-1", 100), EXTRA_NAME: 1}
    deep_key = report("hostile-2", 100)
    deep_key["lines"][0][DEEP_KEY] = {DEEP_VALUE: DEEP_VALUE}
    wrong_type = report("hostile-3", 100, granted_subsidy=WRONG_TYPE)
    person_field = report("hostile-4", 100)
    person_field["person"][PERSON_FIELD] = PERSON_FIELD
    dispensings = [
        as_json(extra_field),
        as_json(deep_key),
        as_json(wrong_type),
        as_json(report(REPORT_ID, 100, dispensing_id="d-5")),
        as_json(report(REPORT_ID_HYPHEN, 100, dispensing_id="d-6")),
        as_json(person_field),
        b'{"report_id": "' + BROKEN_JSON_ID.encode() + b'", "lines": [',
        as_json(report("good-1", 400_000)),
    ]
    deferrals = [
        as_json(_deferral("h-bad", "entered", AGREEMENT_ID, monthly_rate=38_125, rates=12)),
        as_json(_deferral("h-in", "entered", "h-1", monthly_rate=38_125, rates=12)),
        as_json(_deferral("h-settle", "settle", "h-1")),
    ]
    await produce(late.kafka_bootstrap, names(DISPENSINGS), [(key, v) for v in dispensings])
    await produce(late.kafka_bootstrap, names(DEFERRALS), [(key, v) for v in deferrals])

    async with running_worker(late, register):
        dead = await read_until(late.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= 8)
        decisions = await read_until(late.kafka_bootstrap, names(DECISIONS), lambda r: len(r) >= 2)
        changes = await read_until(late.kafka_bootstrap, names(CHANGES), lambda r: len(r) >= 10)
        alerts = await read_until(late.kafka_bootstrap, names(ALERTS), lambda r: len(r) >= 2)

    assert (len(dead), len(decisions), len(changes)) == (
        8,
        2,
        10,
    )  # a registered report's change is its decision
    assert alerts, "the late reports raised alerts"
    reasons = {dict(d.headers)["reghub-reason"].decode() for d in dead}
    assert reasons >= {
        "schema.extra_forbidden: message: an unexpected field",
        "schema.extra_forbidden: lines[0]: an unexpected field",
        "schema.int_type: granted_subsidy: Input should be a valid integer",
        "schema.value_error: report_id: must not contain a person number",
        "schema.extra_forbidden: person: an unexpected field",
        "schema.value_error: agreement_id: must not contain a person number",
    }, reasons
    claimed = sorted(dict(d.headers)["reghub-message-id"].decode() for d in dead)
    assert claimed == ["", "", "", "h-bad", "hostile-1", "hostile-2", "hostile-3", "hostile-4"]

    for record in dead:  # key and value are the producer's own; the headers are ours
        for name, value in record.headers:
            assert not leaks(name.encode() + b"=" + value), (name, value)
    for record in (*decisions, *changes, *alerts):
        raw = (record.key or b"") + (record.value or b"")
        raw += b"".join(n.encode() + v for n, v in record.headers)
        assert not leaks(raw), (record.topic, raw)

    bodies = {orjson.loads(r.value)["kind"]: orjson.loads(r.value) for r in decisions}
    purchase, settlement = bodies["purchase"], bodies["deferral_settlement"]
    assert set(purchase) == set(PurchaseDecision.model_fields)
    assert set(settlement) == set(SettlementStatement.model_fields)
    assert "person_key" not in purchase and "person_key" not in settlement
    assert (purchase["report_id"], purchase["dispensing_id"]) == ("good-1", "d-good-1")
    assert purchase["pharmacy_number"] == "12300" and purchase["status"] == "registered"
    assert settlement["agreement_id"] == "h-1" and settlement["message_id"] == "h-settle"

    assert all(logging.getLogger(n).isEnabledFor(logging.DEBUG) for n in OUR_LOGGERS)
    assert caplog.records, "the worker's logging was captured"
    for record in caplog.records:
        if record.name.split(".")[0] in OUR_LOGGERS or record.levelno >= logging.INFO:
            line = logging.Formatter().format(record)
            assert not leaks(line.encode()), (record.name, line)


def test_tail_masks_every_number_of_a_person_event() -> None:
    """`cpr.person-events.v1` carries the old number as its key and in `person`, the new one in
    `new_person`, a parent in `parent`: all masked, and its record key too."""
    from streams.topics import PERSON_EVENTS
    from tests.messages import NEW_NUMBER, renumbering

    body = {**renumbering("r1"), "parent": {"key": "0707701234"}}
    line = render(orjson.dumps(body), [], show_person_keys=False)
    assert PERSON not in line and NEW_NUMBER not in line and "0707701234" not in line
    assert render_key(PERSON.encode(), PERSON_EVENTS, [], TopicNames(""), False) == MASK
