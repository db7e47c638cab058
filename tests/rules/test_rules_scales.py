"""Unit tests of the dated § 146 scales in `rules/scales.py` (spec/ctr.md § 2, the table and
"Which scale").

Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from rules.scales import KNOWN_SCALES, Scale, scale_for
from rules.subsidy import cumulative_entitlement, scale_problems


def _scale_on(day: date, scales: tuple[Scale, ...] = KNOWN_SCALES) -> Scale:
    found = scale_for(day, scales)
    assert found is not None, f"no scale on {day}"
    return found


SCALE_2024 = _scale_on(date(2024, 6, 1))


@pytest.mark.parametrize("scale", KNOWN_SCALES, ids=[str(s.effective_from) for s in KNOWN_SCALES])
def test_every_known_scale_passes_the_check(scale: Scale) -> None:
    """spec § 2 "Check for every row: the own payment at T4 equals the cap within 0.10 kr"."""
    assert scale_problems(scale) == []


@pytest.mark.parametrize(
    "scale",
    [s for s in KNOWN_SCALES if s.own_payment_cap is not None],
    ids=[str(s.effective_from) for s in KNOWN_SCALES if s.own_payment_cap is not None],
)
def test_own_payment_at_the_100_percent_edge_equals_the_cap(scale: Scale) -> None:
    """spec § 2 table: own payment at T4 (adult) and at T4c (child) is the cap within 10 øre."""
    assert scale.t4 is not None and scale.t4_child is not None and scale.own_payment_cap is not None
    adult = scale.t4 - cumulative_entitlement(scale.t4, scale, under18=False)
    child = scale.t4_child - cumulative_entitlement(scale.t4_child, scale, under18=True)
    assert abs(adult - scale.own_payment_cap) <= 10
    assert abs(child - scale.own_payment_cap) <= 10


def test_known_scales_match_the_spec_table() -> None:
    """spec § 2 table: every row's figures in kr (the 2011 row has no T4, T4c or cap)."""
    table = {
        date(2011, 1, 1): (865, 1410, 3045, None, None, None),
        date(2016, 1, 1): (935, 1535, 3325, 17975, 22115, 3880),
        date(2017, 1, 1): (950, 1565, 3390, 18331, 22541, 3955),
        date(2018, 1, 1): (965, 1595, 3455, 18688, 22968, 4030),
        date(2019, 1, 1): (980, 1625, 3520, 19078, 23428, 4110),
        date(2020, 1, 1): (995, 1655, 3590, 19465, 23885, 4190),
        date(2021, 1, 1): (1010, 1685, 3660, 19851, 24341, 4270),
        date(2022, 1, 1): (1020, 1705, 3700, 20091, 24628, 4320),
        date(2023, 1, 1): (1045, 1750, 3795, 20636, 25286, 4435),
        date(2023, 4, 3): (1045, 1750, 3795, 11570, 16220, 3075),
        date(2024, 1, 1): (1075, 1805, 3915, 21298, 26085, 4575),
    }

    def kr(s: Scale) -> tuple[int | None, ...]:
        values = (s.t1, s.t2, s.t3, s.t4, s.t4_child, s.own_payment_cap)
        return tuple(None if v is None else v // 100 for v in values)

    assert {s.effective_from: kr(s) for s in KNOWN_SCALES} == table
    assert all(s.source for s in KNOWN_SCALES)


@pytest.mark.parametrize(
    "day",
    [date(2012, 1, 1), date(2015, 12, 31), date(2025, 1, 1), date(2010, 12, 31)],
)
def test_no_scale_is_guessed_for_a_date_without_one(day: date) -> None:
    """spec § 2: "A purchase whose date has no scale is not guessed" — scale_for returns None."""
    assert scale_for(day, KNOWN_SCALES) is None


def test_inflation_aid_switch_on_3_april_2023() -> None:
    """spec § 2 table: 1 Jan – 2 Apr 2023 (T4 20,636) and 3 Apr – 31 Dec 2023 (T4 11,570)."""
    before = _scale_on(date(2023, 4, 2))
    after = _scale_on(date(2023, 4, 3))
    assert (before.effective_from, before.t4, before.own_payment_cap) == (
        date(2023, 1, 1),
        2063600,
        443500,
    )
    assert (after.effective_from, after.t4, after.t4_child) == (date(2023, 4, 3), 1157000, 1622000)
    assert _scale_on(date(2023, 12, 31)) is after


def test_scale_switches_on_1_january() -> None:
    """spec § 2: the scale in force on the purchase's date; a new year's scale from 1 January."""
    assert _scale_on(date(2021, 12, 31)).t1 == 101000
    assert _scale_on(date(2022, 1, 1)).t1 == 102000
    assert _scale_on(date(2023, 12, 31)).t4 == 1157000
    assert _scale_on(date(2024, 1, 1)).t4 == 2129800


def test_covers_is_inclusive_at_both_ends() -> None:
    assert SCALE_2024.covers(date(2024, 1, 1))
    assert SCALE_2024.covers(date(2024, 12, 31))
    assert not SCALE_2024.covers(date(2023, 12, 31))
    assert not SCALE_2024.covers(date(2025, 1, 1))


def test_bands_adult_and_child() -> None:
    """spec § 2.

    Adults 0/50/75/85/100 % from 0/T1/T2/T3/T4; children 60/75/85/100 % from 0/T2/T3/T4c.
    """
    assert SCALE_2024.bands(under18=False) == (
        (0, 107500, 0),
        (107500, 180500, 50),
        (180500, 391500, 75),
        (391500, 2129800, 85),
        (2129800, None, 100),
    )
    assert SCALE_2024.bands(under18=True) == (
        (0, 180500, 60),
        (180500, 391500, 75),
        (391500, 2608500, 85),
        (2608500, None, 100),
    )


def test_2011_scale_has_no_100_percent_band() -> None:
    """spec § 2 table, 2011: no T4 (the 100 % band is automatic only since 1 Jan 2016)."""
    scale_2011 = _scale_on(date(2011, 6, 1))
    assert scale_2011.bands(under18=False)[-1] == (304500, None, 85)
    assert cumulative_entitlement(3_000_000, scale_2011, under18=False) < 3_000_000


def test_scale_with_non_increasing_bands_is_refused() -> None:
    """spec § 2: a loaded scale must be consistent before it takes effect."""
    swapped = replace(SCALE_2024, t1=SCALE_2024.t2, t2=SCALE_2024.t1)
    assert scale_problems(swapped) == ["scale.bands_not_increasing"]
    equal = replace(SCALE_2024, t3=SCALE_2024.t2)
    assert scale_problems(equal) == ["scale.bands_not_increasing"]
    t4_low = replace(SCALE_2024, t4=SCALE_2024.t3)
    assert scale_problems(t4_low) == ["scale.bands_not_increasing"]
    zero = replace(SCALE_2024, t1=0)
    assert scale_problems(zero) == ["scale.bands_not_increasing"]


def test_scale_whose_child_top_is_not_above_t3_is_refused() -> None:
    child_low = replace(SCALE_2024, t4_child=SCALE_2024.t3)
    assert scale_problems(child_low) == ["scale.child_top_not_above_t3"]


def test_scale_ending_before_it_starts_is_refused() -> None:
    backwards = replace(SCALE_2024, valid_to=date(2023, 12, 31))
    assert "scale.valid_to_before_effective_from" in scale_problems(backwards)


def test_scale_with_cap_off_by_more_than_ten_ore_is_refused() -> None:
    """spec § 2.

    Own payment at T4 equals the cap within 0.10 kr — 2024 adult own payment is 4,574.95.
    """
    off = replace(SCALE_2024, own_payment_cap=460000)
    problems = scale_problems(off)
    assert len(problems) == 2
    assert problems[0].startswith("scale.cap_mismatch: adult")
    assert "4574.95 kr" in problems[0] and "4600.00 kr" in problems[0]
    assert problems[1].startswith("scale.cap_mismatch: child")


def test_cap_tolerance_is_exactly_ten_ore() -> None:
    """spec § 2.

    Adult own 4,574.95 and child 4,575.00 — a cap of 4,575.05 passes, 4,575.06 does not.
    """
    assert scale_problems(replace(SCALE_2024, own_payment_cap=457505)) == []
    problems = scale_problems(replace(SCALE_2024, own_payment_cap=457506))
    assert len(problems) == 1 and problems[0].startswith("scale.cap_mismatch: adult")


def test_scale_without_cap_is_not_cap_checked() -> None:
    """spec § 2 table: 2025/2026 may be loaded without a cap; only the bands are checked."""
    no_cap = replace(
        SCALE_2024, effective_from=date(2025, 1, 1), valid_to=None, own_payment_cap=None
    )
    assert scale_problems(no_cap) == []


def test_later_effective_from_wins_when_two_scales_cover_the_day() -> None:
    """spec § 2: scales are dated reference data; a scale loaded from a later date supersedes."""
    mid_2024 = replace(
        SCALE_2024,
        effective_from=date(2024, 7, 1),
        t4=1157000,
        t4_child=1622000,
        own_payment_cap=307500,
        source="loaded",
    )
    scales = (*KNOWN_SCALES, mid_2024)
    assert scale_for(date(2024, 6, 30), scales) is SCALE_2024
    assert scale_for(date(2024, 7, 1), scales) is mid_2024
    # Order of loading does not matter when the effective dates differ.
    assert scale_for(date(2024, 7, 1), (mid_2024, *KNOWN_SCALES)) is mid_2024


def test_loaded_open_ended_scale_fills_a_gap() -> None:
    """spec § 2: "processed when the scale is loaded" — a 2025 scale makes 2025 dates answerable."""
    loaded = replace(SCALE_2024, effective_from=date(2025, 1, 1), valid_to=None, source="loaded")
    scales = (*KNOWN_SCALES, loaded)
    assert scale_for(date(2025, 1, 1), scales) is loaded
    assert scale_for(date(2031, 5, 5), scales) is loaded
    assert scale_for(date(2024, 12, 31), scales) is SCALE_2024


def test_later_loaded_scale_with_same_effective_from_wins() -> None:
    """spec § 2 / scale_for docstring.

    "a later load supersedes" — also for the same effective_from.
    """
    reloaded = replace(SCALE_2024, t4=2129900, source="reloaded")
    assert scale_for(date(2024, 6, 1), (*KNOWN_SCALES, reloaded)) is reloaded
