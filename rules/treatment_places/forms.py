"""The six registration forms and who may file what through them (spec/treatment-places.md § 2).

A form is how the place's owner is organised; the filer's role is who logged in. An event filed
through the wrong form, or by a role the form does not admit, is refused with the reason.
"""

from __future__ import annotations

from typing import Literal

Form = Literal[
    "private_cvr", "private_no_cvr", "private_hospital", "municipal", "regional", "state"
]
Role = Literal[
    "company",
    "person",
    "private_hospital",
    "municipality",
    "region",
    "state_authority",
    "stps",
    "sds",
]
"""`stps`: the Danish Patient Safety Authority itself (changes sent by e-mail, deregistration after a
hearing); `sds`: the Danish Health Data Authority, which keeps SOR (and the SOR connector: its unit
events are accepted on every form)."""

FORMS: tuple[Form, ...] = (
    "private_cvr",
    "private_no_cvr",
    "private_hospital",
    "municipal",
    "regional",
    "state",
)
PRIVATE_FORMS: frozenset[Form] = frozenset({"private_cvr", "private_no_cvr", "private_hospital"})
HOSPITAL_FORMS: frozenset[Form] = frozenset({"private_hospital", "regional", "state"})
"""Owners whose units may be hospital units (category 1, spec § 5)."""

OWNER_ROLE: dict[Form, Role] = {
    "private_cvr": "company",
    "private_no_cvr": "person",
    "private_hospital": "private_hospital",
    "municipal": "municipality",
    "regional": "region",
    "state": "state_authority",
}
"""Who logs in to each form (the table of spec § 2)."""

CHANGES_BY_EMAIL: frozenset[Form] = frozenset({"private_no_cvr", "municipal"})
"""Forms whose every later change (information, units, deregistration, re-registration) is made by
e-mail to STPS quoting the reference number (seed: "skrive en mail til registrering@stps.dk"): the change
arrives filed by `stps`, and the owner's own event is refused with a reason naming that channel."""
SOR_BY_SDS: frozenset[Form] = frozenset({"private_hospital", "state"})
"""Forms whose SOR data (units) change through the Danish Health Data Authority after registration
(seed: "kontakte Sundhedsdatastyrelsen på sorpost@sundhedsdata.dk")."""

EventKind = Literal[
    "company_registered",
    "company_changed",
    "unit_added",
    "unit_changed",
    "unit_closed",
    "information_added",
    "information_changed",
    "deregistered",
    "exempt_place_notified",
    "reregistered",
]
UNIT_EVENTS: frozenset[str] = frozenset({"unit_added", "unit_changed", "unit_closed"})
LATER_CHANGES: frozenset[str] = frozenset(
    {"information_changed", "unit_changed", "unit_closed", "deregistered", "reregistered"}
)
"""What an e-mail form's owner may not file itself once the place is registered (spec § 2)."""
EMAIL_CHANNEL = "rule.change_by_email_to_stps"
"""The reason that names the channel: registrering@stps.dk, quoting the reference number."""


def form_refusal(
    event: EventKind,
    form: Form,
    role: Role,
    *,
    has_cvr: bool,
    se_number: bool,
    registered_form: Form | None,
    place_registered: bool = True,
) -> str | None:
    """Why this filer may not file `event` through `form` (a `rule.*` reason), or None.

    Args:
        has_cvr: the company is keyed by a CVR number (else by its registrant).
        se_number: the filer holds an SE number (must use the CVR form).
        registered_form: the form the company was registered through (None: not yet registered).
        place_registered: the place the event is about has a reference number (it was registered);
            a unit changed before that is still part of filling in the form.
    """
    if form == "private_no_cvr" and se_number:
        return "rule.se_number_holder_must_use_cvr_form"
    if form == "private_no_cvr" and has_cvr:
        return "rule.company_with_cvr_must_use_cvr_form"
    if form != "private_no_cvr" and not has_cvr:
        return "rule.form_needs_cvr"
    if registered_form is not None and form != registered_form:
        if role == "municipality" and registered_form in PRIVATE_FORMS:
            return "rule.municipality_filing_for_private_place"
        return "rule.form_differs_from_registration"
    if role == "stps":
        return (
            None  # the authority acts on every form (e-mail changes, deregistration after hearing)
        )
    if event in UNIT_EVENTS and role == "sds":
        return (
            None  # SOR is the Health Data Authority's: its data (the SOR connector) on every form
        )
    if role != OWNER_ROLE[form]:
        if role == "municipality" and form in PRIVATE_FORMS:
            return "rule.municipality_filing_for_private_place"
        return "rule.role_not_on_form"
    later = event not in UNIT_EVENTS or place_registered
    if event in LATER_CHANGES and form in CHANGES_BY_EMAIL and later:
        return EMAIL_CHANNEL
    if event in ("unit_changed", "unit_closed") and form in SOR_BY_SDS:
        return "rule.sor_changes_through_sds"
    return None
