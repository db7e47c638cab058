"""Unit tests of due times (`rules/deadlines.py`) and obligations (`rules/obligations.py`).

The clock is the test's: every time is given. Copenhagen is UTC+1 in winter and UTC+2 in summer; in 2024
summer time began on 31 March at 02:00 (to 03:00) and ended on 27 October at 03:00 (to 02:00).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from rules.deadlines import COPENHAGEN, due_immediately, due_same_day
from rules.obligations import arm_payment, fulfil, is_overdue


@pytest.mark.parametrize(
    ("day", "due_utc"),
    [
        (date(2024, 3, 30), datetime(2024, 3, 30, 23, 0, tzinfo=UTC)),  # winter: 24:00 = 23:00 UTC
        (date(2024, 3, 31), datetime(2024, 3, 31, 22, 0, tzinfo=UTC)),  # the 23-hour day: summer
        (date(2024, 10, 26), datetime(2024, 10, 26, 22, 0, tzinfo=UTC)),
        (date(2024, 10, 27), datetime(2024, 10, 27, 23, 0, tzinfo=UTC)),  # the 25-hour day: winter
    ],
)
def test_the_same_day_ends_at_local_midnight_across_daylight_saving(
    day: date, due_utc: datetime
) -> None:
    assert due_same_day(day) == due_utc


def test_an_agreement_entered_at_23_59_local_time_is_due_one_minute_later() -> None:
    """§ 7 stk. 4: entered 23:59 on 27 October 2024 (after the clocks went back): due at 24:00 local,
    one minute later; reported at 00:00:30 the next day it is 30 s late."""
    entered = datetime(2024, 10, 27, 23, 59, tzinfo=COPENHAGEN)
    due = due_same_day(entered.date())
    assert due - entered == timedelta(minutes=1)


def test_a_payment_at_23_59_30_with_60_s_grace_is_due_the_next_day() -> None:
    """§ 7 stk. 1: "immediately" is a grace after the payment; it crosses midnight as it must."""
    paid = datetime(2024, 3, 30, 23, 59, 30, tzinfo=COPENHAGEN)
    due = due_immediately(paid, 60)
    assert due.astimezone(COPENHAGEN) == datetime(2024, 3, 31, 0, 0, 30, tzinfo=COPENHAGEN)


PAID = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)


def armed():
    return arm_payment(
        None, obligation_id="o", reporter="12300", person_key="k", paid_at=PAID, grace_seconds=60
    )


@pytest.mark.parametrize(
    ("after", "state", "late"),
    [(59, "on_time", 0), (60, "on_time", 0), (61, "late", 1)],
)
def test_a_report_the_second_before_at_and_after_its_due_time(
    after: int, state: str, late: int
) -> None:
    met = fulfil(
        armed(), obligation_id="o", reporter="12300", person_key="k",
        arrived_at=PAID + timedelta(seconds=after),
    )  # fmt: skip
    assert (met.state, met.seconds_late) == (state, late)


def test_an_obligation_is_overdue_only_after_its_due_time_and_only_while_open() -> None:
    o = armed()
    assert o.due_at is not None
    assert not is_overdue(o, o.due_at)
    assert is_overdue(o, o.due_at + timedelta(microseconds=1))
    met = fulfil(o, obligation_id="o", reporter="12300", person_key="k", arrived_at=PAID)
    assert not is_overdue(met, o.due_at + timedelta(hours=1))


def test_a_missing_report_that_comes_after_all_resolves_its_alert() -> None:
    from dataclasses import replace

    missing = replace(armed(), state="missing")
    met = fulfil(
        missing, obligation_id="o", reporter="12300", person_key="k",
        arrived_at=PAID + timedelta(minutes=10),
    )  # fmt: skip
    assert (met.state, met.seconds_late) == ("resolved", 540)


def test_a_report_before_its_payment_announcement_is_decided_when_the_payment_comes() -> None:
    early = fulfil(
        None, obligation_id="o", reporter="12300", person_key="k",
        arrived_at=PAID + timedelta(seconds=30),
    )  # fmt: skip
    assert early.state == "reported"
    decided = arm_payment(
        early, obligation_id="o", reporter="12300", person_key="k", paid_at=PAID, grace_seconds=60
    )
    assert decided.state == "on_time"
    again = arm_payment(
        decided, obligation_id="o", reporter="12300", person_key="k", paid_at=PAID,
        grace_seconds=60,
    )  # fmt: skip
    assert again is decided  # announced twice: the first stands


def test_a_days_summary_counts_by_the_local_date_of_the_payment() -> None:
    """A payment at 21:59:59 UTC on 2 May is 23:59:59 in Copenhagen (summer time): 2 May. One at
    22:00:00 UTC is 00:00 on 3 May: not counted for 2 May."""
    from dataclasses import replace

    from rules.compliance import summarize

    last = replace(
        armed(), obligation_id="a", event_at=datetime(2024, 5, 2, 21, 59, 59, tzinfo=UTC)
    )
    next_day = replace(armed(), obligation_id="b", event_at=datetime(2024, 5, 2, 22, tzinfo=UTC))
    [summary] = summarize(date(2024, 5, 2), [last, next_day])
    assert (summary.reporter, summary.missing, summary.total) == ("12300", 1, 1)


def test_the_hubs_own_lag_puts_obligations_at_risk_before_they_breach() -> None:
    """1,000 records behind at 100/s take 10 s: an obligation due in 11 s is safe, one due in 9 s is
    at risk; no progress at all is a risk whatever the due time; no lag, no risk."""
    from rules.obligations import at_risk

    now = PAID
    assert not at_risk(1000, 100.0, now + timedelta(seconds=11), now)
    assert at_risk(1000, 100.0, now + timedelta(seconds=9), now)
    assert at_risk(1, 0.0, now + timedelta(days=1), now)
    assert not at_risk(0, 0.0, now, now)
    assert not at_risk(1000, 100.0, None, now)


def test_an_at_risk_episode_is_raised_once_and_cleared_once() -> None:
    from streams.obligation_watch import LagWatch

    watch = LagWatch()
    due = PAID + timedelta(seconds=5)
    assert watch.verdict(1000, 10.0, due, PAID) == "obligations_at_risk"
    assert watch.verdict(900, 10.0, due, PAID) is None  # still at risk: not raised again
    assert watch.verdict(0, 10.0, None, PAID) == "obligations_at_risk_cleared"
    assert watch.verdict(0, 10.0, None, PAID) is None
    assert watch.rate(100, at=0.0) == 0.0 and watch.rate(300, at=2.0) == 100.0
