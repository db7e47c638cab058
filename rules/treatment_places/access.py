"""Who may read what of a treatment place (behandlingssted) through the API: a pure decision per read.

A place's record holds personal data when its registrant is a person (the no-CVR form): their name and
home address as the company's, the fee e-mail, the turnover. So every read needs a verified token, and
the token's role decides the view:

| caller (token role) | sees |
|---|---|
| `stps`, `agency` | the whole record: company, unit, practitioners, information versions, history, fees |
| `registrant` whose `cvr` or `registrant_id` is the place's company key | its own places in full |
| any other role (`public`, a pharmacy, a doctor, a citizen, ...) | what STPS publishes about a registered place: `PUBLIC_FIELDS` |

The public view shows only places in state REGISTERED; others are answered like a place that does not
exist. It never shows a person's name or home address (the company of a no-CVR registrant), the
registrant's id, turnover, fee e-mail, EAN or fees.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from rules.access import Principal

View = Literal["full", "public"]

FULL_ROLES: frozenset[str] = frozenset({"stps", "agency"})
"""The register's authority (STPS) and the agency the hub answers to read every place in full."""

PUBLIC_FIELDS: tuple[str, ...] = (
    "sor_id",
    "reference_number",
    "state",
    "since",
    "category",
    "name",
    "unit_type",
    "address",
    "company",
)
"""What STPS publishes about a registered place: its SOR id and reference number, state, the category of
the information in force, the unit's name, type and address, and, for a company with a CVR number, the
company's name and CVR number (both public in the CVR register)."""


@dataclass(frozen=True, slots=True)
class PlaceRead:
    """A read that may go ahead: the view and the record cut down to it."""

    view: View
    body: dict[str, Any]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(sorted(self.body))


def view_of(principal: Principal, company_key: str) -> View:
    """The view `principal` has of a place whose company key (CVR or registrant id) is `company_key`."""
    if principal.role in FULL_ROLES:
        return "full"
    if principal.role == "registrant" and principal.company_key == company_key:
        return "full"
    return "public"


def place_read(principal: Principal, record: dict[str, Any]) -> PlaceRead | None:
    """The part of `record` (`api.places.place_record`'s shape) `principal` may read; None when it may
    read nothing of it (a place that is not registered, to the public)."""
    state = record["state"]
    if view_of(principal, state["company_key"]) == "full":
        return PlaceRead("full", record)
    if state["state"] != "REGISTERED":
        return None
    return PlaceRead("public", public_view(record))


def public_view(record: dict[str, Any]) -> dict[str, Any]:
    """`PUBLIC_FIELDS` of a place's record."""
    state = record["state"]
    in_force = [v for v in record["versions"] if v["version"] == state["version"]]
    unit = record["unit"][0] if record["unit"] else None
    company = record["company"][0] if record["company"] else None
    return {
        "sor_id": state["sor_id"],
        "reference_number": state["reference_number"],
        "state": state["state"],
        "since": state["since"],
        "category": in_force[0]["category"] if in_force else None,
        "name": unit["name"] if unit else None,
        "unit_type": unit["unit_type"] if unit else None,
        "address": json.loads(unit["visiting_address"]) if unit else None,
        "company": (
            {"cvr": company["cvr"], "name": company["name"]}
            if company is not None and company["cvr"]
            else None
        ),
    }
