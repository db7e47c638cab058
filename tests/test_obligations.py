"""Reporting obligations through the pipeline and the register, with the test's own clock.

A till payment on `pharmacy.payments.v1` arms the obligation to report it immediately (§ 7 stk. 1, grace
60 s here); the dispensing report with the same pharmacy and dispensing id meets it, by the time it
reached the broker. The watch (`streams.obligation_watch.raise_missing`, a faust timer in the worker)
turns an obligation still open at its due time into a `report_missing` alert, once; the report that
comes after all raises `report_resolved`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from rich.console import Console

from reghub.compliance_table import print_day
from rules.compliance import DaySummary
from sinks import counts, tables
from sinks.ctr_store import CtrStore
from sinks.errors import RegisterUnavailable
from streams.compliance import close_day, day_summaries
from streams.decode import Decoded, Source, decode
from streams.handlers.base import ApplyConfig
from streams.obligation_watch import raise_missing
from streams.outputs import Outputs
from streams.pipeline import BatchResult, Pipeline
from streams.topics import (
    ALERTS,
    DECISIONS_MADE,
    DEFERRALS,
    DISPENSINGS,
    MUNICIPAL_GRANTS,
    PAYMENTS,
    TopicSpec,
)
from tests.conftest import settings_for
from tests.messages import PERSON, report
from tests.test_handler_atomicity import NAMES, two_databases
from tests.test_person_identity import Hub

pytestmark = pytest.mark.database
__all__ = ["two_databases"]  # the fixture, shared

PAID = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
CONFIG = ApplyConfig("obligations", 60, b"test-pseudonym-key-0123456789")


def payment(n: int, paid: datetime = PAID) -> dict[str, Any]:
    return {
        "message_id": f"pay-{n}",
        "pharmacy_number": "12300",
        "dispensing_id": f"d-r{n}",
        "paid_at": paid.isoformat(),
        "person": {"key": PERSON},
    }


def its_report(n: int, paid: datetime = PAID) -> dict[str, Any]:
    return report(f"r{n}", 10_000, paid.isoformat())  # dispensing id d-r<n>


class Clocked(Hub):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.pipeline.config = CONFIG

    async def at(self, when: datetime, spec: TopicSpec, message: dict[str, Any]) -> BatchResult:
        """One message that reached the broker at `when`."""
        self.offset += 1
        source = Source(
            NAMES(spec),
            0,
            self.offset,
            message["person"]["key"].encode(),
            orjson.dumps(message),
            int(when.timestamp() * 1000),
        )
        item = decode(source, spec)
        assert isinstance(item, Decoded), item
        return await self.pipeline.run([item], [], {})

    async def watch(self, now: datetime) -> list[dict[str, Any]]:
        _, alerts = await raise_missing(
            self.register, Outputs(NAMES, CONFIG.pseudonym_secret, now), now
        )
        return [orjson.loads(a.value) for a in alerts]

    async def states(self) -> dict[str, str]:
        return {r.obligation_id: r.state for r in await self.rows(tables.obligations)}


def alerts_of(result: BatchResult) -> list[dict[str, Any]]:
    return [orjson.loads(o.value) for o in result.outputs if o.topic == NAMES(ALERTS)]


@pytest.fixture
async def hub(database_url: str) -> Any:
    h = Clocked(database_url)
    await h.pipeline.start()
    yield h
    await h.register.close()


async def test_reports_on_time_late_and_missing(hub: Clocked) -> None:
    """Three payments at 10:00:00, due 10:01:00. r1 comes at 10:00:30 (on time), r2 at 10:01:30 (late,
    before the watch looked). At 10:01:00 the watch finds nothing overdue; at 10:01:01 it finds r3's
    obligation open: one `report_missing` alert, and none at the next tick. r3 comes at 10:05:00: its
    obligation is resolved, 240 s late."""
    for n in (1, 2, 3):
        await hub.at(PAID, PAYMENTS, payment(n))
    await hub.at(PAID + timedelta(seconds=30), DISPENSINGS, its_report(1))
    await hub.at(PAID + timedelta(seconds=90), DISPENSINGS, its_report(2))
    assert await hub.watch(PAID + timedelta(seconds=60)) == []
    missing = await hub.watch(PAID + timedelta(seconds=61))
    assert [(a["kind"], a["message_id"], a["reporter"]) for a in missing] == [
        ("report_missing", "payment:12300:d-r3", "12300")
    ]
    assert PERSON not in orjson.dumps(missing).decode()
    assert await hub.watch(PAID + timedelta(seconds=62)) == []
    late = await hub.at(PAID + timedelta(minutes=5), DISPENSINGS, its_report(3))
    resolved = [a for a in alerts_of(late) if a["kind"] == "report_resolved"]
    assert [a["message_id"] for a in resolved] == ["payment:12300:d-r3"]
    assert resolved[0]["detail"].endswith("; 4 min late")
    assert await hub.states() == {
        "payment:12300:d-r1": "on_time",
        "payment:12300:d-r2": "late",
        "payment:12300:d-r3": "resolved",
    }


async def test_a_report_before_its_payment_and_both_in_one_batch(hub: Clocked) -> None:
    """r1's report reaches the broker before its payment is announced: met on time when the payment
    comes. r2's payment and report in one batch: the report sees the payment's obligation."""
    await hub.at(PAID + timedelta(seconds=10), DISPENSINGS, its_report(1))
    assert await hub.states() == {"payment:12300:d-r1": "reported"}
    await hub.at(PAID + timedelta(seconds=20), PAYMENTS, payment(1))
    items = []
    for spec, message in ((PAYMENTS, payment(2)), (DISPENSINGS, its_report(2))):
        hub.offset += 1
        source = Source(
            NAMES(spec), 0, hub.offset, PERSON.encode(), orjson.dumps(message),
            int((PAID + timedelta(seconds=5)).timestamp() * 1000),
        )  # fmt: skip
        items.append(decode(source, spec))
    await hub.pipeline.run(items, [], {})  # type: ignore[arg-type]
    assert await hub.states() == {
        "payment:12300:d-r1": "on_time",
        "payment:12300:d-r2": "on_time",
    }
    assert await hub.watch(PAID + timedelta(hours=1)) == []


async def test_a_rejected_report_keeps_its_obligation_open_until_a_valid_one_comes(
    hub: Clocked,
) -> None:
    """r1's report is refused (a return of a sale the register does not know): the obligation stays
    open, and at its due time the missing alert says a report came but was rejected. A valid report
    of the same dispensing then resolves it."""
    await hub.at(PAID, PAYMENTS, payment(1))
    bad = report("bad-1", -10_000, PAID.isoformat(), kind="return", return_of="never-sold")
    bad["dispensing_id"] = "d-r1"
    refused = await hub.at(PAID + timedelta(seconds=5), DISPENSINGS, bad)
    assert "rejected" in refused.counts
    assert await hub.states() == {"payment:12300:d-r1": "rejected_open"}
    [missing] = await hub.watch(PAID + timedelta(seconds=61))
    assert missing["kind"] == "report_missing"
    assert missing["detail"].endswith("a report came but was rejected")
    good = await hub.at(PAID + timedelta(seconds=70), DISPENSINGS, its_report(1))
    assert [a["kind"] for a in alerts_of(good) if a["kind"].startswith("report_")] == [
        "report_resolved"
    ]


async def test_the_day_is_closed_once_and_the_summary_matches_what_was_sent(
    hub: Clocked, database_url: str
) -> None:
    """2 May 2024: r1 on time, r2 late by 30 s, r3 missing then resolved 240 s late, r4 still missing,
    all at pharmacy 12300; a payment at 23:30 UTC belongs to 3 May in Copenhagen (UTC+2). Closing 2 May
    stores and publishes one summary; closing it again publishes nothing; `reghub compliance` prints it."""
    for n in (1, 2, 3, 4):
        await hub.at(PAID, PAYMENTS, payment(n))
    night = datetime(2024, 5, 2, 23, 30, tzinfo=UTC)
    await hub.at(night, PAYMENTS, payment(5, night))
    await hub.at(PAID + timedelta(seconds=10), DISPENSINGS, its_report(1))
    await hub.at(PAID + timedelta(seconds=90), DISPENSINGS, its_report(2))
    await hub.watch(PAID + timedelta(seconds=61))  # r3 and r4 missing
    await hub.at(PAID + timedelta(minutes=5), DISPENSINGS, its_report(3))
    out = Outputs(NAMES, CONFIG.pseudonym_secret, PAID)
    _, first = await close_day(hub.register, out, date(2024, 5, 2))
    [summary] = [orjson.loads(r.value) for r in first]
    assert {
        k: summary[k] for k in ("day", "reporter", "on_time", "late", "missing", "resolved")
    } == {
        "day": "2024-05-02",
        "reporter": "12300",
        "on_time": 1,
        "late": 1,
        "missing": 1,
        "resolved": 1,
    }
    assert summary["worst_seconds_late"] == 240
    _, again = await close_day(hub.register, out, date(2024, 5, 2))
    assert again == []
    console = Console(record=True, width=120)
    settings = settings_for("127.0.0.1:1", database_url, "c.")
    assert await print_day(settings, "2024-05-02", console) == 0
    printed = console.export_text()
    assert "(closed)" in printed and "12300" in printed and "4 min" in printed
    assert await print_day(settings, "2024-05-03", console) == 0
    assert "not closed yet" in console.export_text()


async def test_a_deferral_agreement_is_due_the_same_day_and_a_municipal_decision_immediately(
    hub: Clocked,
) -> None:
    """An agreement entered at 23:59 on 27 October 2024 (after the clocks went back, UTC+1) is due at
    24:00 local, 23:00 UTC: its message at 23:00:30 UTC is 30 s late. A municipal decision made at
    10:00 UTC is due at 10:01: none comes, so the watch raises its missing alert at 10:01:01, and the
    message at 10:10 resolves it, 540 s late."""
    from tests.messages import municipal

    entered = datetime(2024, 10, 27, 22, 59, tzinfo=UTC)
    announced = {
        "message_id": "ann-1",
        "event": "deferral_entered",
        "pharmacy_number": "12300",
        "agreement_id": "h-1",
        "paid_at": entered.isoformat(),
        "person": {"key": PERSON},
    }
    await hub.at(entered, PAYMENTS, announced)
    agreement = {
        "message_id": "h-1-msg",
        "sent_at": (entered + timedelta(minutes=1, seconds=30)).isoformat(),
        "pharmacy_number": "12300",
        "action": "entered",
        "agreement_id": "h-1",
        "date": "2024-10-27",
        "monthly_rate": 38_125,
        "rates": 12,
        "person": {"key": PERSON},
    }
    await hub.at(entered + timedelta(minutes=1, seconds=30), DEFERRALS, agreement)
    made_at = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    decision = {**municipal("md-1", 101, "85"), "decided_at": made_at.isoformat()}
    made = {
        "message_id": "made-1",
        "sender": decision["sender"],
        "decision_id": decision["decision_id"],
        "decided_at": made_at.isoformat(),
        "person": {"key": PERSON},
    }
    await hub.at(made_at, DECISIONS_MADE, made)
    [missing] = await hub.watch(made_at + timedelta(seconds=61))
    assert (missing["kind"], missing["reporter"]) == ("report_missing", "municipality 101")
    late = await hub.at(made_at + timedelta(minutes=10), MUNICIPAL_GRANTS, decision)
    [resolved] = [a for a in alerts_of(late) if a["kind"] == "report_resolved"]
    assert resolved["detail"].endswith("; 9 min late")
    rows = {r.obligation_id: r for r in await hub.rows(tables.obligations)}
    assert rows["deferral:12300:h-1:entered"].state == "late"
    assert rows["municipal:101:md-1"].state == "resolved"


async def test_a_municipal_decisions_change_and_end_are_obligations_of_their_own(
    hub: Clocked,
) -> None:
    """§ 8: "efter hver underretning eller ændring", also the end ("opstået eller bortfaldet"). The
    grant (10:00) is reported at 10:00:30, on time. Its change (12:00) is announced and not reported:
    missing at 12:01:01, resolved by the change's message at 12:10 (540 s late). Its end (14:00) is
    reported at 14:00:20, on time. The day's compliance counts all three for municipality 101:
    two on time, one resolved after its alert."""
    from tests.messages import municipal

    def made(action: str, at: datetime) -> dict[str, Any]:
        return {
            "message_id": f"made-{action}",
            "sender": {"municipality_code": 101, "user": "sagsbehandler"},
            "decision_id": "md-1",
            "action": action,
            "decided_at": at.isoformat(),
            "person": {"key": PERSON},
        }

    def reported(action: str, at: datetime, **more: Any) -> dict[str, Any]:
        return {
            **municipal(f"md-1-{action}", 101, "85"),
            "decision_id": "md-1",
            "action": action,
            "decided_at": at.isoformat(),
            **more,
        }

    granted, changed, ended = (PAID + timedelta(hours=h) for h in (0, 2, 4))
    await hub.at(granted, DECISIONS_MADE, made("grant", granted))
    await hub.at(granted + timedelta(seconds=30), MUNICIPAL_GRANTS, reported("grant", granted))
    await hub.at(changed, DECISIONS_MADE, made("change", changed))
    [missing] = await hub.watch(changed + timedelta(seconds=61))
    assert (missing["kind"], missing["reporter"]) == ("report_missing", "municipality 101")
    assert missing["message_id"] == "municipal:101:md-1:change:20240502T120000Z"
    late = await hub.at(
        changed + timedelta(minutes=10),
        MUNICIPAL_GRANTS,
        reported("change", changed, supplement_percentage="50"),
    )
    [resolved] = [a for a in alerts_of(late) if a["kind"] == "report_resolved"]
    assert resolved["detail"].endswith("; 9 min late")
    await hub.at(ended, DECISIONS_MADE, made("end", ended))
    await hub.at(
        ended + timedelta(seconds=20),
        MUNICIPAL_GRANTS,
        reported("end", ended, supplement_percentage=None, valid_to="2024-05-02"),
    )
    assert await hub.watch(ended + timedelta(minutes=5)) == []
    assert await hub.states() == {
        "municipal:101:md-1": "on_time",
        "municipal:101:md-1:change:20240502T120000Z": "resolved",
        "municipal:101:md-1:end:20240502T140000Z": "on_time",
    }
    out = Outputs(NAMES, CONFIG.pseudonym_secret, ended)
    _, closed = await close_day(hub.register, out, date(2024, 5, 2))
    [summary] = [orjson.loads(o.value) for o in closed]
    assert summary["reporter"] == "municipality 101"
    assert (summary["on_time"], summary["late"], summary["missing"], summary["resolved"]) == (
        2,
        0,
        0,
        1,
    )


async def test_a_cpr_shaped_dispensing_id_is_masked_in_alerts_and_on_monitor(hub: Clocked) -> None:
    """A pharmacy chooses its dispensing ids freely (spec § 9): one that reads as a CPR number (on its
    own, or inside a longer run of digits) never reaches the alerts topic or `/monitor` as it is."""
    from api.monitoring import obligations_view

    for n, dispensing in enumerate(("2106149173", "12106149173")):
        await hub.at(PAID, PAYMENTS, {**payment(n), "dispensing_id": dispensing})
    missing = await hub.watch(PAID + timedelta(seconds=61))
    assert sorted(a["message_id"] for a in missing) == ["payment:12300:**********"] * 2
    text = orjson.dumps(missing).decode()
    assert "2106149173" not in text and PERSON not in text
    async with hub.register.engine.connect() as conn:
        view = await obligations_view(conn)
    assert [m["obligation"] for m in view["missing"]] == ["payment:12300:**********"] * 2


def _mixed_day() -> list[tuple[int, TopicSpec, dict[str, Any]]]:
    """A day of obligations of every kind until the watch looks (120 s after PAID): (seconds after PAID
    it reached the broker, topic, message). r3's report comes after the watch, 5 min late.

    r1 announced then reported on time; r2 announced then reported late; r3 announced, missing, then
    resolved; r4 announced, missing; r5 announced, its report rejected, missing; r6 reported then
    announced, on time; r7 reported late, then announced; r8 reported, never announced."""
    bad = report("bad-5", -10_000, PAID.isoformat(), kind="return", return_of="never-sold")
    bad["dispensing_id"] = "d-r5"
    before_watch = [
        *((0, PAYMENTS, payment(n)) for n in (1, 2, 3, 4, 5)),
        (5, DISPENSINGS, bad),
        (10, DISPENSINGS, its_report(6)),
        (10, DISPENSINGS, its_report(8)),
        (20, PAYMENTS, payment(6)),
        (30, DISPENSINGS, its_report(1)),
        (90, DISPENSINGS, its_report(2)),
        (90, DISPENSINGS, its_report(7)),
        (100, PAYMENTS, payment(7)),
    ]
    return before_watch


@pytest.mark.parametrize("batched", [False, True], ids=["one-by-one", "batched"])
async def test_compliance_counts_whatever_the_batches(
    two_databases: tuple[str, str], batched: bool
) -> None:
    """The mixed day (`_mixed_day`) as one message per batch and as two batches (before the watch and
    after it): the same obligations, the same day's summary and `reghub compliance` output, and the
    gauge's counts by state (`sinks.counts`) equal to a count of the obligations table. A new
    obligation is written by one path (`COPY`) and a found one by another (the upsert): one batch
    writes every obligation of the day as new, one message per batch mostly updates found ones."""
    url = two_databases[0]
    hub = Clocked(url)
    await hub.pipeline.start()
    try:
        items = []
        for seconds, spec, message in _mixed_day():
            hub.offset += 1
            when = PAID + timedelta(seconds=seconds)
            source = Source(
                NAMES(spec), 0, hub.offset, PERSON.encode(), orjson.dumps(message),
                int(when.timestamp() * 1000),
            )  # fmt: skip
            item = decode(source, spec)
            assert isinstance(item, Decoded), item
            items.append(item)
        for batch in [items] if batched else [[item] for item in items]:
            await hub.pipeline.run(batch, [], {})
        await hub.watch(PAID + timedelta(seconds=120))
        await hub.at(PAID + timedelta(minutes=5), DISPENSINGS, its_report(3))
        assert await hub.states() == {
            "payment:12300:d-r1": "on_time",
            "payment:12300:d-r2": "late",
            "payment:12300:d-r3": "resolved",
            "payment:12300:d-r4": "missing",
            "payment:12300:d-r5": "missing",
            "payment:12300:d-r6": "on_time",
            "payment:12300:d-r7": "late",
            "payment:12300:d-r8": "reported",
        }
        async with hub.register.engine.connect() as conn:
            gauge = (await counts.totals(conn)).obligations
            summaries = await day_summaries(CtrStore(conn), date(2024, 5, 2))
        assert gauge == {"on_time": 2, "late": 2, "resolved": 1, "missing": 2, "reported": 1}
        assert summaries == [DaySummary(date(2024, 5, 2), "12300", 2, 2, 2, 1, 240)]
        console = Console(record=True, width=120)
        assert await print_day(settings_for("127.0.0.1:1", url, "c."), "2024-05-02", console) == 0
        shown = [line.split() for line in console.export_text().splitlines() if "12300" in line]
        assert shown == [
            ["│", "12300", "│", "2", "│", "2", "│", "2", "│", "1", "│", "4", "min", "│"]
        ]
    finally:
        await hub.register.close()


async def test_an_obligation_another_worker_wrote_meanwhile_is_found_when_the_batch_runs_again(
    database_url: str,
) -> None:
    """r1's report finds no obligation and would write it as new; another worker's batch announces
    r1's payment in between (its row committed after this batch loaded). The batch is not refused: it
    is retried (`RegisterUnavailable`), and then it meets the announced obligation, on time."""
    if database_url.startswith("sqlite"):
        pytest.skip(
            "SQLite has one writer at a time: nobody comes between a batch's load and write"
        )
    other = Clocked(database_url)
    await other.pipeline.start()

    class Racing(Pipeline):
        raced = False

        async def load(self, uow: Any, decoded: Any) -> Any:
            loaded = await super().load(uow, decoded)
            if not Racing.raced:
                Racing.raced = True
                await other.at(PAID, PAYMENTS, payment(1))
            return loaded

    hub = Clocked(database_url)
    hub.pipeline = Racing(hub.register, NAMES, CONFIG)
    await hub.pipeline.start()
    try:
        with pytest.raises(RegisterUnavailable):
            await hub.at(PAID + timedelta(seconds=10), DISPENSINGS, its_report(1))
        hub.offset -= 1  # the same record again
        done = await hub.at(PAID + timedelta(seconds=10), DISPENSINGS, its_report(1))
        assert done.counts == {"registered": 1}
        assert await hub.states() == {"payment:12300:d-r1": "on_time"}
        async with hub.register.engine.connect() as conn:
            assert (await counts.totals(conn)).obligations == {"on_time": 1}
    finally:
        await hub.register.close()
        await other.register.close()
