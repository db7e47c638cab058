"""`stps.registrations.v1` and `stps.alerts.v1`: the treatment-place register's events and its alerts.

Every step the six registration forms produce is one event (spec/treatment-places.md § 2-3), keyed by
the company: its CVR number, or for a place without CVR the registrant's id in the form system (never a
CPR number). Each event names its form and who filed it in which role. Shapes are checked here;
check digits, forms and states are rules (`rules.treatment_places`), so their refusals carry a
`rule.*` reason.

What no register should keep is refused here, before any database sees it, so SQLite and PostgreSQL
give the same `schema.*` reason: a control character in text (PostgreSQL's text holds no NUL; SQLite
would store it), a CPR number inside free text (a name, an e-mail; the reason never repeats it), and a
time or day outside the register's plausible range: not before 2017 (the register's first fee year,
spec § 6), not more than a year ahead of the hub's clock (`sent_at`) or of the event (its days).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    ValidationInfo,
    field_validator,
    model_validator,
)

from rules.identifiers import contains_person_number
from rules.treatment_places.categories import Profession
from rules.treatment_places.fees import FeeFreeReason
from rules.treatment_places.forms import Form, Role
from schemas.common import MessageId, Ore, WireModel

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain(value: str) -> str:
    """Text the register may keep: one line without control characters, and no CPR number in it."""
    if _CONTROL.search(value):
        raise ValueError("must not contain a control character")
    if contains_person_number(value):
        raise ValueError("must not contain a person number")
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_plain)]
Digits = Annotated[str, Field(pattern=r"^[0-9]+$", min_length=1, max_length=20)]
Email = Annotated[
    str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254), AfterValidator(_plain)
]
Phone = Annotated[str, Field(max_length=20), AfterValidator(_plain)]
Website = Annotated[str, Field(max_length=200), AfterValidator(_plain)]
ShortId = Annotated[str, Field(min_length=1, max_length=10), AfterValidator(_plain)]
"""An authorisation id or a ydernummer as sent (their form is a rule: `rules.treatment_places`)."""
ReferenceNumber = Annotated[str, Field(max_length=40), AfterValidator(_plain)]

EARLIEST_DAY = date(2017, 1, 1)
"""The register's first fee year (spec § 6): no event, and no day in one, is older."""
AHEAD = timedelta(days=366)
"""How far ahead a time or a day may be: a year."""
DAY_FIELDS = ("treatment_starts_on", "closed_on", "treatment_stopped_on", "treatment_resumes_on")
CareService = Literal["83", "83a", "84", "85", "86", "87"]
"""Care under serviceloven §§ 83-87 a unit delivers (spec § 1)."""
Exemption = Literal[
    "de_minimis",
    "volunteer_single_person_event",
    "small_volunteer_event",
    "partnership_of_registered_places",
]
"""Why a place notifies instead of registering (spec § 1)."""


class Filer(WireModel):
    """Who filed the event, in which role (the login of spec § 2)."""

    role: Role
    user: MessageId = Field(description="the filer's user in the form system")
    se_number: bool = Field(default=False, description="the filer holds an SE number")
    municipality_code: int | None = Field(default=None, description="role municipality: which one")
    region_code: int | None = Field(default=None, ge=1081, le=1085, description="role region")


class CompanyRef(WireModel):
    """The company the event is about: a CVR number, or without one, the registrant's id."""

    cvr: Annotated[str, Field(pattern=r"^[0-9]{8}$")] | None = None
    registrant_id: MessageId | None = Field(
        default=None, description="without CVR: the registrant's id in the form system"
    )

    @model_validator(mode="after")
    def _one(self) -> CompanyRef:
        if (self.cvr is None) == (self.registrant_id is None):
            raise ValueError("a company has either a cvr or a registrant_id")
        return self

    @property
    def key(self) -> str:
        """The record key: the CVR number, or the registrant's id."""
        return self.cvr or self.registrant_id  # type: ignore[return-value]


class Address(WireModel):
    street: Text
    postal_code: Annotated[str, Field(pattern=r"^[0-9]{3,4}$")]
    city: Text


class PractitionerIn(WireModel):
    """A practitioner (behandler) of a unit: name, authorisation id, ydernummer where the unit has one."""

    name: Text
    authorisation_id: ShortId
    ydernummer: ShortId | None = None
    profession: Profession


