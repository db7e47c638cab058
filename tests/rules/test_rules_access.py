"""§ 5 as a pure decision: every role against every resource, the pharmacy's purposes, and the edges of
the doctor's and the citizen's access (the fields are written out here from the order, not imported)."""

from __future__ import annotations

from datetime import date

import pytest

from rules.access import Allowed, Denied, PersonFacts, Principal, age_on, decide

EVERYTHING = {
    "current_period",
    "previous_period",
    "saldo",
    "under18",
    "individual_grants",
    "deferral_agreement",
    "health_supplement",
    "rights_based",
    "balancing_amounts",
}
# § 5 stk. 2 and 4: § 3 stk. 1 nr. 7 (period dates) and 10 (balancing), stk. 2 nr. 1 (grants), saldo
DOCTOR_AND_CITIZEN = {
    "current_period",
    "previous_period",
    "saldo",
    "individual_grants",
    "balancing_amounts",
}
TODAY = date(2024, 6, 15)
PERSON = "0505601234"
PHARMACY = Principal("pharmacy", "p", pharmacy_number="12300")
DOCTOR = Principal("doctor", "d", authorisation_id="0C4MN")
CITIZEN = Principal("citizen", "c", cpr=PERSON)


def facts(**more: object) -> PersonFacts:
    return PersonFacts(**{"person": PERSON, "today": TODAY, **more})  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["agency", "operator"])
@pytest.mark.parametrize(
    ("resource", "fields"),
    [("status", EVERYTHING), ("purchases", {"purchases"}), ("quote", {"quote"})],
)
def test_the_agency_and_its_operator_read_everything(
    role: str, resource: str, fields: set[str]
) -> None:
    for purpose in ("operation", "data_quality"):
        got = decide(Principal(role, "x"), resource, purpose, facts())  # type: ignore[arg-type]
        assert got == Allowed(frozenset(fields))


@pytest.mark.parametrize("role", ["agency", "operator"])
@pytest.mark.parametrize("resource", ["status", "purchases", "quote", "audit"])
@pytest.mark.parametrize("purpose", [None, "marketing", "dispensing", "information"])
def test_the_agency_reads_only_for_operation_and_data_quality(
    role: str, resource: str, purpose: str | None
) -> None:
    """§ 5 stk. 3: "til brug for drift og datakvalitet"; any other purpose, or none, is refused."""
    got = decide(Principal(role, "x"), resource, purpose, facts())  # type: ignore[arg-type]
    assert got == Denied(
        403, "§ 5 stk. 3: the agency and its operator read only for: data_quality, operation"
    )


@pytest.mark.parametrize("role", ["municipality", "monitoring", "stps", "registrant", "public"])
@pytest.mark.parametrize("resource", ["status", "purchases", "quote", "audit"])
def test_municipalities_and_monitoring_read_no_personal_data(role: str, resource: str) -> None:
    got = decide(Principal(role, "x"), resource, None, facts())  # type: ignore[arg-type]
    assert isinstance(got, Denied) and got.status == 403


@pytest.mark.parametrize(
    ("resource", "purpose", "allowed"),
    [
        ("status", "dispensing", True),
        ("status", "information", True),
        ("status", "deferral_assessment", True),
        ("status", None, False),
        ("status", "research", False),
        ("purchases", "information", True),
        ("purchases", "dispensing", False),
        ("purchases", None, False),
        ("quote", "dispensing", True),
        ("quote", "information", False),
        ("audit", "information", False),
    ],
)
def test_a_pharmacy_reads_all_of_section_3_only_for_its_purposes(
    resource: str, purpose: str | None, allowed: bool
) -> None:
    got = decide(PHARMACY, resource, purpose, facts())  # type: ignore[arg-type]
    if allowed:
        expected = {"status": EVERYTHING, "purchases": {"purchases"}, "quote": {"quote"}}[resource]
        assert got == Allowed(frozenset(expected))
    else:
        assert isinstance(got, Denied) and got.status == 403


def test_a_doctor_reads_the_subset_only_of_a_patient_in_current_treatment() -> None:
    treated = facts(treating_doctors=frozenset({"0C4MN"}))
    assert decide(DOCTOR, "status", None, treated) == Allowed(frozenset(DOCTOR_AND_CITIZEN))
    assert isinstance(decide(DOCTOR, "status", None, facts()), Denied)
    other = facts(treating_doctors=frozenset({"1D5NP"}))
    assert isinstance(decide(DOCTOR, "status", None, other), Denied)
    for resource in ("purchases", "quote", "audit"):
        assert isinstance(decide(DOCTOR, resource, None, treated), Denied), resource  # type: ignore[arg-type]


def test_a_citizen_reads_the_subset_about_themselves_also_under_another_number() -> None:
    own = facts(caller_person=PERSON)
    assert decide(CITIZEN, "status", None, own) == Allowed(frozenset(DOCTOR_AND_CITIZEN))
    # the token names a newer number of the same person: both resolve to the internal id
    renumbered = Principal("citizen", "c", cpr="0505601235")
    assert decide(renumbered, "status", None, own) == Allowed(frozenset(DOCTOR_AND_CITIZEN))
    stranger = facts(caller_person="0101701234")
    assert isinstance(decide(CITIZEN, "status", None, stranger), Denied)
    assert isinstance(decide(CITIZEN, "purchases", None, own), Denied)


@pytest.mark.parametrize(
    ("born", "today", "allowed"),
    [
        (date(2009, 6, 16), TODAY, True),  # 15 tomorrow
        (date(2009, 6, 15), TODAY, False),  # 15 today
        (date(2009, 6, 15), date(2024, 6, 14), True),  # the day before
        (date(2008, 2, 29), date(2023, 2, 28), True),  # born 29 February: 15 on 1 March
        (date(2008, 2, 29), date(2023, 3, 1), False),
        (None, TODAY, False),  # a birth date the register does not know: no child access
    ],
)
def test_a_parent_reads_the_subset_about_a_child_under_15_in_custody(
    born: date | None, today: date, allowed: bool
) -> None:
    parent = Principal("citizen", "c", cpr="0101701234")
    child = PersonFacts(
        person="1506094321",
        today=today,
        birth_date=born,
        caller_person="0101701234",
        custodians=frozenset({"0101701234"}),
    )
    got = decide(parent, "status", None, child)
    if allowed:
        assert got == Allowed(frozenset(DOCTOR_AND_CITIZEN))
    no_custody = PersonFacts(child.person, today, born, caller_person="0101701234")
    refused = decide(parent, "status", None, no_custody)
    assert isinstance(refused, Denied)
    if not allowed:
        # the refusal reads the same with or without a custody row: it does not tell one exists
        assert (
            got
            == refused
            == Denied(
                403,
                "§ 5 stk. 4: a citizen reads about themselves and their children under 15 in custody",
            )
        )


def test_only_the_agency_lists_the_audit_log() -> None:
    assert decide(Principal("agency", "a"), "audit", "operation", None) == Allowed(
        frozenset({"audit"})
    )
    for who in (PHARMACY, DOCTOR, CITIZEN, Principal("operator", "o")):
        assert isinstance(decide(who, "audit", None, None), Denied), who.role


def test_age_counts_completed_years() -> None:
    assert age_on(date(2010, 3, 3), date(2024, 3, 2)) == 13
    assert age_on(date(2010, 3, 3), date(2024, 3, 3)) == 14
