"""Retention (§ 4) on the register, SQLite and PostgreSQL: every rule on the day before its deletion day
(kept) and on that day (gone), with everything else untouched.

The register is built through the real pipeline: another person with a full history (purchases, grant,
supplement, deferral, balancing amount) that no rule reaches on the days tested, and the person the rule
is about. Rows whose date the pipeline takes from the clock (corrections, merges, parked and processed
messages, obligations) are inserted by hand at the edges of their Copenhagen day, with the real tables.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Table, insert, select, update

from rules.retention import DECEASED, GENERAL, deleted_from
from sinks import retention
from sinks import tables as t
from sinks.register import make_engine
from streams.topics import (
    CORRECTIONS,
    DEAD_LETTER,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    MUNICIPAL_GRANTS,
    PERSON_EVENTS,
    SUBSIDY_SCALES,
)
from tests.hub import Hub as InProcess
from tests.hub import Message
from tests.messages import (
    NEW_NUMBER,
    PERSON,
    SCALE_2025,
    correction,
    death,
    grant,
    municipal,
    renumbering,
    report,
)
from tests.test_cli import PSEUDONYM_KEY, arun
from tests.test_handler_atomicity import NAMES

pytestmark = pytest.mark.database

CPH = ZoneInfo("Europe/Copenhagen")
OTHER = "0707701234"  # the person no rule reaches on the days tested
TARGET = "0909901234"  # hand-inserted rows' person
D = date(2025, 3, 10)  # the day the data of each rule arises
KEPT, GONE = date(2027, 3, 10), date(2027, 3, 11)  # the anniversary and the day after


class Hub(InProcess):
    """The in-process hub, with what these tests read."""

    async def snapshot(self) -> dict[str, set[tuple[Any, ...]]]:
        """Every row of every table the retention may touch, whole."""
        names = {"persons", *(r.table for r in retention.RETAINED)}
        found = {}
        async with self.register.engine.connect() as conn:
            for name in sorted(names):
                found[name] = {
                    tuple(r) for r in await conn.execute(select(t.metadata.tables[name]))
                }
        return found

    async def plan(self, as_of: date) -> dict[str, int]:
        async with self.register.engine.connect() as conn:
            return await retention.plan(conn, as_of)

    async def apply(self, as_of: date) -> dict[str, int]:
        return await retention.apply(self.register.engine, as_of)

    async def insert(self, table: Table, **values: Any) -> None:
        async with self.register.engine.begin() as conn:
            await conn.execute(insert(table).values(**values))


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def cph(day: date, at: time = time(12)) -> datetime:
    """A Copenhagen wall-clock time in UTC, as the register stores it."""
    return datetime.combine(day, at, tzinfo=CPH).astimezone(UTC)


def last_instant(day: date) -> datetime:
    return cph(day, time(23, 59, 59, 999_000))


def first_instant(day: date) -> datetime:
    return cph(day + timedelta(days=1), time(0))


def other_history() -> list[Message]:
    """OTHER's register, all arising after `D` (from June 2025; the clock's rows: today)."""
    supplement = municipal("o-hs", 101, "85")
    supplement["person"] = {"key": OTHER}
    supplement["valid_from"] = "2025-06-01"
    supplement["decided_at"] = "2025-06-01T10:00:00+02:00"
    return [
        (SUBSIDY_SCALES, SCALE_2025),
        (DISPENSINGS, report("o1", 150_000, "2025-06-02T10:00:00+02:00", person=OTHER)),
        (DISPENSINGS, report("o2", 250_000, "2025-06-20T10:00:00+02:00", person=OTHER)),
        (
            INDIVIDUAL_GRANTS,
            grant("o-g", "2025-06-01", "2026-12-31", drug_id="028100", person={"key": OTHER}),
        ),
        (MUNICIPAL_GRANTS, supplement),
        (DEFERRALS, deferral("o-h", "entered", "2025-06-03", OTHER)),
        (
            CORRECTIONS,
            correction(
                "o-c", "balancing", amount=-12_345, arose_on="2025-06-10", person={"key": OTHER}
            ),
        ),
    ]


def deferral(agreement: str, action: str, day: str, person: str = PERSON) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": f"{agreement}-{action}",
        "sent_at": f"{day}T09:00:00+01:00",
        "pharmacy_number": "12300",
        "action": action,
        "agreement_id": agreement,
        "date": day,
        "person": {"key": person},
    }
    if action == "entered":
        message |= {"monthly_rate": 38_125, "rates": 12}
    return message


@pytest.fixture
async def hub(database_url: str) -> Any:
    h = Hub(database_url)
    await h.pipeline.start()
    result = await h.send(*other_history())
    assert not [o for o in result.outputs if o.topic == NAMES(DEAD_LETTER)], "OTHER's history"
    yield h
    await h.register.close()


def removed(
    before: dict[str, set[tuple[Any, ...]]], after: dict[str, set[tuple[Any, ...]]]
) -> dict[str, set[tuple[Any, ...]]]:
    """The rows gone per table; asserts nothing was added or changed."""
    gone = {}
    for name, rows in before.items():
        assert after[name] <= rows, f"{name}: rows added or changed"
        if rows - after[name]:
            gone[name] = rows - after[name]
    return gone


async def kept_then_gone(hub: Hub, kept: date, gone: date) -> dict[str, set[tuple[Any, ...]]]:
    """Plan and apply on `kept` change nothing; on `gone`, they return what went."""
    before = await hub.snapshot()
    assert nonzero(await hub.plan(kept)) == {}
    assert nonzero(await hub.apply(kept)) == {}
    assert await hub.snapshot() == before
    planned = nonzero(await hub.plan(gone))
    assert await hub.snapshot() == before, "a plan changes nothing"
    applied = nonzero(await hub.apply(gone))
    assert applied == planned
    after = await hub.snapshot()
    went = removed(before, after)
    assert {name: len(rows) for name, rows in went.items()} == _by_table(applied)
    assert nonzero(await hub.apply(gone)) == {}, "a second run deletes nothing"
    return went


def _by_table(counts: dict[str, int]) -> dict[str, int]:
    tables: dict[str, int] = {}
    for label, n in counts.items():
        name = label.removeprefix("deceased.").split(".")[0]
        tables[name] = tables.get(name, 0) + n
    return tables


async def target_person(hub: Hub) -> None:
    """TARGET's persons row, updated today: it stays while the tests delete its other rows."""
    await hub.insert(
        t.persons,
        person_key=TARGET,
        birth_date=date(1990, 9, 9),
        has_extras=True,
        updated_at=datetime.now(UTC),
    )


