"""Treatment relations (`ctr.treatment-relations.v1`, order § 5 stk. 2): a doctor has a patient in current
treatment at a treatment place, from the doctor's system.

The schema's checks (authorisation id, SOR id, an end before the start, a patient from the future) and
the register's row through the real pipeline on SQLite and PostgreSQL: stored under the patient's internal
id, also when sent under another number of theirs; ended by a later message; a resend changes nothing.
Through the real broker and worker: malformed messages are dead-lettered with their reason, and the valid
ones after them are stored.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest
from pydantic import BaseModel
from sqlalchemy import select

from reghub.settings import Settings
from reghub.tail import MASK, render, render_key
from schemas.treatment_relations import TreatmentRelation
from sinks import tables
from sinks.register import Register
from streams.decode import Rejected, Source, decode
from streams.pipeline import BatchResult
from streams.topics import (
    CHANGES,
    DEAD_LETTER,
    DISPENSINGS,
    PERSON_EVENTS,
    TREATMENT_RELATIONS,
    TopicNames,
)
from tests.hub import Hub as InProcess
from tests.hub import Message
from tests.kafka_helpers import as_json, produce, read_until, running_worker
from tests.messages import (
    DOCTOR,
    NEW_NUMBER,
    PERSON,
    SOR_ID,
    renumbering,
    report,
    treatment_relation,
)
from tests.test_handler_atomicity import NAMES, snapshot

OTHER_DOCTOR = "7QX2B"
UNBORN = "0101304000"  # a CPR number of someone born 1 January 2030: after the messages' day


def _decode(message: dict[str, Any], key: str = PERSON) -> Any:
    source = Source(NAMES(TREATMENT_RELATIONS), 0, 0, key.encode(), orjson.dumps(message), 0)
    return decode(source, TREATMENT_RELATIONS)


# -- the schema ---------------------------------------------------------------------------------------


def test_a_relation_is_parsed_open_ended_or_with_its_end() -> None:
    opened = _decode(treatment_relation("t1"))
    ended = _decode(treatment_relation("t2", "2024-03-01", "2024-03-01"))
    assert not isinstance(opened, Rejected) and not isinstance(ended, Rejected)
    m = opened.message
    assert isinstance(m, TreatmentRelation)
    assert (m.person.key, m.authorisation_id, m.sor_id) == (PERSON, DOCTOR, SOR_ID)
    assert (m.valid_from, m.valid_to) == (date(2024, 3, 1), None)
    assert ended.message.valid_to == date(2024, 3, 1)  # type: ignore[attr-defined]
    assert opened.person_key == PERSON and opened.message_id == "t1"


def _undescribed(model: type[BaseModel]) -> list[str]:
    """The fields of `model` (and the models its fields hold) that have no description."""
    schema = model.model_json_schema()
    undescribed = []
    for where in (schema, *schema.get("$defs", {}).values()):
        if where.get("title") == "PersonRef":
            continue  # schemas.common's, shared by every topic
        for name, prop in where.get("properties", {}).items():
            if not prop.get("description"):
                undescribed.append(f"{where['title']}.{name}")
    return undescribed


def test_every_field_is_described_in_the_exported_schema() -> None:
    assert _undescribed(TreatmentRelation) == []
    props = TreatmentRelation.model_json_schema()["properties"]
    assert set(TreatmentRelation.model_json_schema()["required"]) == {
        "message_id",
        "sent_at",
        "sender",
        "person",
        "authorisation_id",
        "sor_id",
        "valid_from",
    }
    assert {"type": "null"} in props["valid_to"]["anyOf"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"authorisation_id": "0c4nt"},
            "schema.value_error: authorisation_id: an authorisation id is five characters, digits "
            "or capital letters A-Z",
        ),
        (
            {"authorisation_id": "0C4NT1"},
            "schema.value_error: authorisation_id: an authorisation id is five characters, digits "
            "or capital letters A-Z",
        ),
        (
            {"sor_id": SOR_ID[:-1] + "4"},  # the check digit off by one
            "schema.value_error: sor_id: an SOR id is 11 to 18 digits ending in its Verhoeff "
            "check digit",
        ),
        (
            {"sor_id": "1234567890"},  # ten digits: too short for an SOR id
            "schema.value_error: sor_id: an SOR id is 11 to 18 digits ending in its Verhoeff "
            "check digit",
        ),
        (
            {"valid_from": "2024-03-01", "valid_to": "2024-02-29"},
            "schema.value_error: message: valid_to lies before valid_from: a relation ends on or "
            "after its start",
        ),
        ({"valid_from": None}, "schema.date_type: valid_from:"),
        ({"sender": {"system": PERSON}}, "schema.value_error: sender.system:"),
    ],
    ids=[
        "lower-case-authorisation-id",
        "long-authorisation-id",
        "sor-check-digit",
        "short-sor-id",
        "end-before-start",
        "no-start",
        "person-number-as-system",
    ],
)
def test_a_malformed_relation_is_refused_with_a_reason_that_names_no_number(
    change: dict[str, Any], reason: str
) -> None:
    rejected = _decode({**treatment_relation("bad"), **change})
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith(reason), rejected.reason
    assert PERSON not in rejected.reason and SOR_ID[:10] not in rejected.reason


def test_a_patient_born_after_the_day_it_was_sent_is_refused() -> None:
    rejected = _decode(treatment_relation("unborn", person=UNBORN), UNBORN)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == (
        "schema.value_error: person: the CPR number's birth date lies after the day it was sent: "
        "a date in the future"
    )
    born_that_day = {
        **treatment_relation("born", person=UNBORN),
        "sent_at": "2030-01-01T08:00:00+01:00",
    }
    assert not isinstance(_decode(born_that_day, UNBORN), Rejected)


def test_a_relation_under_another_record_key_is_refused() -> None:
    rejected = _decode(treatment_relation("t1"), NEW_NUMBER)
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith("schema.key_mismatch")


def test_tail_masks_the_patients_number_in_the_key_and_the_body() -> None:
    line = render(orjson.dumps(treatment_relation("t1")), [], show_person_keys=False)
    assert PERSON not in line and f'"key":"{MASK}"' in line
    assert f"authorisation_id={DOCTOR}" in line and f"sor_id={SOR_ID}" in line
    key = render_key(PERSON.encode(), TREATMENT_RELATIONS, [], TopicNames(""), False)
    assert key == MASK
    headers = [("reghub-source-topic", NAMES(TREATMENT_RELATIONS).encode())]
    assert render_key(PERSON.encode(), DEAD_LETTER, headers, NAMES, False) == MASK


# -- the register, through the real pipeline -------------------------------------------------------------


class Hub(InProcess):
    """The in-process hub, with what these tests read."""

    async def relations(self) -> list[tuple[Any, ...]]:
        t = tables.treatment_relations
        async with self.register.engine.connect() as conn:
            rows = await conn.execute(select(t).order_by(*t.primary_key.columns))
            return [tuple(r) for r in rows]


@pytest.fixture
async def hub(database_url: str) -> Any:
    h = Hub(database_url)
    await h.pipeline.start()
    yield h
    await h.register.close()


def relation(*args: Any, **kwargs: Any) -> Message:
    return (TREATMENT_RELATIONS, treatment_relation(*args, **kwargs))


def sale(report_id: str) -> Message:
    return (DISPENSINGS, report(report_id, 10_000, "2024-03-01T10:00:00+01:00"))


def outcomes(result: BatchResult) -> list[tuple[str, str]]:
    changes = [orjson.loads(o.value) for o in result.outputs if o.topic == NAMES(CHANGES)]
    return [(c["outcome"], c["reason"]) for c in changes]


def without_clock(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [row[:-1] for row in rows]


@pytest.mark.database
async def test_a_relation_started_is_stored_open_ended_with_no_person_row(hub: Hub) -> None:
    result = await hub.send(relation("t1"))
    assert outcomes(result) == [("applied", "treatment relation registered, open-ended")]
    [row] = await hub.relations()
    assert row[:5] == (PERSON, DOCTOR, SOR_ID, date(2024, 3, 1), None)
    assert row[5] is not None  # updated_at
    snap = await snapshot(hub.register)
    assert snap["persons"] == [] and snap["purchases"] == []


@pytest.mark.database
async def test_a_later_message_ends_the_relation(hub: Hub) -> None:
    await hub.send(relation("t1"))
    other_doctor = relation("t2", authorisation_id=OTHER_DOCTOR)
    await hub.send(other_doctor)
    result = await hub.send(relation("t3", "2024-03-01", "2024-06-30"))
    assert outcomes(result) == [("applied", "treatment relation registered, ending 2024-06-30")]
    assert without_clock(await hub.relations()) == [
        (PERSON, "0C4NT", SOR_ID, date(2024, 3, 1), date(2024, 6, 30)),
        (PERSON, OTHER_DOCTOR, SOR_ID, date(2024, 3, 1), None),  # another doctor's: untouched
    ]


@pytest.mark.database
async def test_a_start_and_its_end_in_one_batch_leave_the_relation_ended(hub: Hub) -> None:
    result = await hub.send(relation("t1"), relation("t2", "2024-03-01", "2024-04-15"))
    assert [o for o, _ in outcomes(result)] == ["applied", "applied"]
    assert without_clock(await hub.relations()) == [
        (PERSON, DOCTOR, SOR_ID, date(2024, 3, 1), date(2024, 4, 15))
    ]


@pytest.mark.database
async def test_a_new_start_is_a_relation_of_its_own(hub: Hub) -> None:
    """Ended in June; the doctor takes the patient on again in September: two rows, the first ended."""
    await hub.send(relation("t1"), relation("t2", "2024-03-01", "2024-06-30"))
    await hub.send(relation("t3", "2024-09-01"))
    assert without_clock(await hub.relations()) == [
        (PERSON, DOCTOR, SOR_ID, date(2024, 3, 1), date(2024, 6, 30)),
        (PERSON, DOCTOR, SOR_ID, date(2024, 9, 1), None),
    ]


@pytest.mark.database
async def test_a_resend_changes_nothing(hub: Hub) -> None:
    await hub.send(relation("t1"))
    await hub.send(relation("t2", "2024-03-01", "2024-06-30"))
    before_rows = await hub.relations()
    before = await snapshot(hub.register)
    again = await hub.send(relation("t1"), relation("t2", "2024-03-01", "2024-06-30"))
    assert [o for o, _ in outcomes(again)] == ["duplicate", "duplicate"]
    assert await hub.relations() == before_rows  # not even the time it was written
    assert await snapshot(hub.register) == before
    # the same end under a new id: written again as it was, still one row
    await hub.send(relation("t2-again", "2024-03-01", "2024-06-30"))
    assert without_clock(await hub.relations()) == without_clock(before_rows)


@pytest.mark.database
async def test_a_relation_under_the_patients_new_number_is_stored_under_their_internal_id(
    hub: Hub,
) -> None:
    await hub.send(sale("a1"))
    await hub.send((PERSON_EVENTS, renumbering("r1", PERSON, NEW_NUMBER, "2024-03-05")))
    result = await hub.send(relation("t1", "2024-04-01", person=NEW_NUMBER))
    assert [o for o, _ in outcomes(result)] == ["applied"]
    await hub.send(relation("t2", "2024-04-01", "2024-05-31", person=NEW_NUMBER))
    assert without_clock(await hub.relations()) == [
        (PERSON, DOCTOR, SOR_ID, date(2024, 4, 1), date(2024, 5, 31))
    ]
    # under the old number it is the same person's relation: one row, whichever number it came by
    await hub.send(relation("t3", "2024-04-01", person=PERSON))
    assert without_clock(await hub.relations()) == [
        (PERSON, DOCTOR, SOR_ID, date(2024, 4, 1), None)
    ]
    persons = {r.person_key: r.alias_of for r in await hub.rows(tables.persons)}
    assert persons == {PERSON: None, NEW_NUMBER: PERSON}  # no row made for the relations


@pytest.mark.database
async def test_a_renumbering_and_a_relation_in_one_batch_land_on_the_internal_id(hub: Hub) -> None:
    await hub.send(sale("a1"))
    # in the order a worker applies a batch: person events before treatment relations
    result = await hub.send(
        (PERSON_EVENTS, renumbering("r1", PERSON, NEW_NUMBER, "2024-03-05")),
        relation("t1", "2024-04-01", person=NEW_NUMBER),
    )
    assert [o for o, _ in outcomes(result)] == ["applied", "applied"]
    assert without_clock(await hub.relations()) == [
        (PERSON, DOCTOR, SOR_ID, date(2024, 4, 1), None)
    ]


# -- through the broker ---------------------------------------------------------------------------------


@pytest.mark.broker
@pytest.mark.database
async def test_malformed_relations_are_dead_lettered_and_the_valid_ones_after_them_stored(
    settings: Settings, register: Register
) -> None:
    names = TopicNames(settings.topic_prefix)
    bad = [
        (
            treatment_relation("bad-doctor", authorisation_id="0C4N"),
            "schema.value_error: authorisation_id: an authorisation id is five characters, digits "
            "or capital letters A-Z",
        ),
        (
            treatment_relation("bad-place", sor_id=SOR_ID[:-1] + "4"),
            "schema.value_error: sor_id: an SOR id is 11 to 18 digits ending in its Verhoeff "
            "check digit",
        ),
        (
            treatment_relation("bad-end", "2024-03-01", "2024-02-01"),
            "schema.value_error: message: valid_to lies before valid_from: a relation ends on or "
            "after its start",
        ),
    ]
    good = [treatment_relation("good-start"), treatment_relation("good-end", valid_to="2024-08-31")]
    sent = [m for m, _ in bad] + good
    await produce(
        settings.kafka_bootstrap,
        names(TREATMENT_RELATIONS),
        [(PERSON.encode(), as_json(m)) for m in sent],
    )
    async with running_worker(settings, register):
        changes = await read_until(
            settings.kafka_bootstrap, names(CHANGES), lambda r: len(r) >= len(sent), timeout=60
        )
        dead = await read_until(
            settings.kafka_bootstrap, names(DEAD_LETTER), lambda r: len(r) >= len(bad)
        )
    assert len(changes) == len(sent)
    by_id = {dict(r.headers)["reghub-message-id"].decode(): r for r in dead}
    assert {k: dict(r.headers)["reghub-reason"].decode() for k, r in by_id.items()} == {
        m["message_id"]: reason for m, reason in bad
    }
    for m, _ in bad:
        record = by_id[m["message_id"]]
        assert record.value == as_json(m)  # the original bytes
        assert dict(record.headers)["reghub-source-topic"] == names(TREATMENT_RELATIONS).encode()
    feed = [orjson.loads(c.value) for c in changes]
    assert sorted(c["outcome"] for c in feed) == ["applied"] * len(good) + ["rejected"] * len(bad)
    for record in changes:  # the change feed names the patient by pseudonym only
        assert PERSON.encode() not in record.value and PERSON.encode() != record.key
    for record in dead:
        assert PERSON.encode() not in b"".join(v for _, v in record.headers)
    t = tables.treatment_relations
    async with register.engine.connect() as conn:
        rows = [tuple(r)[:5] for r in await conn.execute(select(t))]
    assert rows == [(PERSON, DOCTOR, SOR_ID, date(2024, 3, 1), date(2024, 8, 31))]
