"""Identifiers of the treatment-place register, spec/treatment-places.md § 3: CVR modulus 11, EAN/GLN
check digit, SOR ids (Verhoeff), authorisation ids, ydernumre and postal codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reghub.demo_places import registrations
from rules.treatment_places import identifiers
from rules.treatment_places.identifiers import (
    gs1_check_digit,
    is_authorisation_id,
    is_cvr,
    is_ean_location_number,
    is_postal_code,
    is_sor_id,
    is_ydernummer,
    sor_id,
    verhoeff_check_digit,
    verhoeff_valid,
)
from tests import sor_ids
from tests.messages import SOR_ID

# The fixture files' SOR ids, read at import (before the no-I/O guard starts).
_DATA = Path(__file__).resolve().parent.parent / "data"
FIXTURE_SOR_IDS = sorted(
    {
        found
        for name in ("sor_snapshot_1.csv", "sor_snapshot_2.csv")
        for found in re.findall(r"(?<![0-9])[0-9]{11,18}(?![0-9])", (_DATA / name).read_text())
    }
)


@pytest.mark.parametrize("cvr", ["10000009", "12345674", "29403473"])
def test_a_cvr_passes_modulus_11_with_weights_2765432_1(cvr: str) -> None:
    """§ 3: CVR, 8 digits, modulus 11 with weights 2,7,6,5,4,3,2,1 over all digits ≡ 0."""
    assert is_cvr(cvr)


@pytest.mark.parametrize(
    "cvr", ["10000008", "12345675", "02345674", "1234567", "123456740", "1234567a"]
)
def test_a_wrong_check_digit_or_shape_is_no_cvr(cvr: str) -> None:
    assert not is_cvr(cvr)


def test_an_ean_location_number_ends_in_its_gs1_check_digit() -> None:
    """§ 3: EAN/GLN location number, 13 digits with the GS1 mod-10 check digit."""
    assert gs1_check_digit("579000000000") == 5
    assert is_ean_location_number("5790000000005")
    assert is_ean_location_number("5798000416604")
    for wrong in ("5790000000004", "579000000000", "57900000000050", "579000000000x"):
        assert not is_ean_location_number(wrong)


# Verhoeff's own test values, as published with the algorithm (Wikipedia, "Verhoeff algorithm",
# worked examples; spec § 3): 236 -> 2363, 75872 -> 758722, 12345 -> 123451.
PUBLISHED = [("236", 3), ("75872", 2), ("12345", 1)]


@pytest.mark.parametrize(("body", "check"), PUBLISHED)
def test_verhoeff_gives_the_published_check_digits(body: str, check: int) -> None:
    """§ 3: the standard Verhoeff check digit; its textbook values hold."""
    assert verhoeff_check_digit(body) == check
    assert verhoeff_valid(body + str(check))
    for other in set(range(10)) - {check}:
        assert not verhoeff_valid(body + str(other))


def test_the_independent_verhoeff_in_the_tests_gives_the_published_check_digits() -> None:
    """The reference the cross-checks below compare against passes the same published values, so a
    test id from `tests.sor_ids` is a real Verhoeff id, not one made by the code under test."""
    for body, check in PUBLISHED:
        assert sor_ids.check_digit(body) == check and sor_ids.is_valid(body + str(check))


def test_the_permutation_table_is_sigma_applied_i_times() -> None:
    """§ 3: position i from the right is permuted by σ^i, σ = (1 5 7 6 2 8 3 0 9 4); the module's
    multiplication and inverse tables are those of D5."""
    for i in range(8):
        assert list(identifiers._P[i]) == [sor_ids.sigma_power(i, j) for j in range(10)], i
    for a in range(10):
        assert list(identifiers._D[a]) == [sor_ids.d5(a, b) for b in range(10)], a
        assert identifiers._INV[a] == sor_ids.inverse(a)


def test_every_sor_id_of_namespace_1000016_agrees_with_an_independent_verhoeff() -> None:
    """§ 3, exhaustively: for every item 1000-99999 in namespace 1000016, partition 00 (99,000 units),
    the module makes the same check digit as the one built from D5 and σ, and accepts exactly the one
    valid id of the ten candidates. Items 1000-99999 put every digit at position 11 from the right,
    where σ^3 applies (the row a typo once broke for 8 and 9)."""
    wrong_digit: list[str] = []
    wrong_answer: list[str] = []
    for item in range(1_000, 100_000):
        body = f"{item}{sor_ids.SOR_NAMESPACE}00"
        check = sor_ids.check_digit(body)
        if verhoeff_check_digit(body) != check:
            wrong_digit.append(body)
        for candidate in range(10):
            if is_sor_id(body + str(candidate)) != (candidate == check):
                wrong_answer.append(body + str(candidate))
    assert wrong_digit == [] and wrong_answer == []


def test_every_short_body_agrees_with_an_independent_verhoeff() -> None:
    """Every body of 1-5 digits (100,000 with leading zeros): the same check digit as the reference."""
    for n in range(100_000):
        body = str(n).zfill(5)
        assert verhoeff_check_digit(body) == sor_ids.check_digit(body), body


def test_every_sor_id_the_tests_and_the_demo_use_is_a_real_verhoeff_id() -> None:
    """§ 3: no fixture takes its SOR id from the code's table: the snapshots', tests/messages.py's and
    the demo's ids all pass the reference check."""
    demo = {m["sor_id"] for _, m in registrations("t") if "sor_id" in m}
    used = [*FIXTURE_SOR_IDS, SOR_ID, *sorted(demo)]
    assert len(FIXTURE_SOR_IDS) == 6 and len(demo) == 6
    assert [s for s in used if not sor_ids.is_valid(s)] == []


