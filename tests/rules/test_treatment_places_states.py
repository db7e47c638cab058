"""States, forms and categories of the treatment-place register: spec/treatment-places.md § 2 (who files
what through which form), § 4 (states and deadlines) and § 5 (categories)."""

from __future__ import annotations

from datetime import date

import pytest

from rules.treatment_places.categories import Practitioner, category_refusal
from rules.treatment_places.forms import form_refusal
from rules.treatment_places.states import (
    deregistration_days_late,
    is_registered,
    move,
    registered_in_year,
    treatment_days_before_registration,
)

# -- § 4 states -----------------------------------------------------------------------------------------


def test_sor_data_alone_is_not_registered_the_information_registers() -> None:
    """§ 4: SOR_ONLY is not registered; the place is registered once the information is there."""
    assert move("unit_added", None) == "SOR_ONLY" and not is_registered("SOR_ONLY")
    assert move("unit_changed", "SOR_ONLY") == "SOR_ONLY"
    assert move("information_added", "SOR_ONLY") == "REGISTERED"
    assert move("information_changed", "REGISTERED") == "REGISTERED"


def test_deregistered_places_may_reregister_closed_ones_register_anew() -> None:
    """§ 4: DEREGISTERED may re-register; CLOSED_IN_SOR cannot be reopened."""
    assert move("deregistered", "REGISTERED") == "DEREGISTERED"
    assert move("reregistered", "DEREGISTERED") == "REGISTERED"
    assert move("unit_closed", "REGISTERED") == "CLOSED_IN_SOR"
    for event in ("unit_changed", "information_added", "reregistered", "deregistered"):
        assert move(event, "CLOSED_IN_SOR") == "rule.closed_in_sor_register_anew"


def test_a_notified_place_registers_when_it_becomes_liable() -> None:
    """§ 4: NOTIFIED for exempt places; when liable it must register."""
    assert move("exempt_place_notified", None) == "NOTIFIED"
    assert move("exempt_place_notified", "SOR_ONLY") == "NOTIFIED"
    assert move("information_added", "NOTIFIED") == "REGISTERED"
    assert move("exempt_place_notified", "REGISTERED") == "rule.registered_place_cannot_notify"


@pytest.mark.parametrize(
    ("event", "state", "reason"),
    [
        ("information_added", None, "rule.unknown_unit"),
        ("information_added", "REGISTERED", "rule.already_registered_send_a_change"),
        ("information_changed", "SOR_ONLY", "rule.not_registered_add_information_first"),
        ("deregistered", "SOR_ONLY", "rule.not_registered"),
        ("deregistered", "DEREGISTERED", "rule.already_deregistered"),
        ("unit_added", "SOR_ONLY", "rule.unit_already_in_sor"),
        ("reregistered", "REGISTERED", "rule.already_registered"),
    ],
)
def test_moves_that_cannot_happen_have_a_reason(event: str, state: str | None, reason: str) -> None:
    assert move(event, state) == reason  # type: ignore[arg-type]


def test_deregistration_is_due_within_two_weeks_of_treatment_stopping() -> None:
    """§ 4: no later than 2 weeks after treatment stopped."""
    stopped = date(2024, 3, 1)
    assert deregistration_days_late(stopped, date(2024, 3, 15)) == 0
    assert deregistration_days_late(stopped, date(2024, 3, 16)) == 1
    assert deregistration_days_late(stopped, date(2024, 2, 20)) == 0


def test_a_unit_registers_before_treatment_starts() -> None:
    """§ 1 (RBT § 1 stk. 3): register before treatment starts. Issue 29 point 5: a registration on the
    start day itself is not late, so neither is a place still unregistered during that day; it is late
    from the next day, by the days since the start, as a registration that day would be."""
    start = date(2024, 5, 1)
    assert treatment_days_before_registration(start, date(2024, 5, 1), date(2024, 6, 1)) == 0
    assert treatment_days_before_registration(start, date(2024, 5, 4), date(2024, 6, 1)) == 3
    assert treatment_days_before_registration(start, None, date(2024, 4, 30)) == 0
    assert treatment_days_before_registration(start, None, date(2024, 5, 1)) == 0
    assert treatment_days_before_registration(start, None, date(2024, 5, 2)) == 1
    assert treatment_days_before_registration(None, None, date(2024, 5, 1)) == 0