# ---- each line at its edges, rows inserted at the end of D and the start of D + 1 ---------------


def rows_for(label: str, arose: Any, n: int) -> tuple[Table, dict[str, Any]]:
    """Line `label`'s row number `n` for TARGET arising at `arose` (a date, or a time for the time
    columns)."""
    now = datetime.now(UTC)
    key = f"{label}-{n}"
    match label:
        case "subsidy_periods":
            start = arose - timedelta(days=364) + timedelta(days=n * 400)
            return t.subsidy_periods, dict(
                person_key=TARGET, period_start=start, period_end=arose, under18=False, saldo=1
            )
        case "grants":
            return t.grants, dict(
                person_key=TARGET, grant_id=key, kind="s145_single", valid_from=date(2024, 1, 1),
                valid_to=arose, updated_at=now,
            )  # fmt: skip
        case "supplements.health_supplement" | "supplements.rights_based":
            return t.supplements, dict(
                person_key=TARGET, decision_id=key, kind=label.split(".")[1],
                municipality_code=101, valid_from=date(2024, 1, 1), valid_to=arose, updated_at=now,
            )  # fmt: skip
        case "deferral_agreements":
            return t.deferral_agreements, dict(
                person_key=TARGET, agreement_id=key, pharmacy_number="12300",
                entered_on=date(2024, 1, 1), monthly_rate=100, rates=12, ended_on=arose,
                ended_by_default=False, deferred_total=1200, settled=n == 0, updated_at=now,
            )  # fmt: skip
        case "balances":  # the first settled, the second not: § 4 stk. 7 either way
            return t.balances, dict(
                balance_id=key, person_key=TARGET, amount=500, remaining=0 if n == 0 else 500,
                arose_on=arose, origin="correction", skip_once=False,
                settled_at_report="r" if n == 0 else None, updated_at=now,
            )  # fmt: skip
        case "custody":
            return t.custody, dict(
                parent_key=TARGET, child_key=f"010120{n}234", valid_from=date(2020, 1, 1),
                valid_to=arose, updated_at=now,
            )  # fmt: skip
        case "corrections":
            return t.corrections, dict(
                message_id=key, person_key=TARGET, action="balancing", ordered_by="agency",
                reported_by="u", amount=-100, received_at=arose,
            )  # fmt: skip
        case "person_merges":
            return t.person_merges, dict(
                message_id=key, person_key=TARGET, merged_key=f"020220{n}234",
                effective_on=date(2024, 1, 1), details="{}", merged_at=arose,
            )  # fmt: skip
        case "obligations":  # the first with its event time, the second with none: updated_at
            return t.obligations, dict(
                obligation_id=key, kind="dispensing_report", reporter="12300", legal_basis="§ 7",
                person_key=TARGET, event_at=arose if n == 0 else None, state="on_time",
                updated_at=arose,
            )  # fmt: skip
        case "parked_messages":
            return t.parked_messages, dict(
                message_id=key, source_topic="ctr.dispensings.v1", day=date(2024, 1, 1),
                reason="no scale", key=TARGET.encode(), value=b"{}", parked_at=arose,
            )  # fmt: skip
        case "processed_messages":
            return t.processed_messages, dict(
                message_id=key, source_topic="ctr.corrections.v1", outcome="registered",
                processed_at=arose,
            )  # fmt: skip
    raise AssertionError(label)


