"""Who reads what of a treatment place (issue 29, README "Reading a treatment place"): STPS and the
agency everything, a registrant its own places in full, anyone else what STPS publishes about a
registered place and never a private registrant's name, home address, fee e-mail or turnover."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from rules.access import Principal
from rules.treatment_places.access import place_read

PLACE = "61011000016005"
REGISTRANT = "registrant-1207"
ADDRESS = '{"street": "Torvet 3", "postal_code": "4000", "city": "Roskilde"}'


def record(state: str = "REGISTERED", cvr: str | None = None) -> dict[str, Any]:
    """A place's record as `api.places.place_record` gives it: a no-CVR registrant unless `cvr`."""
    key = cvr or REGISTRANT
    return {
        "state": {
            "sor_id": PLACE,
            "company_key": key,
            "state": state,
            "since": date(2024, 3, 1),
            "reference_number": f"BST-{PLACE}",
            "version": 1,
        },
        "company": [
            {"company_key": key, "cvr": cvr, "name": "Karen Jensen", "street": "Birkevej 17"}
        ],
        "unit": [
            {
                "sor_id": PLACE,
                "name": "Fysioterapi Torvet",
                "unit_type": "Fysioterapi",
                "postal_address": ADDRESS,
                "visiting_address": ADDRESS,
            }
        ],
        "practitioners": [{"name": "Karen Jensen", "authorisation_id": "2E6PQ"}],
        "versions": [
            {"version": 1, "category": 5, "fee_email": "karen@example.dk", "turnover": 31_415_900}
        ],
        "history": [],
        "fees": [{"year": 2024, "amount": 197_300}],
    }


@pytest.mark.parametrize(
    "principal",
    [
        Principal("stps", "s"),
        Principal("agency", "a"),
        Principal("registrant", "r", company_key=REGISTRANT),
    ],
)
def test_stps_the_agency_and_the_own_registrant_read_the_whole_record(principal: Principal) -> None:
    for state in ("REGISTERED", "SOR_ONLY", "DEREGISTERED"):
        read = place_read(principal, record(state))
        assert read is not None and read.view == "full" and read.body == record(state)


@pytest.mark.parametrize(
    "principal",
    [
        Principal("public", "p"),
        Principal("registrant", "r", company_key="registrant-9"),
        Principal("registrant", "r", company_key="20000236"),
        Principal("operator", "o"),
        Principal("pharmacy", "p", pharmacy_number="12300"),
        Principal("citizen", "c", cpr="0505601234"),
    ],
)
def test_anyone_else_reads_what_stps_publishes_about_a_registered_place(
    principal: Principal,
) -> None:
    read = place_read(principal, record())
    assert read is not None and read.view == "public"
    assert read.body == {
        "sor_id": PLACE,
        "reference_number": f"BST-{PLACE}",
        "state": "REGISTERED",
        "since": date(2024, 3, 1),
        "category": 5,
        "name": "Fysioterapi Torvet",
        "unit_type": "Fysioterapi",
        "address": {"street": "Torvet 3", "postal_code": "4000", "city": "Roskilde"},
        "company": None,  # a person: no name, no home address
    }
    for state in ("SOR_ONLY", "DEREGISTERED", "CLOSED_IN_SOR", "NOTIFIED"):
        assert place_read(principal, record(state)) is None


def test_the_public_sees_a_cvr_companys_name_and_number() -> None:
    read = place_read(Principal("public", "p"), record(cvr="20000236"))
    assert read is not None
    assert read.body["company"] == {"cvr": "20000236", "name": "Karen Jensen"}
    assert "turnover" not in str(read.body) and "karen@example.dk" not in str(read.body)
