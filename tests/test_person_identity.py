"""Persons whose number changes (issue: person keys), through the real pipeline and register.

Renumbering chains, repeats, loops, merges with overlapping periods, deaths, and the invalid events that
go to the dead-letter topic with a specific reason while the register stays as it was. 2024 adult scale:
T1 1,075, T2 1,805, T3 3,915; 0 / 50 / 75 / 85 %.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from reghub.person_show import show
from rules.privacy import pseudonym
from sinks import tables
from streams.decode import Rejected, Source, decode
from streams.pipeline import BatchResult
from streams.topics import (
    ALERTS,
    CHANGES,
    DEAD_LETTER,
    DISPENSINGS,
    PERSON_EVENTS,
    TREATMENT_RELATIONS,
)
from tests.conftest import settings_for
from tests.hub import Hub, Message
from tests.messages import NEW_NUMBER, PERSON, SOR_ID, death, renumbering, report
from tests.test_handler_atomicity import NAMES, snapshot, two_databases

pytestmark = pytest.mark.database
__all__ = ["two_databases"]

THIRD = "0505601242"
OTHER = "0707701234"


@pytest.fixture
async def hub(database_url: str) -> Any:
    h = Hub(database_url)
    await h.pipeline.start()
    yield h
    await h.register.close()


def sale(report_id: str, price: int, paid_at: str, key: str = PERSON) -> Message:
    return (DISPENSINGS, report(report_id, price, paid_at, person=key))


def event(message: dict[str, Any]) -> Message:
    return (PERSON_EVENTS, message)


def reasons(result: BatchResult) -> list[str]:
    return [
        dict(o.headers)["reghub-reason"].decode()
        for o in result.outputs
        if o.topic == NAMES(DEAD_LETTER)
    ]


def changes(result: BatchResult) -> list[dict[str, Any]]:
    return [orjson.loads(o.value) for o in result.outputs if o.topic == NAMES(CHANGES)]


async def test_a_chain_of_numbers_ends_in_one_person(hub: Hub) -> None:
    """A → B → C: purchases under each number belong to the first one's person; the saldo is their
    sum (1,000 + 500 + 300) and each purchase counts once."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(event(renumbering("r1", PERSON, NEW_NUMBER, "2024-03-05")))
    await hub.send(sale("b1", 50_000, "2024-03-10T10:00:00+01:00", NEW_NUMBER))
    await hub.send(event(renumbering("r2", NEW_NUMBER, THIRD, "2024-03-15")))
    await hub.send(sale("c1", 30_000, "2024-03-20T10:00:00+01:00", THIRD))
    persons = {r.person_key: r for r in await hub.rows(tables.persons)}
    assert persons[PERSON].alias_of is None
    assert (persons[NEW_NUMBER].alias_of, persons[NEW_NUMBER].alias_from) == (PERSON, PERSON)
    assert (persons[THIRD].alias_of, persons[THIRD].alias_from) == (PERSON, NEW_NUMBER)
    purchases = await hub.rows(tables.purchases)
    assert sorted((p.report_id, p.person_key) for p in purchases) == [
        ("a1", PERSON),
        ("b1", PERSON),
        ("c1", PERSON),
    ]
    periods = await hub.rows(tables.subsidy_periods)
    assert [(p.person_key, p.saldo) for p in periods] == [(PERSON, 180_000)]


async def test_a_renumbering_delivered_twice_changes_nothing_the_second_time(hub: Hub) -> None:
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(event(renumbering("r1")))
    before = await snapshot(hub.register)
    again = await hub.send(event(renumbering("r1-again")))
    assert reasons(again) == []
    assert [c["reason"] for c in changes(again)] == ["renumbering already registered"]
    after = await snapshot(hub.register)
    assert {k: v for k, v in after.items() if k != "processed_messages"} == {
        k: v for k, v in before.items() if k != "processed_messages"
    }


