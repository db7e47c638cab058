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
"""Forms whose treatment-place information is changed by e-mail to STPS quoting the reference number:
the change arrives filed by `stps`."""
SOR_BY_SDS: frozenset[Form] = frozenset({"private_hospital", "municipal"})
"""Forms whose SOR data (units) change through the Danish Health Data Authority after registration."""

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


def form_refusal(
    event: EventKind,
    form: Form,
    role: Role,
    *,
    has_cvr: bool,
    se_number: bool,
    registered_form: Form | None,
) -> str | None:
    """Why this filer may not file `event` through `form` (a `rule.*` reason), or None.

    Args:
        has_cvr: the company is keyed by a CVR number (else by its registrant).
        se_number: the filer holds an SE number (must use the CVR form).
        registered_form: the form the company was registered through (None: not yet registered).
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
    if event == "information_changed" and form in CHANGES_BY_EMAIL:
        return "rule.change_by_email_to_stps"
    if event in ("unit_changed", "unit_closed") and form in SOR_BY_SDS:
        return "rule.sor_changes_through_sds"
    return None
