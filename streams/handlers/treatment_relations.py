"""`ctr.treatment-relations.v1`: a doctor has a patient in current treatment (order § 5 stk. 2).

The relation is stored under the patient's internal id (`BatchView.canonical`: a relation sent under
another number of the person lands on the same person) as one `treatment_relations` row per patient,
doctor, place and `valid_from`, upserted by that key: a later message with a `valid_to` ends the row, one
without opens it again. No `persons` row is made for the patient. A message sent again under its id is a
duplicate and changes nothing (the pipeline's message ids).

A patient born after the day the message was sent, a bad authorisation id or SOR id, and an end before
the start are refused by the schema (`schemas.treatment_relations`) and dead-lettered with their reason.
"""

from __future__ import annotations

from schemas.treatment_relations import TreatmentRelation
from sinks.rows import TreatmentRelationRow
from streams.decode import Decoded
from streams.effects import Effects
from streams.handlers.base import BatchView, Context, Handler
from streams.topics import TREATMENT_RELATIONS


def handle(view: BatchView, d: Decoded, ctx: Context) -> Effects:
    m: TreatmentRelation = d.message  # type: ignore[assignment]
    assert d.person_key is not None
    row = TreatmentRelationRow(
        view.canonical(d.person_key),
        m.authorisation_id,
        m.sor_id,
        m.valid_from,
        m.valid_to,
        ctx.now,
    )
    ends = "open-ended" if m.valid_to is None else f"ending {m.valid_to.isoformat()}"
    return Effects(
        outcome="applied",
        reason=f"treatment relation registered, {ends}",
        rows=(row,),
    )


TOPIC = TREATMENT_RELATIONS

HANDLER = Handler(handle)
