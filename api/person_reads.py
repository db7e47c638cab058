"""What the read API reads of one person: the facts access is decided on (`rules.access.PersonFacts`),
their status (§ 3 field by field) and their purchases in a period. Reads only; amounts in øre.

A person is found by any of their numbers and read under their internal id (`rules.identity`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.access import PersonFacts, Principal
from rules.identifiers import parse_person_key, person_birth_date
from sinks import places_tables as pt
from sinks import tables as t
from sinks.times import utc


async def internal_id(conn: AsyncConnection, key: str) -> tuple[str, Any]:
    """The internal id of the person `key` belongs to (the key itself when unknown), and their row."""
    p = t.persons
    row = (await conn.execute(select(p).where(p.c.person_key == key))).first()
    if row is not None and row.alias_of is not None:
        own = (await conn.execute(select(p).where(p.c.person_key == row.alias_of))).first()
        return row.alias_of, own
    return key, row


async def known(conn: AsyncConnection, person: str) -> bool:
    """Whether the register has the person (by internal id): a row of their own, a custody row naming
    them as child or parent, or a doctor's treatment relation with them."""
    _, row = await internal_id(conn, person)
    if row is not None:
        return True
    c, r = t.custody, t.treatment_relations
    for named in (
        select(c.c.child_key).where(or_(c.c.child_key == person, c.c.parent_key == person)),
        select(r.c.person_key).where(r.c.person_key == person),
    ):
        if (await conn.execute(named.limit(1))).first() is not None:
            return True
    return False


def _in_force(valid_from: Any, valid_to: Any, today: date) -> Any:
    return and_(valid_from <= today, or_(valid_to.is_(None), valid_to >= today))


async def facts(conn: AsyncConnection, principal: Principal, key: str, today: date) -> PersonFacts:
    """The register facts `rules.access.decide` needs about `key` for `principal` on `today`."""
    person, row = await internal_id(conn, key)
    birth = row.birth_date if row is not None else _birth_date_of(key)
    caller = None
    if principal.cpr is not None:
        caller, _ = await internal_id(conn, principal.cpr)
    c = t.custody
    custodians = frozenset(
        (
            await conn.execute(
                select(c.c.parent_key).where(
                    c.c.child_key == person, _in_force(c.c.valid_from, c.c.valid_to, today)
                )
            )
        ).scalars()
    )
    treating: frozenset[str] = frozenset()
    if principal.authorisation_id is not None:
        r, pr, st = t.treatment_relations, pt.practitioners, pt.states
        query = (
            select(r.c.authorisation_id)
            .select_from(
                r.join(
                    pr,
                    and_(
                        pr.c.sor_id == r.c.sor_id,
                        pr.c.authorisation_id == r.c.authorisation_id,
                        pr.c.active.is_(True),
                    ),
                ).join(st, and_(st.c.sor_id == r.c.sor_id, st.c.state == "REGISTERED"))
            )
            .where(
                r.c.person_key == person,
                r.c.authorisation_id == principal.authorisation_id,
                _in_force(r.c.valid_from, r.c.valid_to, today),
            )
        )
        treating = frozenset((await conn.execute(query)).scalars())
    return PersonFacts(
        person=person,
        today=today,
        birth_date=birth,
        caller_person=caller,
        custodians=custodians,
        treating_doctors=treating,
    )


def _birth_date_of(key: str) -> date | None:
    """The birth date a key carries (a fictitious number's is known only from the register)."""
    try:
        return person_birth_date(parse_person_key(key), None)
    except ValueError:
        return None


