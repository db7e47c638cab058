"""§ 4 of BEK 764/2025 as rules: each paragraph at its boundary (the anniversary kept, the day after
deleted), 29 February, the death rule, open-ended data, and the list of tables."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rules.retention import (
    BALANCING,
    DECEASED,
    DEFERRAL,
    GENERAL,
    GRANT,
    HEALTH_SUPPLEMENT,
    NOT_TOUCHED,
    RETAINED,
    RIGHTS_BASED,
    RULES,
    Retained,
    anniversary,
    cutoff,
    deleted_from,
    is_deleted,
    kept_through,
    schedule,
)

TWO_YEARS = [GENERAL, GRANT, DEFERRAL, HEALTH_SUPPLEMENT, RIGHTS_BASED, BALANCING]


@pytest.mark.parametrize("rule", TWO_YEARS, ids=lambda r: r.name)
def test_two_year_rules_keep_through_the_second_anniversary_and_delete_the_day_after(rule) -> None:
    arose = date(2024, 3, 15)
    assert kept_through(arose, rule) == date(2026, 3, 15)
    assert not is_deleted(arose, rule, date(2026, 3, 15))
    assert is_deleted(arose, rule, date(2026, 3, 16))
    assert deleted_from(arose, rule) == date(2026, 3, 16)
    # the cutoff of those two days: the arising day is outside, then inside
    assert cutoff(rule, date(2026, 3, 15)) == date(2024, 3, 14)
    assert cutoff(rule, date(2026, 3, 16)) == date(2024, 3, 15)


def test_a_death_is_kept_one_year_and_deleted_the_day_after() -> None:
    died = date(2025, 6, 30)
    assert DECEASED.years == 1
    assert not is_deleted(died, DECEASED, date(2026, 6, 30))
    assert is_deleted(died, DECEASED, date(2026, 7, 1))
    assert cutoff(DECEASED, date(2026, 7, 1)) == died
    assert cutoff(DECEASED, date(2026, 6, 30)) == died - timedelta(days=1)


def test_29_february_is_kept_through_28_february_of_a_common_year() -> None:
    leap = date(2024, 2, 29)
    assert anniversary(leap, 2) == date(2026, 2, 28)
    assert not is_deleted(leap, GENERAL, date(2026, 2, 28))
    assert is_deleted(leap, GENERAL, date(2026, 3, 1))
    # on 1 March 2026 both 28 and 29 February 2024 are past; on 28 February neither is
    assert cutoff(GENERAL, date(2026, 3, 1)) == date(2024, 2, 29)
    assert cutoff(GENERAL, date(2026, 2, 28)) == date(2024, 2, 27)
    # a death on 29 February: kept through 28 February 2025
    assert kept_through(leap, DECEASED) == date(2025, 2, 28)
    assert cutoff(DECEASED, date(2025, 3, 1)) == leap
    # from a common year into a leap year: 28 February 2026 is kept through 28 February 2028, and
    # 29 February 2028 is the first day it is gone
    assert cutoff(GENERAL, date(2028, 2, 29)) == date(2026, 2, 28)
    assert cutoff(GENERAL, date(2028, 2, 28)) == date(2026, 2, 27)
    assert cutoff(GENERAL, date(2028, 3, 1)) == date(2026, 2, 28)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_the_cutoff_agrees_with_the_anniversary_on_every_day_of_six_years(rule) -> None:
    """For every arising day and run day around two leap years: deleted iff on or before the cutoff."""
    first = date(2023, 1, 1)
    days = [first + timedelta(days=i) for i in range(0, 6 * 366, 1)]
    runs = [date(2026, 2, 27) + timedelta(days=i) for i in range(4)] + [
        date(2028, 2, 27) + timedelta(days=i) for i in range(4)
    ]
    for as_of in runs:
        cut = cutoff(rule, as_of)
        for arose in days:
            assert is_deleted(arose, rule, as_of) == (arose <= cut), (rule.name, as_of, arose)


def test_open_ended_rows_are_never_due_and_the_lines_say_which_column() -> None:
    by_label = {r.label: r for r in RETAINED}
    assert by_label["grants"].rule is GRANT and by_label["grants"].arose == "valid_to"
    assert by_label["supplements.health_supplement"].rule is HEALTH_SUPPLEMENT
    assert by_label["supplements.health_supplement"].only == ("kind", "health_supplement")
    assert by_label["supplements.rights_based"].rule is RIGHTS_BASED
    assert by_label["deferral_agreements"].rule is DEFERRAL
    assert by_label["deferral_agreements"].arose == "ended_on"
    assert by_label["balances"].rule is BALANCING and by_label["balances"].arose == "arose_on"
    assert by_label["purchases"].arose == "paid_or_invoiced_at"
    assert by_label["subsidy_periods"].arose == "last_paid_at"
    assert by_label["subsidy_periods"].fallback == "period_end"
    assert by_label["subsidy_periods"].kept_by == ("purchases", ("person_key", "period_start"))
    assert by_label["obligations"].fallback == "updated_at"
    assert by_label["processed_messages"].persons == ()
    # the open-ended lines name a column that is null while open, and no fallback: never due
    for label in ("supplements.health_supplement", "supplements.rights_based", "custody"):
        assert by_label[label].fallback is None
    assert by_label["deferral_agreements"].fallback is None
    assert not {r.table for r in RETAINED} & set(NOT_TOUCHED)


def test_the_schedule_runs_deaths_first_then_each_line_then_the_persons_left() -> None:
    steps = schedule(date(2026, 12, 4))
    labels = [s.label for s in steps]
    assert labels[0].startswith("deceased.")
    assert labels.index("deceased.persons") == max(
        i for i, s in enumerate(steps) if s.rule is DECEASED
    )
    assert labels[-1] == "persons"
    assert "deceased.processed_messages" not in labels  # no person in it
    cut = {s.label: s.cutoff for s in steps}
    assert cut["deceased.purchases"] == date(2025, 12, 3)
    assert cut["purchases"] == cut["balances"] == cut["persons"] == date(2024, 12, 3)


def test_adding_a_table_is_one_line() -> None:
    extra = (
        *RETAINED,
        Retained("a_new_register_table", "valid_to"),
        Retained("a_new_log", "at", persons=()),
    )
    labels = [s.label for s in schedule(date(2026, 12, 4), extra)]
    assert {"a_new_register_table", "deceased.a_new_register_table", "a_new_log"} <= set(labels)
    assert "deceased.a_new_log" not in labels


def test_every_table_with_personal_data_has_a_line() -> None:
    """A table of the register that names a person and has no line here would keep its rows forever."""
    from sinks import places_tables, tables

    not_personal = {*NOT_TOUCHED, "persons"}  # the tables said to hold no person (and persons)
    listed = {r.table for r in RETAINED}
    places = {t.name for t in places_tables.metadata.sorted_tables if t.name.startswith("place")}
    for table in tables.metadata.sorted_tables:
        if table.name in not_personal or table.name in places:
            continue
        assert table.name in listed, table.name