async def test_a_renumbering_back_is_a_loop_and_is_refused(hub: Hub) -> None:
    """B → A after A → B: refused with a clear reason, not a loop; the register is unchanged."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(event(renumbering("r1")))
    before = await snapshot(hub.register)
    back = await hub.send(event(renumbering("r2", NEW_NUMBER, PERSON)))
    assert reasons(back) == ["rule.renumbering_loop: the new number is already this person's"]
    after = await snapshot(hub.register)
    assert after["persons"] == before["persons"] and after["purchases"] == before["purchases"]


async def test_invalid_renumberings_are_dead_lettered_and_change_nothing(hub: Hub) -> None:
    """From an unknown key; to a number that is already another person's alias."""
    await hub.send(sale("x1", 10_000, "2024-03-01T10:00:00+01:00", OTHER))
    await hub.send(event(renumbering("r0", OTHER, THIRD, source="cpr_register")))
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    before = await snapshot(hub.register)
    unknown = await hub.send(event(renumbering("r1", NEW_NUMBER, "0606601234")))
    taken = await hub.send(event(renumbering("r2", PERSON, THIRD)))
    assert reasons(unknown) == ["rule.renumbering_from_unknown_key"]
    assert reasons(taken) == ["rule.renumbering_to_another_persons_number"]
    after = await snapshot(hub.register)
    assert after["persons"] == before["persons"] and after["purchases"] == before["purchases"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"new_person": {"key": "3213"}}, "schema."),
        ({"new_person": {"key": PERSON}}, "schema.value_error: message: new_person is the same"),
        ({"event": "death", "died_on": "2030-01-01"}, "schema.value_error"),
    ],
)
def test_malformed_events_are_refused_with_a_reason_that_names_no_number(
    change: dict[str, Any], reason: str
) -> None:
    message = {**renumbering("bad"), **change}
    if change.get("event") == "death":
        message = {k: v for k, v in message.items() if k not in ("new_person", "effective_on")}
    source = Source(NAMES(PERSON_EVENTS), 0, 0, PERSON.encode(), orjson.dumps(message), 0)
    rejected = decode(source, PERSON_EVENTS)
    assert isinstance(rejected, Rejected)
    assert rejected.reason.startswith(reason), rejected.reason
    assert PERSON not in rejected.reason and "3213" not in rejected.reason


