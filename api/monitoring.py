"""What the dashboard shows, gathered for one request: the register's aggregates, purchases per minute,
obligations by state and the missing ones, reads of personal data by role and outcome, and each
worker's liveness, lag and dead letters.

Workers are asked over their own web port (`/health`, `/metrics`); a worker that does not answer is shown
as down, never as an error of the page. Nothing here names a person.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from rules.identifiers import mask_person_numbers
from sinks import counts
from sinks import tables as t
from sinks.times import utc

MINUTES = 30


async def purchases_per_minute(conn: AsyncConnection, now: datetime) -> list[dict[str, Any]]:
    """Purchases registered in each of the last `MINUTES` minutes, oldest first (zeros included): the
    counts the batches keep per minute (`sinks.counts`), at most `counts.SLOTS` rows a minute read."""
    since = counts.since(now, MINUTES)
    found = await counts.minutes_since(conn, since)
    return [
        {
            "minute": (since + timedelta(minutes=i)).isoformat(),
            "purchases": found.get(since + timedelta(minutes=i), counts.Tally()).purchases,
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


async def obligations_view(conn: AsyncConnection) -> dict[str, Any]:
    """Obligations by state (the counts the batches and the watch keep, `sinks.counts`) and the 20
    missing ones due last (from the index on state and due time)."""
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
    """An amount in øre as Danish kroner: 201975 -> "2.019,75 kr."."""
    sign, ore = ("-" if ore < 0 else ""), abs(ore)
    whole = f"{ore // 100:,}".replace(",", ".")
    return f"{sign}{whole},{ore % 100:02d} kr."


def now() -> datetime:
    return datetime.now(UTC)
