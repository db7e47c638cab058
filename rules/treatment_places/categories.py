"""Treatment-place categories 1-5 and the checks a place's information must pass (spec/treatment-places.md
§ 5).

1 hospital units; 2 several doctors or dentists together above one full-time position; 3 one doctor or
dentist (or several at most one full-time position), chiropractic clinics, vaccination clinics,
out-of-hours services, pre-hospital units; 4 several health persons of other professions; 5 one such
health person. A place with doctors, dentists or chiropractors takes its category from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rules.treatment_places.forms import HOSPITAL_FORMS, Form

Profession = Literal["doctor", "dentist", "chiropractor", "other"]
MEDICAL: frozenset[str] = frozenset({"doctor", "dentist"})
"""Professions that need a company-responsible doctor or dentist when more than one treats (spec § 3)."""
LEADING: frozenset[str] = frozenset({"doctor", "dentist", "chiropractor"})
"""Professions a mixed place takes its category from (spec § 5)."""


@dataclass(frozen=True, slots=True)
class Practitioner:
    """A practitioner (behandler) of a unit as the category rules see them."""

    authorisation_id: str
    profession: Profession


def category_refusal(
    category: int,
    practitioners: Sequence[Practitioner],
    responsible: str | None,
    form: Form,
    *,
    care_only: bool = False,
) -> str | None:
    """Why the information's category does not fit the place (a `rule.*` reason), or None.

    Args:
        category: the category filed (1-5).
        practitioners: the unit's active practitioners.
        responsible: the authorisation id of the company-responsible doctor or dentist, if named.
        form: the owner's form (category 1 is for hospital units of private hospitals, regions, state).
        care_only: the unit delivers only care under serviceloven §§ 83-87 (no practitioners needed).
    """
    medical = [p for p in practitioners if p.profession in MEDICAL]
    leading = [p for p in practitioners if p.profession in LEADING]
    if category == 1 and form not in HOSPITAL_FORMS:
        return "rule.category_1_is_for_hospital_units"
    if category == 2 and responsible is None:
        return "rule.category_2_needs_responsible_doctor"
    if len(medical) > 1 and responsible is None:
        return "rule.several_doctors_need_responsible_doctor"
    if responsible is not None and responsible not in {p.authorisation_id for p in medical}:
        return "rule.responsible_doctor_not_a_practitioner"
    if category == 2 and len(medical) < 2:
        return "rule.category_2_needs_several_doctors"
    if category in (4, 5) and leading:
        return "rule.category_from_doctors_dentists_chiropractors"
    if category == 5 and len(practitioners) > 1:
        return "rule.category_5_is_one_health_person"
    if category == 4 and len(practitioners) == 1 and not care_only:
        return "rule.category_4_is_several_health_persons"
    return None
