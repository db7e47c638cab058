"""The dashboard's overall state without a browser: the rules of `api.monitoring.overall` and
`api.lag.trend`, a register that does not answer (red, and `/monitor` still answers), and the
overdue, at-risk and compliance reads over a real register."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api import monitoring
from api.lag import BrokerView, KafkaAccess, Sample, trend
from reghub.broker import EmbeddedBroker, free_port
from sinks import tables as t
from sinks.register import make_engine
from tests.kafka_helpers import produce

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def worker(**changes: Any) -> dict[str, Any]:
    return {"url": "worker 1", "alive": True, "ready": True, "problems": [], **changes}


def broker(**changes: Any) -> dict[str, Any]:
    return {"state": "ok", "error": None, "topics": [], "alerts": {}, **changes}


def state(**changes: Any) -> dict[str, Any]:
    given: dict[str, Any] = {
        "register_up": True,
        "workers": [worker()],
        "broker": broker(),
        "overdue": [],
        "at_risk": [],
        "now": NOW,
        **changes,
    }
    return monitoring.overall(**given)


def topic(seconds: float, messages: int = 5, shown_trend: str = "growing") -> dict[str, Any]:
    return {
        "topic": "ctr.dispensings.v1",
        "messages": messages,
        "seconds": seconds,
        "trend": shown_trend,
    }


def test_each_input_turns_the_state_the_colour_its_threshold_says() -> None:
    limits = monitoring.THRESHOLDS
    assert state() == {"level": "green", "words": "All well", "reasons": []}
    cases = [
        ({"register_up": False}, "red", "the register (database) does not answer"),
        ({"workers": []}, "amber", "no worker listed"),
        ({"workers": [worker(alive=False)]}, "red", "worker 1 does not answer"),
        (
            {"workers": [worker(ready=False, problems=["broker: timeout at host:9092"])]},
            "amber",
            "worker 1 not ready: broker",
        ),
        (
            {"workers": [worker(incidents=[{"kind": "log_replaced", "at": NOW.timestamp() - 60}])]},
            "amber",
            "worker 1: 1 incident(s) in the last hour (log_replaced)",
        ),
        (
            {"workers": [worker(outbox_oldest_unsent_seconds=limits.outbox_amber_s)]},
            "amber",
            "outputs unsent for 30 s",
        ),
        (
            {"workers": [worker(outbox_oldest_unsent_seconds=limits.outbox_red_s)]},
            "red",
            "outputs unsent for 300 s",
        ),
        ({"broker": None}, "amber", "lag not asked of the broker"),
        ({"broker": broker(state="starting")}, "amber", "asking the broker"),
        (
            {"broker": broker(state="unreachable", error="broker unreachable")},
            "red",
            "broker unreachable: lag unknown",
        ),
        (
            {"broker": broker(topics=[topic(limits.lag_amber_s)])},
            "amber",
            "ctr.dispensings.v1: 10 s behind (5 messages), growing",
        ),
        ({"broker": broker(topics=[topic(limits.lag_red_s)])}, "red", "60 s behind"),
        (
            {"broker": broker(alerts={"late_report": 2})},
            "amber",
            "alerts in the last hour: late_report 2",
        ),
        ({"overdue": [{"total": 3}]}, "red", "3 obligations overdue"),
        ({"at_risk": [{}]}, "amber", "1 obligation due within 30 s and not met"),
    ]
    for given, level, text in cases:
        shown = state(**given)
        assert shown["level"] == level, (given, shown)
        assert shown["words"] == monitoring.WORDS[level]
        assert any(text in r["text"] and r["level"] == level for r in shown["reasons"]), shown


def test_what_stays_green_and_the_worst_reason_comes_first() -> None:
    quiet = broker(
        topics=[topic(monitoring.THRESHOLDS.lag_amber_s - 1, shown_trend="steady")],
        alerts={"report_resolved": 1, "obligations_at_risk_cleared": 1},  # something is over
    )
    old = [{"kind": "log_replaced", "at": NOW.timestamp() - 2 * 3600}]
    assert state(broker=quiet, workers=[worker(incidents=old)])["level"] == "green"
    mixed = state(workers=[worker(alive=False)], at_risk=[{}], overdue=[{"total": 1}])
    assert [r["level"] for r in mixed["reasons"]] == ["red", "red", "amber"]


def test_the_trend_compares_the_seconds_of_lag_with_an_earlier_sample() -> None:
    assert trend(None, Sample(0, 3, 5)) == "new"
    assert trend(Sample(0, 3, 5), Sample(30, 3, 35)) == "growing"  # nobody consumes
    assert trend(Sample(0, 300, 40), Sample(30, 20, 2)) == "shrinking"
    assert trend(Sample(0, 3, 5), Sample(30, 0, 0)) == "shrinking"
    assert trend(Sample(0, 0, 0), Sample(30, 0, 0)) == "steady"
    # a worker that keeps up: the count swings with its commits, the seconds stay under one
    assert trend(Sample(0, 0, 0), Sample(30, 52, 0.4)) == "steady"
    assert trend(Sample(0, 52, 0.9), Sample(30, 29, 0.2)) == "steady"


async def test_a_register_that_does_not_answer_is_red_and_monitor_still_answers() -> None:
    from api.app import create_api

    api = create_api(f"postgresql+asyncpg://reghub@127.0.0.1:{free_port()}/nowhere")
    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://t") as c:
        response = await c.get("/monitor")
    assert response.status_code == 200
    assert time.monotonic() - started < 5
    body = response.json()
    assert body["state"]["level"] == "red"
    assert "the register (database) does not answer" in [
        r["text"] for r in body["state"]["reasons"]
    ]
    assert body["register"] is None and body["obligations"] is None


@pytest.mark.database
@pytest.mark.parametrize("database_url", ["postgresql", "sqlite"], indirect=True)
async def test_overdue_at_risk_and_the_days_compliance_from_the_obligations(
    database_url: str,
) -> None:
    """Obligations as the batches and the watch leave them: overdue are the missing ones of the last
    day and the open ones past due; at risk the open ones due within 30 s; today's compliance counts
    them per reporter as the day's close would (open ones as missing)."""
    engine = make_engine(database_url)

    def row(n: int, reporter: str, state: str, due: timedelta, late_s: int | None = None) -> dict:
        due_at = NOW + due
        return {
            "obligation_id": f"payment:{reporter}:2106149173-{n}",  # a CPR-shaped id: masked
            "kind": "dispensing_report",
            "reporter": reporter,
            "legal_basis": "§ 7 stk. 1",
            "person_key": "0505601234",
            "event_at": NOW - timedelta(minutes=5),
            "due_at": due_at,
            "arrived_at": None if late_s is None else due_at + timedelta(seconds=late_s),
            "state": state,
            "updated_at": NOW,
        }

    rows = [
        row(1, "12300", "missing", -timedelta(minutes=3)),
        row(2, "12300", "missing", -timedelta(days=2)),  # older than a day: counted, not overdue
        row(3, "12300", "open", -timedelta(seconds=2)),  # past due, the watch has not seen it
        row(4, "45600", "open", timedelta(seconds=20)),  # at risk
        row(5, "45600", "open", timedelta(minutes=5)),  # neither
        row(6, "45600", "late", -timedelta(minutes=4), late_s=75),
        row(7, "45600", "on_time", timedelta(seconds=1), late_s=0),
    ]
    try:
        async with engine.begin() as conn:
            await conn.execute(t.obligations.insert(), rows)
        async with engine.connect() as conn:
            view = await monitoring.obligations_view(conn, NOW)
            compliance = await monitoring.compliance_view(conn, NOW)
    finally:
        await engine.dispose()
    assert [(o["reporter"], o["state"], o["seconds_to_due"]) for o in view["overdue"]] == [
        ("12300", "missing", -180),
        ("12300", "open", -2),
    ]
    assert view["overdue"][0]["total"] == 2
    assert [(o["reporter"], o["seconds_to_due"]) for o in view["at_risk"]] == [("45600", 20)]
    assert all("2106149173" not in o["obligation"] for o in view["overdue"] + view["at_risk"])
    assert compliance["day"] == "2026-12-07"
    shown = {c["reporter"]: c for c in compliance["reporters"]}
    assert (shown["12300"]["missing"], shown["12300"]["on_time_pct"]) == (3, 0.0)
    assert shown["45600"] == {
        "reporter": "45600",
        "on_time": 1,
        "late": 1,
        "missing": 2,
        "resolved": 0,
        "worst_seconds_late": 75,
        "on_time_pct": 25.0,
    }


