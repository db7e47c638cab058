"""Reporting deadlines (order §§ 7-8): when a report is due, and by how much one arrived late.

"Immediately" (umiddelbart) is a configurable grace after the source event; "the same day" is 24:00
Europe/Copenhagen on the day of the event, daylight saving time included. Alerts and log lines give a
lateness in human units (`human_duration`: "2 h 14 min"), never raw seconds.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

COPENHAGEN = ZoneInfo("Europe/Copenhagen")

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_NONE = timedelta(0)
_LAST_INSTANT = timedelta(days=1, microseconds=-1)
_DATES_BY_UTC_DAY: dict[int, tuple[date, date, int]] = {}
"""Per UTC day (its ordinal) asked for so far: its Danish date before and from the UTC hour the Danish
date turns, and that hour; only for days with one whole-hour offset from start to end."""
_DAYS_KEPT = 20_000
"""About 55 years of days: more than a worker meets; past it the dates are worked out afresh."""


def danish_date(utc: datetime) -> date:
    """The Europe/Copenhagen date of an aware time in UTC: the day a payment is booked by.

    The conversion is worked out once per UTC day and kept: on a day with one offset of whole hours
    (Copenhagen's since 1894, on every day but the two of a change to or from summer time) the Danish
    date turns on the hour, 24 hours minus the offset. Any other day's times are converted one by one.
    """
    ordinal = utc.toordinal()
    known = _DATES_BY_UTC_DAY.get(ordinal)
    if known is None:
        known = _dates_of_utc_day(utc)
        if known is None:
            return utc.astimezone(COPENHAGEN).date()
    before, after, turn = known
    return before if utc.hour < turn else after


def _dates_of_utc_day(utc: datetime) -> tuple[date, date, int] | None:
    """`utc`'s day as `danish_date` keeps it, or None where its offset changes or is part of an hour."""
    start = datetime.combine(utc.date(), time(0), tzinfo=utc.tzinfo)
    first, last = start.astimezone(COPENHAGEN), (start + _LAST_INSTANT).astimezone(COPENHAGEN)
    offset = first.utcoffset()
    if offset is None or offset != last.utcoffset() or offset % _HOUR or not _NONE < offset < _DAY:
        return None
    turn = 24 - offset // _HOUR
    if len(_DATES_BY_UTC_DAY) >= _DAYS_KEPT:
        _DATES_BY_UTC_DAY.clear()
    known = _DATES_BY_UTC_DAY[utc.toordinal()] = (first.date(), last.date(), turn)
    return known


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
