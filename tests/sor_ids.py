"""SOR ids for tests, made by a Verhoeff check digit built here from its definition (spec § 3), so that
no test takes its ids from the table in `rules.treatment_places.identifiers` that it is checking.

The check (J. Verhoeff, "Error Detecting Decimal Codes", 1969; the tables as in Wikipedia's "Verhoeff
algorithm"): digits are elements of the dihedral group D5, 0-4 the rotations r^k and 5-9 the
reflections s·r^k; the digit at position i from the right (the check digit at 0) is first permuted by
σ^(i mod 8), σ = (1 5 7 6 2 8 3 0 9 4) in one-line notation; a number is valid when the product is 0.
"""

from __future__ import annotations

SIGMA = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)
"""Verhoeff's base permutation, p[1] of the published table."""

SOR_NAMESPACE = "1000016"


def d5(a: int, b: int) -> int:
    """The product of two elements of D5: r^j·r^k = r^(j+k), r^j·s r^k = s r^(k-j), s r^j·r^k =
    s r^(j+k), s r^j·s r^k = r^(k-j), numbered as in Verhoeff's table (rotations 0-4, reflections 5-9)."""
    if a < 5 and b < 5:
        return (a + b) % 5
    if a < 5:
        return 5 + (a + b - 5) % 5
    if b < 5:
        return 5 + (a - 5 - b) % 5
    return (a - b) % 5


def sigma_power(i: int, digit: int) -> int:
    """σ applied `i mod 8` times to `digit` (σ has order 8)."""
    for _ in range(i % 8):
        digit = SIGMA[digit]
    return digit


def inverse(a: int) -> int:
    """The element whose product with `a` is the identity 0."""
    return next(b for b in range(10) if d5(a, b) == 0)


def product(digits: str, first_position: int) -> int:
    """The D5 product over `digits` read from the right, the rightmost at `first_position`."""
    c = 0
    for i, digit in enumerate(reversed(digits), start=first_position):
        c = d5(c, sigma_power(i, int(digit)))
    return c


def check_digit(body: str) -> int:
    """The Verhoeff check digit to append to `body`."""
    return inverse(product(body, 1))


def is_valid(number: str) -> bool:
    """Whether `number` ends in its Verhoeff check digit."""
    return product(number, 0) == 0


def sor_id(item: str, partition: str = "00") -> str:
    """An SOR id in SOR's namespace 1000016: item number, namespace, partition, check digit."""
    body = f"{item}{SOR_NAMESPACE}{partition}"
    return body + str(check_digit(body))