async def test_a_number_with_its_own_history_is_merged_and_recomputed_in_payment_order(
    hub: Hub,
) -> None:
    """Under A: a1 1,000 (1 March: opens A's period, 0) and a2 1,000 (1 May, saldo 1,000 → 2,000:
    730 × 50 % + 195 × 75 % = 511.25). Under B, before anyone knew it was the same person: b1 500
    (1 April: opens B's own period, 0). The renumbering A → B merges B into A. In payment order from
    b1: b1 on saldo 1,000 is due 425 × 50 % = 212.50 (owed to the person); a2 on 1,500 is due
    F(2,500) − F(1,500) = 152.50 + 521.25 = 673.75 (162.50 owed). One period, 1 March, saldo 2,500;
    together 886.25 = F(2,500), as if all three had come under one number."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(sale("b1", 50_000, "2024-04-01T10:00:00+02:00", NEW_NUMBER))
    await hub.send(sale("a2", 100_000, "2024-05-01T10:00:00+02:00"))
    result = await hub.send(
        event(renumbering("m1", PERSON, NEW_NUMBER, "2024-05-10", source="cpr_register"))
    )
    assert reasons(result) == []
    [feed] = changes(result)
    assert feed["outcome"] == "applied" and feed["reason"].startswith("merged ")
    assert PERSON not in feed["reason"] and NEW_NUMBER not in feed["reason"]
    purchases = {p.report_id: p for p in await hub.rows(tables.purchases)}
    assert {p.person_key for p in purchases.values()} == {PERSON}
    assert {k: p.subsidy_entitled for k, p in purchases.items()} == {
        "a1": 0,
        "b1": 21_250,
        "a2": 67_375,
    }
    assert {p.period_start.isoformat() for p in purchases.values()} == {"2024-03-01"}
    periods = await hub.rows(tables.subsidy_periods)
    assert [(p.person_key, p.period_start.isoformat(), p.saldo) for p in periods] == [
        (PERSON, "2024-03-01", 250_000)
    ]
    owed = sorted((b.balance_id, b.person_key, b.amount) for b in await hub.rows(tables.balances))
    assert owed == [("merge:m1:a2", PERSON, 16_250), ("merge:m1:b1", PERSON, 21_250)]
    persons = {r.person_key: r for r in await hub.rows(tables.persons)}
    assert persons[NEW_NUMBER].alias_of == PERSON
    assert persons[PERSON].current_period_start.isoformat() == "2024-03-01"
    [record] = await hub.rows(tables.person_merges)
    assert (record.person_key, record.merged_key) == (PERSON, NEW_NUMBER)
    # the next purchase under either number pays out what the merge owes
    after = await hub.send(sale("b2", 10_000, "2024-06-01T10:00:00+02:00", NEW_NUMBER))
    decision = next(orjson.loads(o.value) for o in after.outputs if b'"b2"' in o.value)
    assert decision["saldo_before"] == 250_000 and decision["balancing_applied"] == 37_500


async def test_a_merge_in_the_same_batch_as_the_reports_decides_as_batch_by_batch(
    two_databases: tuple[str, str],
) -> None:
    """The purchases under both numbers and the renumbering in one batch leave the register exactly
    as the same messages one batch at a time."""
    messages = [
        sale("a1", 100_000, "2024-03-01T10:00:00+01:00"),
        sale("b1", 50_000, "2024-04-01T10:00:00+02:00", NEW_NUMBER),
        sale("a2", 100_000, "2024-05-01T10:00:00+02:00"),
        event(renumbering("m1", PERSON, NEW_NUMBER, "2024-05-10", source="cpr_register")),
        sale("b2", 10_000, "2024-06-01T10:00:00+02:00", NEW_NUMBER),
    ]
    found = []
    for url, batches in zip(two_databases, ([messages], [[m] for m in messages]), strict=True):
        h = Hub(url)
        try:
            await h.pipeline.start()
            for batch in batches:
                assert reasons(await h.send(*batch)) == []
            found.append(await snapshot(h.register))
        finally:
            await h.register.close()
    one_batch, one_at_a_time = found
    del one_batch["processed_messages"], one_at_a_time["processed_messages"]
    assert one_batch == one_at_a_time


async def test_a_death_is_stored_and_a_purchase_after_it_is_registered_and_flagged(
    hub: Hub,
) -> None:
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(event(death("d1", "2024-04-01")))
    on_the_day = await hub.send(sale("a2", 10_000, "2024-04-01T10:00:00+02:00"))
    after = await hub.send(sale("a3", 10_000, "2024-04-03T10:00:00+02:00"))
    alerts = [orjson.loads(o.value) for o in after.outputs if o.topic == NAMES(ALERTS)]
    assert [a["kind"] for a in alerts] == ["purchase_after_death"]
    assert alerts[0]["detail"] == "paid 2 days after the registered date of death"
    assert PERSON not in orjson.dumps(alerts).decode()
    assert not [o for o in on_the_day.outputs if o.topic == NAMES(ALERTS)]
    [person] = await hub.rows(tables.persons)
    assert person.died_on.isoformat() == "2024-04-01"
    assert {p.report_id for p in await hub.rows(tables.purchases)} == {"a1", "a2", "a3"}


async def test_person_show_lists_numbers_and_merges_masked_by_default(
    hub: Hub, database_url: str
) -> None:
    """`reghub person show KEY` finds the person by any of their numbers; by default every number is
    the pseudonym the change feed uses, and no CPR number is printed."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(sale("b1", 50_000, "2024-04-01T10:00:00+02:00", NEW_NUMBER))
    await hub.send(event(renumbering("m1", PERSON, NEW_NUMBER, "2024-05-10", source="agency")))
    await hub.send(event(death("d1", "2024-06-01")))
    settings = settings_for("127.0.0.1:1", database_url, "show.")
    masked = "\n".join(await show(settings, NEW_NUMBER))
    assert PERSON not in masked and NEW_NUMBER not in masked
    secret = settings.pseudonym_key.get_secret_value().encode()
    assert f"person pseudonym {pseudonym(PERSON, secret)} (internal id)" in masked
    assert "died 2024-06-01" in masked
    assert f"merged pseudonym {pseudonym(NEW_NUMBER, secret)} on 2024-05-10 (m1)" in masked
    assert "balancing b1 212.50" in masked
    assert "period 2024-03-01..2025-02-28 saldo 1500.00" in masked
    shown = "\n".join(await show(settings, PERSON, show_person_keys=True))
    assert f"person {PERSON} (internal id)" in shown and f"merged {NEW_NUMBER}" in shown
    assert await show(settings, "0606601234") == [
        "pseudonym " + pseudonym("0606601234", secret) + ": not in the register"
    ]


