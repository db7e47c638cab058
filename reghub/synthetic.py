"""Synthetic but realistic CTR traffic for the demo and the benchmarks: pharmacies, persons, reports.

Persons carry fictitious substitute ids (`xLLLnnnnnn` with a birth date), never CPR-shaped numbers, so
no generated key can be a real person's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import orjson

from rules.identifiers import is_p_number

COUNTRY_CODES = ("208", "752", "578", "276", "528")


def p_number(seed: int) -> str:
    """A valid P-number (modulus 11) derived from `seed`."""
    n = 1_000_000_000 + seed * 37
    while not is_p_number(str(n)):
        n += 1
    return str(n)


@dataclass(frozen=True, slots=True)
class Pharmacy:
    number: str
    p_number: str


@dataclass(frozen=True, slots=True)
class Person:
    key: str
    birth_date: date


def pharmacies(count: int = 8) -> list[Pharmacy]:
    return [Pharmacy(f"{100 + i * 7:03d}00", p_number(i + 1)) for i in range(count)]


def persons(count: int, rng: random.Random) -> list[Person]:
    """Adults (most of them, many pensioners) and children (about one in six)."""
    people = []
    for i in range(count):
        child = rng.random() < 0.17
        age = rng.randint(1, 17) if child else rng.randint(18, 92)
        born = date(2024 - age, rng.randint(1, 12), rng.randint(1, 28))
        key = f"{rng.choice('45')}{rng.choice(COUNTRY_CODES)}{i:06d}"
        people.append(Person(key, born))
    return people


def price_ore(rng: random.Random) -> int:
    """Mostly everyday medicine, sometimes expensive enough to cross bands in one purchase."""
    r = rng.random()
    if r < 0.80:
        return rng.randint(40_00, 900_00)
    if r < 0.97:
        return rng.randint(900_00, 4_000_00)
    return rng.randint(8_000_00, 25_000_00)


def report(
    report_id: str, person: Person, pharmacy: Pharmacy, paid_at: datetime, rng: random.Random
) -> dict[str, object]:
    lines = []
    for _n in range(1 if rng.random() < 0.8 else 2):
        reimbursement = price_ore(rng)
        actual = reimbursement if rng.random() < 0.85 else reimbursement + rng.randint(5_00, 60_00)
        lines.append(
            {
                "drug_id": f"{rng.randint(0, 999_999):06d}",
                "reimbursement_price": reimbursement,
                "actual_price": actual,
                "generally_reimbursed": rng.random() > 0.03,
            }
        )
    return {
        "report_id": report_id,
        "pharmacy_number": pharmacy.number,
        "pharmacy_site_p_number": pharmacy.p_number,
        "dispensing_id": f"{rng.randint(0, 10**10 - 1):010d}",
        "ordination_id": f"{rng.randint(1, 99):02d}",
        "paid_or_invoiced_at": paid_at.isoformat(),
        "person": {"key": person.key, "birth_date": person.birth_date.isoformat()},
        "lines": lines,
    }


def encoded_reports(
    count: int,
    people: list[Person],
    shops: list[Pharmacy],
    start: datetime,
    span: timedelta,
    seed: int = 7,
    prefix: str = "r",
) -> list[tuple[bytes, bytes, int]]:
    """`count` reports spread over `span` from `start`: (key, value, timestamp ms), in paid-time order."""
    rng = random.Random(seed)
    step = span / max(count, 1)
    out = []
    for i in range(count):
        person = rng.choice(people)
        paid = start + step * i
        value = orjson.dumps(report(f"{prefix}{i}", person, rng.choice(shops), paid, rng))
        out.append((person.key.encode(), value, int(paid.timestamp() * 1000) + 2_000))
    return out


DEMO_START = datetime(2024, 1, 2, 8, 0, tzinfo=UTC)
"""Demo traffic lives in 2024, the last year whose scale is in the register's reference data."""
