"""What the dashboard shows, gathered for one request: the overall state (`overall`, from the
`THRESHOLDS`), the register's aggregates, purchases per minute, obligations by state, overdue and at
risk, the day's compliance per reporter, reads of personal data by role and outcome, and each worker's
liveness, readiness, outbox backlog, incidents and dead letters.

Workers are asked over their own web port (`/health`, `/metrics`); a worker that does not answer is shown
as down, never as an error of the page. The lag comes from the broker (`api.lag`). Nothing here names a
person.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.compliance import DaySummary
from rules.deadlines import COPENHAGEN
from rules.identifiers import mask_person_numbers
from sinks import counts, monitor_reads
from sinks import tables as t
from sinks.times import utc

MINUTES = 30

Level = Literal["green", "amber", "red"]
WORDS: dict[Level, str] = {
    "green": "All well",
    "amber": "Attention needed",
    "red": "Something is wrong",
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What turns the dashboard's overall state amber or red, all in one place (the README's dashboard
    paragraph lists them). Red: a worker does not answer, the register or the broker does not answer,
    an obligation is overdue, a topic's lag in seconds reaches `lag_red_s`, or the outbox's oldest
    unsent output reaches `outbox_red_s`. Amber: no worker is listed, a worker is not ready or
    reports incidents, an obligation is at risk, a topic's lag reaches `lag_amber_s`, the outbox's
    oldest unsent output reaches `outbox_amber_s`, or an alert (other than one saying something is
    over) was raised in the last hour."""

    lag_amber_s: float = 10.0
    lag_red_s: float = 60.0  # the default grace of "immediately" (§ 7 stk. 1): reports turn late
    outbox_amber_s: float = 30.0  # the default REGHUB_OUTBOX_STALE_SECONDS: any worker takes it on
    outbox_red_s: float = 300.0
    at_risk_s: float = 30.0  # an open obligation due within this is at risk
    overdue_window_h: float = 24.0  # missing obligations due within this are overdue (red)
    incident_window_s: float = 3600.0  # a worker's incidents of the last hour count
    broker_stale_s: float = 15.0  # lag older than this: the broker counts as unreachable


THRESHOLDS = Thresholds()


def overall(
    *,
    register_up: bool,
    workers: list[dict[str, Any]],
    broker: dict[str, Any] | None,
    overdue: list[dict[str, Any]],
    at_risk: list[dict[str, Any]],
    now: datetime,
    limits: Thresholds = THRESHOLDS,
) -> dict[str, Any]:
    """The one state at the top of the dashboard: its level (the worst of its reasons), its words, and
    each reason with its own level, worst first."""
    reasons: list[tuple[Level, str]] = []
    if not register_up:
        reasons.append(("red", "the register (database) does not answer"))
    if not workers:
        reasons.append(("amber", "no worker listed (REGHUB_WORKER_URLS): readiness unknown"))
    oldest_unsent = 0.0
    for w in workers:
        name = w["url"]
        if not w.get("alive"):
            reasons.append(("red", f"{name} does not answer"))
            continue
        if not w.get("ready"):
            kinds = "; ".join(p.split(":", 1)[0] for p in w.get("problems", [])) or "not ready"
            reasons.append(("amber", f"{name} not ready: {kinds}"))
        recent = [
            i
            for i in w.get("incidents", [])
            if now.timestamp() - float(i.get("at", 0)) <= limits.incident_window_s
        ]
        if recent:
            kinds = ", ".join(sorted({str(i.get("kind")) for i in recent}))
            reasons.append(
                ("amber", f"{name}: {len(recent)} incident(s) in the last hour ({kinds})")
            )
        oldest_unsent = max(oldest_unsent, float(w.get("outbox_oldest_unsent_seconds") or 0))
    if oldest_unsent >= limits.outbox_amber_s:
        level: Level = "red" if oldest_unsent >= limits.outbox_red_s else "amber"
        reasons.append((level, f"outputs unsent for {oldest_unsent:.0f} s (outbox backlog)"))
    if broker is None:
        reasons.append(("amber", "lag not asked of the broker (no Kafka settings)"))
    elif broker["state"] == "unreachable":
        reasons.append(("red", f"{broker['error'] or 'broker unreachable'}: lag unknown"))
    elif broker["state"] == "starting":
        reasons.append(("amber", "asking the broker for the lag"))
    else:
        for topic in broker["topics"]:
            seconds = topic["seconds"]
            if seconds >= limits.lag_amber_s:
                level = "red" if seconds >= limits.lag_red_s else "amber"
                reasons.append(
                    (
                        level,
                        f"{topic['topic']}: {seconds:.0f} s behind ({topic['messages']} messages), "
                        f"{topic['trend']}",
                    )
                )
        raised = {k: n for k, n in broker["alerts"].items() if k not in _CLEARING}
        if raised:
            listed = ", ".join(f"{k} {n}" for k, n in raised.items())
            reasons.append(("amber", f"alerts in the last hour: {listed}"))
    if overdue:
        n = overdue[0]["total"]
        reasons.append(("red", f"{n} obligation{'s' if n != 1 else ''} overdue"))
    if at_risk:
        n = len(at_risk)
        reasons.append(
            ("amber", f"{n} obligation{'s' if n != 1 else ''} due within {limits.at_risk_s:.0f} s "
             "and not met")
        )  # fmt: skip
    order = {"red": 0, "amber": 1, "green": 2}
    reasons.sort(key=lambda r: order[r[0]])
    worst: Level = reasons[0][0] if reasons else "green"
    return {
        "level": worst,
        "words": WORDS[worst],
        "reasons": [{"level": lvl, "text": text} for lvl, text in reasons],
    }