async def test_a_substitute_id_replaced_by_a_cpr_number_keeps_its_purchases(hub: Hub) -> None:
    """§ 3 stk. 3: a person first registered under a fictitious substitute id (with their birth date)
    later gets a CPR number; the purchases under both count in one period."""
    substitute = {"key": "4208000001", "birth_date": "1960-05-05"}
    first = report("s1", 100_000, "2024-03-01T10:00:00+01:00")
    first["person"] = substitute
    await hub.send((DISPENSINGS, first))
    move = renumbering("r1", "4208000001", PERSON, "2024-03-10")
    move["person"], move["replaces"] = substitute, "substitute_id"
    assert reasons(await hub.send(event(move))) == []
    await hub.send(sale("c1", 100_000, "2024-04-01T10:00:00+02:00"))
    periods = await hub.rows(tables.subsidy_periods)
    assert [(p.person_key, p.saldo) for p in periods] == [("4208000001", 200_000)]
    purchases = {p.report_id: p for p in await hub.rows(tables.purchases)}
    assert purchases["c1"].subsidy_entitled == 51_125  # F(2,000) − F(1,000)


async def test_custody_is_stored_parent_to_child(hub: Hub) -> None:
    child = "0101201234"  # born 1 January 2020
    message = {
        "message_id": "k1",
        "sent_at": "2024-05-01T12:00:00+02:00",
        "sender": {"source": "cpr_register"},
        "event": "custody",
        "person": {"key": child},
        "parent": {"key": PERSON},
        "valid_from": "2020-01-01",
    }
    result = await hub.send(event(message))
    assert reasons(result) == [] and [c["reason"] for c in changes(result)] == [
        "custody registered"
    ]
    [row] = await hub.rows(tables.custody)
    assert (row.parent_key, row.child_key, row.valid_to) == (PERSON, child, None)


async def test_a_merge_moves_the_merged_persons_treatment_relations_and_custody(hub: Hub) -> None:
    """The read API finds a doctor's relation and a parent's custody under the internal id: a merge
    re-keys them, and a row both numbers had is kept once."""
    child = "0101201234"
    relation = {
        "message_id": "tr-b",
        "sent_at": "2024-05-01T12:00:00+02:00",
        "sender": {"system": "ehr"},
        "person": {"key": NEW_NUMBER},
        "authorisation_id": "0C4MN",
        "sor_id": SOR_ID,
        "valid_from": "2024-01-01",
    }

    def custody(message_id: str, parent: str) -> Message:
        return event(
            {
                "message_id": message_id,
                "sent_at": "2024-05-01T12:00:00+02:00",
                "sender": {"source": "cpr_register"},
                "event": "custody",
                "person": {"key": child},
                "parent": {"key": parent},
                "valid_from": "2020-01-01",
            }
        )

    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(sale("b1", 50_000, "2024-04-01T10:00:00+02:00", NEW_NUMBER))
    await hub.send(
        (TREATMENT_RELATIONS, relation),
        (TREATMENT_RELATIONS, {**relation, "message_id": "tr-a", "person": {"key": PERSON}}),
        custody("k-a", PERSON),
        custody("k-b", NEW_NUMBER),
    )
    result = await hub.send(
        event(renumbering("m1", PERSON, NEW_NUMBER, "2024-05-10", source="cpr_register"))
    )
    assert reasons(result) == []
    relations = await hub.rows(tables.treatment_relations)
    assert [(r.person_key, r.authorisation_id) for r in relations] == [(PERSON, "0C4MN")]
    kept = await hub.rows(tables.custody)
    assert [(c.parent_key, c.child_key) for c in kept] == [(PERSON, child)]


def alerts(result: BatchResult) -> list[dict[str, Any]]:
    return [orjson.loads(o.value) for o in result.outputs if o.topic == NAMES(ALERTS)]


