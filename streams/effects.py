"""`Effects`: what one message does, as a value a handler returns and the batch driver merges.

A handler never changes the batch: it reads the batch's view and returns `Effects`. The driver merges
them only when the handler returned; a handler that raises leaves nothing behind (no rollback to write).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from rules.identity import Alias
from rules.scales import Scale
from rules.state import Period, PersonState
from sinks.changes import Merge
from sinks.rows import CorrectionRow, Outgoing, ParkedRow, PurchaseRow, ScaleRow
from streams.decode import Rejected


@dataclass(slots=True)
class Effects:
    """One message's effects. Empty tuples by default: the hot path builds only what it needs.

    - `outcome`: "registered", "applied", "parked" or "held" (recorded with the message id, so a
      redelivery is a duplicate), with `output` kept for it and `reason` for the change feed; None
      when rejected.
    - `rejected`: the message goes to the dead-letter topic with this reason (outputs still go out).
    - `states`: people's new states; `periods`: periods changed besides their current one;
      `removed_periods`: (person key, start) of periods that no longer exist (a start moved back).
    - `purchase_updates`: (report id, changed columns) of purchases registered earlier;
    - `aliases`: another number of a person (with the birth date it carries); `merges`: a person
      merged into another (`rules.identity`);
    - `rows`: typed rows (`sinks.rows`, `sinks.places_rows`) of any other table, upserted by primary
      key by the store whose table it is (the row's type names the table): obligations, custody,
      treatment relations, and the treatment-place register's rows.
    """

    outcome: str | None = None
    output: bytes | None = None
    reason: str | None = None
    rejected: Rejected | None = None
    states: Sequence[PersonState] = ()
    periods: Sequence[tuple[str, Period]] = ()
    removed_periods: Sequence[tuple[str, date]] = ()
    purchases: Sequence[PurchaseRow] = ()
    purchase_updates: Sequence[tuple[str, Mapping[str, Any]]] = ()
    settled_by: Mapping[str, str] | None = None
    corrections: Sequence[CorrectionRow] = ()
    scales: Sequence[tuple[ScaleRow, Scale]] = ()
    parked: Sequence[ParkedRow] = ()
    outputs: Sequence[Outgoing] = ()
    rows: Sequence[tuple[Any, ...]] = ()
    aliases: Sequence[tuple[Alias, date]] = ()
    merges: Sequence[Merge] = ()


def refused(rejected: Rejected, outputs: Sequence[Outgoing] = ()) -> Effects:
    """A message that breaks a rule: dead-lettered, with any outputs already due (a late-report alert)."""
    return Effects(rejected=rejected, outputs=outputs)


@dataclass(frozen=True, slots=True)
class Needs:
    """What a message needs from the register beyond its person, so the batch loads it up front.

    - `report_ids`: registered purchases it refers to (a return's sale, a correction's report);
    - `parked_ids`: messages of its own topic it refers to that may still be parked for want of a
      scale (a return's sale), looked for only when not registered;
    - `chains`: reports whose whole period it recomputes (a correction);
    - `current_period`: the person's current period with its purchases, which it may recompute
      (a grant entered with a start before them);
    - `persons`: other persons' keys it reads (a renumbering's new number), loaded like its own, with
      their histories when `history` is set;
    - `history`: every period and purchase of the person (`rules.history`: a return of a sale in
      an earlier period, a cancellation);
    - `day`: the date whose subsidy scale it needs.
    """

    report_ids: tuple[str, ...] = ()
    parked_ids: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()
    current_period: bool = False
    history: bool = False
    persons: tuple[str, ...] = ()
    day: date | None = None


NO_NEEDS = Needs()
