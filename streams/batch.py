"""One batch as it is handled: the register as loaded, the effects merged so far, and the outputs.

`Batch` is the handlers' `BatchView` (read-only to them) and the only place where effects are merged:
called by the pipeline after each handler that returned. A handler that raised has no effects to merge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from rules.history import History
from rules.identity import Alias, KeyFacts
from rules.obligations import Obligation
from rules.outcomes import PurchaseRecord
from rules.scales import Scale, ScaleBook
from rules.state import Period, PersonState
from sinks.changes import BatchChanges
from sinks.ctr_store import record_of
from sinks.places_rows import PlaceRows
from sinks.rows import ObligationRow, Outgoing, ProcessedRow, PurchaseRow, obligation_of
from streams.decode import Decoded, Rejected
from streams.effects import Effects
from streams.outputs import Outputs

_RECORD_FIELD = {
    "basis": "basis",
    "subsidy_entitled": "entitled",
    "status": "status",
    "returned_basis": "returned_basis",
    "terminal": "terminal",
    "period_start": "period_start",
}


@dataclass
class Loaded:
    """Everything a batch needs from the register, read before any handler runs.

    - `known`: (topic, message id) -> (outcome, output) of messages already processed;
    - `states`: the batch's persons as registered (unknown persons are absent);
    - `purchases`: report id -> (person key, record) of the purchases messages refer to;
    - `chains`: (person key, period start) -> (period, purchases) for corrections to recompute;
    - `duplicates`: register rows of redelivered registered reports, to answer them again;
    - `hashes`: (topic, message id) -> content hash of each message handled in this batch;
    - `conflicts`: messages whose id was processed with other content, to dead-letter;
    - `histories`: person key -> every period and purchase, for persons whose messages need them;
    - `obligations`: obligation id -> obligation, for those the batch's messages name;
    - `places`: the treatment-place rows the batch's registrations need (None without any);
    - `aliases`: the batch's keys that are another number of a person (`rules.identity`);
    - `parked`: (topic, message id) -> (day, released) of the messages referred to that are still
      parked, `released` when a scale let them go and their replay is not handled yet.
    """

    known: dict[tuple[str, str], tuple[str, bytes | None]] = field(default_factory=dict)
    states: dict[str, PersonState] = field(default_factory=dict)
    purchases: dict[str, tuple[str, PurchaseRecord]] = field(default_factory=dict)
    chains: dict[tuple[str, date], tuple[Period, tuple[PurchaseRecord, ...]]] = field(
        default_factory=dict
    )
    duplicates: dict[tuple[str, str], PurchaseRow] = field(default_factory=dict)
    hashes: dict[tuple[str, str], int] = field(default_factory=dict)
    conflicts: list[Rejected] = field(default_factory=list)
    histories: dict[str, History] = field(default_factory=dict)
    obligations: dict[str, Obligation] = field(default_factory=dict)
    places: PlaceRows | None = None
    aliases: dict[str, Alias] = field(default_factory=dict)
    parked: dict[tuple[str, str], tuple[date, bool]] = field(default_factory=dict)


class Batch:
    """The batch being handled: a view for the handlers, and the merge of their effects."""

    def __init__(self, loaded: Loaded, scales: ScaleBook, out: Outputs) -> None:
        self.loaded = loaded
        self.scales = scales
        self.out = out
        self.changes = BatchChanges(
            loaded={k: loaded.states.get(k) for k in loaded.states},
            known_obligations=set(loaded.obligations),
        )
        self.outputs: list[Outgoing] = []
        self.new_scales: list[Scale] = []
        self.counts: dict[str, int] = {}
        self.rejected_at: dict[tuple[str, int], int] = {}
        self._pending: dict[str, int] = {}  # report id -> index in changes.purchases
        self._aliases: dict[str, Alias] = {}  # numbers made aliases in this batch
        self._written: dict[
            tuple[type, Any], tuple[Any, ...]
        ] = {}  # the latest row by first column

    # -- the view (read by handlers) ---------------------------------------------------------------

    def canonical(self, key: str) -> str:
        for _ in range(8):  # an alias points at a person; a merge in this batch adds one step
            alias = self._aliases.get(key) or self.loaded.aliases.get(key)
            if alias is None or alias.person_key == key:
                return key
            key = alias.person_key
        return key

    def key_facts(self, key: str) -> KeyFacts:
        alias = self._aliases.get(key) or self.loaded.aliases.get(key)
        if alias is not None:
            return KeyFacts(key, self.canonical(key), alias)
        known = key in self.changes.persons or key in self.loaded.states
        return KeyFacts(key, key if known else None)

    def state(self, person_key: str) -> PersonState | None:
        return self.changes.persons.get(person_key) or self.loaded.states.get(person_key)

    def purchase(self, report_id: str, person_key: str) -> PurchaseRecord | None:
        i = self._pending.get(report_id)
        if i is not None:
            row = self.changes.purchases[i]
            return record_of(row) if row.person_key == person_key else None
        found = self.loaded.purchases.get(report_id)
        if found is None or found[0] != person_key:
            return None
        return self._updated(found[1])

    def parked(self, topic: str, message_id: str) -> tuple[date, bool] | None:
        if message_id in self._pending:  # its replay was registered earlier in this batch
            return None
        for row in reversed(self.changes.parked):
            if row.source_topic == topic and row.message_id == message_id:
                return row.day, False
        return self.loaded.parked.get((topic, message_id))

    def chain(
        self, person_key: str, period_start: date
    ) -> tuple[Period, tuple[PurchaseRecord, ...]] | None:
        loaded = self.loaded.chains.get((person_key, period_start))
        state = self.state(person_key)
        if state is not None and state.period is not None and state.period.start == period_start:
            period: Period | None = state.period  # the saldo as this batch has it
        else:
            period = self.changes.periods.get((person_key, period_start)) or (
                loaded[0] if loaded else None
            )
        if period is None:
            return None
        records = [self._updated(r) for r in loaded[1]] if loaded else []
        records.extend(
            record_of(row)
            for row in self.changes.purchases
            if row.person_key == person_key and row.period_start == period_start
        )
        return period, tuple(records)

    def obligation(self, obligation_id: str) -> Obligation | None:
        row = self._written.get((ObligationRow, obligation_id))
        if row is not None:
            return obligation_of(row)
        return self.loaded.obligations.get(obligation_id)

    def places(self) -> PlaceRows | None:
        return self.loaded.places

    def written(self, row_type: type) -> list[Any]:
        return [row for row in self.changes.rows if type(row) is row_type]

    def history(self, person_key: str) -> History:
        loaded = self.loaded.histories.get(person_key)
        if loaded is None and person_key in self.loaded.states:
            raise LookupError("a message needs a history its handler's check did not ask for")
        c = self.changes
        periods = {
            p.start: p
            for p in (loaded.periods if loaded else ())
            if (person_key, p.start) not in c.removed_periods
        }
        for (key, start), period in c.periods.items():
            if key == person_key:
                periods[start] = period
        records = [self._updated(r) for r in loaded.records] if loaded else []
        records.extend(record_of(row) for row in c.purchases if row.person_key == person_key)
        return History(tuple(periods[s] for s in sorted(periods)), tuple(records))

    def _updated(self, record: PurchaseRecord) -> PurchaseRecord:
        values = self.changes.purchase_updates.get(record.report_id)
        if not values:
            return record
        return replace(
            record, **{_RECORD_FIELD[k]: v for k, v in values.items() if k in _RECORD_FIELD}
        )

    # -- the merge (called by the pipeline only) ---------------------------------------------------

    def merge(
        self, d: Decoded, fx: Effects, replaces: bool = False, known_by_purchase: bool = False
    ) -> None:
        """Add one message's effects to the batch. Called only after its handler returned.

        A message `known_by_purchase` (`Handler.known_by_purchase`) that registered its purchase gets
        no processed row: its purchase row, with its content hash, tells it is known. One that replaces
        a processed row (a parked report replayed) still replaces that row."""
        c = self.changes
        for state in fx.states:
            c.keep(state)
        for key, start in fx.removed_periods:
            c.periods.pop((key, start), None)
            c.removed_periods.add((key, start))
        for key, period in fx.periods:
            c.periods[(key, period.start)] = period
            c.removed_periods.discard((key, period.start))
        for row in fx.purchases:
            self._pending[row.report_id] = len(c.purchases)
            c.purchases.append(row)
        for report_id, values in fx.purchase_updates:
            self._update_purchase(report_id, values)
        if fx.settled_by:
            c.settled_by.update(fx.settled_by)
        c.corrections.extend(fx.corrections)
        for scale_row, scale in fx.scales:
            c.scales.append(scale_row)
            self.scales = self.scales.with_scale(scale)
            self.new_scales.append(scale)
        c.parked.extend(fx.parked)
        c.rows.extend(fx.rows)
        for other in fx.rows:
            self._written[(type(other), other[0])] = other
        for alias, born in fx.aliases:
            c.aliases.append((alias, born))
            self._aliases[alias.key] = alias
        for m in fx.merges:
            c.merges.append(m)
            self._aliases[m.alias.key] = m.alias
            c.persons.pop(m.alias.key, None)
        self.outputs.extend(fx.outputs)
        if fx.rejected is not None:
            self.reject(fx.rejected)
        if fx.outcome is not None:
            where = (d.source.topic, d.message_id)
            own_row = (
                known_by_purchase
                and not replaces
                and fx.outcome == "registered"
                and any(p.report_id == d.message_id for p in fx.purchases)
            )
            if not own_row:
                processed = ProcessedRow(
                    d.message_id,
                    d.source.topic,
                    fx.outcome,
                    fx.output,
                    self.out.now,
                    self.loaded.hashes.get(where),
                )
                (c.replacing if replaces else c.processed).append(processed)
            self._count(fx.outcome)
            if fx.outcome != "registered":  # a registered report's decision says it all
                self.outputs.append(self.out.change(d, fx.outcome, fx.reason))

    def _update_purchase(self, report_id: str, values: Any) -> None:
        i = self._pending.get(report_id)
        if i is not None:
            self.changes.purchases[i] = self.changes.purchases[i]._replace(**values)
        else:
            self.changes.purchase_updates.setdefault(report_id, {}).update(values)

    def reject(self, r: Rejected) -> None:
        """A dead letter and its change-feed entry; counted per partition for the ratio alert."""
        self.outputs.extend(self.out.dead_letter(r))
        self._count("rejected")
        where = (r.source.topic, r.source.partition)
        self.rejected_at[where] = self.rejected_at.get(where, 0) + 1

    def duplicate(self, d: Decoded, answer: Outgoing | None) -> None:
        """A message already processed: acknowledged, answered again if it has an answer."""
        if answer is not None:
            self.outputs.append(answer)
        self.outputs.append(self.out.change(d, "duplicate"))
        self._count("duplicate")

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
