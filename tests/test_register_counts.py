"""The counts the batches keep for the dashboard (`sinks.counts`), through the real pipeline and register
on SQLite and PostgreSQL: they equal what the full queries over the register give, after sales, returns,
a cancellation, a merge of two persons, a parked report and its replay, and a retention run; and a
`/monitor` or `/stats` poll reads no purchase or person row, however many there are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from api import monitoring
from api.app import create_api
from sinks import counts, retention
from sinks import places_tables as pt
from sinks import tables as t
from sinks.times import utc
from streams.topics import CORRECTIONS, DISPENSINGS, PAYMENTS, PERSON_EVENTS, SUBSIDY_SCALES
from tests.hub import Hub, Message
from tests.messages import NEW_NUMBER, PERSON, SCALE_2025, correction, renumbering, report
from tests.test_obligations import PAID, Clocked, its_report, payment
from tests.test_parked_returns import deliver_replays, replayed_ids

pytestmark = pytest.mark.database

OTHER = "0707701234"


@pytest.fixture
async def hub(database_url: str) -> Any:
    h = Hub(database_url)
    await h.pipeline.start()
    yield h
    await h.register.close()


def sale(report_id: str, price: int, paid_at: str, key: str = PERSON, **extra: Any) -> Message:
    return (DISPENSINGS, report(report_id, price, paid_at, person=key, **extra))


async def scanned(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
    """The figures as the full queries over the register give them (what `/stats` and `/monitor`
    ran before the counts were kept)."""
    p = t.purchases
    purchases, subsidy, deviations = (
        await conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(p.c.subsidy), 0),
                func.count().filter(p.c.deviation != 0),
            )
        )
    ).one()
    persons = await conn.scalar(select(func.count()).where(t.persons.c.alias_of.is_(None)))
    ob = t.obligations
    by_state = dict(
        (await conn.execute(select(ob.c.state, func.count()).group_by(ob.c.state))).all()
    )
    since = (now - timedelta(minutes=monitoring.MINUTES)).replace(second=0, microsecond=0)
    per_minute: dict[datetime, int] = {}
    for (at,) in await conn.execute(select(p.c.registered_at).where(p.c.registered_at >= since)):
        minute = counts.minute_of(utc(at))  # type: ignore[arg-type]
        per_minute[minute] = per_minute.get(minute, 0) + 1
    return {
        "totals": counts.Tally(
            int(purchases),
            int(subsidy),
            int(deviations),
            int(persons or 0),
            {state: int(n) for state, n in by_state.items()},
        ),
        "minutes": per_minute,
    }


async def kept(conn: AsyncConnection, now: datetime) -> dict[str, Any]:
    """The same figures from the counts the batches keep."""
    minutes = await counts.minutes_since(conn, counts.since(now, monitoring.MINUTES))
    return {
        "totals": await counts.totals(conn),
        "minutes": {m: n.purchases for m, n in minutes.items() if n.purchases},
    }


async def assert_counts_match(hub: Hub, *, minutes: bool = True) -> counts.Tally:
    now = monitoring.now()
    async with hub.register.engine.connect() as conn:
        full, ours = await scanned(conn, now), await kept(conn, now)
    assert ours["totals"] == full["totals"]
    if minutes:
        assert ours["minutes"] == full["minutes"]
    return ours["totals"]


async def test_the_kept_counts_equal_the_full_queries_after_every_kind_of_batch(hub: Hub) -> None:
    # sales of two persons, one deviating from what the pharmacy granted
    await hub.send(
        sale("a", 200_000, "2024-03-01T10:00:00+01:00"),
        sale("o1", 50_000, "2024-04-01T10:00:00+02:00", OTHER, granted_subsidy=9_000),
    )
    first = await assert_counts_match(hub)
    assert (first.purchases, first.persons, first.deviations) == (2, 2, 1)
    # a return of a, and a sale b in the same batch
    await hub.send(
        (
            DISPENSINGS,
            report("r", -50_000, "2024-03-05T10:00:00+01:00", kind="return", return_of="a"),
        ),
        sale("b", 100_000, "2024-04-01T10:00:00+02:00"),
    )
    await assert_counts_match(hub)
    # the agency cancels a: a and r are cancelled (their rows stay), b is recomputed
    await hub.send((CORRECTIONS, correction("c1", "cancel", report_id="a")))
    assert {p.status for p in await hub.rows(t.purchases) if p.report_id in "ar"} == {"cancelled"}
    await assert_counts_match(hub)
    # a number with its own history merged into the person: one person less
    await hub.send(sale("n1", 30_000, "2024-04-15T10:00:00+02:00", NEW_NUMBER))
    grown = await assert_counts_match(hub)
    await hub.send(
        (
            PERSON_EVENTS,
            renumbering("m1", PERSON, NEW_NUMBER, "2024-05-10", source="cpr_register"),
        )
    )
    merged = await assert_counts_match(hub)
    assert merged.persons == grown.persons - 1
    # a sale and its return parked for want of a scale, then replayed when the scale comes
    await hub.send(
        sale("s25", 200_000, "2025-02-01T10:00:00+01:00"),
        (
            DISPENSINGS,
            report("r25", -50_000, "2025-02-10T10:00:00+01:00", kind="return", return_of="s25"),
        ),
    )
    await assert_counts_match(hub)
    released = await hub.send((SUBSIDY_SCALES, SCALE_2025))
    assert replayed_ids(released) == ["s25", "r25"]
    await deliver_replays(hub, released)
    replayed = await assert_counts_match(hub)
    assert replayed.purchases == merged.purchases + 2
    # the dashboard and /stats show the kept figures
    api = create_api(hub.url)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        stats = (await c.get("/stats")).json()
        monitor = (await c.get("/monitor")).json()
    assert stats["purchases"] == replayed.purchases
    assert stats["persons"] == replayed.persons
    assert stats["reports_deviating_from_the_register"] == replayed.deviations
    assert monitor["register"]["subsidy_granted_kr"] == monitoring.danish_kroner(replayed.subsidy)
    assert sum(m["purchases"] for m in monitor["rates"]) == replayed.purchases
    assert monitor["obligations"]["by_state"] == replayed.obligations
    async with hub.register.engine.connect() as conn:
        waiting = await conn.scalar(
            select(func.count()).where(t.parked_messages.c.replayed_at.is_(None))
        )
        unsettled = await conn.scalar(select(func.count()).where(t.balances.c.remaining != 0))
    assert (stats["parked_reports"], stats["open_balancing_amounts"]) == (waiting, unsettled)
    # a retention run two years on deletes the 2024 purchases and takes them off the totals;
    # the minutes keep what was registered in them
    gone = await retention.apply(hub.register.engine, date(2026, 6, 1))
    assert gone["purchases"] > 0
    after_retention = await assert_counts_match(hub, minutes=False)
    assert after_retention.purchases == replayed.purchases - gone["purchases"]
    async with hub.register.engine.connect() as conn:
        still = await kept(conn, monitoring.now())
    assert sum(still["minutes"].values()) == replayed.purchases


async def test_the_obligations_by_state_follow_the_batches_and_the_watch(database_url: str) -> None:
    """Payments arm obligations (`open`); a report meets one on time and one late; the watch marks the
    third `missing`; its late report `resolved`; reports without a payment are `reported`."""
    hub = Clocked(database_url)
    await hub.pipeline.start()
    try:
        for n in (1, 2, 3):
            await hub.at(PAID, PAYMENTS, payment(n))
        armed = await assert_counts_match(hub, minutes=False)
        assert armed.obligations == {"open": 3}
        await hub.at(PAID + timedelta(seconds=30), DISPENSINGS, its_report(1))
        await hub.at(PAID + timedelta(seconds=90), DISPENSINGS, its_report(2))
        await hub.at(PAID, DISPENSINGS, report("lone", 10_000, PAID.isoformat()))
        await assert_counts_match(hub, minutes=False)
        assert len(await hub.watch(PAID + timedelta(seconds=61))) == 1
        watched = await assert_counts_match(hub, minutes=False)
        assert watched.obligations["missing"] == 1
        await hub.at(PAID + timedelta(minutes=5), DISPENSINGS, its_report(3))
        done = await assert_counts_match(hub)
        assert done.obligations == {"on_time": 1, "late": 1, "resolved": 1, "reported": 1}
        # two years on, retention deletes them and takes them off
        await retention.apply(hub.register.engine, date(2026, 6, 1))
        gone = await assert_counts_match(hub, minutes=False)
        assert sum(gone.obligations.values()) < sum(done.obligations.values())
    finally:
        await hub.register.close()


@contextmanager
def statements() -> Iterator[list[tuple[str, Any]]]:
    """Every statement any engine of this process sends, with its parameters, while inside."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