DATE_LINES = [
    "subsidy_periods",
    "grants",
    "supplements.health_supplement",
    "supplements.rights_based",
    "deferral_agreements",
    "balances",
    "custody",
]
TIME_LINES = [
    "corrections",
    "person_merges",
    "obligations",
    "parked_messages",
    "processed_messages",
]


@pytest.mark.parametrize("label", DATE_LINES + TIME_LINES)
async def test_each_line_is_kept_through_its_anniversary_and_gone_the_day_after(
    hub: Hub, label: str
) -> None:
    """Two rows arising on D (the last instant of D in Copenhagen for a time) go on D + 2 years + 1
    day, not before; a row arising on D + 1 (its first instant) stays; nothing else is touched."""
    await target_person(hub)
    timed = label in TIME_LINES
    for n in range(2):
        table, values = rows_for(label, last_instant(D) if timed else D, n)
        await hub.insert(table, **values)
    table, values = rows_for(label, first_instant(D) if timed else D + timedelta(days=1), 2)
    await hub.insert(table, **values)
    went = await kept_then_gone(hub, KEPT, GONE)
    assert {name: len(rows) for name, rows in went.items()} == {table.name: 2}
    # the row of D + 1 is still there, and goes the next day
    assert nonzero(await hub.plan(GONE + timedelta(days=1))) == {label: 1}


async def test_29_february_is_kept_through_28_february_and_gone_on_1_march(hub: Hub) -> None:
    await target_person(hub)
    for n, label in enumerate(["grants", "balances", "deferral_agreements"]):
        table, values = rows_for(label, date(2024, 2, 29), n)
        await hub.insert(table, **values)
    table, values = rows_for("corrections", last_instant(date(2024, 2, 29)), 0)
    await hub.insert(table, **values)
    went = await kept_then_gone(hub, date(2026, 2, 28), date(2026, 3, 1))
    assert {name: len(rows) for name, rows in went.items()} == {
        "grants": 1,
        "balances": 1,
        "deferral_agreements": 1,
        "corrections": 1,
    }


async def test_open_ended_supplements_deferrals_and_custody_are_never_deleted(hub: Hub) -> None:
    """Rows with no end stay, and so does their person, however old they are and however late the
    run; the same rows with an end go 2 years after it."""
    await target_person(hub)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    async with hub.register.engine.begin() as conn:
        await conn.execute(update(t.persons).values(updated_at=old))
    for label in ("supplements.health_supplement", "supplements.rights_based", "custody"):
        table, values = rows_for(label, None, 0)
        await hub.insert(table, **values)
    table, values = rows_for("deferral_agreements", None, 0)
    await hub.insert(table, **values)
    far = date(2060, 1, 1)
    before = await hub.snapshot()
    await hub.apply(far)
    after = await hub.snapshot()
    for name in ("supplements", "custody", "deferral_agreements"):
        open_rows = {r for r in before[name] if TARGET in r}
        assert open_rows and open_rows <= after[name]
    assert TARGET in {r[0] for r in after["persons"]}


