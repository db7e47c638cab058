"""Who may read what of a person in the CTR (order § 5): a pure decision per request.

- A pharmacy (§ 5 stk. 1) may read everything in § 3, but only for the purposes the order names: to
  compute subsidy, supplement and own payment at a dispensing, to inform the person of their purchases in
  the current and previous period, and to assess a deferral agreement. The request states its purpose.
- A doctor (§ 5 stk. 2) may read the period dates (§ 3 stk. 1 nr. 7), balancing amounts (nr. 10),
  individual grants (stk. 2 nr. 1) and the saldo (nr. 8), only for a patient in current treatment: a
  treatment relation in force today at a registered treatment place where the doctor is an active
  practitioner.
- A citizen (§ 5 stk. 4) may read the same subset about themselves and about children under 15 in their
  custody.
- The agency and its operator (§ 5 stk. 3) may read everything, but only "til brug for drift og
  datakvalitet": the request names `operation` or `data_quality`, and any other purpose is refused.
- A municipality and monitoring read no personal data here; nor do the treatment-place register's
  roles (STPS, a registrant, the public), whose reads are `rules.treatment_places.access`.

The caller gathers the facts (`PersonFacts`) from the register; this module decides and never reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

Role = Literal[
    "pharmacy",
    "doctor",
    "citizen",
    "agency",
    "operator",
    "municipality",
    "monitoring",
    "stps",
    "registrant",
    "public",
]
ROLES: tuple[Role, ...] = get_args(Role)
Resource = Literal["status", "purchases", "quote", "audit"]
Purpose = Literal["dispensing", "information", "deferral_assessment", "operation", "data_quality"]
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)

STATUS_FIELDS: tuple[str, ...] = (
    "current_period",  # § 3 stk. 1 nr. 7 (its end) and the period's start
    "previous_period",  # § 3 stk. 1 nr. 7
    "saldo",  # § 3 stk. 1 nr. 8
    "under18",  # § 3 stk. 1 nr. 6
    "individual_grants",  # § 3 stk. 2 nr. 1
    "deferral_agreement",  # § 3 stk. 2 nr. 2
    "health_supplement",  # § 3 stk. 2 nr. 3
    "rights_based",  # § 3 stk. 2 nr. 4
    "balancing_amounts",  # § 3 stk. 1 nr. 10
)
"""A person's status, field by field, with the § 3 item each one is."""

SUBSET: frozenset[str] = frozenset(
    {"current_period", "previous_period", "saldo", "individual_grants", "balancing_amounts"}
)
"""What § 5 stk. 2 and 4 give doctors and citizens: nr. 7 and 10, stk. 2 nr. 1, and the saldo."""

PURCHASE_FIELDS: frozenset[str] = frozenset({"purchases"})
QUOTE_FIELDS: frozenset[str] = frozenset({"quote"})
AUDIT_FIELDS: frozenset[str] = frozenset({"audit"})

CHILD_AGE_LIMIT = 15
"""§ 5 stk. 4: children under 15 in the citizen's custody."""

PHARMACY_PURPOSES: dict[Resource, frozenset[Purpose]] = {
    "status": frozenset({"dispensing", "information", "deferral_assessment"}),
    "purchases": frozenset({"information"}),
    "quote": frozenset({"dispensing"}),
}
"""§ 5 stk. 1: what a pharmacy may use each resource for."""

