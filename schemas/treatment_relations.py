"""`ctr.treatment-relations.v1`: a doctor has a patient in current treatment, from the doctor's system.

Order § 5 stk. 2: a doctor reads part of a person's CTR data only while the doctor has the person in
current treatment. The doctor's system reports the relation (the patient, the doctor's authorisation id,
the treatment place's SOR id) from `valid_from`, open-ended; a later message with the same patient,
doctor, place and `valid_from` and a `valid_to` ends it. Keyed by the patient's person key.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from rules.treatment_places.identifiers import is_authorisation_id, is_sor_id
from schemas.common import EventTime, MessageId, PersonRef, PlainText, WireModel, person_born_by


def _authorisation_id(value: str) -> str:
    if not is_authorisation_id(value):
        raise ValueError("an authorisation id is five characters, digits or capital letters A-Z")
    return value


def _sor_id(value: str) -> str:
    if not is_sor_id(value):
        raise ValueError("an SOR id is 11 to 18 digits ending in its Verhoeff check digit")
    return value


AuthorisationId = Annotated[str, AfterValidator(_authorisation_id)]
"""A health person's authorisation id (`rules.treatment_places.identifiers.is_authorisation_id`)."""
SorId = Annotated[str, AfterValidator(_sor_id)]
"""An SOR id (`rules.treatment_places.identifiers.is_sor_id`)."""


class DoctorSystemSender(WireModel):
    """The doctor's IT system that sent the message, and the user at it where there is one."""

    system: MessageId = Field(
        description="the sending system's own name for itself (letters, digits, `._:-`); must not "
        "contain a person number"
    )
    user: PlainText | None = Field(
        default=None, min_length=1, max_length=64, description="the user at the system, if any"
    )


class TreatmentRelation(WireModel):
    """A doctor's relation to a patient at one treatment place, from `valid_from` to `valid_to`.

    The relation is identified by (patient, `authorisation_id`, `sor_id`, `valid_from`): a later message
    with the same four and a `valid_to` ends it; one with `valid_to` null opens it again.
    """

    schema_version: Literal[1] = Field(default=1, description="this schema's version")
    message_id: MessageId = Field(
        description="chosen by the doctor's system, unique per message; a message sent again under "
        "the same id is acknowledged once (the same id with other content is refused)"
    )
    sent_at: EventTime = Field(description="when the doctor's system sent it, with its offset")
    sender: DoctorSystemSender = Field(description="the doctor's system that sent it")
    person: PersonRef = Field(description="the patient; the record key is their person key")
    authorisation_id: AuthorisationId = Field(
        description="the doctor's authorisation id (autorisations-id) from the Danish Patient Safety "
        "Authority: five characters, digits or capital letters A-Z"
    )
    sor_id: SorId = Field(
        description="the treatment place where the doctor treats the patient: its SOR id, 11 to 18 "
        "digits ending in a Verhoeff check digit"
    )
    valid_from: date = Field(description="the first day of the treatment relation")
    valid_to: date | None = Field(
        default=None,
        description="the last day of the treatment relation; null while it is open-ended",
    )

    _born_by = person_born_by("sent_at", "the day it was sent")

    @model_validator(mode="after")
    def _check(self) -> TreatmentRelation:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError(
                "valid_to lies before valid_from: a relation ends on or after its start"
            )
        return self
