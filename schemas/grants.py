"""`ctr.individual-grants.v1`: the medicines agency enters, changes and ends individual grants (order § 9).

Kinds: § 145 single-drug grant (enkelttilskud), § 148 terminal grant (terminaltilskud), § 151 increased
subsidy (forhøjet tilskud). A grant may start before the day it is sent.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from schemas.common import (
    DrugId,
    EventTime,
    MessageId,
    PersonRef,
    PlainText,
    WireModel,
    person_born_by,
)

GrantKind = Literal["s145_single", "s148_terminal", "s151_increased"]


class AgencySender(WireModel):
    """The agency's identity in the message: the authority and the case worker or system that sent it."""

    authority: Literal["LMST"] = "LMST"
    user: PlainText = Field(min_length=1, max_length=64)


class IndividualGrant(WireModel):
    """Enter, change or end one grant; `grant_id` identifies it across changes."""

    schema_version: Literal[1] = 1
    message_id: MessageId
    sent_at: EventTime
    sender: AgencySender
    action: Literal["enter", "change", "end"]
    grant_id: MessageId
    kind: GrantKind
    drug_id: DrugId | None = Field(default=None, description="the medicine; not for § 148")
    valid_from: date
    valid_to: date
    person: PersonRef

    _born_by = person_born_by("sent_at", "the day the grant was sent")

    @model_validator(mode="after")
    def _check(self) -> IndividualGrant:
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to precedes valid_from")
        if self.kind == "s148_terminal" and self.drug_id is not None:
            raise ValueError("a § 148 terminal grant covers every medicine: no drug_id")
        if self.kind != "s148_terminal" and self.drug_id is None:
            raise ValueError(f"a {self.kind} grant needs drug_id")
        return self
