"""`stps.registrations.v1` and `stps.alerts.v1`: the treatment-place register's events and its alerts.

Every step the six registration forms produce is one event (spec/treatment-places.md § 2-3), keyed by
the company: its CVR number, or for a place without CVR the registrant's id in the form system (never a
CPR number). Each event names its form and who filed it in which role. Shapes are checked here;
check digits, forms and states are rules (`rules.treatment_places`), so their refusals carry a
`rule.*` reason.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel, model_validator

from rules.treatment_places.categories import Profession
from rules.treatment_places.fees import FeeFreeReason
from rules.treatment_places.forms import Form, Role
from schemas.common import MessageId, Ore, WireModel

Text = Annotated[str, Field(min_length=1, max_length=200)]
Digits = Annotated[str, Field(pattern=r"^[0-9]+$", min_length=1, max_length=20)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
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
    authorisation_id: Annotated[str, Field(min_length=1, max_length=10)]
    ydernummer: Annotated[str, Field(min_length=1, max_length=10)] | None = None
    profession: Profession


class _Event(WireModel):
    schema_version: Literal[1] = 1
    message_id: MessageId
    sent_at: AwareDatetime
    form: Form
    filer: Filer
    company: CompanyRef


class _CompanyData(_Event):
    name: Text
    address: Address
    phone: Annotated[str, Field(max_length=20)] | None = None
    website: Annotated[str, Field(max_length=200)] | None = None
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
    phone: Annotated[str, Field(max_length=20)] | None = None
    website: Annotated[str, Field(max_length=200)] | None = None
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
        description="a new owner's unit replacing another company's (spec § 1); null: as before",
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


class _Information(_Event):
    sor_id: Digits
    category: int = Field(ge=1, le=5)
    fee_email: Email | None = None
    ean: Annotated[str, Field(pattern=r"^[0-9]{13}$")] | None = None
    turnover_year: int | None = Field(default=None, ge=2000, le=2100)
    turnover: Ore | None = Field(default=None, ge=0)
    responsible_authorisation_id: Annotated[str, Field(min_length=1, max_length=10)] | None = None
    fee_free: FeeFreeReason | None = None
    reference_number: Annotated[str, Field(max_length=40)] | None = None

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
    reference_number: Annotated[str, Field(max_length=40)] | None = None


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
    reference_number: Annotated[str, Field(max_length=40)] | None = None
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