AGENCY_PURPOSES: frozenset[Purpose] = frozenset({"operation", "data_quality"})
"""§ 5 stk. 3: the agency and its operator read "til brug for drift og datakvalitet" only."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its verified token says: role, subject, and the role's own identifier."""

    role: Role
    subject: str
    pharmacy_number: str | None = None
    authorisation_id: str | None = None
    cpr: str | None = None
    company_key: str | None = None  # a registrant's CVR number, or its registrant id without one

    @property
    def actor(self) -> str:
        """The caller's identifier in its role (for the audit): pharmacy number, authorisation id,
        a registrant's company key, or the token's subject; never a citizen's CPR number."""
        return self.pharmacy_number or self.authorisation_id or self.company_key or self.subject


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What the register knows that the decision needs, for the person asked about, on `today`.

    - `person`: the internal id of the person asked about (the key itself when unknown);
    - `caller_person`: the internal id of the citizen calling (their CPR claim resolved), if any;
    - `birth_date`: the person's;
    - `custodians`: internal ids of the persons with custody of them in force today;
    - `treating_doctors`: authorisation ids of the doctors with a treatment relation in force today at
      a registered treatment place where they are an active practitioner.
    """

    person: str
    today: date
    birth_date: date | None = None
    caller_person: str | None = None
    custodians: frozenset[str] = frozenset()
    treating_doctors: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Allowed:
    """The read may go ahead with exactly these fields."""

    fields: frozenset[str]


@dataclass(frozen=True, slots=True)
class Denied:
    """The read is refused: HTTP status (401 or 403) and a reason that names no person."""

    status: int
    reason: str


Decision = Allowed | Denied

CITIZEN_REFUSAL = Denied(
    403, "§ 5 stk. 4: a citizen reads about themselves and their children under 15 in custody"
)

_EVERYTHING: dict[Resource, frozenset[str]] = {
    "status": frozenset(STATUS_FIELDS),
    "purchases": PURCHASE_FIELDS,
    "quote": QUOTE_FIELDS,
    "audit": AUDIT_FIELDS,
}


def age_on(birth_date: date, day: date) -> int:
    """Completed years on `day` (a person born 29 February turns a year older on 1 March)."""
    years = day.year - birth_date.year
    return years - ((day.month, day.day) < (birth_date.month, birth_date.day))


def decide(
    principal: Principal, resource: Resource, purpose: str | None, facts: PersonFacts | None
) -> Decision:
    """May `principal` read `resource` (of the person in `facts`; None for the audit log), stating
    `purpose`? `Allowed` carries exactly the fields it may see."""
    role = principal.role
    if role in ("agency", "operator") and purpose not in AGENCY_PURPOSES:
        named = ", ".join(sorted(AGENCY_PURPOSES))
        return Denied(403, f"§ 5 stk. 3: the agency and its operator read only for: {named}")
    if resource == "audit":
        if role == "agency":
            return Allowed(AUDIT_FIELDS)
        return Denied(403, "only the agency lists the audit log")
    assert facts is not None
    if role in ("agency", "operator"):
        return Allowed(_EVERYTHING[resource])  # § 5 stk. 3
    if role in ("municipality", "monitoring", "stps", "registrant", "public"):
        return Denied(403, f"the role {role} reads no personal data")
    if role == "pharmacy":
        allowed = PHARMACY_PURPOSES[resource]
        if purpose not in allowed:
            named = ", ".join(sorted(allowed))
            return Denied(403, f"§ 5 stk. 1: a pharmacy may read this only for: {named}")
        return Allowed(_EVERYTHING[resource])
    if resource != "status":
        return Denied(403, f"§ 5: a {role} does not read {resource}")
    if role == "doctor":
        if principal.authorisation_id in facts.treating_doctors:
            return Allowed(SUBSET)
        return Denied(
            403,
            "§ 5 stk. 2: no current treatment relation at a registered treatment place "
            "where the doctor is an active practitioner",
        )
    # a citizen; one reason for every refusal, so it never tells whether a custody row exists
    if facts.caller_person is not None and facts.caller_person == facts.person:
        return Allowed(SUBSET)
    if (
        facts.caller_person is None
        or facts.caller_person not in facts.custodians
        or facts.birth_date is None
        or age_on(facts.birth_date, facts.today) >= CHILD_AGE_LIMIT
    ):
        return Denied(CITIZEN_REFUSAL.status, CITIZEN_REFUSAL.reason)
    return Allowed(SUBSET)