_CLEARING = frozenset({"report_resolved", "obligations_at_risk_cleared"})


async def purchases_per_minute(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Purchases registered in each of the last `MINUTES` minutes, oldest first (zeros included): the
    counts the batches keep per minute (`sinks.counts`), at most `counts.SLOTS` rows a minute read."""
    since = counts.since(now, MINUTES)
    found = await counts.minutes_since(conn, since)
    current = counts.minute_of(now)
    return [
        {
            "minute": (since + timedelta(minutes=i)).isoformat(),
            "purchases": found.get(since + timedelta(minutes=i), counts.Tally()).purchases,
            "partial": since + timedelta(minutes=i) >= current,  # the chart leaves it out
        }
        for i in range(MINUTES + 1)
    ]


async def reads_view(conn: AsyncConnection, now: datetime) -> dict[str, dict[str, int]]:
    """Reads of personal data through the API in the last 24 hours, by outcome and role (counts only;
    "-" is a caller without a valid token)."""
    a = t.read_audit
    rows = await conn.execute(
        select(a.c.outcome, a.c.role, func.count())
        .where(a.c.at >= now - timedelta(hours=24))
        .group_by(a.c.outcome, a.c.role)
    )
    shown: dict[str, dict[str, int]] = {"allowed": {}, "refused": {}}
    for outcome, role, count in rows:
        shown[outcome][role or "-"] = int(count)
    return shown


async def obligations_view(
    conn: AsyncConnection, at: datetime | None = None, limits: Thresholds = THRESHOLDS
) -> dict[str, Any]:
    """Obligations by state (the counts the batches and the watch keep, `sinks.counts`), the 20
    missing ones due last (from the index on state and due time), and, as of `at` (default now), the
    overdue ones (missing and due within `limits.overdue_window_h`, or open past their due time) and
    those at risk (open and due within `limits.at_risk_s`); obligation ids masked."""
    at = at or now()
    overdue = await monitor_reads.overdue(conn, at, at - timedelta(hours=limits.overdue_window_h))
    at_risk = await monitor_reads.at_risk(conn, at, limits.at_risk_s)
    ob = t.obligations
    by_state = dict((await counts.totals(conn)).obligations)
    missing = await conn.execute(
        select(ob.c.obligation_id, ob.c.reporter, ob.c.due_at)
        .where(ob.c.state == "missing", ob.c.due_at.is_not(None))  # the partial index's rows
        .order_by(ob.c.due_at.desc())
        .limit(20)
    )
    return {
        "by_state": by_state,
        "missing": [
            {
                "obligation": mask_person_numbers(r.obligation_id, within_runs=True),
                "reporter": r.reporter,
                "due": utc(r.due_at).isoformat(),
            }  # type: ignore[union-attr]
            for r in missing
        ],
        "overdue": [_shown(o, at) for o in overdue],
        "at_risk": [_shown(o, at) for o in at_risk],
    }


def _shown(o: dict[str, Any], at: datetime) -> dict[str, Any]:
    due: datetime = o["due"]
    return {
        **o,
        "obligation": mask_person_numbers(o["obligation"], within_runs=True),
        "due": due.isoformat(),
        "seconds_to_due": round((due - at).total_seconds()),
    }


class Compliance:
    """The day's compliance, read again at most every `every_s`: it is the one figure of a poll that
    reads rows which grow with the traffic (the day's obligations, through their event index)."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._read_at: datetime | None = None
        self._shown: dict[str, Any] | None = None

    async def get(self, conn: AsyncConnection, at: datetime) -> dict[str, Any]:
        fresh = self._read_at is not None and (at - self._read_at).total_seconds() < self.every_s
        if self._shown is None or not fresh or self._shown["day"] != today(at).isoformat():
            self._shown = await compliance_view(conn, at)
            self._read_at = at
        return self._shown


def today(at: datetime) -> date:
    """The day whose compliance the dashboard shows: the Danish local date (the law's day)."""
    return at.astimezone(COPENHAGEN).date()


async def compliance_view(conn: AsyncConnection, at: datetime) -> dict[str, Any]:
    """The compliance of `at`'s Danish day so far, per reporter (open obligations count as missing,
    as at the day's close)."""
    day = today(at)
    summaries: list[DaySummary] = await monitor_reads.compliance_of_day(conn, day)
    return {
        "day": day.isoformat(),
        "reporters": [
            {
                "reporter": s.reporter,
                "on_time": s.on_time,
                "late": s.late,
                "missing": s.missing,
                "resolved": s.resolved,
                "worst_seconds_late": s.worst_seconds_late,
                "on_time_pct": round(100 * s.on_time / s.total, 1) if s.total else None,
            }
            for s in summaries
        ],
    }


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=1.5) as resp:
        return resp.read()


async def worker_view(url: str) -> dict[str, Any]:
    """One worker: alive or not, its assignment and lag per partition, its dead letters by reason."""
    try:
        health = json.loads(await asyncio.to_thread(_get, f"{url}/health"))
        metrics = (await asyncio.to_thread(_get, f"{url}/metrics")).decode()
    except (OSError, ValueError) as exc:
        return {"url": url, "alive": False, "error": type(exc).__name__}
    lag: list[dict[str, Any]] = []
    dead: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "reghub_consumer_lag":
                lag.append({**sample.labels, "lag": int(sample.value)})
            elif sample.name == "reghub_dead_letters_total":
                dead[sample.labels["reason"]] = dead.get(sample.labels["reason"], 0) + sample.value
    return {
        "url": url,
        "alive": True,
        "ready": health.get("ready"),
        "problems": health.get("problems", []),
        "messages": health.get("messages"),
        "outbox_unsent": health.get("outbox_unsent"),
        "outbox_oldest_unsent_seconds": health.get("outbox_oldest_unsent_seconds"),
        "incidents": [
            {
                "kind": str(i.get("kind")),
                "at": i.get("at"),
            }  # the kind only: its detail may name hosts
            for i in health.get("incidents", [])
            if isinstance(i, dict)
        ],
        "lag": sorted(lag, key=lambda x: (x["topic"], int(x["partition"]))),
        "dead_letters": {k: int(v) for k, v in sorted(dead.items())},
    }


def redacted(worker: dict[str, Any], number: int) -> dict[str, Any]:
    """A worker as `/monitor` shows it without a monitoring token: by number, not address, and each
    problem by its kind (the text before its first colon), without hosts, ports or SQLSTATEs."""
    shown = {**worker, "url": f"worker {number}"}
    shown["problems"] = [p.split(":", 1)[0] for p in worker.get("problems", [])]
    return shown


def danish_kroner(ore: int) -> str:
    """An amount in øre as Danish kroner, written in English: 201975 -> "DKK 2,019.75"."""
    sign, ore = ("-" if ore < 0 else ""), abs(ore)
    return f"{sign}DKK {ore // 100:,}.{ore % 100:02d}"


def now() -> datetime:
    return datetime.now(UTC)
