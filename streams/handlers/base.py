"""The handler contract: a handler turns one decoded message into `Effects`, reading only the batch's view.

A handler is a pure function of (view, message, context): it calls `rules/`, builds typed rows and
outputs, and returns them. It does no I/O and changes nothing it is given; what it needs from the
register is declared (`needs`, `obligations`, `places`) and loaded by the stores before the batch is
handled (step 3, load). It imports no store, table or publisher: only the row values of `sinks/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from rules.dispensing import RulesConfig
from rules.history import History
from rules.identity import KeyFacts
from rules.obligations import Obligation
from rules.outcomes import PurchaseRecord
from rules.scales import ScaleBook
from rules.state import Period, PersonState
from sinks.places_rows import PlaceRows
from sinks.rows import Outgoing, PurchaseRow
from streams.decode import Decoded, Rejected
from streams.effects import Effects, Needs
from streams.outputs import Outputs

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


@dataclass(frozen=True, slots=True)
class ApplyConfig:
    """The pipeline's values: consumer group, deadlines, pseudonym key, rules and alert thresholds."""

    group_id: str
    report_grace_seconds: int
    pseudonym_secret: bytes
    rules: RulesConfig = field(default_factory=RulesConfig)
    dead_letter_alert_ratio: float = 0.5
    dead_letter_alert_min_messages: int = 20
    dead_letter_max_bytes: int = 262_144


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler may use besides the view: the batch's clock, the config and the output builder."""

    now: datetime
    config: ApplyConfig
    out: Outputs


class BatchView(Protocol):
    """The register as loaded for this batch, plus the effects of the messages handled before."""

    @property
    def scales(self) -> ScaleBook: ...

    def state(self, person_key: str) -> PersonState | None:
        """The person's state, or None for a person the register does not know."""
        ...

    def canonical(self, key: str) -> str:
        """The internal id of the person a key belongs to: the key itself unless it is another number
        of a person (`rules.identity`)."""
        ...

    def key_facts(self, key: str) -> KeyFacts:
        """What the register (and this batch) knows of a key."""
        ...

    def purchase(self, report_id: str, person_key: str) -> PurchaseRecord | None:
        """A registered purchase of this person (from the register or earlier in the batch)."""
        ...

    def parked(self, topic: str, message_id: str) -> tuple[date, bool] | None:
        """For a message of `topic` still parked (in the register, among the batch's
        `Needs.parked_ids`, or earlier in this batch): the day whose scale it waits for, and whether a
        scale has released it already (its replay is on its way back and not handled yet)."""
        ...

    def chain(
        self, person_key: str, period_start: date
    ) -> tuple[Period, tuple[PurchaseRecord, ...]] | None:
        """A period and its purchases in register order, for a correction to recompute."""
        ...

    def history(self, person_key: str) -> History:
        """Every period and purchase of the person as the batch has them (loaded when the message's
        needs or its handler's `history` check asked for it)."""
        ...

    def obligation(self, obligation_id: str) -> Obligation | None:
        """An obligation as the batch has it: written by an earlier message of the batch, else as
        loaded for the messages that name it (`Handler.obligations`); None if the register has none."""
        ...

    def places(self) -> PlaceRows | None:
        """The treatment-place rows loaded for the batch's messages that name places
        (`Handler.places`); None when none of its messages did."""
        ...

    def written(self, row_type: type) -> list[tuple[Any, ...]]:
        """The rows of this type (one table's) that messages handled earlier in this batch wrote
        (`Effects.rows`)."""
        ...


HandleFn = Callable[[BatchView, Decoded, Context], Effects]


@dataclass(frozen=True, slots=True)
class Handler:
    """The handler of one input topic.

    - `handle`: the message's effects; raising discards them and dead-letters it as `internal_error`;
    - `needs`: what it needs loaded besides the person (default: nothing);
    - `redecide`: for a redelivered message already registered, its output rebuilt from its purchase row;
    - `obligations`: the ids of the reporting obligations a message names; the CTR store loads them
      (locked) before the batch is handled (`BatchView.obligation`);
    - `places`: the company and the places (SOR ids) a message names; the places store loads them
      and what they depend on before the batch is handled (`BatchView.places`);
    - `history`: whether the message needs its person's whole history, given the person as loaded and
      a dict the check keeps per batch (person key -> the latest payment seen so far). It must answer
      yes whenever `handle` will call `BatchView.history` for the message.
    - `first`: whether the message takes effect before the batch's messages of other topics (a
      person's identity before their sales, whatever the topic order of the fetch), asked just before
      it would be handled first; a message it says no to keeps its place.
    - `known_by_purchase`: a message registered as a purchase is known by its purchase row (report
      id = message id, with its content hash) and leaves no `processed_messages` row of its own.
    """

    handle: HandleFn
    needs: Callable[[Decoded], Needs] | None = None
    redecide: Callable[[PurchaseRow, Context], Outgoing] | None = None
    history: Callable[[Decoded, PersonState | None, dict[str, datetime]], bool] | None = None
    obligations: Callable[[Decoded], Iterable[str]] | None = None
    places: Callable[[Decoded], tuple[str, tuple[str, ...]]] | None = None
    first: Callable[[BatchView, Decoded], bool] | None = None
    known_by_purchase: bool = False


def person_state(view: BatchView, d: Decoded) -> PersonState:
    """The message's person as the batch has it (under their internal id, also when the message names
    another of their numbers), or a new person born on the key's birth date."""
    assert d.person_key is not None
    key = view.canonical(d.person_key)
    return view.state(key) or PersonState(key, d.message.person.born())  # type: ignore[attr-defined]


def rejection(d: Decoded, reason: str) -> Rejected:
    return Rejected(d.source, reason, d.message_id, d.person_key)


def applied(state: PersonState, output: bytes | None = None, **more: Any) -> Effects:
    """A message applied: the person's new state, recorded as processed."""
    return Effects(outcome="applied", output=output, states=(state,), **more)
