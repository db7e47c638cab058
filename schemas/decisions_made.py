"""`municipality.decisions-made.v1`: a municipality's case system announces each decision on a health
supplement or a rights-based subsidy as it is made.

Each announcement arms the obligation to report the decision to the register immediately (order § 8:
"efter hver underretning eller ændring", including its end): the first notice (`grant`), and every
`change` and `end` of it, is an obligation of its own. Its message on `ctr.municipal-grants.v1` with the
same municipality, decision id and action meets it; a change or an end also by the same `decided_at`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import EventTime, MessageId, PersonRef, WireModel, person_born_by
from schemas.municipal import MunicipalSender


class MunicipalDecisionMade(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    sender: MunicipalSender
    decision_id: MessageId
    action: Literal["grant", "change", "end"] = Field(
        default="grant",
        description="the decision made (grant), or a change or the end of it; each is reported",
    )
    decided_at: EventTime
    person: PersonRef

    _born_by = person_born_by("decided_at", "the day of the decision")