# ---- through the pipeline -----------------------------------------------------------------------


async def test_a_purchase_goes_by_its_copenhagen_day_of_payment(hub: Hub) -> None:
    """Paid 23:30 on D (22:30 UTC) and 00:30 on D + 1 (23:30 UTC on D): the first goes on
    D + 2 years + 1, the second a day later, though both are D in UTC."""
    await hub.send(
        (DISPENSINGS, report("p1", 100_000, "2025-03-10T23:30:00+01:00")),
        (DISPENSINGS, report("p2", 100_000, "2025-03-11T00:30:00+01:00")),
    )
    before = await hub.snapshot()
    await hub.apply(KEPT)
    assert {"p1", "p2"} <= set(await _report_ids(hub))
    counts = await hub.apply(GONE)
    assert counts["purchases"] == 1
    assert set(await _report_ids(hub)) == {"o1", "o2", "p2"}
    after = await hub.snapshot()
    untouched = {name: {r for r in rows if OTHER in r} for name, rows in before.items()}
    for name, rows in untouched.items():
        assert rows <= after[name], name
    assert (await hub.apply(GONE + timedelta(days=1)))["purchases"] == 1
    assert set(await _report_ids(hub)) == {"o1", "o2"}


async def _rows(hub: Hub) -> list[Any]:
    async with hub.register.engine.connect() as conn:
        return list(await conn.execute(select(t.purchases)))


async def _report_ids(hub: Hub) -> list[str]:
    return [r.report_id for r in await _rows(hub)]


async def test_grants_supplements_and_deferrals_go_two_years_after_they_ended(hub: Hub) -> None:
    """Entered and ended through the pipeline, each ending on D: kept on D + 2 years, gone the day
    after; the rest of the register (OTHER's) untouched."""
    rights = municipal("m-rb", 101, "0")
    rights |= {
        "kind": "rights_based",
        "supplement_percentage": None,
        "valid_from": "2025-07-01",
        "decided_at": "2025-07-01T10:00:00+02:00",
    }
    rights_end = dict(rights, message_id="m-rb-end", action="end", valid_to="2025-07-31")
    health = municipal("m-hs", 101, "85")
    health |= {"valid_from": "2025-01-01", "decided_at": "2025-01-02T10:00:00+01:00"}
    health_end = dict(health, message_id="m-hs-end", action="end", valid_to="2025-03-10")
    health_end.pop("supplement_percentage")
    result = await hub.send(
        (INDIVIDUAL_GRANTS, grant("g1", "2025-01-01", "2025-03-10", drug_id="028100")),
        (MUNICIPAL_GRANTS, health),
        (DEFERRALS, deferral("h1", "entered", "2025-01-05")),
    )
    result2 = await hub.send(
        (MUNICIPAL_GRANTS, health_end),
        (DEFERRALS, deferral("h1", "ended", "2025-03-10")),
        (MUNICIPAL_GRANTS, rights),
    )
    result3 = await hub.send((MUNICIPAL_GRANTS, rights_end))
    for r in (result, result2, result3):
        assert not [o for o in r.outputs if o.topic == NAMES(DEAD_LETTER)]
    before = await hub.snapshot()
    mine = {name: {r for r in rows if PERSON in r} for name, rows in before.items()}
    assert len(mine["grants"]) == len(mine["deferral_agreements"]) == 1
    assert len(mine["supplements"]) == 2
    assert (await hub.apply(KEPT)).get("grants") == 0
    kept = await hub.snapshot()
    for name in ("grants", "deferral_agreements", "supplements"):
        assert mine[name] <= kept[name]
    counts = nonzero(await hub.apply(GONE))
    assert counts == {"grants": 1, "deferral_agreements": 1, "supplements.health_supplement": 1}
    after = await hub.snapshot()
    for name, rows in before.items():
        assert {r for r in rows if OTHER in r} <= after[name], name
    # the rights-based entitlement lapsed on 31 July 2025: gone on 1 August 2027
    assert (await hub.apply(date(2027, 7, 31)))["supplements.rights_based"] == 0
    assert (await hub.plan(date(2027, 8, 1)))["supplements.rights_based"] == 1
    assert (await hub.apply(date(2027, 8, 1)))["supplements.rights_based"] == 1
    assert not {r for r in (await hub.snapshot())["supplements"] if PERSON in r}


