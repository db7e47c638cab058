"""`cpr.person-events.v1`: a new number (renumbering, a substitute id replaced), a death, custody.

Custody and death are taken only from the CPR register's feed (`rules.identity.sender_refusal`). A
renumbering old → new makes the new number an alias of the person (`rules.identity`); when the new
number already has a history of its own, the two persons are merged and their purchases recomputed in
payment order. A pharmacy's renumbering that would merge two histories or join numbers of different
birth dates is held for review instead (outcome `held`, a `renumbering_held` alert): the CPR register's
or the agency's renumbering of the same numbers applies it. A death is stored (retention counts from it; a purchase after it is flagged). Custody is
stored for the citizens' read access. Every re-key and merge reaches the change feed with pseudonyms only.
"""

from __future__ import annotations

from dataclasses import replace

import orjson

from rules.identifiers import PersonKeyKind, parse_person_key
from rules.identity import (
    Alias,
    Merged,
    born_again,
    hold,
    merge,
    renumbering,
    same_birth,
    sender_refusal,
)
from rules.outcomes import Parked, Refused
from rules.state import PersonState
from schemas.person_events import PersonEvent
from sinks.changes import Merge
from sinks.rows import CustodyRow, PersonMergeRow
from streams.decode import Decoded
from streams.effects import Effects, Needs, refused
from streams.handlers.base import BatchView, Context, Handler, applied, person_state, rejection
from streams.topics import PERSON_EVENTS


def needs(d: Decoded) -> Needs:
    m: PersonEvent = d.message  # type: ignore[assignment]
    if m.event == "number_replaced":
        assert m.new_person is not None
        return Needs(persons=(m.new_person.key,), history=True)
    return Needs()


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: PersonEvent = d.message  # type: ignore[assignment]
    if (wrong := sender_refusal(m.event, m.sender.source)) is not None:
        return refused(rejection(d, wrong.reason))
    if m.event == "number_replaced":
        return _renumber(view, d, m, ctx)
    state = person_state(view, d)
    if m.event == "death":
        assert m.died_on is not None
        if state.died_on == m.died_on:
            return applied(state, reason="death already registered")
        return Effects(
            outcome="applied",
            reason="death registered",
            states=(replace(state, died_on=m.died_on),),
        )
    assert m.parent is not None and m.valid_from is not None
    row = CustodyRow(view.canonical(m.parent.key), state.key, m.valid_from, m.valid_to, ctx.now)
    return Effects(outcome="applied", reason="custody registered", rows=(row,))


def _renumber(view: BatchView, d: Decoded, m: PersonEvent, ctx: Context) -> Effects:
    assert m.new_person is not None and m.effective_on is not None and d.person_key is not None
    old, new = view.key_facts(d.person_key), view.key_facts(m.new_person.key)
    verdict = renumbering(old, new)
    if isinstance(verdict, Refused):
        return refused(rejection(d, verdict.reason))
    assert old.person is not None
    if verdict == "repeat":
        return Effects(outcome="applied", reason="renumbering already registered")
    born_alike = same_birth(d.person_key, m.person.born(), m.new_person.born())
    if (why := hold(verdict, m.sender.source, born_alike)) is not None:
        reporter = m.sender.pharmacy_number or m.sender.source
        return Effects(
            outcome="held",
            reason=f"renumbering held for review: {why}",
            outputs=(ctx.out.renumbering_held(d, reporter, why),),
        )
    alias = Alias(new.key, old.person, d.person_key, m.effective_on)
    if verdict == "alias":
        return _alias(view, d, m, ctx, alias)
    assert new.person is not None
    kept = view.state(old.person)
    gone = view.state(new.person)
    assert kept is not None and gone is not None
    result = merge(
        kept,
        view.history(kept.key),
        gone,
        view.history(gone.key),
        view.scales,
        balance_id=f"merge:{m.message_id}",
        origin=f"merge of two numbers of one person ({m.message_id})",
    )
    if not isinstance(result, Merged):
        return refused(rejection(d, result.reason))
    merged_alias = Alias(gone.key, kept.key, d.person_key, m.effective_on)
    record = PersonMergeRow(
        m.message_id, kept.key, gone.key, m.effective_on, _details(kept, result), ctx.now
    )
    replayed = result.replayed
    return Effects(
        outcome="applied",
        reason=(
            f"merged {ctx.out.pseudonym(gone.key)} into {ctx.out.pseudonym(kept.key)}: "
            f"{len(replayed.balances)} balancing amounts"
        ),
        states=(result.state,),
        periods=tuple((kept.key, p) for p in replayed.periods),
        removed_periods=(
            *((kept.key, start) for start in replayed.removed),
            *((gone.key, p.start) for p in result.gone),
        ),
        purchase_updates=replayed.updates,
        merges=(Merge(merged_alias, gone.birth_date, record),),
    )


