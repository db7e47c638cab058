"""The worker's register-wide gauges on a real register: the outbox backlog and the last closed day's
compliance, as `/metrics` shows them (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from sinks import tables as t
from sinks.ctr_store import CtrStore
from sinks.register import Register
from streams.metrics import Metrics

pytestmark = pytest.mark.database

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def sample(text: str, series: str) -> float | None:
    """The value of one series line of a metrics page, None when it is not there."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_an_empty_register_has_no_backlog_and_no_closed_day(register: Register) -> None:
    metrics = Metrics()
    async with register.engine.connect() as conn:
        await metrics.refresh_register(CtrStore(conn), NOW)
    text = metrics.text().decode()
    assert sample(text, "reghub_outbox_unsent_records") == 0
    assert sample(text, "reghub_outbox_oldest_unsent_seconds") == 0
    assert sample(text, 'reghub_compliance_last_day{state="on_time"}') is None


async def test_the_outbox_backlog_and_the_last_closed_day(register: Register) -> None:
    rows = [
        {"created_at": NOW - timedelta(seconds=90), "records": 3, "payload": b"x", "sent_at": None},
        {"created_at": NOW - timedelta(seconds=10), "records": 2, "payload": b"x", "sent_at": None},
        {"created_at": NOW - timedelta(hours=1), "records": 7, "payload": b"x", "sent_at": NOW},
    ]
    day_rows = [
        (date(2026, 12, 4), "12300", 1, 1, 1, 1),
        (date(2026, 12, 5), "12300", 8, 1, 0, 0),
        (date(2026, 12, 5), "555", 1, 0, 1, 1),
    ]
    async with register.engine.begin() as conn:
        await conn.execute(t.outbox.insert(), rows)
        await conn.execute(
            t.compliance_days.insert(),
            [
                {"day": d, "reporter": r, "on_time": o, "late": la, "missing": m, "resolved": re,
                 "worst_seconds_late": 0, "closed_at": NOW}
                for d, r, o, la, m, re in day_rows
            ],
        )  # fmt: skip
    metrics = Metrics()
    async with register.engine.connect() as conn:
        await metrics.refresh_register(CtrStore(conn), NOW)
    text = metrics.text().decode()
    assert sample(text, "reghub_outbox_unsent_records") == 5
    assert sample(text, "reghub_outbox_oldest_unsent_seconds") == pytest.approx(90, abs=1)
    # the last closed day (5 December), over both reporters
    assert sample(text, 'reghub_compliance_last_day{state="on_time"}') == 9
    assert sample(text, 'reghub_compliance_last_day{state="late"}') == 1
    assert sample(text, 'reghub_compliance_last_day{state="missing"}') == 1
    assert sample(text, 'reghub_compliance_last_day{state="resolved"}') == 1
    day_start = datetime(2026, 12, 5, tzinfo=UTC).timestamp()
    assert sample(text, "reghub_compliance_last_day_timestamp_seconds") == day_start
