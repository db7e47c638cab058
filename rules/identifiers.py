"""Identifiers the register accepts: person keys (CPR, substitute ids), pharmacy numbers, P-numbers, municipalities.

Sources: spec/ctr.md § 9. Modulus 11 is not a validity test for CPR numbers (numbers without it have been
issued since 2007); it is for P-numbers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

_TEN_DIGITS = re.compile(r"[0-9]{10}")
_P_NUMBER_WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


class PersonKeyKind(StrEnum):
    CPR = "cpr"
    SYSTEM_SUBSTITUTE = "system_substitute"  # xxMMYYnnnn, xx 38 or 39
    FICTITIOUS_SUBSTITUTE = "fictitious_substitute"  # xLLLnnnnnn, x 4 or 5, LLL a country code


@dataclass(frozen=True, slots=True)
class PersonKey:
    """A normalised person key: ten digits, with its kind and, for a CPR number, the birth date it encodes."""

    value: str
    kind: PersonKeyKind
    birth_date: date | None


def normalise_person_key(raw: str) -> str:
    """Strip the optional hyphen of DDMMYY-SSSS; the key on the wire and in the register has ten digits."""
    return raw.replace("-", "", 1) if len(raw) == 11 and raw[6] == "-" else raw


def cpr_century(yy: int, seventh: int) -> int:
    """The century of a CPR number from its year and 7th digit (spec/ctr.md § 9)."""
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


@functools.lru_cache(maxsize=65_536)
def parse_person_key(raw: str) -> PersonKey:
    """Classify and check a person key.

    Raises:
        ValueError: not ten digits, or a CPR number whose date does not exist. The message never repeats
            the key, so it is safe to show to other parties.
    """
    value = normalise_person_key(raw)
    if not _TEN_DIGITS.fullmatch(value):
        raise ValueError("person key must be ten digits (DDMMYYSSSS or a substitute id)")
    if value[:2] in ("38", "39"):
        return PersonKey(value, PersonKeyKind.SYSTEM_SUBSTITUTE, None)
    if value[0] in "45":
        return PersonKey(value, PersonKeyKind.FICTITIOUS_SUBSTITUTE, None)
    born = cpr_birth_date(value)
    if born is None:
        raise ValueError("CPR number does not encode a valid birth date")
    return PersonKey(value, PersonKeyKind.CPR, born)


def cpr_birth_date(digits: str) -> date | None:
    """The birth date ten digits encode read as a CPR number (DDMMYY, the century from the 7th digit),
    or None when DDMMYY is no date (a substitute id's day 38, 39 or 40-59 is none)."""
    if not _TEN_DIGITS.fullmatch(digits):
        return None
    dd, mm, yy, seventh = int(digits[0:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
    try:
        return date(cpr_century(yy, seventh) + yy, mm, dd)
    except ValueError:
        return None


_PERSON_NUMBER_SHAPE = re.compile(r"(?<![0-9])([0-9]{6})(-?)([0-9]{4})(?![0-9])")
"""Ten digits, or DDMMYY-SSSS, not part of a longer run of digits."""


def person_number_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` holds something that may be a CPR number: a run of exactly ten digits (or the
    DDMMYY-SSSS form) whose DDMMYY is a real date. A P-number is one only when it reads as a date.

    Used to refuse partner-chosen ids that would carry a person number onto shared topics and headers,
    and to mask free text; a field known to hold a person key is masked whole instead.
    """
    return [
        m.span()
        for m in _PERSON_NUMBER_SHAPE.finditer(text)
        if cpr_birth_date(m.group(1) + m.group(3)) is not None
    ]


def contains_person_number(text: str) -> bool:
    """Whether `text` holds a run of ten digits (or DDMMYY-SSSS) that reads as a CPR number."""
    return bool(person_number_spans(text))


def mask_person_numbers(text: str, mask: str = "**********") -> str:
    """`text` with every possible CPR number (see `person_number_spans`) replaced by `mask`."""
    spans = person_number_spans(text)
    for start, end in reversed(spans):
        text = text[:start] + mask + text[end:]
    return text


PHARMACY_NUMBER_PATTERN = r"^[0-9]{5}$"
"""Pharmacy number AAAnn: five digits (nn 00 pharmacy, 01-09 branch, 10-99 outlet)."""


def is_pharmacy_number(value: str) -> bool:
    """Pharmacy number AAAnn: five digits (nn 00 pharmacy, 01-09 branch, 10-99 outlet)."""
    return re.fullmatch(PHARMACY_NUMBER_PATTERN[1:-1], value) is not None


@functools.lru_cache(maxsize=4_096)
def is_p_number(value: str) -> bool:
    """Production-unit number: ten digits whose weighted sum is divisible by 11."""
    if not _TEN_DIGITS.fullmatch(value) or value[0] == "0":
        return False
    return sum(int(d) * w for d, w in zip(value, _P_NUMBER_WEIGHTS, strict=True)) % 11 == 0


DANISH_MUNICIPALITY_CODES: frozenset[int] = frozenset(
    {
        101,
        147,
        151,
        153,
        155,
        157,
        159,
        161,
        163,
        165,
        167,
        169,
        173,
        175,
        183,
        185,
        187,
        190,
        201,
        210,
        217,
        219,
        223,
        230,
        240,
        250,
        253,
        259,
        260,
        265,
        269,
        270,
        306,
        316,
        320,
        326,
        329,
        330,
        336,
        340,
        350,
        360,
        370,
        376,
        390,
        400,
        410,
        411,
        420,
        430,
        440,
        450,
        461,
        479,
        480,
        482,
        492,
        510,
        530,
        540,
        550,
        561,
        563,
        573,
        575,
        580,
        607,
        615,
        621,
        630,
        657,
        661,
        665,
        671,
        706,
        707,
        710,
        727,
        730,
        740,
        741,
        746,
        751,
        756,
        760,
        766,
        773,
        779,
        787,
        791,
        810,
        813,
        820,
        825,
        840,
        846,
        849,
        851,
        860,
    }
)
"""The 98 municipalities' codes (kommunekoder) and Christiansø (411), as used by Danmarks Statistik."""
