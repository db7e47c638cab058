"""The dated subsidy scales of sundhedsloven § 146 as reference data, and the check a new scale must pass.

A scale (tilskudsskala) gives the band edges T1-T4 for adults and T4c for children. The table is data, not
code: the scales known from public sources are listed here with their source, and later years arrive on the
`ctr.subsidy-scales.v1` topic. A date with no scale in force has no answer: `scale_for` returns None and
the caller parks the purchase (spec/ctr.md § 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import overload

from rules.money import Ore

CAP_TOLERANCE_ORE: Ore = 10
"""The own payment at T4 must equal the published cap within 0.10 kr (spec/ctr.md § 2)."""


@dataclass(frozen=True, slots=True)
class Scale:
    """One scale in force from `effective_from` to `valid_to` (inclusive); amounts in øre."""

    effective_from: date
    valid_to: date | None
    t1: Ore
    t2: Ore
    t3: Ore
    t4: Ore | None
    t4_child: Ore | None
    own_payment_cap: Ore | None
    source: str

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.valid_to is None or day <= self.valid_to)

    adult_bands: tuple[tuple[Ore, Ore | None, int], ...] = field(
        init=False, repr=False, compare=False
    )
    child_bands: tuple[tuple[Ore, Ore | None, int], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        adult = [(0, 0), (self.t1, 50), (self.t2, 75), (self.t3, 85)]
        child = [(0, 60), (self.t2, 75), (self.t3, 85)]
        if self.t4 is not None:
            adult.append((self.t4, 100))
        if self.t4_child is not None:
            child.append((self.t4_child, 100))
        object.__setattr__(self, "adult_bands", _closed(adult))
        object.__setattr__(self, "child_bands", _closed(child))

    def bands(self, under18: bool) -> tuple[tuple[Ore, Ore | None, int], ...]:
        """The scale as (lower edge, upper edge or None, rate in percent), lowest band first.

        Adults: 0 % to T1, 50 % to T2, 75 % to T3, 85 % to T4, 100 % above; children: 60 % to T2,
        75 % to T3, 85 % to T4c, 100 % above (sundhedsloven § 146).
        """
        return self.child_bands if under18 else self.adult_bands


def _closed(edges: list[tuple[Ore, int]]) -> tuple[tuple[Ore, Ore | None, int], ...]:
    uppers = [lower for lower, _ in edges[1:]] + [None]
    return tuple((lower, upper, pct) for (lower, pct), upper in zip(edges, uppers, strict=True))


@overload
def _kr(amount: int) -> Ore: ...
@overload
def _kr(amount: None) -> None: ...
def _kr(amount: int | None) -> Ore | None:
    """Whole kroner (the agency's tables) in øre; None stays None (a threshold the year has not)."""
    return None if amount is None else amount * 100


def _year(
    year: int, t1: int, t2: int, t3: int, t4: int | None, t4c: int | None, cap: int | None, src: str
) -> Scale:
    return Scale(
        date(year, 1, 1),
        date(year, 12, 31),
        _kr(t1),
        _kr(t2),
        _kr(t3),
        _kr(t4),
        _kr(t4c),
        _kr(cap),
        src,
    )


KNOWN_SCALES: tuple[Scale, ...] = (
    _year(2011, 865, 1410, 3045, None, None, None, "laegernefruensboege.dk tilskudsregler"),
    _year(2016, 935, 1535, 3325, 17975, 22115, 3880, "39674828.dk/medicintilskud"),
    _year(2017, 950, 1565, 3390, 18331, 22541, 3955, "sundhedsguiden.dk; T4c derived from the cap"),
    _year(2018, 965, 1595, 3455, 18688, 22968, 4030, "aarsapotek.dk/information/medicintilskud"),
    _year(2019, 980, 1625, 3520, 19078, 23428, 4110, "laegemiddelstyrelsen.dk nyheder 2019"),
    _year(2020, 995, 1655, 3590, 19465, 23885, 4190, "diabetes.dk; epilepsiforeningen.dk"),
    _year(2021, 1010, 1685, 3660, 19851, 24341, 4270, "97121344.dk/medicin/tilskudsregler"),
    _year(2022, 1020, 1705, 3700, 20091, 24628, 4320, "laegemiddelstyrelsen.dk nyheder 2022"),
    Scale(
        date(2023, 1, 1),
        date(2023, 4, 2),
        104500,
        175000,
        379500,
        2063600,
        2528600,
        443500,
        "vaisenhus-apotek.dk; scleroseforeningen.dk",
    ),
    Scale(
        date(2023, 4, 3),
        date(2023, 12, 31),
        104500,
        175000,
        379500,
        1157000,
        1622000,
        307500,
        "pro.medicin.dk/Specielleemner/Emner/318104; lunge.dk (inflation aid from 3 April 2023)",
    ),
    _year(2024, 1075, 1805, 3915, 21298, 26085, 4575, "apotekeren.dk; aeldresagen.dk"),
)


class ScaleBook:
    """A set of scales with the lookup by day remembered: one search per day, not one per purchase.

    Immutable in what it answers (the memo only caches `scale_for` over the same scales).
    """

    __slots__ = ("_by_day", "scales")

    def __init__(self, scales: Iterable[Scale]) -> None:
        self.scales = tuple(scales)
        self._by_day: dict[date, Scale | None] = {}

    def __iter__(self) -> Iterator[Scale]:
        return iter(self.scales)

    def on(self, day: date) -> Scale | None:
        try:
            return self._by_day[day]
        except KeyError:
            found = self._by_day[day] = _search(day, self.scales)
            return found

    def with_scale(self, scale: Scale) -> ScaleBook:
        """A new book where `scale` replaces any scale with the same effective date."""
        kept = [s for s in self.scales if s.effective_from != scale.effective_from]
        return ScaleBook((*kept, scale))


def scale_for(day: date, scales: Iterable[Scale]) -> Scale | None:
    """The scale in force on `day` (a Danish local date), or None: never a guess.

    When two scales cover the day, the one that took effect last wins (a later load supersedes).
    """
    if isinstance(scales, ScaleBook):
        return scales.on(day)
    return _search(day, scales)


def _search(day: date, scales: Iterable[Scale]) -> Scale | None:
    found = [(s.effective_from, i, s) for i, s in enumerate(scales) if s.covers(day)]
    return max(found, key=lambda f: f[:2])[2] if found else None