def test_verhoeff_catches_every_single_digit_error_and_adjacent_swap() -> None:
    good = sor_ids.sor_id("484")
    assert verhoeff_valid(good)
    for i in range(len(good)):
        for d in "0123456789":
            if d != good[i]:
                assert not verhoeff_valid(good[:i] + d + good[i + 1 :])
    for i in range(len(good) - 1):
        if good[i] != good[i + 1]:
            assert not verhoeff_valid(good[:i] + good[i + 1] + good[i] + good[i + 2 :])


def test_an_sor_id_has_at_least_11_digits_and_a_verhoeff_check_digit() -> None:
    """§ 3: SOR id, at least 11 digits; SNOMED-style: namespace 1000016, partition 00, Verhoeff."""
    made = sor_ids.sor_id("48")
    assert made.startswith("481000016" + "00") and len(made) == 12 and is_sor_id(made)
    assert sor_id("48") == made and sor_id("5181") == sor_ids.sor_id("5181")
    broken = made[:-1] + str((int(made[-1]) + 1) % 10)
    assert not is_sor_id(broken)
    short = "1000016" + "00"
    assert not is_sor_id(short + str(sor_ids.check_digit(short)))  # 10 digits
    assert not is_sor_id("abc" + made)


def test_an_authorisation_id_is_five_digits_or_capitals() -> None:
    """§ 3: authorisation id, 5 characters [0-9A-Z]."""
    for good in ("0C4MN", "12345", "ABCDE"):
        assert is_authorisation_id(good)
    for bad in ("0c4mn", "1234", "123456", "12 45", "ÆØÅ12"):
        assert not is_authorisation_id(bad)


def test_a_ydernummer_is_numeric_up_to_six_digits() -> None:
    assert is_ydernummer("1") and is_ydernummer("123456")
    assert not is_ydernummer("1234567") and not is_ydernummer("12a") and not is_ydernummer("")


def test_postal_codes_come_from_the_bundled_list() -> None:
    """§ 3: Danish 4-digit codes, Greenland 39xx, Faroese codes in SOR."""
    for good in ("1050", "2100", "8000", "9990", "3900", "3992", "0800", "100", "970"):
        assert is_postal_code(good), good
    for bad in ("0000", "0123", "9999", "3995", "12345", "", "99"):
        assert not is_postal_code(bad), bad
