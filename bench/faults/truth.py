"""Counting a scenario from its sources of truth (the register, the decisions and dead-letter
topics) once it is quiet, and the table's columns for a scenario of synthetic reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from bench.faults.hub import Hub
from bench.faults.report import Row
from bench.faults.topics import DeadLetter, purchase_decision, read_all
from streams.topics import DEAD_LETTER, DECISIONS, DISPENSINGS


@dataclass
class Truth:
    """What the sources of truth say once a scenario is quiet and its workers stopped."""

    purchases: dict[str, int]  # report id → rows
    saldo_mismatches: int
    decisions: Counter[str]  # report id → decision records on the topic
    dead: list[DeadLetter]
    # (source topic, message id) in processed_messages, and the dispensings registered as purchases
    # (known by their purchase row alone)
    processed: set[tuple[str, str]]


async def count_truth(hub: Hub) -> Truth:
    assert hub.sql is not None
    rows = await hub.sql.fetch("SELECT report_id, count(*) AS n FROM purchases GROUP BY report_id")
    mismatches = await hub.sql.scalar(
        """
        SELECT count(*) FROM subsidy_periods sp
        LEFT JOIN (
            SELECT person_key, period_start, sum(basis) AS s FROM purchases
            WHERE period_start IS NOT NULL GROUP BY person_key, period_start
        ) p ON p.person_key = sp.person_key AND p.period_start = sp.period_start
        WHERE sp.saldo <> coalesce(p.s, 0)
        """
    )
    processed = await hub.sql.fetch("SELECT source_topic, message_id FROM processed_messages")
    if rows is None or mismatches is None or processed is None:
        raise RuntimeError("the register could not be read after the scenario")
    ids = await read_all(hub.bootstrap, hub.topic(DECISIONS), purchase_decision)
    decisions = Counter(rid for rid in ids if rid is not None)
    dead = await read_all(hub.bootstrap, hub.topic(DEAD_LETTER), DeadLetter.of)
    return Truth(
        {r["report_id"]: r["n"] for r in rows},
        int(mismatches),
        decisions,
        dead,
        {(r["source_topic"], r["message_id"]) for r in processed}
        | {(hub.topic(DISPENSINGS), r["report_id"]) for r in rows},
    )


def reason_summary(dead: list[DeadLetter], top: int = 6) -> str:
    reasons = Counter(d.reason.split(":")[0] or "(none)" for d in dead)
    return ", ".join(f"{k} {v}" for k, v in reasons.most_common(top))


def fill_reports(row: Row, hub: Hub, truth: Truth) -> None:
    """The columns for a scenario of synthetic reports."""
    assert hub.feeder is not None
    sent = hub.feeder.sent.ids
    registered = set(truth.purchases)
    dead_ids = {d.message_id for d in truth.dead}
    decided = {rid for rid in truth.decisions if rid in registered}
    row.sent = len(sent)
    row.registered = len(registered & sent)
    row.decided = len(decided & sent)
    row.dead_lettered = len(truth.dead)
    row.lost_reports = len(sent - registered - dead_ids)
    row.lost_decisions = len(registered - set(truth.decisions))
    doubled_rows = sum(1 for n in truth.purchases.values() if n > 1)
    row.doubled = doubled_rows + truth.saldo_mismatches
    row.republished = sum(truth.decisions[r] - 1 for r in decided)
    if truth.saldo_mismatches:
        row.notes.append(f"{truth.saldo_mismatches} subsidy periods whose saldo ≠ Σ basis")
    if doubled_rows:
        row.notes.append(f"{doubled_rows} report ids with more than one purchase row")
    if truth.dead:
        distinct = len({d.source for d in truth.dead})
        again = (
            f" ({len(truth.dead) - distinct} of them again)" if distinct < len(truth.dead) else ""
        )
        row.notes.append(f"dead letters{again}: {reason_summary(truth.dead)}")
    strangers = registered - sent
    if strangers:
        row.notes.append(f"{len(strangers)} registered report ids the broker never acknowledged")
    if row.lost_decisions:
        missing = sorted(registered - set(truth.decisions), key=_report_number)
        row.notes.append(
            f"registered without a decision: {len(missing)} reports, e.g. " + ", ".join(missing[:5])
        )


def _report_number(rid: str) -> int:
    tail = rid.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0
