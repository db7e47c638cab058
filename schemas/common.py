"""Building blocks shared by every wire schema: strict base model, person reference, identifier types."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from rules.identifiers import (
    PHARMACY_NUMBER_PATTERN,
    PersonKeyKind,
    contains_person_number,
    is_p_number,
    normalise_person_key,
    parse_person_key,
)


class WireModel(BaseModel):
    """Strict, closed and immutable: an unknown field or a wrongly typed value is a rejection, not a guess."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _p_number(value: str) -> str:
    if not is_p_number(value):
        raise ValueError("P-number must be ten digits passing modulus 11")
    return value


PharmacyNumber = Annotated[
    str,
    Field(
        pattern=PHARMACY_NUMBER_PATTERN,
        description="AAAnn: five digits (nn 00 pharmacy, 01-09 branch)",
    ),
]
PNumber = Annotated[str, AfterValidator(_p_number)]


def _no_person_number(value: str) -> str:
    if contains_person_number(value):
        raise ValueError("must not contain a person number")
    return value


MessageId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="chosen by the sender; must not contain a person number (ten digits, or "
        "DDMMYY-SSSS, that read as a CPR number)",
    ),
    AfterValidator(_no_person_number),
]
"""An id a partner chooses for its message (report, message, agreement, grant, decision). It travels on
shared topics and in dead-letter headers, so one that could be a CPR number is refused."""

PharmacySystemId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")
]
"""A dispensing or ordination id (order § 3 stk. 1 nr. 2, 3): the number the pharmacy's or the
prescription system gave it, often ten digits. Not checked for person numbers: a real one may read like a
CPR number (`2106149173`), and refusing it would leave a legally required report unregistered."""
DrugId = Annotated[str, Field(min_length=1, max_length=40)]
ORE_LIMIT = 10**13
"""A hundred billion kroner: far above any amount the register can meet, far below a 64-bit column."""
Ore = Annotated[int, Field(ge=-ORE_LIMIT, le=ORE_LIMIT, description="amount in øre (1/100 DKK)")]


class PersonRef(WireModel):
    """Who the message is about: a CPR number or a substitute id, with the birth date for a substitute.

    Error messages never repeat the key, so a rejection can be shown to the sender's operators.
    """

    key: Annotated[
        str, Field(description="CPR number DDMMYYSSSS (hyphen allowed) or substitute id")
    ]
    birth_date: date | None = Field(
        default=None, description="required for a substitute id, must agree with a CPR number"
    )

    @model_validator(mode="after")
    def _check_key(self) -> PersonRef:
        parsed = parse_person_key(self.key)
        if parsed.kind is PersonKeyKind.CPR:
            if self.birth_date is not None and self.birth_date != parsed.birth_date:
                raise ValueError("birth_date disagrees with the CPR number")
        elif self.birth_date is None:
            raise ValueError("a substitute id needs birth_date")
        if parsed.value != self.key:
            object.__setattr__(self, "key", normalise_person_key(self.key))
        return self

    def born(self) -> date:
        """The person's birth date, from the CPR number or the supplied date."""
        if self.birth_date is not None:
            return self.birth_date
        parsed = parse_person_key(self.key)
        assert parsed.birth_date is not None  # a CPR key; substitutes were refused without a date
        return parsed.birth_date
