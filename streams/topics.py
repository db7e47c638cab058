"""The one place that knows each topic: its name, key, schema, partitions and configuration, and for an
input topic how a message's record key and id are found (`TopicSpec.key_of`, `TopicSpec.id_of`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.corrections import Correction
from schemas.decisions import PurchaseDecision
from schemas.decisions_made import MunicipalDecisionMade
from schemas.deferrals import DeferralAgreement
from schemas.dispensing import DispensingReport
from schemas.grants import IndividualGrant
from schemas.monitoring import Alert, Change, ComplianceSummary
from schemas.municipal import MunicipalDecision
from schemas.payments import TillPayment
from schemas.person_events import PersonEvent
from schemas.scales import SubsidyScale
from schemas.treatment_places import PlaceAlert, Registration
from schemas.treatment_relations import TreatmentRelation


def person_key(message: Any) -> str:
    """The record key of a message about a person: the person's key."""
    return message.person.key


def message_id(message: Any) -> str:
    """A message's id: its `message_id`."""
    return message.message_id


@dataclass(frozen=True, slots=True, eq=False)
class TopicSpec:
    """A topic: `base` is its versioned name; `schema` the model of its values; `key` what keys it (in
    words, for people); `key_of` the record key a decoded message must travel under, and `id_of` its
    id (what makes a redelivery a duplicate).

    Each topic is one of this module's constants, so a spec is equal only to itself and hashed by
    identity: the pipeline looks up a message's handler by its spec several times per message, and the
    generated hash of all nine fields cost more than the rest of the lookup.
    """

    base: str
    schema: type[BaseModel] | None
    key: str
    sender: str
    partitions: int | None = None  # None: the configured default
    compacted: bool = False
    retention_ms: int = 7 * 24 * 3600 * 1000
    key_of: Callable[[Any], str] = person_key
    id_of: Callable[[Any], str] = message_id


def _report_id(message: Any) -> str:
    return message.report_id


def _effective_from(message: Any) -> str:
    return message.effective_from.isoformat()


def _company_key(message: Any) -> str:
    return message.company.key


DISPENSINGS = TopicSpec(
    "ctr.dispensings.v1", DispensingReport, "person key", "pharmacy", id_of=_report_id
)
INDIVIDUAL_GRANTS = TopicSpec("ctr.individual-grants.v1", IndividualGrant, "person key", "LMST")
MUNICIPAL_GRANTS = TopicSpec(
    "ctr.municipal-grants.v1", MunicipalDecision, "person key", "municipality"
)
DEFERRALS = TopicSpec("ctr.deferrals.v1", DeferralAgreement, "person key", "pharmacy")
CORRECTIONS = TopicSpec("ctr.corrections.v1", Correction, "person key", "LMST or pharmacy")
PAYMENTS = TopicSpec("pharmacy.payments.v1", TillPayment, "person key", "pharmacy")
DECISIONS_MADE = TopicSpec(
    "municipality.decisions-made.v1", MunicipalDecisionMade, "person key", "municipality"
)
PERSON_EVENTS = TopicSpec(
    "cpr.person-events.v1", PersonEvent, "person key (the old one)", "CPR register or pharmacy"
)
TREATMENT_RELATIONS = TopicSpec(
    "ctr.treatment-relations.v1", TreatmentRelation, "person key", "doctor's system"
)
SUBSIDY_SCALES = TopicSpec(
    "ctr.subsidy-scales.v1",
    SubsidyScale,
    "effective_from (ISO date)",
    "LMST",
    partitions=1,
    compacted=True,
    retention_ms=-1,
    key_of=_effective_from,
)
DECISIONS = TopicSpec("ctr.decisions.v1", PurchaseDecision, "pharmacy number", "reghub")
DEAD_LETTER = TopicSpec(
    "ctr.dead-letter.v1",
    None,
    "as the source message",
    "reghub",
    retention_ms=30 * 24 * 3600 * 1000,
)
CHANGES = TopicSpec("ctr.changes.v1", Change, "person pseudonym", "reghub")
ALERTS = TopicSpec("ctr.alerts.v1", Alert, "reporter", "reghub")
COMPLIANCE = TopicSpec("ctr.compliance.v1", ComplianceSummary, "reporter", "reghub")

REGISTRATIONS = TopicSpec(
    "stps.registrations.v1",
    Registration,
    "company (CVR number, or the registrant's id without one)",
    "STPS registration forms, SOR",
    key_of=_company_key,
)
PLACE_ALERTS = TopicSpec("stps.alerts.v1", PlaceAlert, "company", "reghub")

INPUTS: tuple[TopicSpec, ...] = (
    SUBSIDY_SCALES,
    INDIVIDUAL_GRANTS,
    DECISIONS_MADE,
    MUNICIPAL_GRANTS,
    PAYMENTS,
    DEFERRALS,
    DISPENSINGS,
    PERSON_EVENTS,
    TREATMENT_RELATIONS,
    CORRECTIONS,
    REGISTRATIONS,
)
"""Topics the register consumes, in the order a batch applies them (reference data and grants first)."""

OUTPUTS: tuple[TopicSpec, ...] = (DECISIONS, DEAD_LETTER, CHANGES, ALERTS, PLACE_ALERTS, COMPLIANCE)
ALL: tuple[TopicSpec, ...] = INPUTS + OUTPUTS


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Topic names under a prefix (empty in production; a unique one per test)."""

    prefix: str = ""

    def __call__(self, spec: TopicSpec) -> str:
        return self.prefix + spec.base

    def spec_of(self, name: str) -> TopicSpec:
        for spec in ALL:
            if self(spec) == name:
                return spec
        raise KeyError(name)