@pytest.mark.broker
async def test_the_lag_view_says_unreachable_when_its_broker_stops_and_recovers_when_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker of its own (stopped and started again by this test): within seconds of its stop the
    view says "broker unreachable"; when it is back, the view answers again. One log line each, and
    none of the client library's repeated connection errors."""
    own = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    own.start()
    try:
        await produce(own.bootstrap, "dash.in", [(b"k", b"v")])
        view = BrokerView(KafkaAccess(own.bootstrap, "dash-group", ("dash.in",), "dash.alerts"))
        task = asyncio.create_task(view.run())
        await _until(lambda: view.view(15)["state"] == "ok", 20)
        assert [(t["topic"], t["messages"]) for t in view.view(15)["topics"]] == [("dash.in", 1)]
        await asyncio.to_thread(own.stop)
        started = time.monotonic()
        await _until(lambda: view.view(15)["state"] == "unreachable", 15)
        assert time.monotonic() - started < 10
        assert "broker unreachable" in view.view(15)["error"]
        await asyncio.to_thread(own.start)
        await _until(lambda: view.view(15)["state"] == "ok", 30)  # the asking goes on
        said = [
            r.getMessage() for r in caplog.records if r.name.startswith(("api.lag", "aiokafka"))
        ]
        assert len(said) == 2 and "again" in said[1], said
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled()
    finally:
        own.stop()


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        await asyncio.sleep(0.2)
