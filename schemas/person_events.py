"""`cpr.person-events.v1`: what happens to a person's number, from the CPR feed or a pharmacy.

Keyed by the person's key as the register knew it (for a new number: the *old* key), so the event is
ordered with the reports under that key:

- `number_replaced`: a new CPR number on the person's request, reported by the pharmacy (order § 7
  stk. 5), or a substitute id replaced by a CPR number (§ 3 stk. 3), or by the CPR register; or the
  agency's decision on a pharmacy's renumbering that was held for review;
- `death`: the date of death (retention, § 4 stk. 2, is counted from it);
- `custody`: a parent's custody of the child the event is keyed by, from/to (citizens' read access).

Who may send what (spec § 7, DECISION) is the handler's check, not the schema's: a death or custody from
anyone but the CPR register is well-formed, and refused as `rule.sender_not_authorised`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from schemas.common import (
    EventTime,
    MessageId,
    PersonRef,
    PharmacyNumber,
    PlainText,
    WireModel,
    local_day,
    person_born_by,
)

PersonEventKind = Literal["number_replaced", "death", "custody"]

_FIELDS_OF: dict[str, set[str]] = {
    "number_replaced": {"new_person", "effective_on"},
    "death": {"died_on"},
    "custody": {"parent", "valid_from"},
}
_OPTIONAL_OF: dict[str, set[str]] = {"number_replaced": {"replaces"}, "custody": {"valid_to"}}


PersonEventSource = Literal["pharmacy", "cpr_register", "agency"]


class PersonEventSender(WireModel):
    source: PersonEventSource = Field(
        description="cpr_register: the CPR register's feed, the only sender of custody and death; "
        "pharmacy: a new number on the person's request (§ 7 stk. 5), the only identity fact a "
        "pharmacy reports; agency: LMST's decision on a renumbering held for review"
    )
    pharmacy_number: PharmacyNumber | None = Field(default=None, description="when a pharmacy")
    user: PlainText | None = Field(default=None, min_length=1, max_length=64)


class PersonEvent(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    sent_at: EventTime
    sender: PersonEventSender
    event: PersonEventKind
    person: PersonRef = Field(description="the person as the register knows them: the old key")
    new_person: PersonRef | None = Field(default=None, description="number_replaced: the new key")
    replaces: Literal["cpr_number", "substitute_id"] | None = Field(
        default=None,
        description="number_replaced: what the old key was (default: as its shape says)",
    )
    effective_on: date | None = Field(default=None, description="number_replaced: from when")
    died_on: date | None = Field(default=None, description="death: the date of death")
    parent: PersonRef | None = Field(default=None, description="custody: the parent")
    valid_from: date | None = Field(default=None, description="custody: from")
    valid_to: date | None = Field(default=None, description="custody: to (open-ended when null)")

    _born_by = person_born_by("sent_at", "the day it was sent")

    @model_validator(mode="after")
    def _check(self) -> PersonEvent:
        wanted = _FIELDS_OF[self.event]
        allowed = wanted | _OPTIONAL_OF.get(self.event, set())
        every = set().union(*_FIELDS_OF.values(), *_OPTIONAL_OF.values())
        given = {name for name in every if getattr(self, name) is not None}
        if missing := sorted(wanted - given):
            raise ValueError(f"{self.event} needs {', '.join(missing)}")
        if extra := sorted(given - allowed):
            raise ValueError(f"{', '.join(extra)} do not belong to {self.event}")
        sent = local_day(self.sent_at)
        if self.died_on is not None and sent is not None and self.died_on > sent:
            raise ValueError("died_on lies after the day it was sent: a date in the future")
        if self.new_person is not None and self.new_person.key == self.person.key:
            raise ValueError("new_person is the same number as person")
        if self.valid_to and self.valid_from and self.valid_to < self.valid_from:
            raise ValueError("valid_to lies before valid_from")
        if self.sender.source == "pharmacy" and self.sender.pharmacy_number is None:
            raise ValueError("a pharmacy sender names its pharmacy_number")
        return self