GROWING = {"purchases", "persons", "subsidy_periods", "processed_messages"}
"""Tables that grow with every report or person: a poll must not read them."""
WHOLE = {"register_totals", pt.states.name, pt.information.name}
"""Tables a poll may read whole: the totals (a row a slot) and the treatment places (a row a place)."""


def _walk(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _walk(child)


async def _plans(hub: Hub, sent: list[tuple[str, Any]]) -> tuple[dict[str, int], set[str]]:
    """What the poll's SELECTs read, run again under `EXPLAIN`: per table, the rows read
    (PostgreSQL: the rows each scan returned and those its filter removed, over its loops; SQLite: 0),
    and the tables read whole, without an index. On PostgreSQL sequential scans are turned off, so one
    is only planned when no index can serve the statement."""
    read: dict[str, int] = {}
    whole: set[str] = set()
    async with hub.register.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await raw.execute("SET enable_seqscan = off")
        for statement, parameters in sent:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            if postgres:
                found = await raw.fetchval(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *(parameters or ())
                )
                # the engine's connections decode JSON themselves
                (plan,) = orjson.loads(found) if isinstance(found, str) else found
                for node in _walk(plan["Plan"]):
                    if "Relation Name" in node:
                        rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                        name = node["Relation Name"]
                        read[name] = read.get(name, 0) + rows * node["Actual Loops"]
                        if node["Node Type"] == "Seq Scan":
                            whole.add(name)
            else:
                plan_rows = await conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", tuple(parameters or ())
                )
                for row in plan_rows:
                    words = str(row[-1]).replace("(", " ").split()
                    for name in t.metadata.tables:
                        if name in words:
                            read.setdefault(name, 0)
                            if words[0] == "SCAN" and "INDEX" not in words:
                                whole.add(name)
        if postgres:
            await raw.execute("RESET enable_seqscan")
    return read, whole


