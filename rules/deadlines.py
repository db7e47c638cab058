"""Reporting deadlines (order §§ 7-8): when a report is due, and by how much one arrived late.

"Immediately" (umiddelbart) is a configurable grace after the source event; "the same day" is 24:00
Europe/Copenhagen on the day of the event, daylight saving time included. Alerts and log lines give a
lateness in human units (`human_duration`: "2 h 14 min"), never raw seconds.
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


_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def human_duration(seconds: int) -> str:
    """`seconds` in its two largest units, the smaller one left out when zero and the rest dropped:
    30 → "30 s", 240 → "4 min", 90 → "1 min 30 s", 8040 → "2 h 14 min", 90061 → "1 d 1 h";
    0 or less → "0 s"."""
    if seconds <= 0:
        return "0 s"
    parts: list[str] = []
    left = int(seconds)
    for name, size in _UNITS:
        count, left = divmod(left, size)
        if count and len(parts) < 2:
            parts.append(f"{count} {name}")
        elif parts:  # the unit after the largest is counted even when zero, then no more
            break
    return " ".join(parts)