async def test_a_deceased_persons_everything_goes_a_year_and_a_day_after_the_death(
    hub: Hub,
) -> None:
    """PERSON buys, gets a new number (an alias row), buys under it, gets a grant, dies on 10 May 2025:
    on 10 May 2026 everything is there, on 11 May 2026 every row naming either number is gone, in
    every person-keyed table; OTHER's rows stay."""
    died = date(2025, 5, 10)
    results = [
        await hub.send((DISPENSINGS, report("d1", 100_000, "2025-01-10T10:00:00+01:00"))),
        await hub.send((PERSON_EVENTS, renumbering("r1", effective_on="2025-02-01"))),
        await hub.send(
            (DISPENSINGS, report("d2", 50_000, "2025-02-10T10:00:00+01:00", person=NEW_NUMBER)),
            (INDIVIDUAL_GRANTS, grant("g-d", "2025-01-01", "2026-12-31", drug_id="028100")),
        ),
        await hub.send((PERSON_EVENTS, death("x1", died.isoformat(), person=NEW_NUMBER))),
    ]
    for r in results:
        assert not [o for o in r.outputs if o.topic == NAMES(DEAD_LETTER)]
    # rows the clock dates, in the other person-keyed tables, under either number
    now = datetime.now(UTC)
    for n, key in enumerate((PERSON, NEW_NUMBER)):
        await hub.insert(t.custody, parent_key=key, child_key=f"030320{n}234",
                         valid_from=date(2020, 1, 1), valid_to=None, updated_at=now)  # fmt: skip
        await hub.insert(t.corrections, message_id=f"c{n}", person_key=key, action="balancing",
                         ordered_by="agency", reported_by="u", amount=-1, received_at=now)  # fmt: skip
        await hub.insert(t.parked_messages, message_id=f"pk{n}", source_topic="x",
                         day=date(2025, 4, 1), reason="r", key=key.encode(), value=b"{}",
                         parked_at=now)  # fmt: skip
        await hub.insert(t.balances, balance_id=f"b{n}", person_key=key, amount=1, remaining=1,
                         arose_on=date(2025, 4, 1), origin="o", skip_once=False,
                         updated_at=now)  # fmt: skip
        await hub.insert(t.obligations, obligation_id=f"ob{n}", kind="k", reporter="12300",
                         legal_basis="§ 7", person_key=key, event_at=now, state="on_time",
                         updated_at=now)  # fmt: skip
    persons = {r.person_key: r for r in await _persons(hub)}
    assert persons[NEW_NUMBER].alias_of == PERSON or persons[PERSON].alias_of == NEW_NUMBER
    assert died in {persons[PERSON].died_on, persons[NEW_NUMBER].died_on}

    before = await hub.snapshot()
    mine = {
        name: {r for r in rows if PERSON in r or NEW_NUMBER in r or PERSON.encode() in r
               or NEW_NUMBER.encode() in r}
        for name, rows in before.items()
    }  # fmt: skip
    for name in ("persons", "purchases", "subsidy_periods", "grants", "custody", "corrections",
                 "parked_messages", "balances", "obligations"):  # fmt: skip
        assert mine[name], name
    assert len(mine["persons"]) == 2

    kept_day = deleted_from(died, DECEASED) - timedelta(days=1)
    assert kept_day == date(2026, 5, 10)
    assert not {k: v for k, v in nonzero(await hub.plan(kept_day)).items() if "deceased" in k}
    await hub.apply(kept_day)
    kept = await hub.snapshot()
    for name, rows in mine.items():
        assert rows <= kept[name], name

    planned = await hub.plan(kept_day + timedelta(days=1))
    applied = await hub.apply(kept_day + timedelta(days=1))
    assert planned == applied
    assert applied["deceased.persons"] == 2
    after = await hub.snapshot()
    for name, rows in after.items():
        assert not {r for r in rows if PERSON in r or NEW_NUMBER in r}, name
        assert not {r for r in rows if PERSON.encode() in r or NEW_NUMBER.encode() in r}, name
        assert {r for r in before[name] if OTHER in r} <= rows, name
    assert set(nonzero(applied)) == {f"deceased.{name}" for name, rows in mine.items() if rows}