@pytest.mark.parametrize("kind", ["death", "custody"])
@pytest.mark.parametrize("source", ["pharmacy", "agency"])
async def test_custody_and_death_from_anyone_but_the_cpr_register_are_refused(
    hub: Hub, kind: str, source: str
) -> None:
    """Spec § 7 (DECISION): custody and death come only from the CPR register's feed. From a pharmacy
    or the agency: dead-lettered with a reason naming the allowed sender; nothing is stored, so no
    citizen reads the child's saldo and no living person's data is deleted a year early."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    message: dict[str, Any] = {**death("d1", "2024-04-01"), "sender": {"source": source}}
    if source == "pharmacy":
        message["sender"]["pharmacy_number"] = "12300"
    if kind == "custody":
        del message["died_on"]
        message.update(event="custody", parent={"key": OTHER}, valid_from="2024-01-01")
    before = await snapshot(hub.register)
    result = await hub.send(event(message))
    assert reasons(result) == [
        f"rule.sender_not_authorised: a {kind} is accepted only from the CPR register's feed "
        f"(sender.source cpr_register), not from {source}"
    ]
    after = await snapshot(hub.register)
    del before["processed_messages"], after["processed_messages"]
    assert after == before
    assert await hub.rows(tables.custody) == []
    [person] = await hub.rows(tables.persons)
    assert person.died_on is None


async def test_a_pharmacys_renumbering_onto_a_number_with_a_history_is_held_not_merged(
    hub: Hub,
) -> None:
    """Spec § 7 (DECISION): a pharmacy's renumbering A → B where B has its own history is held for
    review: nothing merged, an alert without a CPR number, and reports under both numbers are decided
    on their own. The CPR register's renumbering of the same numbers merges them (as in the test
    above: one period from 1 March, saldo 2,500)."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    await hub.send(sale("b1", 50_000, "2024-04-01T10:00:00+02:00", NEW_NUMBER))
    before = await snapshot(hub.register)
    held = await hub.send(event(renumbering("m1", PERSON, NEW_NUMBER, "2024-05-10")))
    assert reasons(held) == []
    [feed] = changes(held)
    assert (feed["outcome"], feed["reason"]) == (
        "held",
        "renumbering held for review: the new number has a history of its own",
    )
    [alert] = alerts(held)
    assert (alert["kind"], alert["reporter"], alert["message_id"]) == (
        "renumbering_held",
        "12300",
        "m1",
    )
    assert "nothing merged" in alert["detail"]
    assert PERSON not in held.outputs[0].value.decode() + orjson.dumps(alert).decode()
    assert NEW_NUMBER not in orjson.dumps(alert).decode()
    after = await snapshot(hub.register)
    del before["processed_messages"], after["processed_messages"]
    assert after == before
    # each number is still its own person: b2 under B goes on B's own period (saldo 500)
    b2 = await hub.send(sale("b2", 10_000, "2024-06-01T10:00:00+02:00", NEW_NUMBER))
    decision = next(orjson.loads(o.value) for o in b2.outputs if b'"b2"' in o.value)
    assert (decision["period_start"], decision["saldo_before"]) == ("2024-04-01", 50_000)
    assert await hub.rows(tables.person_merges) == []
    # the pharmacy sending it again is held again; the CPR register's confirmation merges
    again = await hub.send(event(renumbering("m2", PERSON, NEW_NUMBER, "2024-05-10")))
    assert [c["outcome"] for c in changes(again)] == ["held"]
    merged = await hub.send(
        event(renumbering("c1", PERSON, NEW_NUMBER, "2024-05-10", source="cpr_register"))
    )
    assert [c["outcome"] for c in changes(merged)] == ["applied"]
    assert changes(merged)[0]["reason"].startswith("merged ")
    persons = {r.person_key: r for r in await hub.rows(tables.persons)}
    assert persons[NEW_NUMBER].alias_of == PERSON
    periods = await hub.rows(tables.subsidy_periods)
    assert [(p.person_key, p.period_start.isoformat(), p.saldo) for p in periods] == [
        (PERSON, "2024-03-01", 160_000)
    ]


