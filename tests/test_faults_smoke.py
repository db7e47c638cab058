"""The fault campaign (`bench.faults`) on a tiny scale: one kill -9 of a worker while 2,000 reports
stream in, and 300 hostile records. Nothing may be lost or counted twice, the hostile records must all
be accounted for (dead-lettered with a reason, or valid and taken), and no worker may crash."""

from __future__ import annotations

import pytest

from bench.faults.__main__ import parse
from bench.faults.campaign import campaign
from bench.faults.report import details, table

pytestmark = [pytest.mark.broker, pytest.mark.database]


async def test_one_kill_and_a_little_fuzz_lose_nothing_and_double_nothing() -> None:
    args = parse(
        [
            "-n", "2000",
            "--only", "kill9,fuzz",
            "--kills", "1",
            "--stream-seconds", "8",
            "--persons", "300",
            "--fuzz", "300",
            "--settle-timeout", "60",
            "--crash-loop-seconds", "10",
        ]
    )  # fmt: skip
    rows = await campaign(args)
    report = table(rows) + "\n" + details(rows)
    kill9, fuzz = rows
    assert kill9.scenario == "kill9" and fuzz.scenario == "fuzz", report

    assert kill9.sent == 2000, report
    assert kill9.lost_reports == 0 and kill9.lost_decisions == 0, report
    assert kill9.doubled == 0, report
    assert kill9.passed, report

    assert fuzz.sent == 300, report
    assert fuzz.lost_reports == 0, report  # every record dead-lettered, or valid and taken
    assert fuzz.dead_lettered >= fuzz.sent - fuzz.registered, report
    assert fuzz.doubled == 0, report
    assert fuzz.passed, report  # no worker crash, /health answered, every dead letter has a reason