async def test_a_poll_reads_no_purchase_or_person_whatever_their_number(hub: Hub) -> None:
    """The statements of `/monitor` and `/stats`, run again under `EXPLAIN`: none reads a table that
    grows with the reports or persons, none reads a table whole but the totals and the places, and
    the rows read do not change when the purchases grow tenfold: the totals a row a slot, the
    minutes a row a minute and slot, the obligations only the missing ones listed."""
    api = create_api(hub.url)

    async def poll() -> dict[str, int]:
        with statements() as sent:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=api), base_url="http://t"
            ) as c:
                assert (await c.get("/monitor")).status_code == 200
                assert (await c.get("/stats")).status_code == 200
        read, whole = await _plans(hub, sent)
        assert not GROWING & read.keys(), read
        assert whole <= WHOLE, whole
        return read

    await hub.send(*(sale(f"x{i}", 10_000 + i, "2024-03-01T10:00:00+01:00") for i in range(20)))
    small = await poll()
    keys = [f"{day}05601234" for day in range(10, 20)]  # ten more persons
    await hub.send(
        *(sale(f"y{i}", 10_000 + i, "2024-03-02T10:00:00+01:00", keys[i % 10]) for i in range(200))
    )
    async with hub.register.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(t.purchases)) == 220
        assert await conn.scalar(select(func.count()).select_from(t.obligations)) == 220
        minutes = await conn.scalar(select(func.count()).select_from(t.register_minutes))
    large = await poll()
    assert small.keys() == large.keys() >= {"register_minutes", "register_totals", "obligations"}
    if hub.register.engine.dialect.name == "postgresql":
        # the totals are read three times (`/stats`, and `/monitor`'s register and obligations)
        assert large["register_totals"] == small["register_totals"] <= 3 * counts.SLOTS
        assert minutes <= 2  # every purchase above was registered within a minute or two
        assert large["register_minutes"] == minutes  # one row a minute and slot, whatever the rate
        assert large["obligations"] == small["obligations"] == 0  # none is missing
