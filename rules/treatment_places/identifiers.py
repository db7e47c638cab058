"""Identifiers of the treatment-place register: CVR, EAN/GLN location numbers, SOR ids, authorisation ids,
ydernumre and postal codes (spec/treatment-places.md § 3).

Each check answers a plain bool, so the handler can turn a failure into its own `rule.*` reason.
"""

from __future__ import annotations

import re
from pathlib import Path

CVR_WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)
"""Modulus 11 over all eight digits of a CVR number: the weighted sum is divisible by 11 (spec § 3)."""

_CVR = re.compile(r"[1-9][0-9]{7}")
_EAN = re.compile(r"[0-9]{13}")
_SOR_ID = re.compile(r"[0-9]{11,18}")
_AUTHORISATION_ID = re.compile(r"[0-9A-Z]{5}")
_YDERNUMMER = re.compile(r"[0-9]{1,6}")


def is_cvr(value: str) -> bool:
    """A CVR number: eight digits, not starting with 0, passing modulus 11 with `CVR_WEIGHTS`."""
    if not _CVR.fullmatch(value):
        return False
    return sum(int(d) * w for d, w in zip(value, CVR_WEIGHTS, strict=True)) % 11 == 0


def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit of the digits before it: weights 3 and 1 alternate from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_ean_location_number(value: str) -> bool:
    """An EAN/GLN location number (the invoice address of a public buyer): 13 digits, the last the
    GS1 mod-10 check digit of the first twelve (spec § 3)."""
    return bool(_EAN.fullmatch(value)) and gs1_check_digit(value[:12]) == int(value[12])


# Verhoeff's dihedral group D5: multiplication, permutation and inverse tables (J. Verhoeff, 1969).
# Row i of _P is σ applied i times, σ = _P[1]: _P[i][j] == _P[i - 1][_P[1][j]].
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def verhoeff_check_digit(body: str) -> int:
    """The Verhoeff check digit to append to `body` (digits)."""
    c = 0
    for i, d in enumerate(reversed(body)):
        c = _D[c][_P[(i + 1) % 8][int(d)]]
    return _INV[c]


def verhoeff_valid(value: str) -> bool:
    """Whether digits end in their Verhoeff check digit."""
    c = 0
    for i, d in enumerate(reversed(value)):
        c = _D[c][_P[i % 8][int(d)]]
    return c == 0


SOR_NAMESPACE = "1000016"
"""SOR's SNOMED CT namespace: an SOR id ends in it, a two-digit partition and the check digit (spec § 3)."""


def is_sor_id(value: str) -> bool:
    """An SOR id: at least 11 digits ending in a Verhoeff check digit. DECISION: the namespace and
    partition are not required (an id from before the SNOMED-style scheme still names a real unit)."""
    return bool(_SOR_ID.fullmatch(value)) and verhoeff_valid(value)


def sor_id(item: str, partition: str = "00") -> str:
    """An SOR id in SOR's namespace for an item number (test data and the demo)."""
    body = f"{item}{SOR_NAMESPACE}{partition}"
    return body + str(verhoeff_check_digit(body))


def is_authorisation_id(value: str) -> bool:
    """A health person's authorisation id (autorisations-id): five characters `[0-9A-Z]`."""
    return bool(_AUTHORISATION_ID.fullmatch(value))


def is_ydernummer(value: str) -> bool:
    """A ydernummer: numeric, up to six digits (reusable over time: not unique across years)."""
    return bool(_YDERNUMMER.fullmatch(value))


def _load_postal_codes(path: Path) -> frozenset[str]:
    """Codes and ranges (`1000-1499`) from the bundled list, one per line; `#` starts a comment."""
    codes: set[str] = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        first, _, last = line.partition("-")
        width = len(first)
        for n in range(int(first), int(last or first) + 1):
            codes.add(str(n).zfill(width))
    return frozenset(codes)


POSTAL_CODES: frozenset[str] = _load_postal_codes(Path(__file__).with_name("postal_codes.txt"))
"""Read once at import, so the checks do no I/O."""


def is_postal_code(value: str) -> bool:
    """A postal code on the bundled list (Danish, Greenlandic 39xx and Faroese codes, as in SOR)."""
    return value in POSTAL_CODES
