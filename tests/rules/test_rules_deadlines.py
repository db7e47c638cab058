"""Reporting deadlines of order § 7 stk. 1, stk. 4 and § 8 (rules/deadlines.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rules.deadlines import due_immediately, due_same_day, human_duration, seconds_late


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
