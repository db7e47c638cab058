"""Identifiers the register accepts: person keys (CPR, substitute ids), pharmacy numbers, P-numbers, municipalities.

Sources: spec/ctr.md § 9, and LMST's technical rules for pharmacies' reporting to CTR (its field list,
fields 1-5). Modulus 11 is not a validity test for CPR numbers (numbers without it have been issued since
2007); it is for P-numbers, with the weights of the number's series.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

_TEN_DIGITS = re.compile(r"[0-9]{10}")

P_NUMBER_WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)
"""Weights of a P-number above `P_NUMBER_OLD_WEIGHTS_UNTIL`: 4,3,2,7,6,5,4,3,2 on the first nine digits,
1 on the tenth (the check digit); the weighted sum is divisible by 11."""
P_NUMBER_OLD_WEIGHTS = (1, 5, 6, 7, 3, 6, 4, 8, 9, 1)
"""Weights the early P-numbers were issued with (LMST, field 5: "vægtene 156736489"; Erhvervsstyrelsen
confirms a series made with other weights): 1,5,6,7,3,6,4,8,9 on the first nine digits, 1 on the check
digit, the sum divisible by 11 — the reading of spec/ctr.md § 9. 1,006,959,421 itself passes them, and
not the new ones."""
P_NUMBER_OLD_WEIGHTS_UNTIL = 1_006_959_421
"""The last P-number that may carry the old weights (LMST: "op til og med 1.006.959.421"). Up to and
including it, either set of weights is accepted (spec § 9: refusing a real pharmacy's reports is worse
than letting a mistyped number through); above it, only the new ones."""


class PersonKeyKind(StrEnum):
    CPR = "cpr"
    SYSTEM_SUBSTITUTE = "system_substitute"  # xxMMYYnnnn, xx 38 or 39
    FICTITIOUS_SUBSTITUTE = "fictitious_substitute"  # xLLLnnnnnn, x 4 or 5, LLL a country code


@dataclass(frozen=True, slots=True)
class PersonKey:
    """A normalised person key: ten digits, with its kind and the birth date the key itself carries (a CPR
    number's; a system-assigned number's, see `system_substitute_birth_date`); None for a fictitious
    number, whose birth date comes with the message."""

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
        ValueError: not ten digits, a CPR number whose date does not exist, or a system-assigned number
            without a month. The message never repeats the key, so it is safe to show to other parties.
    """
    value = normalise_person_key(raw)
    if not _TEN_DIGITS.fullmatch(value):
        raise ValueError("person key must be ten digits (DDMMYYSSSS or a substitute id)")
    if value[:2] in ("38", "39"):
        carried = system_substitute_birth_date(value)
        if carried is None:
            raise ValueError(
                "a system-assigned number must carry its birth month and year (xxMMYYnnnn)"
            )
        return PersonKey(value, PersonKeyKind.SYSTEM_SUBSTITUTE, carried)
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


SYSTEM_SUBSTITUTE_BIRTH_DAY = 1
"""DECISION: a system-assigned number xxMMYYnnnn carries its birth month and year, not the day; the
register counts the person born on the 1st of that month. It is the one day that never makes a report
from the birth month itself a purchase before birth (`check_born_by`)."""
SYSTEM_SUBSTITUTE_CENTURY_DIGIT = 4
"""DECISION: nnnn of xxMMYYnnnn is a serial number, not a CPR's century digit; YY is read as in the CPR
numbers of the current series (7th digit 4 or 9, spec § 9): 2000s if YY <= 36, else 1900s."""


def system_substitute_birth_date(digits: str) -> date | None:
    """The birth date a system-assigned number xxMMYYnnnn (xx 38 or 39) stands for: the
    `SYSTEM_SUBSTITUTE_BIRTH_DAY` of month MM in year YY (century by `SYSTEM_SUBSTITUTE_CENTURY_DIGIT`);
    None when the digits are no such number or MM is no month."""
    if not _TEN_DIGITS.fullmatch(digits) or digits[:2] not in ("38", "39"):
        return None
    mm, yy = int(digits[2:4]), int(digits[4:6])
    if not 1 <= mm <= 12:
        return None
    return date(
        cpr_century(yy, SYSTEM_SUBSTITUTE_CENTURY_DIGIT) + yy, mm, SYSTEM_SUBSTITUTE_BIRTH_DAY
    )