def test_the_fee_years_are_those_registered_at_any_time() -> None:
    """§ 4, § 6: owed for every calendar year registered at any time; a place deregistered for a whole
    calendar year is not charged for it."""
    history = [
        ("SOR_ONLY", date(2019, 5, 1)),
        ("REGISTERED", date(2019, 6, 1)),
        ("DEREGISTERED", date(2021, 3, 1)),
        ("REGISTERED", date(2023, 2, 1)),
    ]
    years = [y for y in range(2018, 2026) if registered_in_year(history, y)]
    assert years == [2019, 2020, 2021, 2023, 2024, 2025]
    assert not registered_in_year([("SOR_ONLY", date(2024, 1, 1))], 2024)
    assert not registered_in_year([], 2024)


# -- § 2 forms ------------------------------------------------------------------------------------------


def _form(event: str, form: str, role: str, **kw: object) -> str | None:
    args = {"has_cvr": form != "private_no_cvr", "se_number": False, "registered_form": None}
    args.update(kw)
    return form_refusal(event, form, role, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("form", "role"),
    [
        ("private_cvr", "company"),
        ("private_no_cvr", "person"),
        ("private_hospital", "private_hospital"),
        ("municipal", "municipality"),
        ("regional", "region"),
        ("state", "state_authority"),
    ],
)
def test_each_form_is_filed_by_its_owner(form: str, role: str) -> None:
    """§ 2: the table of forms and logins."""
    assert _form("company_registered", form, role) is None
    assert _form("unit_added", form, role) is None
    assert _form("information_added", form, role) is None
    assert _form("deregistered", form, "stps") is None
    other = "company" if role != "company" else "region"
    assert _form("unit_added", form, other) is not None


def test_an_se_number_holder_must_use_the_cvr_form() -> None:
    """§ 2: SE-number holders must use the CVR form."""
    assert (
        _form("company_registered", "private_no_cvr", "person", se_number=True)
        == "rule.se_number_holder_must_use_cvr_form"
    )
    assert (
        _form("company_registered", "private_no_cvr", "person", has_cvr=True)
        == "rule.company_with_cvr_must_use_cvr_form"
    )
    assert (
        _form("company_registered", "private_cvr", "company", has_cvr=False)
        == "rule.form_needs_cvr"
    )


def test_a_municipality_cannot_file_for_a_private_place() -> None:
    """§ 2: an event through the wrong form, a municipality changing a private place."""
    assert (
        _form("information_changed", "municipal", "municipality", registered_form="private_cvr")
        == "rule.municipality_filing_for_private_place"
    )
    assert (
        _form("unit_added", "private_cvr", "municipality")
        == "rule.municipality_filing_for_private_place"
    )


def test_changes_by_email_arrive_from_stps_and_sor_changes_from_sds() -> None:
    """§ 2: no-CVR and municipal places change by e-mail quoting the reference number; private
    hospitals' and state places' SOR data change through the Health Data Authority."""
    assert (
        _form("information_changed", "municipal", "municipality") == "rule.change_by_email_to_stps"
    )
    assert _form("information_changed", "municipal", "stps") is None
    assert _form("information_changed", "private_cvr", "company") is None
    assert (
        _form("unit_changed", "private_hospital", "private_hospital")
        == "rule.sor_changes_through_sds"
    )
    assert _form("unit_changed", "private_hospital", "sds") is None
    assert _form("unit_changed", "private_cvr", "sds") is None  # the SOR connector
    assert _form("information_changed", "private_cvr", "sds") == "rule.role_not_on_form"


