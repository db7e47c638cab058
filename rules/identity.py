"""Persons whose number changes (order § 7 stk. 5, § 3 stk. 3): aliases, repeats, loops and merges.

A person is kept under the key the register first knew them by, their internal id; every later number
is an alias of it. A renumbering old → new is decided from what the register knows of both keys:

- new is unknown: it becomes an alias of old's person;
- new is already an alias of that person, made from old: a repeat, nothing changes;
- new is that person, or an alias of it made from another key: a loop (B → A after A → B), refused;
- new is an alias of another person: refused;
- new is another person with a history of their own (reports arrived under the new number first): the
  two are merged. The purchases are walked again in payment order from the merged person's first one,
  periods opened again one at a time (`rules.history.replay`), and each difference from what a purchase
  was granted becomes a balancing amount (§ 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from rules.history import History, Replayed, replay
from rules.outcomes import Parked, Refused
from rules.scales import Scale
from rules.state import Period, PersonState


@dataclass(frozen=True, slots=True)
class Alias:
    """Another number of a person: `key` belongs to `person_key` since `since`, replacing `replaced`."""

    key: str
    person_key: str
    replaced: str | None
    since: date | None


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What the register knows of a key: the person it belongs to (itself for a person's own key,
    None when unknown) and, for another number, its alias record."""

    key: str
    person: str | None
    alias: Alias | None = None


Verdict = Literal["alias", "repeat", "merge"]


def renumbering(old: KeyFacts, new: KeyFacts) -> Verdict | Refused:
    """What a renumbering old → new does (this module's docstring)."""
    if old.person is None:
        return Refused("rule.renumbering_from_unknown_key")
    if new.person is None:
        return "alias"
    if new.person == old.person:
        if new.alias is not None and new.alias.replaced == old.key:
            return "repeat"
        return Refused("rule.renumbering_loop: the new number is already this person's")
    if new.alias is not None:
        return Refused("rule.renumbering_to_another_persons_number")
    return "merge"


@dataclass(frozen=True, slots=True)
class Merged:
    """A merge: the kept person's new state, the replay of the purchases, and the merged person's
    periods that go."""

    state: PersonState
    replayed: Replayed
    gone: tuple[Period, ...]


def merge(
    kept: PersonState,
    kept_history: History,
    merged: PersonState,
    merged_history: History,
    scales: Iterable[Scale],
    *,
    balance_id: str,
    origin: str,
) -> Merged | Parked:
    """Merge `merged` into `kept`: one history, recomputed from the merged person's first purchase."""
    records = (*kept_history.records, *merged_history.records)
    periods = tuple(sorted((*kept_history.periods, *merged_history.periods), key=lambda p: p.start))
    theirs = [r for r in merged_history.records if r.status != "cancelled"]
    state = replace(
        kept,
        grants=(*kept.grants, *merged.grants),
        supplements=(*kept.supplements, *merged.supplements),
        balances=(*kept.balances, *merged.balances),
        agreements=(*kept.agreements, *merged.agreements),
        died_on=kept.died_on or merged.died_on,
    )
    if not theirs:
        empty = Replayed((), (), (), ())
        return Merged(state, empty, merged_history.periods)
    first = min(theirs, key=lambda r: (r.day, r.paid_at is None, r.paid_at))
    result = replay(
        kept.birth_date,
        History(periods, records),
        scales,
        day=first.day,
        since=first.paid_at,
        balance_id=balance_id,
        origin=origin,
    )
    if isinstance(result, Parked):
        return result
    moved = {r.report_id for r in merged_history.records}
    updates = dict(result.updates)
    for report_id in moved:
        updates[report_id] = {**updates.get(report_id, {}), "person_key": kept.key}
    result = Replayed(
        result.periods, result.removed, tuple(updates.items()), result.balances, result.placed
    )
    current = result.current(kept_history.periods)
    state = replace(state, period=current, balances=(*state.balances, *result.balances))
    return Merged(state, result, merged_history.periods)
