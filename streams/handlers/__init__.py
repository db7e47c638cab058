"""The registry: one handler per input topic, keyed by the topic. Adding a topic adds one line here."""

from __future__ import annotations

from collections.abc import Mapping

from streams.handlers import (
    corrections,
    decisions_made,
    deferrals,
    dispensings,
    individual_grants,
    municipal_grants,
    payments,
    person_events,
    registrations,
    subsidy_scales,
    treatment_relations,
)
from streams.handlers.base import Handler
from streams.topics import (
    CORRECTIONS,
    DECISIONS_MADE,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    MUNICIPAL_GRANTS,
    PAYMENTS,
    PERSON_EVENTS,
    REGISTRATIONS,
    SUBSIDY_SCALES,
    TREATMENT_RELATIONS,
    TopicSpec,
)

HANDLERS: Mapping[TopicSpec, Handler] = {
    SUBSIDY_SCALES: subsidy_scales.HANDLER,
    INDIVIDUAL_GRANTS: individual_grants.HANDLER,
    DECISIONS_MADE: decisions_made.HANDLER,
    MUNICIPAL_GRANTS: municipal_grants.HANDLER,
    PAYMENTS: payments.HANDLER,
    DEFERRALS: deferrals.HANDLER,
    DISPENSINGS: dispensings.HANDLER,
    PERSON_EVENTS: person_events.HANDLER,
    TREATMENT_RELATIONS: treatment_relations.HANDLER,
    CORRECTIONS: corrections.HANDLER,
    REGISTRATIONS: registrations.HANDLER,
}
"""Input topics in the order a batch applies them (reference data and grants first)."""