class _Event(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    sent_at: AwareDatetime
    form: Form
    filer: Filer
    company: CompanyRef

    @field_validator("sent_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        """From 2017 to a year ahead of the hub's clock: a year-9999 time is no register's event."""
        try:
            if value.astimezone(UTC).date() >= EARLIEST_DAY and value <= datetime.now(UTC) + AHEAD:
                return value
        except (OverflowError, ValueError):  # so near the calendar's end it has no UTC time
            pass
        raise ValueError("must be a time from 2017 to a year ahead")

    @field_validator(*DAY_FIELDS, check_fields=False)
    @classmethod
    def _plausible_day(cls, value: date | None, info: ValidationInfo) -> date | None:
        """A day of the event: from 2017 to a year after the event was sent."""
        sent = info.data.get("sent_at")
        if value is None or not isinstance(sent, datetime):
            return value  # no valid sent_at: its own error is the one reported
        if EARLIEST_DAY <= value <= sent.date() + AHEAD:
            return value
        raise ValueError("must be a day from 2017 to a year after the event was sent")


class _CompanyData(_Event):
    name: Text
    address: Address
    phone: Phone | None = None
    website: Website | None = None
    sor_id: Digits | None = Field(default=None, description="the company's own SOR id")
    owner_municipality_code: int | None = Field(default=None, description="municipal form")
    owner_region_code: int | None = Field(default=None, description="regional form")


class CompanyRegistered(_CompanyData):
    """The company's data (prefilled from the CVR register, editable)."""

    event: Literal["company_registered"]


class CompanyChanged(_CompanyData):
    event: Literal["company_changed"]


class _UnitData(_Event):
    sor_id: Digits
    name: Text
    unit_type: Text
    postal_address: Address
    visiting_address: Address | None = Field(default=None, description="missing: the postal one")
    activity_address: Address | None = Field(default=None, description="missing: the visiting one")
    phone: Phone | None = None
    website: Website | None = None
    main_speciality: Text | None = None
    sub_specialities: tuple[Text, ...] = ()
    parent_sor_id: Digits | None = None
    practitioners: tuple[PractitionerIn, ...] | None = Field(
        default=None, description="all of the unit's practitioners; null: as before (none if new)"
    )
    care_services: tuple[CareService, ...] | None = Field(
        default=None, description="§§ 83-87 care it delivers; null: as before (none if new)"
    )
    treatment_starts_on: date | None = Field(
        default=None, description="when treatment or care starts there; null: as before"
    )
    replaces_sor_id: Digits | None = Field(
        default=None,
        description="a unit it replaces: another company's (an owner change, spec § 1) or its own "
        "company's (a move, a split); null: as before",
    )
    reference_number: ReferenceNumber | None = Field(
        default=None, description="STPS filing an e-mail form's change: the reference number quoted"
    )


class UnitAdded(_UnitData):
    """A unit (sundhedsinstitution) added in SOR: one per address where treatment or care is given."""

    event: Literal["unit_added"]


class UnitChanged(_UnitData):
    """A unit's SOR data changed: the whole unit again (practitioners not named are no longer there)."""

    event: Literal["unit_changed"]


class UnitClosed(_Event):
    event: Literal["unit_closed"]
    sor_id: Digits
    closed_on: date
    replaced_by_sor_id: Digits | None = None
    reference_number: ReferenceNumber | None = None


class _Information(_Event):
    sor_id: Digits
    category: int | None = Field(
        default=None, ge=1, le=5, description="null only for a unit delivering only §§ 83-87 care"
    )
    fee_email: Email | None = None
    ean: Annotated[str, Field(pattern=r"^[0-9]{13}$")] | None = None
    turnover_year: int | None = Field(default=None, ge=EARLIEST_DAY.year)
    turnover: Ore | None = Field(default=None, ge=0)
    responsible_authorisation_id: ShortId | None = None
    fee_free: FeeFreeReason | None = None
    reference_number: ReferenceNumber | None = None

    @field_validator("turnover_year")
    @classmethod
    def _turnover_year_not_ahead(cls, value: int | None, info: ValidationInfo) -> int | None:
        sent = info.data.get("sent_at")
        if value is not None and isinstance(sent, datetime) and value > sent.year + 1:
            raise ValueError("must be a year no later than the one after the event was sent")
        return value

    @model_validator(mode="after")
    def _turnover_with_year(self) -> _Information:
        if (self.turnover is None) != (self.turnover_year is None):
            raise ValueError("turnover and turnover_year come together")
        return self


class InformationAdded(_Information):
    """The treatment-place information (STPS's part): the place is registered once it is there."""

    event: Literal["information_added"]


class InformationChanged(_Information):
    """A new version of the information (category, billing, turnover, responsible doctor)."""

    event: Literal["information_changed"]


class Deregistered(_Event):
    event: Literal["deregistered"]
    sor_id: Digits
    treatment_stopped_on: date
    reference_number: ReferenceNumber | None = None


class ExemptPlaceNotified(_Event):
    """Notification (underretning) of an exempt place, before treatment starts; holds until stopped."""

    event: Literal["exempt_place_notified"]
    sor_id: Digits | None = None
    exemption: Exemption
    treatment_starts_on: date
    operative_procedures: bool = Field(
        default=False, description="operative procedures beyond minor ones: no exemption applies"
    )


class Reregistered(_Event):
    """A deregistered place registered again (its last information version applies)."""

    event: Literal["reregistered"]
    sor_id: Digits
    reference_number: ReferenceNumber | None = None
    treatment_resumes_on: date | None = None


RegistrationEvent = Annotated[
    CompanyRegistered
    | CompanyChanged
    | UnitAdded
    | UnitChanged
    | UnitClosed
    | InformationAdded
    | InformationChanged
    | Deregistered
    | ExemptPlaceNotified
    | Reregistered,
    Field(discriminator="event"),
]


class Registration(RootModel[RegistrationEvent]):
    """One event of `stps.registrations.v1`; `root` is the event, chosen by its `event` field."""

    model_config = ConfigDict(frozen=True)


class PlaceAlert(BaseModel):
    """`stps.alerts.v1` (keyed by company): a registration deadline missed (spec § 4, RBT § 1 stk. 3)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    kind: Literal["late_deregistration", "treatment_before_registration"]
    source_topic: str
    message_id: str
    company: str
    sor_id: str
    days: int
    detail: str
    at: datetime
