"""A person's purchases placed by payment date: late reports and cancellations (spec/ctr.md § 7).

Reports arrive late and out of order (an offline till, another pharmacy's report overtaking). A sale is
registered by the time of its payment, not its arrival: it goes to the period its date falls in, also the
previous one; dated in a gap before a period's start, it moves that start back to its date (§ 146 stk. 1:
one year "fra første indkøbsdato"). A cancelled sale did not happen: it leaves with its returns, and if it
opened its period, the period starts again at the next remaining sale.

Both are one walk (`replay`): the person's purchases from the first period touched on, in payment order,
the periods opened again by the first subsidised sale after the previous period expired (§ 3), each sale's
subsidy due on the saldo before it. A period whose saldo holds more than its purchases (one imported
with its saldo) is not opened again: it stands from its start, with that saldo, and its sales join it. Purchases before the change keep what they got; each later purchase's
difference from the subsidy it was granted becomes a balancing amount in the period it now lies in (§ 6,
§ 7 stk. 3; DECISION). A purchase under a § 148 grant and a return keep their amounts: a return was
reversed with the sale's terms when it came (`rules.dispensing`), and only moves the saldo.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from rules.money import Ore
from rules.outcomes import Parked, PurchaseRecord
from rules.periods import is_under18, period_end
from rules.scales import Scale, scale_for
from rules.state import Balance, Period
from rules.subsidy import entitlement


@dataclass(frozen=True, slots=True)
class History:
    """Every period of a person by start, and every purchase in register order."""

    periods: tuple[Period, ...]
    records: tuple[PurchaseRecord, ...]

    def period_starting(self, start: date | None) -> Period | None:
        return next((p for p in self.periods if p.start == start), None)

    def record(self, report_id: str) -> PurchaseRecord | None:
        return next((r for r in self.records if r.report_id == report_id), None)


@dataclass(frozen=True, slots=True)
class NewSale:
    """A sale being registered late: its payment, its saldo basis and any § 148 cover due in full."""

    report_id: str
    day: date
    paid_at: datetime
    basis: Ore
    subsidised: bool
    terminal_cover: Ore = 0


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a late sale lands: its period (as it stands with the sale), the saldo before it and the
    subsidy due on it."""

    period: Period
    saldo_before: Ore
    entitled: Ore


@dataclass(frozen=True, slots=True)
class Replayed:
    """A replay's effect: the periods from the first one touched on as they now are, the starts of those
    that no longer exist, the changed columns of each purchase walked, the new balancing amounts, and
    the new sale's placement (None for a cancellation, or a sale outside every period)."""

    periods: tuple[Period, ...]
    removed: tuple[date, ...]
    updates: tuple[tuple[str, dict[str, Any]], ...]
    balances: tuple[Balance, ...]
    placed: Placement | None = None

    def current(self, before: Iterable[Period]) -> Period | None:
        """The person's current (latest) period after the replay; `before` were their periods."""
        by_start = {p.start: p for p in before if p.start not in self.removed}
        by_start.update((p.start, p) for p in self.periods)
        return by_start[max(by_start)] if by_start else None


def place_sale(
    birth_date: date,
    history: History,
    sale: NewSale,
    scales: Iterable[Scale],
) -> Replayed | Parked:
    """Register a sale paid before purchases already registered (spec/ctr.md § 7, late reports)."""
    return replay(
        birth_date,
        history,
        scales,
        day=sale.day,
        new=sale,
        balance_id=f"late:{sale.report_id}",
        origin=f"late report {sale.report_id} placed by its payment date",
    )


