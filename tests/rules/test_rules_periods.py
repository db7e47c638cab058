"""Unit tests of the subsidy period and the under-18 flag in `rules/periods.py` (spec/ctr.md § 3;
order § 3 stk. 1 nr. 6 and 7).

Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from datetime import date

import pytest

from rules.periods import age_on, is_under18, period_end


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2019, 1, 10), date(2020, 1, 9)),  # LMST example 10.01.2019 – 09.01.2020
        (date(2020, 2, 29), date(2021, 2, 28)),  # DECISION: a period from 29 Feb ends 28 Feb
        (date(2024, 2, 29), date(2025, 2, 28)),
        (date(2024, 1, 1), date(2024, 12, 31)),
        (date(2023, 12, 31), date(2024, 12, 30)),
        (date(2023, 3, 1), date(2024, 2, 29)),  # the day before 1 March in a leap year
        (date(2023, 2, 28), date(2024, 2, 27)),
        (date(2024, 3, 1), date(2025, 2, 28)),
    ],
)
def test_period_end_is_start_plus_one_year_minus_one_day(start: date, end: date) -> None:
    """spec § 3 / order § 3 stk. 1 nr. 7: the period ends on start + 1 year − 1 day, inclusive."""
    assert period_end(start) == end


def test_under18_false_on_the_18th_birthday() -> None:
    """spec § 3 / order § 3 stk. 1 nr. 6.

    "age on the start date < 18" — 18 on the birthday itself.
    """
    born = date(2006, 3, 15)
    assert is_under18(born, date(2024, 3, 15)) is False
    assert is_under18(born, date(2024, 3, 14)) is True
    assert age_on(born, date(2024, 3, 14)) == 17
    assert age_on(born, date(2024, 3, 15)) == 18


def test_newborn_and_adult() -> None:
    assert is_under18(date(2024, 1, 1), date(2024, 1, 1)) is True
    assert is_under18(date(1960, 5, 5), date(2024, 1, 5)) is False


def test_birthday_on_29_february_turns_18_on_1_march_in_a_common_year() -> None:
    """spec § 3 / periods.age_on.

    Someone born 29 Feb is a year older on 1 March in a common year.
    """
    born = date(2004, 2, 29)
    assert is_under18(born, date(2022, 2, 28)) is True
    assert is_under18(born, date(2022, 3, 1)) is False
    assert age_on(born, date(2022, 2, 28)) == 17


def test_birthday_on_29_february_counts_on_29_february_in_a_leap_year() -> None:
    """periods.age_on: in a leap year the birthday is 29 February itself."""
    born = date(2004, 2, 29)
    assert age_on(born, date(2024, 2, 28)) == 19
    assert age_on(born, date(2024, 2, 29)) == 20