async def status(conn: AsyncConnection, person: str, today: date) -> dict[str, Any]:
    """Every status field of `rules.access.STATUS_FIELDS` for the person's internal id on `today`.

    The current period is the latest one while it covers `today`; once it has ended it is the previous
    one (the next purchase opens a new period, § 146 stk. 1)."""
    sp = t.subsidy_periods
    periods = (
        await conn.execute(
            select(sp).where(sp.c.person_key == person).order_by(sp.c.period_start.desc()).limit(2)
        )
    ).all()
    current = previous = None
    if periods:
        latest = periods[0]
        if latest.period_end >= today:
            current = latest
            previous = periods[1] if len(periods) > 1 else None
        else:
            previous = latest
    g, s, a, b = t.grants, t.supplements, t.deferral_agreements, t.balances
    grants = (
        await conn.execute(select(g).where(g.c.person_key == person).order_by(g.c.valid_from))
    ).all()
    supplements = (
        await conn.execute(select(s).where(s.c.person_key == person).order_by(s.c.valid_from))
    ).all()
    agreements = (
        await conn.execute(
            select(a)
            .where(a.c.person_key == person, a.c.settled.is_(False))
            .order_by(a.c.entered_on)
        )
    ).all()
    balances = (
        await conn.execute(
            select(b)
            .where(b.c.person_key == person, b.c.remaining != 0)
            .order_by(b.c.arose_on, b.c.balance_id)
        )
    ).all()
    return {
        "current_period": _period(current),
        "previous_period": _period(previous),
        "saldo": {"ore": current.saldo if current is not None else 0},
        "under18": current.under18 if current is not None else None,
        "individual_grants": [
            {
                "grant_id": r.grant_id,
                "kind": r.kind,
                "drug_id": r.drug_id,
                "valid_from": r.valid_from.isoformat(),
                "valid_to": r.valid_to.isoformat(),
                "in_force": r.valid_from <= today <= r.valid_to,
            }
            for r in grants
        ],
        "deferral_agreement": [
            {
                "agreement_id": r.agreement_id,
                "pharmacy_number": r.pharmacy_number,
                "entered_on": r.entered_on.isoformat(),
                "ended_on": r.ended_on.isoformat() if r.ended_on else None,
                "monthly_rate_ore": r.monthly_rate,
                "rates": r.rates,
                "deferred_total_ore": r.deferred_total,
            }
            for r in agreements
        ],
        "health_supplement": [
            _supplement(r, today) for r in supplements if r.kind != "rights_based"
        ],
        "rights_based": [_supplement(r, today) for r in supplements if r.kind == "rights_based"],
        "balancing_amounts": [
            {
                "amount_ore": r.amount,
                "remaining_ore": r.remaining,
                "arose_on": r.arose_on.isoformat(),
                "arose_in_period": r.arose_in_period.isoformat() if r.arose_in_period else None,
            }
            for r in balances
        ],
    }


def _period(row: Any) -> dict[str, str] | None:
    if row is None:
        return None
    return {"start": row.period_start.isoformat(), "end": row.period_end.isoformat()}


def _supplement(r: Any, today: date) -> dict[str, Any]:
    return {
        "decision_id": r.decision_id,
        "municipality_code": r.municipality_code,
        "percentage": str(r.percentage) if r.percentage is not None else None,
        "valid_from": r.valid_from.isoformat(),
        "valid_to": r.valid_to.isoformat() if r.valid_to else None,
        "in_force": r.valid_from <= today and (r.valid_to is None or today <= r.valid_to),
    }


async def purchases(conn: AsyncConnection, person: str, which: str, today: date) -> dict[str, Any]:
    """The person's purchases in their current or previous period (as `status` names them)."""
    shown = await status(conn, person, today)
    period = shown["current_period" if which == "current" else "previous_period"]
    if period is None:
        return {"period": None, "purchases": []}
    p = t.purchases
    rows = (
        await conn.execute(
            select(p)
            .where(
                p.c.person_key == person, p.c.period_start == date.fromisoformat(period["start"])
            )
            .order_by(p.c.paid_or_invoiced_at, p.c.id)
        )
    ).all()
    return {
        "period": period,
        "purchases": [
            {
                "report_id": r.report_id,
                "kind": r.kind,
                "return_of": r.return_of,
                "status": r.status,
                "pharmacy_number": r.pharmacy_number,
                "pharmacy_site_p_number": r.pharmacy_site_p_number,
                "paid_or_invoiced_at": utc(r.paid_or_invoiced_at).isoformat(),  # type: ignore[union-attr]
                "lines": _lines(r.lines),
                "basis_ore": r.basis,
                "subsidy_ore": r.subsidy,
                "balancing_applied_ore": r.balancing_applied,
                "health_supplement_ore": r.health_supplement,
                "rights_based_ore": r.rights_based,
                "citizen_pays_ore": r.citizen_pays,
                "saldo_after_ore": r.saldo_after,
            }
            for r in rows
        ],
    }


def _lines(stored: str) -> list[dict[str, Any]]:
    """A purchase's medicines as its `lines` column keeps them (a list, or an object holding one)."""
    kept = orjson.loads(stored)
    lines = kept["lines"] if isinstance(kept, dict) else kept
    return [
        {
            "drug_id": ln["drug_id"],
            "reimbursement_price_ore": ln.get("reimbursement_price"),
            "actual_price_ore": ln.get("actual_price"),
        }
        for ln in lines
    ]