async def _persons(hub: Hub) -> list[Any]:
    async with hub.register.engine.connect() as conn:
        return list(await conn.execute(select(t.persons)))


async def test_a_person_goes_when_nothing_of_theirs_is_left_and_their_row_is_old(hub: Hub) -> None:
    """A person (with an alias row) whose last purchase goes: their persons rows go with it when
    they were last updated two years back, and stay when updated since."""
    await hub.send((DISPENSINGS, report("a1", 100_000, "2025-01-10T10:00:00+01:00")))
    await hub.send((PERSON_EVENTS, renumbering("r1", effective_on="2025-02-01")))
    old = cph(date(2025, 3, 1))
    async with hub.register.engine.begin() as conn:
        await conn.execute(
            update(t.persons)
            .where(t.persons.c.person_key.in_([PERSON, NEW_NUMBER]))
            .values(updated_at=old)
        )
    # a day on which PERSON's purchase, period and processed messages are all gone
    day = date(2028, 12, 31)
    planned = await hub.plan(day)
    assert planned["persons"] == 2
    assert (await hub.apply(day))["persons"] == 2
    assert {PERSON, NEW_NUMBER}.isdisjoint({r.person_key for r in await _persons(hub)})
    assert OTHER in {r.person_key for r in await _persons(hub)}


async def test_a_person_updated_within_two_years_or_with_data_left_stays(hub: Hub) -> None:
    """On 31 December 2028 the general cutoff is 30 December 2026: a person last updated at the first
    instant of 31 December 2026 stays, at the last instant of the 30th goes; an open supplement keeps
    them whatever the date."""
    await hub.send((DISPENSINGS, report("a1", 100_000, "2025-01-10T10:00:00+01:00")))
    day = date(2028, 12, 31)

    async def updated(at: datetime) -> None:
        async with hub.register.engine.begin() as conn:
            await conn.execute(
                update(t.persons).where(t.persons.c.person_key == PERSON).values(updated_at=at)
            )

    await updated(first_instant(date(2026, 12, 30)))
    assert (await hub.plan(day))["persons"] == 0
    await updated(last_instant(date(2026, 12, 30)))
    assert (await hub.plan(day))["persons"] == 1
    await hub.insert(t.supplements, person_key=PERSON, decision_id="open", kind="health_supplement",
                     municipality_code=101, valid_from=date(2025, 1, 1), valid_to=None,
                     updated_at=cph(date(2025, 1, 1)))  # fmt: skip
    assert (await hub.plan(day))["persons"] == 0
    counts = await hub.apply(day)
    assert counts["purchases"] >= 1 and counts["persons"] == 0
    assert PERSON in {r.person_key for r in await _persons(hub)}


# ---- the command and the daily job ---------------------------------------------------------------