def cancel_sale(
    birth_date: date,
    history: History,
    report_id: str,
    scales: Iterable[Scale],
    *,
    balance_id: str,
    origin: str,
) -> Replayed | Parked:
    """Remove a cancelled report and, for a sale, its returns; the later purchases are recomputed.

    The cancelled purchases get status "cancelled" and no balancing amount of their own: the pharmacy
    settles a cancelled sale with the person itself (spec/ctr.md § 7, DECISION).
    """
    target = history.record(report_id)
    assert target is not None
    dropped = {report_id}
    if target.return_of is None:
        dropped |= {
            r.report_id
            for r in history.records
            if r.return_of == report_id and r.status != "cancelled"
        }
    result = replay(
        birth_date,
        history,
        scales,
        day=target.day,
        dropped=dropped,
        balance_id=balance_id,
        origin=origin,
    )
    if isinstance(result, Parked):
        return result
    updates = dict(result.updates)
    for rid in dropped:
        updates[rid] = {**updates.get(rid, {}), "status": "cancelled"}
    if target.return_of is not None:  # a cancelled return: its sale may be returned again
        sale = history.record(target.return_of)
        if sale is not None:
            updates[sale.report_id] = {
                **updates.get(sale.report_id, {}),
                "returned_basis": sale.returned_basis + target.basis,
            }
    return Replayed(
        result.periods, result.removed, tuple(updates.items()), result.balances, result.placed
    )


@dataclass(slots=True)
class _Open:
    """A period being rebuilt by the walk."""

    start: date
    end: date
    under18: bool
    previous_end: date | None
    saldo: Ore = 0
    last_paid_at: datetime | None = None

    def frozen(self) -> Period:
        return Period(
            self.start, self.end, self.saldo, self.under18, self.previous_end, self.last_paid_at
        )


def _when(record: PurchaseRecord) -> datetime:
    """A purchase's payment time; the start of its day when the register holds none."""
    if record.paid_at is not None:
        return record.paid_at if record.paid_at.tzinfo else record.paid_at.replace(tzinfo=UTC)
    return datetime.combine(record.day, time(), UTC)


def replay(
    birth_date: date,
    history: History,
    scales: Iterable[Scale],
    *,
    day: date,
    new: NewSale | None = None,
    dropped: set[str] | frozenset[str] = frozenset(),
    since: datetime | None = None,
    balance_id: str,
    origin: str,
) -> Replayed | Parked:
    """Walk the purchases from the first period touched by a change on `day`, in payment order.

    Args:
        new: a sale to place among them (a late report); its subsidy is computed, not balanced.
        dropped: report ids that leave (a cancelled sale and its returns).
        since: purchases paid from then on are recomputed (a merge: the first purchase of the person
            merged in), when there is neither a new sale nor a dropped one.
        balance_id: the prefix of each balancing amount's id (the report id is appended).
    """
    scales = tuple(scales)
    periods = history.periods
    first = next((i for i, p in enumerate(periods) if p.end >= day), len(periods))
    kept = periods[:first]
    floor = kept[-1].end if kept else None  # purchases on or before it stay where they are
    previous_end = floor if kept else (periods[0].previous_end if periods else None)
    walked = [
        (i, r)
        for i, r in enumerate(history.records)
        if r.status != "cancelled"
        and r.report_id not in dropped
        and (floor is None or r.day > floor)
        and not (r.period_start is not None and floor is not None and r.period_start <= floor)
    ]
    order: list[tuple[datetime, int, PurchaseRecord | None]] = [(_when(r), i, r) for i, r in walked]
    if new is not None:
        at = new.paid_at if new.paid_at.tzinfo else new.paid_at.replace(tzinfo=UTC)
        order.append((at, len(history.records), None))
    order.sort(key=lambda item: (item[0], item[1]))
    change = _change_point(order, history, dropped, new, since)

    carried = _carried(periods[first:], history.records)
    opened: list[_Open] = []
    of_sale: dict[str, _Open] = {}
    current: _Open | None = None
    updates: list[tuple[str, dict[str, Any]]] = []
    balances: list[Balance] = []
    placed: tuple[_Open, Ore, Ore] | None = None
    for position, (at, _, record) in enumerate(order):
        when = new.day if record is None else record.day
        if current is not None and when > current.end:
            previous_end, current = current.end, None
        is_return = record is not None and record.return_of is not None
        opens = (new.subsidised if record is None else record.subsidised) and not is_return
        if current is None and opens:
            current = next((p for p in carried if p.start <= when <= p.end), None)
            if current is None:
                current = _Open(when, period_end(when), is_under18(birth_date, when), previous_end)
            if current not in opened:
                opened.append(current)
        basis = new.basis if record is None else record.basis
        if is_return:
            assert record is not None and record.return_of is not None
            period = of_sale.get(record.return_of)  # None: its sale stays in a period not walked
        else:
            period = current if current is not None and opens else None
            if period is None and current is not None and current.start <= when <= current.end:
                period = current  # a sale without subsidy lies in the period without changing it
        saldo_before = period.saldo if period is not None else 0
        if record is None or position >= change:
            due = _due(record, new, when, saldo_before, basis, period, opens, scales)
            if isinstance(due, Parked):
                return due
        else:
            due = record.entitled
        if period is not None and (opens or is_return):
            period.saldo += basis
        if period is not None and opens:
            period.last_paid_at = (
                at if period.last_paid_at is None else max(period.last_paid_at, at)
            )
            of_sale[record.report_id if record is not None else new.report_id] = period
        if record is None:
            assert period is not None or not opens
            if period is not None:
                placed = (period, saldo_before, due)
            continue
        if position < change:
            continue
        updates.append(
            (
                record.report_id,
                {
                    "period_start": period.start if period else None,
                    "period_end": period.end if period else None,
                    "previous_period_end": period.previous_end if period else None,
                    "under18": period.under18 if period else None,
                    "subsidy_entitled": due,
                    "saldo_after": period.saldo if period else 0,
                },
            )
        )
        difference = due - record.entitled
        if difference:
            balances.append(
                Balance(
                    balance_id=f"{balance_id}:{record.report_id}",
                    amount=difference,
                    remaining=difference,
                    arose_on=record.day,
                    arose_in_period=period.start if period is not None else None,
                    origin=origin,
                )
            )
    opened += [p for p in carried if p not in opened]  # a period nothing walked reached stays
    now = tuple(sorted((p.frozen() for p in opened), key=lambda p: p.start))
    starts = {p.start for p in now}
    removed = tuple(p.start for p in periods[first:] if p.start not in starts)
    placement = None
    if placed is not None:
        placement = Placement(placed[0].frozen(), placed[1], placed[2])
    return Replayed(now, removed, tuple(updates), tuple(balances), placement)