def _alias(view: BatchView, d: Decoded, m: PersonEvent, ctx: Context, alias: Alias) -> Effects:
    """A new number of a known person. When it is a CPR number whose birth date the register did
    not have (a system-assigned number carries only the month), the person takes the real one and
    their periods' under-18 flags are decided again (`rules.identity.born_again`)."""
    assert m.new_person is not None
    reason = f"renumbered: another number of {ctx.out.pseudonym(alias.person_key)}"
    real = m.new_person.born()
    aliases = ((alias, real),)
    state = view.state(alias.person_key)
    is_cpr = parse_person_key(m.new_person.key).kind is PersonKeyKind.CPR
    if state is None or state.birth_date == real or not is_cpr:
        return Effects(outcome="applied", reason=reason, aliases=aliases)
    history = view.history(state.key)
    redone = born_again(
        state,
        history,
        real,
        view.scales,
        balance_id=f"born:{m.message_id}",
        origin=f"under-18 flag decided again from the real birth date ({m.message_id})",
    )
    if isinstance(redone, Parked):
        return refused(rejection(d, redone.reason))
    if redone is None:
        return Effects(
            outcome="applied",
            reason=reason,
            aliases=aliases,
            states=(replace(state, birth_date=real),),
        )
    reborn = replace(
        state,
        birth_date=real,
        period=redone.current(history.periods),
        balances=(*state.balances, *redone.balances),
    )
    return Effects(
        outcome="applied",
        reason=(
            f"{reason}; the under-18 flag decided again from the real birth date: "
            f"{len(redone.balances)} balancing amounts"
        ),
        states=(reborn,),
        periods=tuple((state.key, p) for p in redone.periods),
        removed_periods=tuple((state.key, start) for start in redone.removed),
        purchase_updates=redone.updates,
        aliases=aliases,
    )


def _details(kept: PersonState, result: Merged) -> str:
    """The merge record's details: periods before and after, and the balancing amounts it made; no
    person key (the record's own columns name the two keys, shown masked by the CLI)."""
    return orjson.dumps(
        {
            "periods_before": [
                {"start": p.start, "end": p.end, "saldo": p.saldo}
                for p in (*([kept.period] if kept.period else []), *result.gone)
            ],
            "periods_after": [
                {"start": p.start, "end": p.end, "saldo": p.saldo} for p in result.replayed.periods
            ],
            "balancing": [
                {"report_id": b.balance_id.rsplit(":", 1)[-1], "amount": b.amount}
                for b in result.replayed.balances
            ],
        }
    ).decode()


def first(view: BatchView, d: Decoded) -> bool:
    """Identity before sales (spec § 7, DECISION): a person event takes effect before the batch's
    reports, so a purchase under a new number already sees the merged period. A renumbering from a
    number the register does not know yet keeps its place: the reports that make that number known
    (its first ones may be in this very batch) come first."""
    m: PersonEvent = d.message  # type: ignore[assignment]
    if m.event != "number_replaced" or d.person_key is None:
        return True
    return view.key_facts(d.person_key).person is not None


TOPIC = PERSON_EVENTS

HANDLER = Handler(handle, needs=needs, first=first)
