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

Who may say it (spec § 7, DECISION): custody and death come only from the CPR register's feed. A
pharmacy reports a new number on the person's request (§ 7 stk. 5), but a pharmacy's renumbering that
would join two people's data for good — onto a number with a history of its own, or with another birth
date — is held for review (`hold`): nothing changes until the CPR register sends the same change or the
agency decides it (a renumbering with the agency as sender). Their renumberings apply at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from rules.history import History, Replayed, replay
from rules.identifiers import PersonKeyKind, parse_person_key
from rules.outcomes import Parked, PurchaseRecord, Refused
from rules.periods import is_under18
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

IDENTITY_REGISTER = "cpr_register"
"""The one sender of custody and death (spec § 7, DECISION)."""


def sender_refusal(event: str, source: str) -> Refused | None:
    """A person event from a sender not entitled to it: custody or death from anyone but the CPR
    register's feed. The reason names the sender that is."""
    if event in ("death", "custody") and source != IDENTITY_REGISTER:
        return Refused(
            f"rule.sender_not_authorised: a {event} is accepted only from the CPR register's feed "
            f"(sender.source {IDENTITY_REGISTER}), not from {source}"
        )
    return None


def same_birth(old_key: str, old_born: date, new_born: date) -> bool:
    """Whether the new number's birth date is the old number's. A system-assigned number carries only
    its birth month and year (`rules.identifiers`), so for it only those are compared."""
    if parse_person_key(old_key).kind is PersonKeyKind.SYSTEM_SUBSTITUTE:
        return (old_born.year, old_born.month) == (new_born.year, new_born.month)
    return old_born == new_born


def hold(verdict: Verdict, source: str, born_alike: bool) -> str | None:
    """Why a renumbering is held for review instead of applied, or None: a pharmacy's renumbering that
    would merge two histories, or whose new number has another birth date than the old one."""
    if source != "pharmacy" or verdict == "repeat":
        return None
    if verdict == "merge":
        return "the new number has a history of its own"
    if not born_alike:
        return "the new number's birth date differs from the old number's"
    return None


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
    result = _replay_from(
        theirs, kept.birth_date, History(periods, records), scales, balance_id, origin
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


def born_again(
    state: PersonState,
    history: History,
    born: date,
    scales: Iterable[Scale],
    *,
    balance_id: str,
    origin: str,
) -> Replayed | Parked | None:
    """The person's periods decided again from their real birth date (spec § 9, DECISION): a
    system-assigned number carries only the month, so once the CPR number is known a period's under-18
    flag may change, and with it the subsidy of its purchases; each difference becomes a balancing
    amount (§ 6). None when no period with purchases changes its flag."""
    changed = [p for p in history.periods if is_under18(born, p.start) != p.under18]
    if not changed:
        return None
    start = min(p.start for p in changed)
    touched = [
        r
        for r in history.records
        if r.status != "cancelled" and r.period_start is not None and r.period_start >= start
    ]
    if not touched:
        return None  # nothing was decided on the flag yet
    return _replay_from(touched, born, history, scales, balance_id, origin)


def _replay_from(
    purchases: Sequence[PurchaseRecord],
    born: date,
    history: History,
    scales: Iterable[Scale],
    balance_id: str,
    origin: str,
) -> Replayed | Parked:
    """`history` walked again from the first of `purchases` by payment, each later purchase's
    difference a balancing amount (`rules.history.replay`)."""
    first = min(purchases, key=lambda r: (r.day, r.paid_at is None, r.paid_at))
    return replay(
        born,
        history,
        scales,
        day=first.day,
        since=first.paid_at,
        balance_id=balance_id,
        origin=origin,
    )