def _carried(periods: Iterable[Period], records: Iterable[PurchaseRecord]) -> list[_Open]:
    """The periods whose saldo holds more than the purchases the register has in them (a period
    imported with its saldo, `reghub snapshot import`): they stand whatever the walk opens, from the
    start the register knows, with that part of the saldo carried in."""
    held: dict[date, Ore] = {}
    for r in records:
        if r.status != "cancelled" and r.period_start is not None and (r.subsidised or r.return_of):
            held[r.period_start] = held.get(r.period_start, 0) + r.basis
    found = []
    for p in periods:
        extra = p.saldo - held.get(p.start, 0)
        if extra > 0:
            found.append(_Open(p.start, p.end, p.under18, p.previous_end, saldo=extra))
    return found


def _change_point(
    order: list[tuple[datetime, int, PurchaseRecord | None]],
    history: History,
    dropped: set[str] | frozenset[str],
    new: NewSale | None,
    since: datetime | None,
) -> int:
    """The position in `order` from which purchases are recomputed: the new sale's, the first one
    after a dropped purchase, or the first one paid `since`."""
    if new is not None:
        return next(i for i, (_, _, r) in enumerate(order) if r is None)
    times = [_when(r) for r in history.records if r.report_id in dropped]
    if since is not None:
        times.append(since)
    if not times:
        return len(order)
    earliest = min(times)
    return next((i for i, (at, _, _) in enumerate(order) if at >= earliest), len(order))


def _due(
    record: PurchaseRecord | None,
    new: NewSale | None,
    day: date,
    saldo: Ore,
    basis: Ore,
    period: _Open | None,
    opens: bool,
    scales: tuple[Scale, ...],
) -> Ore | Parked:
    """The subsidy now due on one purchase of the walk."""
    if record is not None and (record.return_of is not None or record.terminal or not opens):
        return record.entitled  # a return, a § 148 purchase or one without subsidy keeps its amount
    if new is not None and record is None and new.terminal_cover:
        return new.terminal_cover
    if period is None or not opens:
        return 0
    scale = scale_for(day, scales)
    if scale is None:
        return Parked("rule.unknown_scale: no subsidy scale in force on " + day.isoformat(), day)
    return entitlement(saldo, basis, scale, period.under18)