def person_birth_date(key: PersonKey, supplied: date | None) -> date:
    """The person's birth date from the key and the birth date the message supplied with it.

    LMST's field 4 is "Fødselsdato hvis fiktivt CPR-nr." and spec § 9 says a system-assigned number carries
    its own: a birth date comes with a fictitious number (xLLLnnnnnn) and only with one.

    Raises:
        ValueError: a fictitious number without a birth date, or a CPR or system-assigned number with one.
            The message repeats neither the key nor the date.
    """
    if key.kind is PersonKeyKind.FICTITIOUS_SUBSTITUTE:
        if supplied is None:
            raise ValueError("a fictitious number (xLLLnnnnnn) needs birth_date")
        return supplied
    if supplied is not None:
        what = "a CPR number" if key.kind is PersonKeyKind.CPR else "a system-assigned number"
        raise ValueError(
            f"birth_date is sent only with a fictitious number (xLLLnnnnnn): {what} carries its own"
        )
    assert key.birth_date is not None  # parse_person_key gives one for every other kind
    return key.birth_date


_BORN_AFTER = {
    PersonKeyKind.CPR: "the CPR number's birth date",
    PersonKeyKind.SYSTEM_SUBSTITUTE: "the system-assigned number's birth month",
    PersonKeyKind.FICTITIOUS_SUBSTITUTE: "birth_date",
}


def check_born_by(key: PersonKey, born: date, day: date, event: str = "the day of payment") -> None:
    """Refuse a person born after `day`, the day of the event the message reports.

    The day comes from the message, never from a clock: the rules are pure, and a message read again
    (a parked report replayed, a log re-read from its start) must get the same answer. For a dispensing
    report it is the Danish local date of payment or invoicing (order § 3 stk. 1 nr. 4), the date the
    register books the purchase by (spec § 7); nobody buys medicine before birth, and a CPR number dated
    after its own report is a CPR number from the future. Born on the day itself is fine.

    Raises:
        ValueError: born after `day`; the message names the kind of key and `event`, never the key, the
            date or the day.
    """
    if born > day:
        raise ValueError(f"{_BORN_AFTER[key.kind]} lies after {event}: a date in the future")


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


_DIGIT_RUN = re.compile(r"[0-9]+(?:-[0-9]+)*")
"""A run of digits, hyphens allowed between them."""


def person_number_runs(text: str) -> list[tuple[int, int]]:
    """Where `text` holds a run of digits (hyphens allowed) with ten digits in a row somewhere in it
    that read as a CPR number: the whole run. Stricter than `person_number_spans`, for text shown to
    other parties (logs, monitoring), where a CPR number glued into a longer id must not show either."""
    found = []
    for m in _DIGIT_RUN.finditer(text):
        digits = m.group().replace("-", "")
        if len(digits) >= 10 and any(
            cpr_birth_date(digits[i : i + 10]) is not None for i in range(len(digits) - 9)
        ):
            found.append(m.span())
    return found


def contains_person_number(text: str) -> bool:
    """Whether `text` holds a run of ten digits (or DDMMYY-SSSS) that reads as a CPR number."""
    if len(text) < 10 or _PERSON_NUMBER_SHAPE.search(text) is None:  # most ids: no such run at all
        return False
    return bool(person_number_spans(text))


def mask_person_numbers(text: str, mask: str = "**********", *, within_runs: bool = False) -> str:
    """`text` with every possible CPR number (see `person_number_spans`) replaced by `mask`; with
    `within_runs`, every run of digits that holds one anywhere (`person_number_runs`)."""
    spans = person_number_runs(text) if within_runs else person_number_spans(text)
    for start, end in reversed(spans):
        text = text[:start] + mask + text[end:]
    return text


PHARMACY_NUMBER_PATTERN = r"^[0-9]{5}$"
"""Pharmacy number AAAnn: five digits (nn 00 pharmacy, 01-09 branch, 10-99 outlet)."""


def is_pharmacy_number(value: str) -> bool:
    """Pharmacy number AAAnn: five digits (nn 00 pharmacy, 01-09 branch, 10-99 outlet)."""
    return re.fullmatch(PHARMACY_NUMBER_PATTERN[1:-1], value) is not None


def p_number_weights(number: int) -> tuple[tuple[int, ...], ...]:
    """The sets of weights a P-number may pass: both up to and including `P_NUMBER_OLD_WEIGHTS_UNTIL`,
    the new ones alone above it (spec § 9, LMST's field 5)."""
    if number <= P_NUMBER_OLD_WEIGHTS_UNTIL:
        return (P_NUMBER_WEIGHTS, P_NUMBER_OLD_WEIGHTS)
    return (P_NUMBER_WEIGHTS,)


def p_number_passes(value: str, weights: tuple[int, ...]) -> bool:
    """Whether ten digits' sum weighted by `weights` is divisible by 11."""
    return sum(int(d) * w for d, w in zip(value, weights, strict=True)) % 11 == 0


@functools.lru_cache(maxsize=4_096)
def is_p_number(value: str) -> bool:
    """Production-unit number (P-number): ten digits, not starting with 0, passing modulus 11 with the
    weights of its series (`p_number_weights`)."""
    if not _TEN_DIGITS.fullmatch(value) or value[0] == "0":
        return False
    return any(p_number_passes(value, w) for w in p_number_weights(int(value)))


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
