"""Reporting deadlines (order §§ 7-8): when a report is due, and by how much one arrived late.

"Immediately" (umiddelbart) is a configurable grace after the source event; "the same day" is 24:00
Europe/Copenhagen on the day of the event, daylight saving time included.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def due_immediately(event_time: datetime, grace_seconds: int) -> datetime:
    """§ 7 stk. 1 (dispensing) and § 8 (municipal decisions): the event time plus the grace."""
    return event_time + timedelta(seconds=grace_seconds)


def due_same_day(day: date) -> datetime:
    """§ 7 stk. 4 (deferral agreement entered or ended): midnight at the end of `day` in Copenhagen."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=COPENHAGEN)


def seconds_late(due: datetime, received: datetime) -> int:
    """How many whole seconds after `due` the report arrived; 0 when on time."""
    return max(0, int((received - due).total_seconds()))
