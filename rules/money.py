"""Money on the wire and in the register: integer øre, parsed from and printed as kroner strings."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

Ore = int
"""An amount in øre (1/100 DKK). Every amount the hub stores or computes is one of these."""


def round_half_up(amount: Decimal) -> Ore:
    """Round an exact amount in øre half-up (away from zero at .5) to whole øre (spec/ctr.md § 2)."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def round_hundredths_half_up(hundredths: int) -> Ore:
    """Hundredths of an øre (øre × percent) to whole øre, half-up (away from zero at .5), in integers."""
    whole, rest = divmod(abs(hundredths), 100)
    if rest >= 50:
        whole += 1
    return whole if hundredths >= 0 else -whole


def kroner_to_ore(text: str | Decimal) -> Ore:
    """Parse "123.45" kroner into 12345 øre; more than two decimals is an error, never a rounding.

    Raises:
        ValueError: the text is not a number, or has fractions of an øre.
    """
    try:
        value = Decimal(str(text)) * 100
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {text!r}")
    if value != value.to_integral_value():
        raise ValueError(f"amount has fractions of an øre: {text!r}")
    return int(value)


def ore_to_kroner(amount: Ore) -> str:
    """Print øre as a kroner string with two decimals: 12345 -> "123.45", -5 -> "-0.05"."""
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 100)
    return f"{sign}{whole}.{part:02d}"
