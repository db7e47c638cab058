"""Unit tests of person keys, pharmacy numbers, P-numbers and municipality codes in
`rules/identifiers.py` (spec/ctr.md § 9; order § 3 stk. 1 nr. 1 and 5, stk. 3).

Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

from datetime import date

import pytest

from rules.identifiers import (
    DANISH_MUNICIPALITY_CODES,
    PersonKeyKind,
    cpr_century,
    is_p_number,
    is_pharmacy_number,
    normalise_person_key,
    parse_person_key,
)


@pytest.mark.parametrize(
    ("key", "born"),
    [
        # 7th digit 0-3: 1900s whatever the year
        ("0101000123", date(1900, 1, 1)),
        ("1506991234", date(1999, 6, 15)),
        ("1506363234", date(1936, 6, 15)),
        # 4 and 9: 2000s if YY <= 36, else 1900s
        ("0101364234", date(2036, 1, 1)),
        ("0101374234", date(1937, 1, 1)),
        ("0101009234", date(2000, 1, 1)),
        ("3112369234", date(2036, 12, 31)),
        ("3112379234", date(1937, 12, 31)),
        # 5-8: 2000s if YY <= 57, else 1800s
        ("0101575234", date(2057, 1, 1)),
        ("0101585234", date(1858, 1, 1)),
        ("0101576234", date(2057, 1, 1)),
        ("0101587234", date(1858, 1, 1)),
        ("0101108234", date(2010, 1, 1)),
        ("0101998234", date(1899, 1, 1)),
    ],
)
def test_cpr_birth_date_from_date_and_century_digit(key: str, born: date) -> None:
    """spec § 9: the 7th digit and the year give the century (0–3; 4 and 9; 5–8)."""
    parsed = parse_person_key(key)
    assert parsed.kind is PersonKeyKind.CPR
    assert parsed.birth_date == born
    assert parsed.value == key


@pytest.mark.parametrize(
    ("yy", "seventh", "century"),
    [
        *((yy, d, 1900) for d in range(4) for yy in (0, 36, 37, 57, 58, 99)),
        *((yy, d, 2000) for d in (4, 9) for yy in (0, 36)),
        *((yy, d, 1900) for d in (4, 9) for yy in (37, 99)),
        *((yy, d, 2000) for d in (5, 6, 7, 8) for yy in (0, 57)),
        *((yy, d, 1800) for d in (5, 6, 7, 8) for yy in (58, 99)),
    ],
)
def test_cpr_century_rule_table(yy: int, seventh: int, century: int) -> None:
    """spec § 9: the full century table at the YY boundaries 36/37 and 57/58."""
    assert cpr_century(yy, seventh) == century


def test_cpr_without_modulus_11_is_accepted() -> None:
    """spec § 9: modulus 11 is not a validity test (numbers without it issued since 2007)."""
    key = "0101101235"
    assert sum(int(d) * w for d, w in zip(key, (4, 3, 2, 7, 6, 5, 4, 3, 2, 1), strict=True)) % 11
    assert parse_person_key(key).birth_date == date(1910, 1, 1)


def test_hyphen_form_is_normalised() -> None:
    """spec § 9: CPR is DDMMYY-SSSS; the register key has ten digits."""
    assert normalise_person_key("150699-1234") == "1506991234"
    assert normalise_person_key("1506991234") == "1506991234"
    parsed = parse_person_key("150699-1234")
    assert parsed.value == "1506991234"
    assert parsed.birth_date == date(1999, 6, 15)


@pytest.mark.parametrize("key", ["3102901234", "290201-1234", "0013901234", "3204801234"])
def test_impossible_date_is_refused_without_repeating_the_key(key: str) -> None:
    """spec § 9 and style.md "Errors": reasons never contain a CPR number."""
    with pytest.raises(ValueError) as caught:
        parse_person_key(key)
    message = str(caught.value)
    assert "valid birth date" in message
    assert key not in message
    assert normalise_person_key(key) not in message


def test_29_february_is_valid_only_in_a_leap_year() -> None:
    assert parse_person_key("2902004234").birth_date == date(2000, 2, 29)
    with pytest.raises(ValueError):
        parse_person_key("2902011234")


@pytest.mark.parametrize("key", ["", "123456789", "12345678901", "01019O1234", "0101-901234"])
def test_not_ten_digits_is_refused_without_repeating_the_key(key: str) -> None:
    with pytest.raises(ValueError, match="ten digits") as caught:
        parse_person_key(key)
    if key:
        assert key not in str(caught.value)


@pytest.mark.parametrize("key", ["3801241234", "3912990001"])
def test_system_substitute_ids_38_and_39(key: str) -> None:
    """spec § 9: system-assigned substitute ids xxMMYYnnnn with xx 38 or 39 (order § 3 stk. 3)."""
    parsed = parse_person_key(key)
    assert parsed.kind is PersonKeyKind.SYSTEM_SUBSTITUTE
    assert parsed.birth_date is None


@pytest.mark.parametrize("key", ["4208000001", "5208123456", "4752000001"])
def test_fictitious_substitute_ids_4_and_5(key: str) -> None:
    """spec § 9.

    Fictitious numbers xLLLnnnnnn with x 4 or 5; the birth date comes with the message.
    """
    parsed = parse_person_key(key)
    assert parsed.kind is PersonKeyKind.FICTITIOUS_SUBSTITUTE
    assert parsed.birth_date is None


@pytest.mark.parametrize("key", ["0101901234\n", "０１０１９０１２３４", "4208000001\n"])
def test_person_key_is_ten_ascii_digits_exactly(key: str) -> None:
    """spec § 9: the key is ten digits; anything else would register a second person."""
    with pytest.raises(ValueError):
        parse_person_key(key)


@pytest.mark.parametrize("value", ["1003456788", "1000000007"])
def test_p_number_modulus_11_valid(value: str) -> None:
    """spec § 9: P-number is 10 digits, modulus 11 (weights 4,3,2,7,6,5,4,3,2,1)."""
    assert is_p_number(value) is True


@pytest.mark.parametrize(
    "value", ["1003456789", "100345678", "10034567888", "0000000000", "100345678X", ""]
)
def test_p_number_invalid(value: str) -> None:
    assert is_p_number(value) is False


def test_p_number_with_trailing_newline_is_false() -> None:
    assert is_p_number("1003456788\n") is False


@pytest.mark.parametrize("value", ["12300", "12301", "12310", "00000", "99999"])
def test_pharmacy_number_five_digits(value: str) -> None:
    """spec § 9: pharmacy number AAAnn, five digits."""
    assert is_pharmacy_number(value) is True


@pytest.mark.parametrize("value", ["1230", "123000", "1230a", "", "12 30", "-1230"])
def test_pharmacy_number_not_five_digits(value: str) -> None:
    assert is_pharmacy_number(value) is False


@pytest.mark.parametrize("value", ["１２３００", "¹²³⁴⁵"])
def test_pharmacy_number_is_ascii_digits(value: str) -> None:
    assert is_pharmacy_number(value) is False


def test_municipality_codes() -> None:
    """98 municipalities plus Christiansø (411), the codes of Danmarks Statistik."""
    assert len(DANISH_MUNICIPALITY_CODES) == 99
    assert {101, 851, 740, 411, 147, 400, 461, 751, 860} <= DANISH_MUNICIPALITY_CODES
    assert 100 not in DANISH_MUNICIPALITY_CODES
    assert 0 not in DANISH_MUNICIPALITY_CODES
    assert all(101 <= code <= 860 for code in DANISH_MUNICIPALITY_CODES)
