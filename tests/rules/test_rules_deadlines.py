"""Reporting deadlines of order § 7 stk. 1, stk. 4 and § 8 (rules/deadlines.py)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from rules import deadlines
from rules.deadlines import (
    danish_date,
    due_immediately,
    due_same_day,
    human_duration,
    seconds_late,
)


def test_immediately_is_the_event_plus_the_grace() -> None:
    """§ 7 stk. 1: a dispensing report is due right after payment (grace configurable)."""
    paid = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert due_immediately(paid, 60) == datetime(2024, 3, 1, 10, 1, tzinfo=UTC)


def test_the_same_day_ends_at_midnight_copenhagen_in_winter_and_summer() -> None:
    """§ 7 stk. 4: 24:00 Europe/Copenhagen, whether the offset is +01:00 or +02:00."""
    assert due_same_day(date(2024, 1, 2)) == datetime(2024, 1, 2, 23, 0, tzinfo=UTC)
    assert due_same_day(date(2024, 7, 2)) == datetime(2024, 7, 2, 22, 0, tzinfo=UTC)


def test_the_same_day_across_the_spring_and_autumn_switch() -> None:
    """The day DST starts (31 March 2024) has 23 hours, the day it ends (27 October 2024) 25."""
    assert due_same_day(date(2024, 3, 30)) == datetime(2024, 3, 30, 23, 0, tzinfo=UTC)
    assert due_same_day(date(2024, 3, 31)) == datetime(2024, 3, 31, 22, 0, tzinfo=UTC)
    assert due_same_day(date(2024, 10, 27)) == datetime(2024, 10, 27, 23, 0, tzinfo=UTC)


def test_seconds_late_is_zero_when_on_time() -> None:
    due = datetime(2024, 1, 2, 23, 0, tzinfo=UTC)
    assert seconds_late(due, datetime(2024, 1, 2, 22, 59, tzinfo=UTC)) == 0
    assert seconds_late(due, due) == 0
    assert seconds_late(due, datetime(2024, 1, 2, 23, 0, 42, tzinfo=UTC)) == 42


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "0 s"),
        (0, "0 s"),
        (30, "30 s"),
        (60, "1 min"),
        (90, "1 min 30 s"),
        (240, "4 min"),
        (3_601, "1 h"),
        (8_040, "2 h 14 min"),
        (8_079, "2 h 14 min"),
        (90_061, "1 d 1 h"),
        (86_460, "1 d"),
    ],
)
def test_lateness_in_human_units(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


@pytest.mark.parametrize(
    ("utc", "day"),
    [
        # the change to summer time, 31 March 2024 at 01:00 UTC (02:00 CET → 03:00 CEST)
        (datetime(2024, 3, 30, 22, 59, 59, 999_999, tzinfo=UTC), date(2024, 3, 30)),
        (datetime(2024, 3, 30, 23, 0, tzinfo=UTC), date(2024, 3, 31)),
        (datetime(2024, 3, 31, 21, 59, 59, tzinfo=UTC), date(2024, 3, 31)),
        (datetime(2024, 3, 31, 22, 0, tzinfo=UTC), date(2024, 4, 1)),
        # the change back, 27 October 2024 at 01:00 UTC (03:00 CEST → 02:00 CET)
        (datetime(2024, 10, 26, 21, 59, 59, tzinfo=UTC), date(2024, 10, 26)),
        (datetime(2024, 10, 26, 22, 0, tzinfo=UTC), date(2024, 10, 27)),
        (datetime(2024, 10, 27, 22, 59, 59, tzinfo=UTC), date(2024, 10, 27)),
        (datetime(2024, 10, 27, 23, 0, tzinfo=UTC), date(2024, 10, 28)),
        # New Year's Eve in winter time: the Danish year begins at 23:00 UTC
        (datetime(2024, 12, 31, 22, 59, 59, tzinfo=UTC), date(2024, 12, 31)),
        (datetime(2024, 12, 31, 23, 0, tzinfo=UTC), date(2025, 1, 1)),
        # Copenhagen mean time, +00:50:20, until 1894: the date turns at 23:09:40 UTC
        (datetime(1890, 6, 1, 23, 9, 39, tzinfo=UTC), date(1890, 6, 1)),
        (datetime(1890, 6, 1, 23, 9, 40, tzinfo=UTC), date(1890, 6, 2)),
    ],
)
def test_the_danish_date_of_a_utc_time(utc: datetime, day: date) -> None:
    """A payment is booked by its Danish date (§ 3 stk. 1 nr. 4), across the changes to and from
    summer time (EU: the last Sundays of March and October at 01:00 UTC) and a part-hour offset.
    Asked twice, so the second answer comes from what the first kept."""
    assert danish_date(utc) == day
    assert danish_date(utc) == day


_COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def test_the_danish_date_agrees_with_the_time_zone_database_every_day() -> None:
    """Every UTC day from 1890 to 2060, at the minutes around each hour the date could turn, against
    the tz database's own conversion."""
    day = datetime(1890, 1, 1, tzinfo=UTC)
    wrong = []
    while day.year < 2060:
        for minute in (0, 59, 60, 119, 120, 1319, 1320, 1379, 1380, 1439):
            utc = day + timedelta(minutes=minute, seconds=59 if minute % 60 == 59 else 0)
            if danish_date(utc) != utc.astimezone(_COPENHAGEN).date():
                wrong.append(utc)
        day += timedelta(days=1)
    assert wrong == []


def test_the_danish_date_of_any_time() -> None:
    """20,000 times drawn from the whole calendar (a fixed seed), against the tz database."""
    rng = random.Random(1894)
    first, span = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
    seconds = int((span - first).total_seconds())
    times = [first + timedelta(seconds=rng.randrange(seconds)) for _ in range(20_000)]
    wrong = [t for t in times if danish_date(t) != t.astimezone(_COPENHAGEN).date()]
    assert wrong == []


def test_the_days_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound the days kept are dropped and worked out afresh, with the same answers."""
    monkeypatch.setattr(deadlines, "_DAYS_KEPT", 3)
    start = datetime(2024, 1, 1, 12, tzinfo=UTC)
    days = [start + timedelta(days=n) for n in range(10)]
    assert [danish_date(t) for t in days] == [t.date() for t in days]
    assert len(deadlines._DATES_BY_UTC_DAY) <= 3