async def test_the_dry_run_command_prints_the_counts_and_changes_nothing(
    hub: Hub, tmp_path: Path
) -> None:
    await target_person(hub)
    for n in range(3):
        table, values = rows_for("grants", D, n)
        await hub.insert(table, **values)
    before = await hub.snapshot()
    env = {"REGHUB_DATABASE_URL": hub.url, "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY}
    done = await arun("retention", "--dry-run", "--as-of", GONE.isoformat(), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert await hub.snapshot() == before
    out = done.stdout
    assert "dry run" in out and "nothing was deleted" in out
    line = next(ln for ln in out.splitlines() if "stk. 3" in ln)
    assert "2025-03-10" in line and line.rstrip(" │").endswith("3")
    assert "3 rows would be deleted" in out
    assert TARGET not in out and OTHER not in out
    done = await arun("retention", "--as-of", "2027-3-1x", cwd=tmp_path, env=env)
    assert done.returncode == 2 and "not a date" in done.stdout
    done = await arun("retention", "--as-of", GONE.isoformat(), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "3 rows deleted" in done.stdout
    assert not {r for r in (await hub.snapshot())["grants"] if TARGET in r}


async def test_the_daily_job_deletes_by_its_clock_and_logs_counts_only(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    await target_person(hub)
    for n in range(2):
        table, values = rows_for("balances", D, n)
        await hub.insert(table, **values)
    table, values = rows_for("corrections", last_instant(D), 0)
    await hub.insert(table, **values)
    caplog.set_level(logging.INFO, logger="sinks.retention")
    before = await retention.daily(hub.register.engine, lambda: cph(KEPT, time(2, 30)))
    assert before is not None and nonzero(before) == {}
    # 00:30 in Copenhagen on GONE is still KEPT in UTC: the Copenhagen day is the one that counts
    clock = lambda: cph(GONE, time(0, 30))  # noqa: E731
    assert clock().date() == KEPT
    counts = await retention.daily(hub.register.engine, clock)
    assert counts is not None and nonzero(counts) == {"balances": 2, "corrections": 1}
    text = caplog.text
    assert "retention: deleted nothing (as of 2027-03-10)" in text
    assert "retention: deleted balances=2 corrections=1 (as of 2027-03-11)" in text
    for key in (TARGET, OTHER, PERSON):
        assert key not in text
    # several workers at once: one deletes, the others find nothing; none fails
    table, values = rows_for("grants", D, 0)
    await hub.insert(table, **values)
    engines = [make_engine(hub.url) for _ in range(3)]
    try:
        runs = await asyncio.gather(*(retention.daily(e, clock) for e in engines))
    finally:
        for e in engines:
            await e.dispose()
    assert all(r is not None for r in runs)
    assert sorted(r["grants"] for r in runs if r is not None) == [0, 0, 1]


async def test_the_daily_job_logs_a_failure_and_does_not_raise(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.db")  # no tables
    caplog.set_level(logging.INFO, logger="sinks.retention")
    try:
        assert await retention.daily(engine, lambda: cph(GONE)) is None
    finally:
        await engine.dispose()
    assert "retention: run of 2027-03-11 failed (OperationalError" in caplog.text
    assert "runs again tomorrow" in caplog.text
    assert "SELECT" not in caplog.text and "DELETE" not in caplog.text
    assert GENERAL.years == 2


async def test_a_period_goes_when_the_last_of_its_purchases_goes(hub: Hub) -> None:
    """Spec § 8 (DECISION): a period row arises with its purchases. p1 (10 March 2025) opens the
    period 10 March 2025 – 9 March 2026; p2 is paid 20 May 2025. On 11 March 2027 p1 goes and the
    period stays (p2 is in it); on 21 May 2027, the day p2 goes, the period goes with it — not on
    10 March 2028, 2 years after its end. The dry run counts exactly what the run deletes."""
    await hub.send((SUBSIDY_SCALES, SCALE_2025))
    await hub.send((DISPENSINGS, report("p1", 100_000, "2025-03-10T10:00:00+01:00")))
    await hub.send((DISPENSINGS, report("p2", 50_000, "2025-05-20T10:00:00+02:00")))
    [period] = await _rows_of(hub, t.subsidy_periods)
    assert (period.period_start, period.period_end) == (date(2025, 3, 10), date(2026, 3, 9))
    first = await hub.plan(date(2027, 3, 11))
    assert (first["purchases"], first["subsidy_periods"]) == (1, 0)
    assert nonzero(await hub.apply(date(2027, 3, 11))) == nonzero(first)
    assert len(await _rows_of(hub, t.subsidy_periods)) == 1
    before = await hub.plan(date(2027, 5, 20))
    assert (before["purchases"], before["subsidy_periods"]) == (0, 0)
    last = await hub.plan(date(2027, 5, 21))
    assert (last["purchases"], last["subsidy_periods"]) == (1, 1)
    assert nonzero(await hub.apply(date(2027, 5, 21))) == nonzero(last)
    assert await _rows_of(hub, t.subsidy_periods) == []


async def _rows_of(hub: Hub, table: Table) -> list[Any]:
    """PERSON's rows of `table` (the fixture's other person has rows of their own)."""
    async with hub.register.engine.connect() as conn:
        return list(await conn.execute(select(table).where(table.c.person_key == PERSON)))
