"""The register's answers in the scenarios' terms (the shape of a case's `expected`), and the
comparison of a case's results with what it expects."""

from __future__ import annotations

from typing import Any

from rules.money import ore_to_kroner

Outcome = tuple[str, dict[str, Any]]
"""What the hub answered a sent message: ("decision" | "change", its body) or ("rejected", the
dead letter's headers)."""


def answer(eid: str, kind: str, outcome: Outcome) -> dict[str, Any]:
    """The register's answer to an event that is not a purchase: its change-feed outcome, or
    `refused` with the dead letter's reason."""
    got, body = outcome
    if got == "rejected":
        return {
            "event_id": eid,
            "type": kind,
            "status": "refused",
            "reason": body.get("reghub-reason"),
        }
    return {"event_id": eid, "type": kind, "status": body.get("outcome", "applied")}


def _kr(amount: int | None) -> str | None:
    return None if amount is None else ore_to_kroner(amount)


def _label(message_id: str) -> str:
    """A scenario's own id of a message the runner sent as `s<run>:<id>`."""
    return message_id.split(":", 1)[-1]


def purchase_result(
    eid: str, d: dict[str, Any], event: dict[str, Any], supplement: bool
) -> dict[str, Any]:
    """A purchase's decision `d` in the scenarios' terms; `supplement` when the person has a
    helbredstillæg, so that it is reported even when it is zero."""
    if d.get("subsidy") is None:  # parked, or no answer: a decision without amounts
        return {
            "event_id": eid,
            "reported_to_ctr": True,
            "status": d["status"],
            "reason": d.get("reason"),
        }
    out: dict[str, Any] = {
        "event_id": eid,
        "reported_to_ctr": True,
        "status": d["status"],
        "subsidy_entitled": _kr(d["subsidy_entitled"]),
    }
    balancing = d["balancing_applied"] != 0 or d["remaining_balancing"] != 0
    if balancing:
        out["udligning_applied"] = _kr(d["balancing_applied"])
    out["subsidy"] = _kr(d["subsidy"])
    if supplement or d["health_supplement"]:
        out["helbredstillaeg"] = _kr(d["health_supplement"])
    if d["rights_based"]:
        out["rights_based"] = _kr(d["rights_based"])
    if event.get("under_henstand"):
        out["egenbetaling_deferred_to_henstand"] = _kr(d["deferred_to_agreement"])
        out["citizen_pays_at_counter"] = _kr(d["citizen_pays_at_counter"])
    out.update(
        citizen_pays=_kr(d["citizen_pays"]),
        saldo_after=_kr(d["saldo_after"]),
        period_start=d["period_start"],
        period_end=d["period_end"],
        previous_period_end=d["previous_period_end"],
        under18=d["under18"],
    )
    if balancing:
        out["remaining_udligning"] = _kr(d["remaining_balancing"])
    if event.get("granted_subsidy") is not None or d.get("deviation"):
        out["granted_subsidy"] = _kr(d.get("granted_subsidy"))
        out["deviation"] = _kr(d.get("deviation"))
    out.update(_purchase_details(d))
    return out


def _purchase_details(d: dict[str, Any]) -> dict[str, Any]:
    """A decision's lines (when more than one), billing, balancing and henstand agreement, in the
    scenarios' terms; only what is there."""
    out: dict[str, Any] = {}
    if len(d.get("lines") or ()) > 1:
        out["lines"] = [
            {
                "drug_id": ln["drug_id"],
                "subsidy": _kr(ln["subsidy"]),
                "helbredstillaeg": _kr(ln["health_supplement"]),
                "rights_based": _kr(ln["rights_based"]),
                "citizen_pays": _kr(ln["citizen_pays"]),
            }
            for ln in d["lines"]
        ]
    for field_name, name in (
        ("health_supplement_billed_to", "helbredstillaeg_billed_to"),
        ("rights_based_billed_to", "rights_based_billed_to"),
    ):
        billed = d.get(field_name)
        if billed is not None:
            out[name] = {
                "municipality_code": billed["municipality_code"],
                "decision": _label(billed["decision_id"]),
            }
    if d.get("balancing"):
        out["udligning"] = [
            {"amount": _kr(b["amount"]), "arose_in_period_start": b["period_start"]}
            for b in d["balancing"]
        ]
    if d.get("agreement_id"):
        out["henstand_agreement"] = _label(d["agreement_id"])
    return out


def settlement_result(eid: str, d: dict[str, Any]) -> dict[str, Any]:
    """A henstand settlement's decision `d` in the scenarios' terms."""
    return {
        "event_id": eid,
        "total_own_payment": ore_to_kroner(d["total_own_payment"]),
        "total_rates_paid": ore_to_kroner(d["total_rates_paid"]),
        "difference_in_citizens_favour": ore_to_kroner(d["difference_in_citizens_favour"]),
        "payout_with_statement": d["payout_with_statement"],
    }


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences, one line each; empty when every expected field matches.

    An event sent twice is answered by its last result. `status` is checked when given; a refused
    event fails unless its expectation says `refused`, and so does a refused correction, repayment,
    scale or municipal decision that `expected` does not mention.
    """
    by_id = {r["event_id"]: r for r in actual}
    problems = []
    for exp in expected:
        got = by_id.get(exp["event_id"])
        if got is None:
            problems.append(f"{exp['event_id']}: no result")
            continue
        if "error" in got:
            problems.append(f"{exp['event_id']}: {got['error']}")
            continue
        if got.get("status") == "refused" and exp.get("status") != "refused":
            problems.append(f"{exp['event_id']}: refused: {got.get('reason')}")
            continue
        for k, v in exp.items():
            if k not in got:
                problems.append(f"{exp['event_id']}.{k}: expected {v!r}, missing")
            elif got[k] != v:
                problems.append(f"{exp['event_id']}.{k}: expected {v!r}, got {got[k]!r}")
    wanted = {exp["event_id"] for exp in expected}
    for got in by_id.values():
        if "type" in got and got["status"] == "refused" and got["event_id"] not in wanted:
            problems.append(f"{got['event_id']}: {got['type']} refused: {got.get('reason')}")
    return problems
