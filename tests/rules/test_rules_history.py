"""Unit tests of `rules/history.py`: late reports placed by payment date, and cancellations (spec § 7).

Every figure is worked by hand in the test's docstring. Scales (adult bands, spec § 2): 2021 T1 1,010,
T2 1,685, T3 3,660; 2022 T1 1,020, T2 1,705, T3 3,700; 2024 T1 1,075, T2 1,805, T3 3,915; 0 % up to
T1, 50 % to T2, 75 % to T3, 85 % above. F(S) is the subsidy due on a saldo S built from zero.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from rules.history import History, NewSale, Replayed, cancel_sale, place_sale
from rules.money import kroner_to_ore
from rules.outcomes import PurchaseRecord
from rules.periods import period_end
from rules.scales import KNOWN_SCALES
from rules.state import Period

BORN = date(1960, 5, 5)
CPH = timezone(timedelta(hours=1))


def kr(text: str) -> int:
    return kroner_to_ore(text)


def at(day: date) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=CPH)


def period(start: date, saldo: str, previous_end: date | None = None) -> Period:
    return Period(start, period_end(start), kr(saldo), False, previous_end)


def bought(
    report_id: str, day: date, start: date, basis: str, entitled: str, **kw: object
) -> PurchaseRecord:
    return PurchaseRecord(
        report_id,
        day,
        start,
        kr(basis),
        kr(entitled),
        False,
        paid_at=at(day),
        actual=kr(basis),
        paid=kr(basis) - kr(entitled),
        **kw,  # type: ignore[arg-type]
    )


def late(report_id: str, day: date, basis: str, *, moment: datetime | None = None) -> NewSale:
    return NewSale(report_id, day, moment or at(day), kr(basis), True)


def placed(history: History, sale: NewSale) -> Replayed:
    result = place_sale(BORN, history, sale, KNOWN_SCALES)
    assert isinstance(result, Replayed), result
    return result


def balances(result: Replayed) -> dict[str, tuple[int, date | None]]:
    return {b.balance_id: (b.amount, b.arose_in_period) for b in result.balances}


# --- a late report inside the current period ----------------------------------------------------

MARCH = date(2024, 3, 1)
CURRENT = History(
    (period(MARCH, "2000"),),
    (
        bought("a", MARCH, MARCH, "1000", "0"),
        bought("b", date(2024, 4, 10), MARCH, "1000", "511.25"),
    ),
)


def test_a_report_paid_before_a_registered_one_takes_its_place_and_the_later_one_is_balanced() -> (
    None
):
    """c (500, paid 1 April) arrives after b (1,000, paid 10 April), which got F(2,000) − F(1,000) =
    730 × 50 % + 195 × 75 % = 511.25. In payment order: c on saldo 1,000 gets F(1,500) − F(1,000) =
    425 × 50 % = 212.50; b on 1,500 is due F(2,500) − F(1,500) = 305 × 50 % + 695 × 75 % = 152.50 +
    521.25 = 673.75, so 162.50 is owed to the person in the period of 1 March. Saldo 2,500 either way."""
    result = placed(CURRENT, late("c", date(2024, 4, 1), "500"))
    assert result.placed is not None
    assert (result.placed.saldo_before, result.placed.entitled) == (kr("1000"), kr("212.50"))
    assert balances(result) == {"late:c:b": (kr("162.50"), MARCH)}
    assert [(p.start, p.saldo) for p in result.periods] == [(MARCH, kr("2500"))]
    assert result.removed == ()
    updates = dict(result.updates)
    assert updates["b"]["subsidy_entitled"] == kr("673.75")
    assert updates["b"]["saldo_after"] == kr("2500")
    assert "a" not in updates  # paid before c: keeps what it got


def test_the_day_before_the_same_moment_and_the_day_after_the_registered_report() -> None:
    """Paid the day before b (9 April): placed before it, as above. Paid at b's very moment: after it
    (register order breaks the tie), so on saldo 2,000 it gets F(2,500) − F(2,000) = 500 × 75 % =
    375.00 and nothing is balanced. The day after: the same, 375.00."""
    before = placed(CURRENT, late("c", date(2024, 4, 9), "500"))
    assert before.placed is not None and before.placed.entitled == kr("212.50")
    same = placed(CURRENT, late("c", date(2024, 4, 10), "500"))
    assert same.placed is not None and same.placed.entitled == kr("375")
    assert same.balances == ()
    after = placed(CURRENT, late("c", date(2024, 4, 11), "500"))
    assert after.placed is not None and after.placed.entitled == kr("375")
    assert after.balances == ()


# --- a late report in a gap before the current period: its start moves back -------------------

START_2021 = date(2021, 3, 1)


def test_a_report_in_the_gap_before_the_period_moves_its_start_back_and_a_purchase_spills_over() -> (
    None
):
    """The period of 1 March 2021 holds a (2,000, 2021 scale: 675 × 50 % + 315 × 75 % = 573.75) and
    d (300 on 25 Feb 2022, 2022 scale, saldo 2,000 → 2,300, all at 75 %: 225.00). c (500, paid
    20 Feb 2021) arrives late: the period now runs 20 Feb 2021 – 19 Feb 2022. c gets F(500) = 0; a on
    500 is due F(2,500) − F(500) = 337.50 + 815 × 75 % = 948.75, so 375.00 is owed to the person;
    d, after the new end, opens a period of its own (25 Feb 2022) on saldo 0: due 0, so the person
    owes 225.00 in that period. The period of 1 March 2021 no longer exists."""
    history = History(
        (period(START_2021, "2300"),),
        (
            bought("a", START_2021, START_2021, "2000", "573.75"),
            bought("d", date(2022, 2, 25), START_2021, "300", "225"),
        ),
    )
    result = placed(history, late("c", date(2021, 2, 20), "500"))
    assert result.placed is not None
    assert (result.placed.period.start, result.placed.entitled) == (date(2021, 2, 20), 0)
    assert [(p.start, p.end, p.saldo, p.previous_end) for p in result.periods] == [
        (date(2021, 2, 20), date(2022, 2, 19), kr("2500"), None),
        (date(2022, 2, 25), date(2023, 2, 24), kr("300"), date(2022, 2, 19)),
    ]
    assert result.removed == (START_2021,)
    assert balances(result) == {
        "late:c:a": (kr("375"), date(2021, 2, 20)),
        "late:c:d": (-kr("225"), date(2022, 2, 25)),
    }
    assert result.current(history.periods) == result.periods[-1]


def test_a_report_on_the_day_the_period_began_does_not_move_it() -> None:
    """Paid on 1 March 2021 at 09:00, before a (10:00): the start stays, c comes first on saldo 0 (F(500)
    = 0) and a is due 948.75 as above: 375.00 owed to the person."""
    history = History(
        (period(START_2021, "2000"),),
        (bought("a", START_2021, START_2021, "2000", "573.75"),),
    )
    moment = at(START_2021) - timedelta(hours=1)
    result = placed(history, late("c", START_2021, "500", moment=moment))
    assert result.removed == ()
    assert [p.start for p in result.periods] == [START_2021]
    assert balances(result) == {"late:c:a": (kr("375"), START_2021)}


# --- a late report in the previous period ---------------------------------------------------------


def test_a_report_dated_in_the_previous_period_goes_to_that_period() -> None:
    """Previous period (1 March 2021): a 1,500 (F(1,500) = 490 × 50 % = 245.00), b 500 on 1 June
    (saldo 1,500 → 2,000: 185 × 50 % + 315 × 75 % = 92.50 + 236.25 = 328.75). Current period (5 March
    2022): e 100. c (400, paid 1 May 2021) goes to the previous period on saldo 1,500: 92.50 + 215 ×
    75 % = 253.75; b on 1,900 is due 500 × 75 % = 375.00: 46.25 owed to the person, in the previous
    period. The current period keeps its saldo and stays current."""
    current = date(2022, 3, 5)
    history = History(
        (period(START_2021, "2000"), period(current, "100", date(2022, 2, 28))),
        (
            bought("a", START_2021, START_2021, "1500", "245"),
            bought("b", date(2021, 6, 1), START_2021, "500", "328.75"),
            bought("e", current, current, "100", "0"),
        ),
    )
    result = placed(history, late("c", date(2021, 5, 1), "400"))
    assert result.placed is not None
    assert (result.placed.period.start, result.placed.saldo_before) == (START_2021, kr("1500"))
    assert result.placed.entitled == kr("253.75")
    assert balances(result) == {"late:c:b": (kr("46.25"), START_2021)}
    assert [(p.start, p.saldo) for p in result.periods] == [
        (START_2021, kr("2400")),
        (current, kr("100")),
    ]
    assert result.current(history.periods) == period(current, "100", date(2022, 2, 28))


def test_a_report_without_a_scale_for_its_day_is_parked() -> None:
    """No scale is known before 2011: the report waits for one (spec § 2), nothing is recomputed."""
    history = History((period(START_2021, "0"),), ())
    result = place_sale(BORN, history, late("c", date(2009, 5, 1), "400"), KNOWN_SCALES)
    assert not isinstance(result, Replayed)
    assert result.reason.startswith("rule.unknown_scale")


# --- cancellations ---------------------------------------------------------------------------------

APRIL = date(2024, 4, 1)


def test_cancelling_the_opening_sale_takes_its_return_and_restarts_the_period() -> None:
    """a (2,000 on 1 March 2024) opened the period: F(2,000) = 511.25. r returned 500 of it (F(1,500) −
    F(2,000) = −298.75). b (1,000 on 1 April) on saldo 1,500 got F(2,500) − F(1,500) = 673.75. a is
    cancelled: a and r leave (no balancing amount of their own: the pharmacy settles a cancelled sale),
    the period starts again at b (1 April), b on saldo 0 is due 0: the person owes 673.75."""
    history = History(
        (period(MARCH, "2500"),),
        (
            bought("a", MARCH, MARCH, "2000", "511.25"),
            bought("r", date(2024, 3, 5), MARCH, "-500", "-298.75", return_of="a"),
            bought("b", APRIL, MARCH, "1000", "673.75"),
        ),
    )
    result = cancel_sale(BORN, history, "a", KNOWN_SCALES, balance_id="c1", origin="agency")
    assert isinstance(result, Replayed)
    assert [(p.start, p.saldo) for p in result.periods] == [(APRIL, kr("1000"))]
    assert result.removed == (MARCH,)
    assert balances(result) == {"c1:b": (-kr("673.75"), APRIL)}
    updates = dict(result.updates)
    assert (updates["a"]["status"], updates["r"]["status"]) == ("cancelled", "cancelled")
    assert updates["b"]["period_start"] == APRIL and updates["b"]["subsidy_entitled"] == 0


def test_cancelling_a_later_sale_recomputes_only_the_purchases_after_it() -> None:
    """a 1,000 (0), b 1,000 (511.25), c 1,000 on 1 May (saldo 2,000 → 3,000: 750.00). b is cancelled: a
    keeps its 0, c on saldo 1,000 is due 511.25, so the person owes 238.75; the period stays."""
    history = History(
        (period(MARCH, "3000"),),
        (
            bought("a", MARCH, MARCH, "1000", "0"),
            bought("b", APRIL, MARCH, "1000", "511.25"),
            bought("c", date(2024, 5, 1), MARCH, "1000", "750"),
        ),
    )
    result = cancel_sale(BORN, history, "b", KNOWN_SCALES, balance_id="c1", origin="agency")
    assert isinstance(result, Replayed)
    assert [(p.start, p.saldo) for p in result.periods] == [(MARCH, kr("2000"))]
    assert balances(result) == {"c1:c": (-kr("238.75"), MARCH)}
    assert "a" not in dict(result.updates)


def test_cancelling_a_return_gives_its_sale_back_its_returnable_basis() -> None:
    """r returned 500 of a; cancelling r puts the 500 back on the saldo (1,500 → 2,000) and on what
    may still be returned of a."""
    history = History(
        (period(MARCH, "1500"),),
        (
            bought("a", MARCH, MARCH, "2000", "511.25", returned_basis=kr("500")),
            bought("r", date(2024, 3, 5), MARCH, "-500", "-298.75", return_of="a"),
        ),
    )
    result = cancel_sale(BORN, history, "r", KNOWN_SCALES, balance_id="c1", origin="agency")
    assert isinstance(result, Replayed)
    assert [(p.start, p.saldo) for p in result.periods] == [(MARCH, kr("2000"))]
    updates = dict(result.updates)
    assert updates["r"]["status"] == "cancelled"
    assert updates["a"]["returned_basis"] == 0
    assert result.balances == ()