async def test_a_pharmacys_renumbering_to_another_birth_date_is_held_and_the_agency_decides(
    hub: Hub,
) -> None:
    """A new number of another birth date would join two people: held, even though it is unknown to
    the register; the agency's renumbering (sender agency) applies it."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    held = await hub.send(event(renumbering("r1", PERSON, OTHER, "2024-03-05")))
    assert [(c["outcome"], c["reason"]) for c in changes(held)] == [
        (
            "held",
            "renumbering held for review: the new number's birth date differs from the old "
            "number's",
        )
    ]
    assert [a["kind"] for a in alerts(held)] == ["renumbering_held"]
    assert {r.person_key for r in await hub.rows(tables.persons)} == {PERSON}
    decided = await hub.send(event(renumbering("r2", PERSON, OTHER, "2024-03-05", source="agency")))
    assert [c["outcome"] for c in changes(decided)] == ["applied"]
    persons = {r.person_key: r for r in await hub.rows(tables.persons)}
    assert persons[OTHER].alias_of == PERSON


async def test_identity_events_take_effect_before_sales_in_one_batch_whatever_the_order(
    hub: Hub,
) -> None:
    """Spec § 7 (DECISION): a renumbering A → B and a sale under B in one batch, the sale first in the
    batch: the sale is decided on A's period (saldo 1,000 → 2,000: 511.25 kr), not on a fresh period
    under B (0 kr)."""
    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    result = await hub.send(
        sale("b1", 100_000, "2024-05-01T10:00:00+02:00", NEW_NUMBER),
        event(renumbering("r1", PERSON, NEW_NUMBER, "2024-04-10")),
    )
    assert reasons(result) == []
    decision = next(orjson.loads(o.value) for o in result.outputs if b'"b1"' in o.value)
    assert (decision["subsidy"], decision["saldo_before"]) == (51_125, 100_000)
    assert decision["period_start"] == "2024-03-01"
    assert [r.balance_id for r in await hub.rows(tables.balances)] == []


async def test_a_quote_for_a_person_the_cpr_register_reports_dead_says_so(hub: Hub) -> None:
    """A quote is the decision the register would give; for a person whose death the CPR register
    reported it names the date, and says plainly when the sale would come after it."""
    from api.quotes import QuoteRequest, quote
    from rules.dispensing import RulesConfig

    await hub.send(sale("a1", 100_000, "2024-03-01T10:00:00+01:00"))
    request = QuoteRequest.model_validate(
        {
            "person_key": PERSON,
            "paid_at": "2024-05-01T10:00:00+02:00",
            "lines": [{"drug_id": "028100", "reimbursement_price": 10_000, "actual_price": 10_000}],
        }
    )
    alive = await quote(hub.register, RulesConfig(), request, "12300")
    assert (alive["died_on"], alive["notice"]) == (None, None)
    await hub.send(event(death("d1", "2024-04-01")))
    dead = await quote(hub.register, RulesConfig(), request, "12300")
    assert dead["died_on"] == "2024-04-01"
    assert dead["notice"] == (
        "the CPR register reports this person dead on 2024-04-01: a sale after the death is "
        "registered and flagged (purchase_after_death)"
    )
    assert dead["subsidy"] == alive["subsidy"]


async def test_a_substitute_ids_under_18_flag_is_decided_again_from_the_real_birth_date(
    hub: Hub,
) -> None:
    """Spec § 9 (DECISION): a system-assigned number 3805061234 carries May 2006 only, so the register
    counts the person born on 1 May 2006: 18 on 10 May 2024, the period opened by s1 (1,000 kr) is an
    adult's and s1 gets 0 kr (below T1). The pharmacy reports the real CPR number 2005064123 (born
    20 May 2006): the person is 17 on 10 May 2024, the period is a child's, s1 is due 1,000 × 60 % =
    600 kr and the 600 kr become a balancing amount owed to the person, paid at the next purchase."""
    substitute, real = "3805061234", "2005064123"
    s1 = await hub.send(sale("s1", 100_000, "2024-05-10T10:00:00+02:00", substitute))
    first = next(orjson.loads(o.value) for o in s1.outputs if b'"s1"' in o.value)
    assert (first["subsidy"], first["under18"]) == (0, False)
    moved = await hub.send(event(renumbering("r1", substitute, real, "2024-05-15")))
    assert reasons(moved) == []
    [feed] = changes(moved)
    assert feed["reason"].endswith(
        "the under-18 flag decided again from the real birth date: 1 balancing amounts"
    )
    [period] = await hub.rows(tables.subsidy_periods)
    assert (period.person_key, period.under18, period.saldo) == (substitute, True, 100_000)
    persons = {r.person_key: r for r in await hub.rows(tables.persons)}
    assert persons[substitute].birth_date.isoformat() == "2006-05-20"
    [owed] = await hub.rows(tables.balances)
    assert (owed.balance_id, owed.amount) == ("born:r1:s1", 60_000)
    s2 = await hub.send(sale("s2", 10_000, "2024-06-01T10:00:00+02:00", real))
    second = next(orjson.loads(o.value) for o in s2.outputs if b'"s2"' in o.value)
    assert (second["subsidy_entitled"], second["balancing_applied"]) == (6_000, 60_000)
