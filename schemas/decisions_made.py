"""`municipality.decisions-made.v1`: a municipality's case system announces each decision on a health
supplement or a rights-based subsidy as it is made.

Each announcement arms the obligation to report the decision to the register immediately (order § 8);
its message on `ctr.municipal-grants.v1` with the same municipality and decision id meets it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime

from schemas.common import MessageId, PersonRef, WireModel, person_born_by
from schemas.municipal import MunicipalSender


class MunicipalDecisionMade(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    sender: MunicipalSender
    decision_id: MessageId
    decided_at: AwareDatetime
    person: PersonRef

    _born_by = person_born_by("decided_at", "the day of the decision")