@pytest.mark.parametrize("event", ["unit_changed", "unit_closed", "deregistered", "reregistered"])
@pytest.mark.parametrize(
    ("form", "owner"), [("private_no_cvr", "person"), ("municipal", "municipality")]
)
def test_every_later_change_of_an_email_form_is_stps_s(event: str, form: str, owner: str) -> None:
    """§ 2 (seed, 'Ændring til registrering'): a no-CVR or municipal place's later changes of units,
    deregistration and re-registration go by e-mail to STPS quoting the reference number; the owner's
    own event is refused with the reason naming that channel, STPS's is not."""
    has_cvr = form != "private_no_cvr"
    assert _form(event, form, owner, has_cvr=has_cvr) == "rule.change_by_email_to_stps"
    assert _form(event, form, "stps", has_cvr=has_cvr) is None


def test_a_unit_changed_before_its_place_is_registered_is_still_the_owners_form() -> None:
    """§ 2: 'every later change' is after registration; filling in the form the owner changes its unit."""
    assert (
        form_refusal(
            "unit_changed",
            "municipal",
            "municipality",
            has_cvr=True,
            se_number=False,
            registered_form="municipal",
            place_registered=False,
        )
        is None
    )


def test_a_state_places_sor_data_change_through_sds() -> None:
    """§ 2 (seed, 'Statsligt behandlingssted'): SOR data are changed through Sundhedsdatastyrelsen."""
    assert _form("unit_changed", "state", "state_authority") == "rule.sor_changes_through_sds"
    assert _form("unit_closed", "state", "state_authority") == "rule.sor_changes_through_sds"
    assert _form("unit_changed", "state", "sds") is None


# -- § 5 categories -------------------------------------------------------------------------------------

DOC_A = Practitioner("0C4MN", "doctor")
DOC_B = Practitioner("1D5NP", "doctor")
PHYSIO = Practitioner("2E6PQ", "other")
PHYSIO_2 = Practitioner("3F7QR", "other")
CHIRO = Practitioner("4G8RS", "chiropractor")


def test_category_2_needs_a_responsible_doctor() -> None:
    """§ 5 and § 3: several doctors together need a company-responsible doctor."""
    assert (
        category_refusal(2, [DOC_A, DOC_B], None, "private_cvr")
        == "rule.category_2_needs_responsible_doctor"
    )
    assert category_refusal(2, [DOC_A, DOC_B], "0C4MN", "private_cvr") is None
    assert (
        category_refusal(3, [DOC_A, DOC_B], None, "private_cvr")
        == "rule.several_doctors_need_responsible_doctor"
    )
    assert (
        category_refusal(2, [DOC_A, DOC_B], "2E6PQ", "private_cvr")
        == "rule.responsible_doctor_not_a_practitioner"
    )
    assert (
        category_refusal(2, [DOC_A], "0C4MN", "private_cvr")
        == "rule.category_2_needs_several_doctors"
    )


def test_category_1_is_for_hospital_units() -> None:
    """§ 5: 1 hospital units (private, regional, state)."""
    assert category_refusal(1, [DOC_A], None, "private_hospital") is None
    assert category_refusal(1, [DOC_A], None, "regional") is None
    assert (
        category_refusal(1, [DOC_A], None, "private_cvr") == "rule.category_1_is_for_hospital_units"
    )


def test_mixed_places_take_their_category_from_doctors_dentists_chiropractors() -> None:
    """§ 5: 3 chiropractic clinics always; 4 several other health persons; 5 one."""
    assert category_refusal(3, [CHIRO, PHYSIO], None, "private_cvr") is None
    assert (
        category_refusal(4, [CHIRO, PHYSIO], None, "private_cvr")
        == "rule.category_from_doctors_dentists_chiropractors"
    )
    assert category_refusal(4, [PHYSIO, PHYSIO_2], None, "private_cvr") is None
    assert category_refusal(5, [PHYSIO], None, "private_no_cvr") is None
    assert (
        category_refusal(5, [PHYSIO, PHYSIO_2], None, "private_cvr")
        == "rule.category_5_is_one_health_person"
    )
    assert (
        category_refusal(4, [PHYSIO], None, "private_cvr")
        == "rule.category_4_is_several_health_persons"
    )
    assert category_refusal(4, [], None, "municipal", care_only=True) is None
