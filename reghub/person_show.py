"""`reghub person show KEY`: one person as the register holds them, for an operator.

Their internal id and every other number they have had (with dates and what each replaced), merges of
two persons found to be one (with the periods and balancing amounts before and after), date of death,
custody, periods with saldo, purchases and open balancing amounts. Person numbers are shown as the
pseudonyms the change feed uses (so an operator can follow them there) unless `--show-person-keys`.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from sqlalchemy import func, or_, select

from reghub.settings import Settings
from rules.money import ore_to_kroner
from rules.privacy import pseudonym
from sinks import tables as t
from sinks.register import make_engine


def masker(show: bool, secret: bytes) -> Callable[[str | None], str]:
    def mask(key: str | None) -> str:
        if key is None:
            return "-"
        return key if show else f"pseudonym {pseudonym(key, secret)}"

    return mask


async def show(settings: Settings, key: str, *, show_person_keys: bool = False) -> list[str]:
    """The lines to print; an unknown key gives one line saying so."""
    mask = masker(show_person_keys, settings.pseudonym_key.get_secret_value().encode())
    engine = make_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(select(t.persons).where(t.persons.c.person_key == key))
            ).first()
            if row is None:
                return [f"{mask(key)}: not in the register"]
            person = row.alias_of or row.person_key
            own = (
                await conn.execute(select(t.persons).where(t.persons.c.person_key == person))
            ).one()
            lines = [
                f"person {mask(person)} (internal id), born {own.birth_date.isoformat()}"
                + (f", died {own.died_on.isoformat()}" if own.died_on else ""),
            ]
            aliases = (
                await conn.execute(
                    select(t.persons)
                    .where(t.persons.c.alias_of == person)
                    .order_by(t.persons.c.alias_since)
                )
            ).all()
            for a in aliases:
                since = a.alias_since.isoformat() if a.alias_since else "?"
                lines.append(
                    f"  number {mask(a.person_key)} since {since}, replacing {mask(a.alias_from)}"
                )
            merges = (
                await conn.execute(
                    select(t.person_merges).where(t.person_merges.c.person_key == person)
                )
            ).all()
            for m in merges:
                details = orjson.loads(m.details)
                lines.append(
                    f"  merged {mask(m.merged_key)} on {m.effective_on.isoformat()} "
                    f"({m.message_id}): periods before "
                    + ", ".join(_period(p) for p in details["periods_before"])
                    + "; after "
                    + ", ".join(_period(p) for p in details["periods_after"])
                    + "; balancing "
                    + (
                        ", ".join(
                            f"{b['report_id']} {ore_to_kroner(b['amount'])}"
                            for b in details["balancing"]
                        )
                        or "none"
                    )
                )
            custody = (
                await conn.execute(
                    select(t.custody).where(
                        or_(t.custody.c.child_key == person, t.custody.c.parent_key == person)
                    )
                )
            ).all()
            for c in custody:
                to = c.valid_to.isoformat() if c.valid_to else "open"
                lines.append(
                    f"  custody {mask(c.parent_key)} -> {mask(c.child_key)} "
                    f"{c.valid_from.isoformat()}..{to}"
                )
            periods = (
                await conn.execute(
                    select(t.subsidy_periods)
                    .where(t.subsidy_periods.c.person_key == person)
                    .order_by(t.subsidy_periods.c.period_start)
                )
            ).all()
            for p in periods:
                lines.append(
                    f"  period {p.period_start.isoformat()}..{p.period_end.isoformat()} "
                    f"saldo {ore_to_kroner(p.saldo)}" + (" (under 18)" if p.under18 else "")
                )
            count, entitled = (
                await conn.execute(
                    select(func.count(), func.coalesce(func.sum(t.purchases.c.subsidy_entitled), 0))
                    .where(t.purchases.c.person_key == person)
                    .where(t.purchases.c.status != "cancelled")
                )
            ).one()
            lines.append(f"  purchases {count}, subsidy due {ore_to_kroner(int(entitled))}")
            open_balances = (
                await conn.execute(
                    select(t.balances)
                    .where(t.balances.c.person_key == person, t.balances.c.remaining != 0)
                    .order_by(t.balances.c.arose_on)
                )
            ).all()
            for b in open_balances:
                lines.append(
                    f"  balancing {ore_to_kroner(b.remaining)} open of {ore_to_kroner(b.amount)}, "
                    f"arose {b.arose_on.isoformat()} ({b.origin})"
                )
            return lines
    finally:
        await engine.dispose()


def _period(p: dict[str, object]) -> str:
    return f"{p['start']}..{p['end']} {ore_to_kroner(int(p['saldo']))}"  # type: ignore[call-overload]
