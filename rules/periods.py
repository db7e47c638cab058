"""The subsidy period (tilskudsperiode) and the under-18 flag fixed at its start (spec/ctr.md § 3)."""

from __future__ import annotations

from datetime import date, timedelta

_ONE_DAY = timedelta(days=1)


def period_end(start: date) -> date:
    """Start + 1 year − 1 day, inclusive; a period starting 29 February ends 28 February (DECISION)."""
    if start.month == 2 and start.day == 29:
        return date(start.year + 1, 2, 28)
    # built from its parts: `replace(year=…)` and `timedelta(days=1)` parse keywords on every call
    return date(start.year + 1, start.month, start.day) - _ONE_DAY


def age_on(birth: date, day: date) -> int:
    """Completed years on `day`; someone born 29 February turns a year older on 1 March in other years."""
    years = day.year - birth.year
    if (day.month, day.day) < (birth.month, birth.day):
        years -= 1
    return years


def is_under18(birth: date, period_start: date) -> bool:
    """The § 3 stk. 1 nr. 6 flag: under 18 on the day the period began."""
    return age_on(birth, period_start) < 18
