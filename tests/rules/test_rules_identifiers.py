"""Unit tests of person keys, pharmacy numbers, P-numbers and municipality codes in
`rules/identifiers.py` (spec/ctr.md § 9; order § 3 stk. 1 nr. 1 and 5, stk. 3).

Pure: no I/O is allowed while these run.
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from rules.identifiers import (
    DANISH_MUNICIPALITY_CODES,
    P_NUMBER_OLD_WEIGHTS,
    P_NUMBER_OLD_WEIGHTS_UNTIL,
    P_NUMBER_WEIGHTS,
    PersonKeyKind,
    check_born_by,
    cpr_century,
    is_p_number,
    is_pharmacy_number,
    normalise_person_key,
    p_number_passes,
    p_number_weights,
    parse_person_key,
    person_birth_date,
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


@pytest.mark.parametrize(
    ("key", "born"),
    [
        ("3801241234", date(2024, 1, 1)),
        ("3912990001", date(1999, 12, 1)),
        # YY read as in the CPR's current series (7th digit 4 or 9): 36 is 2036, 37 is 1937
        ("3806361234", date(2036, 6, 1)),
        ("3806370234", date(1937, 6, 1)),
        ("3900000000", None),
    ],
)
def test_system_substitute_ids_38_and_39_carry_their_birth_month(
    key: str, born: date | None
) -> None:
    """spec § 9: system-assigned substitute ids xxMMYYnnnn with xx 38 or 39 (order § 3 stk. 3) carry
    their own birth date. DECISION (`SYSTEM_SUBSTITUTE_BIRTH_DAY`, `SYSTEM_SUBSTITUTE_CENTURY_DIGIT`):
    the 1st of month MM; YY in the 2000s up to 36, else the 1900s, whatever nnnn (a serial number).

    3801241234: MM 01, YY 24 <= 36: 1 January 2024. 3912990001: MM 12, YY 99 > 36: 1 December 1999.
    3806361234: 36 <= 36: 2036. 3806370234: 37 > 36: 1937. 3900000000: month 00, refused (below).
    """
    if born is None:
        with pytest.raises(ValueError, match="birth month and year") as caught:
            parse_person_key(key)
        assert key not in str(caught.value)
        return
    parsed = parse_person_key(key)
    assert parsed.kind is PersonKeyKind.SYSTEM_SUBSTITUTE
    assert parsed.birth_date == born


@pytest.mark.parametrize(
    ("month", "valid"), [("00", False), ("01", True), ("12", True), ("13", False)]
)
def test_system_substitute_month_at_its_edges(month: str, valid: bool) -> None:
    """xxMMYYnnnn: MM is a month. 00 (the day before January) and 13 (the day after December) are none;
    01 and 12 are the first and last."""
    key = f"38{month}801234"
    if valid:
        assert parse_person_key(key).birth_date == date(1980, int(month), 1)
    else:
        with pytest.raises(ValueError, match="birth month and year"):
            parse_person_key(key)


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
    """spec § 9: P-number is 10 digits, modulus 11 (weights 4,3,2,7,6,5,4,3,2,1).

    1003456788: 1·4 + 0·3 + 0·2 + 3·7 + 4·6 + 5·5 + 6·4 + 7·3 + 8·2 + 8·1
              = 4 + 21 + 24 + 25 + 24 + 21 + 16 + 8 = 143 = 13·11.
    1000000007: 1·4 + 7·1 = 11.
    """
    assert is_p_number(value) is True


@pytest.mark.parametrize(
    "value", ["1003456789", "100345678", "10034567888", "0000000000", "100345678X", ""]
)
def test_p_number_invalid(value: str) -> None:
    assert is_p_number(value) is False


def test_the_scenarios_p_number_fails_both_sets_of_weights() -> None:
    """1003456789 (the shared scenarios' P-number) lies below 1,006,959,421, so both sets apply; it
    passes neither.

    new: 1·4 + 3·7 + 4·6 + 5·5 + 6·4 + 7·3 + 8·2 + 9·1 = 4 + 21 + 24 + 25 + 24 + 21 + 16 + 9 = 144
         = 13·11 + 1.
    old: 1·1 + 3·7 + 4·3 + 5·6 + 6·4 + 7·8 + 8·9 + 9·1 = 1 + 21 + 12 + 30 + 24 + 56 + 72 + 9 = 225
         = 20·11 + 5.
    """
    assert not p_number_passes("1003456789", P_NUMBER_WEIGHTS)
    assert not p_number_passes("1003456789", P_NUMBER_OLD_WEIGHTS)
    assert is_p_number("1003456789") is False


@pytest.mark.parametrize(
    ("number", "sets"),
    [
        (1_006_959_420, (P_NUMBER_WEIGHTS, P_NUMBER_OLD_WEIGHTS)),
        (1_006_959_421, (P_NUMBER_WEIGHTS, P_NUMBER_OLD_WEIGHTS)),
        (1_006_959_422, (P_NUMBER_WEIGHTS,)),
    ],
)
def test_which_weights_apply_at_the_limit(number: int, sets: tuple[tuple[int, ...], ...]) -> None:
    """spec § 9, LMST field 5: "For P-numre op til og med 1.006.959.421 anvendes vægtene 156736489";
    above it, 432765432. Up to and including the limit either set is accepted; one past it, the new only.
    """
    assert P_NUMBER_OLD_WEIGHTS_UNTIL == 1_006_959_421
    assert p_number_weights(number) == sets


@pytest.mark.parametrize(
    ("value", "old", "new", "valid"),
    [
        ("1006959408", True, False, True),
        ("1006959411", False, True, True),
        ("1006959420", False, False, False),
        ("1006959421", True, False, True),
        ("1006959422", False, False, False),
        ("1006959433", True, False, False),
        ("1006959438", False, True, True),
    ],
)
def test_p_number_old_weights_up_to_and_including_the_limit(
    value: str, old: bool, new: bool, valid: bool
) -> None:
    """spec § 9: either set of weights up to and including 1,006,959,421, the new ones above.

    Old weights 1,5,6,7,3,6,4,8,9 and 1 on the check digit; new 4,3,2,7,6,5,4,3,2 and 1. The weighted
    sums of the first nine digits, by hand (the check digit c then adds c·1):
      old, 100695942c:   1·1 + 0·5 + 0·6 + 6·7 + 9·3 + 5·6 + 9·4 + 4·8 + 2·9 = 1+42+27+30+36+32+18 = 186
      new, 100695942c:   1·4 + 6·7 + 9·6 + 5·5 + 9·4 + 4·3 + 2·2 = 4+42+54+25+36+12+4 = 177
      old, 100695940c:   186 − 2·9 = 168;     new, 100695940c:   177 − 2·2 = 173
      old, 100695941c:   168 + 1·9 = 177;     new, 100695941c:   173 + 1·2 = 175
      old, 100695943c:   168 + 3·9 = 195;     new, 100695943c:   173 + 3·2 = 179
    so:
      1006959408 (the nearest below the limit passing the old only): old 168+8 = 176 = 16·11, new 181:
        accepted (before the change refused).
      1006959411: new 175+1 = 176 = 16·11: accepted.
      1006959420 (the day before): old 186 ≡ 10, new 177 ≡ 1: refused.
      1006959421 (the limit itself): old 186+1 = 187 = 17·11, new 178 ≡ 2: accepted, by the old weights.
      1006959422 (the day after): old 188 ≡ 1, new 179 ≡ 3, and old no longer applies: refused.
      1006959433 (the nearest above passing the old only): old 195+3 = 198 = 18·11, new 182 ≡ 6:
        refused, the old weights end at the limit.
      1006959438: new 179+8 = 187 = 17·11: accepted.
    """
    assert p_number_passes(value, P_NUMBER_OLD_WEIGHTS) is old
    assert p_number_passes(value, P_NUMBER_WEIGHTS) is new
    assert is_p_number(value) is valid


def test_old_p_numbers_are_no_longer_refused() -> None:
    """The issue's count: of 1,000,000,000-1,000,299,999, the 27,273 numbers passing the old weights all
    pass now; 24,825 of them (about 10 in 11, as a second modulus-11 sum is near uniform) fail the new
    weights and were refused before."""
    old = [
        str(n)
        for n in range(1_000_000_000, 1_000_300_000)
        if p_number_passes(str(n), P_NUMBER_OLD_WEIGHTS)
    ]
    assert len(old) == 27_273
    assert sum(not p_number_passes(v, P_NUMBER_WEIGHTS) for v in old) == 24_825
    assert all(is_p_number(v) for v in old)


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


# --- birth dates: with a fictitious number only; none after the day of payment -------------------


@pytest.mark.parametrize(
    ("key", "supplied", "born"),
    [
        ("4208000001", date(1960, 5, 5), date(1960, 5, 5)),
        ("0505601234", None, date(1960, 5, 5)),
        ("3805601234", None, date(1960, 5, 1)),
    ],
)
def test_birth_date_from_the_key_or_with_a_fictitious_number(
    key: str, supplied: date | None, born: date
) -> None:
    """spec § 9 and LMST field 4 ("Fødselsdato hvis fiktivt CPR-nr."): a fictitious number comes with its
    birth date; a CPR number (0505601234: 5 May 1960, 7th digit 1) and a system-assigned number
    (3805601234: May 1960, the 1st) carry their own."""
    assert person_birth_date(parse_person_key(key), supplied) == born


@pytest.mark.parametrize(
    ("key", "supplied", "reason"),
    [
        ("4208000001", None, "a fictitious number (xLLLnnnnnn) needs birth_date"),
        ("0505601234", date(1960, 5, 5), "a CPR number carries its own"),
        ("0505601234", date(1971, 1, 1), "a CPR number carries its own"),
        ("3805601234", date(1960, 5, 1), "a system-assigned number carries its own"),
    ],
)
def test_birth_date_only_with_a_fictitious_number(
    key: str, supplied: date | None, reason: str
) -> None:
    """spec § 9: a birth date comes with a fictitious number, and only with one: also a birth date that
    agrees with the CPR number is refused. The reason quotes neither the key nor the date."""
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        person_birth_date(parse_person_key(key), supplied)
    message = str(caught.value)
    assert key not in message
    assert supplied is None or supplied.isoformat() not in message


PAID = date(2024, 3, 11)


@pytest.mark.parametrize(
    ("key", "supplied", "refused"),
    [
        ("1003244321", None, False),  # born 10 March 2024: the day before payment
        ("1103244321", None, False),  # born 11 March 2024: the day of payment
        ("1203244321", None, True),  # born 12 March 2024: the day after
        ("4208000001", date(2024, 3, 10), False),
        ("4208000001", date(2024, 3, 11), False),
        ("4208000001", date(2024, 3, 12), True),
    ],
)
def test_born_after_the_day_of_payment_is_refused(
    key: str, supplied: date | None, refused: bool
) -> None:
    """The issue: CPR numbers whose date lies in the future are refused. "Today" is the report's day of
    payment (11 March 2024 here). 1003244321: DD 10, MM 03, YY 24, 7th digit 4 and 24 <= 36, so 2000s:
    10 March 2024, accepted; 1103244321 the same day, accepted (a newborn's medicine); 1203244321 is 12
    March 2024, after the payment: refused. A fictitious number's supplied date alike."""
    parsed = parse_person_key(key)
    born = person_birth_date(parsed, supplied)
    if not refused:
        check_born_by(parsed, born, PAID)
        return
    with pytest.raises(ValueError, match="lies after the day of payment") as caught:
        check_born_by(parsed, born, PAID)
    assert key not in str(caught.value)
    assert "2024" not in str(caught.value)


@pytest.mark.parametrize(
    ("paid", "refused"),
    [(date(2024, 2, 29), True), (date(2024, 3, 1), False), (date(2024, 3, 2), False)],
)
def test_system_assigned_number_born_after_the_day_of_payment(paid: date, refused: bool) -> None:
    """3803241234 stands for 1 March 2024 (MM 03, YY 24, the 1st). Paid 29 February 2024, the day
    before: refused; paid 1 March (the day) or 2 March (the day after): accepted."""
    parsed = parse_person_key("3803241234")
    assert parsed.birth_date == date(2024, 3, 1)
    if refused:
        with pytest.raises(ValueError, match="system-assigned number's birth month lies after"):
            check_born_by(parsed, date(2024, 3, 1), paid)
    else:
        check_born_by(parsed, date(2024, 3, 1), paid)


@pytest.mark.parametrize(
    ("key", "refused"),
    [("3012354234", False), ("3112354234", False), ("0101364234", True), ("0101374234", False)],
)
def test_a_cpr_number_read_into_the_next_century_is_from_the_future(
    key: str, refused: bool
) -> None:
    """The century table decides what "the future" is. Paid on 31 December 2035, 7th digit 4:
    3012354234 is 30 December 2035 (the day before): accepted; 3112354234 is 31 December 2035 (the day):
    accepted; 0101364234 is 1 January 2036 (YY 36 <= 36: 2000s; the day after): refused; 0101374234 is
    1 January 1937 (YY 37 > 36: 1900s): accepted."""
    paid = date(2035, 12, 31)
    parsed = parse_person_key(key)
    assert parsed.birth_date is not None
    if refused:
        with pytest.raises(ValueError, match="CPR number's birth date lies after"):
            check_born_by(parsed, parsed.birth_date, paid)
    else:
        check_born_by(parsed, parsed.birth_date, paid)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("id 12106149173 sent", "id ********** sent"),  # 2106149173 (21 June 2014) inside 11 digits
        ("x9905056012349", "x**********"),  # 0505601234 inside a run of 13
        ("payment:12300:050560-12345", "payment:12300:**********"),  # the hyphen form, glued on
        ("offset 1733515200000", "offset 1733515200000"),  # a run with no date in it stays
        ("payment:12300:d-r1", "payment:12300:d-r1"),
    ],
)
def test_a_cpr_number_inside_a_longer_run_of_digits_is_masked_for_other_parties(
    text: str, masked: str
) -> None:
    """Logs and monitoring mask a CPR number also when it is glued into a longer run of digits; the
    strict form (for refusing partner ids) masks only a run of exactly ten."""
    from rules.identifiers import mask_person_numbers

    assert mask_person_numbers(text, within_runs=True) == masked
    assert mask_person_numbers("id 12106149173", within_runs=False) == "id 12106149173"
