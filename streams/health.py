"""Is the worker doing its job? Liveness (`/health`) and readiness (`/ready`) from what it has seen.

Not ready while: the consumer has not started; batches fail (register unavailable, outputs not
published); the broker or the register does not answer a probe; or nothing was committed for
`stall_seconds` while the partitions have lag. An orchestrator restarts a worker that stays unready
(compose's health check asks `/ready`). Nothing here names a person.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from sinks import outbox
from streams.processor import RegisterProcessor


@dataclass(frozen=True, slots=True)
class HealthConfig:
    stall_seconds: float = 60.0  # no batch committed this long while lag > 0: stalled
    probe_seconds: float = 5.0  # how often the broker and the register are asked
    probe_timeout: float = 3.0  # an answer slower than this counts as none


@dataclass
class Probes:
    """The last answers of the broker and the register; None until first asked."""

    broker: str | None = None  # "ok" or what went wrong
    register: str | None = None
    outbox_unsent: int | None = None
    outbox_oldest_seconds: float | None = None
    at: float | None = None
    history: list[str] = field(default_factory=list)


class Health:
    """Readiness of one worker, from its processor's stats and periodic probes."""

    def __init__(self, processor: RegisterProcessor, config: HealthConfig = HealthConfig()) -> None:
        self.processor = processor
        self.config = config
        self.probes = Probes()
        self.waiting: str | None = None  # what the worker waits for before it starts, if anything
        self._lag_since: float | None = None  # when lag was first seen after none (`stalled`)

    async def run(self) -> None:
        """Probe every `probe_seconds` until cancelled."""
        while True:
            await self.probe()
            await asyncio.sleep(self.config.probe_seconds)

    async def probe(self) -> None:
        """Ask the broker for metadata and the register for its outbox backlog, each with a timeout."""
        p = self.processor
        timeout = self.config.probe_timeout
        if p.producer is not None:
            self.probes.broker = await _answer(p.producer.client.fetch_all_metadata(), timeout)
        self.probes.register = await _answer(self._outbox_backlog(), timeout)
        self.probes.at = time.time()
        self.stalled()  # notes when lag was first seen, whether or not anyone asks /ready

    async def _outbox_backlog(self) -> None:
        async with self.processor.register.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            count, oldest = await outbox.backlog(conn)
        self.probes.outbox_unsent = count
        self.probes.outbox_oldest_seconds = (
            None if oldest is None else round(time.time() - _epoch(oldest), 1)
        )

    def lag(self) -> int | None:
        """Messages in the assigned partitions not yet committed by this worker (from the last fetch's
        high watermarks); None before the first fetch."""
        found = self.processor.lag_by_partition()
        return sum(found.values()) if found else None

    def problems(self) -> list[str]:
        """Why the worker is not ready; empty when it is."""
        p, s, cfg = self.processor, self.processor.stats, self.config
        now = time.time()
        found = []
        if p.consumer is None:
            found.append("not started")
        if self.waiting is not None:
            found.append(self.waiting)
        if s.failing_since is not None:
            found.append(f"batches failing for {now - s.failing_since:.0f} s: {s.last_error}")
        if s.batch_limit is not None:
            found.append(
                f"batches cut to {s.batch_limit} records after failures (growing back as they "
                "succeed)"
            )
        if self.probes.broker not in (None, "ok"):
            found.append(f"broker: {self.probes.broker}")
        if self.probes.register not in (None, "ok"):
            found.append(f"register: {self.probes.register}")
        if self.probes.at is not None and now - self.probes.at > 3 * (
            cfg.probe_seconds + cfg.probe_timeout
        ):
            found.append(f"probes stuck: last answer {now - self.probes.at:.0f} s ago")
        stall = self.stalled()
        if stall is not None:
            lag, seconds = stall
            found.append(
                f"stalled: lag {'unknown' if lag is None else lag}, nothing committed for "
                f"{seconds:.0f} s ({self.waits_on()})"
            )
        return found

    def stalled(self) -> tuple[int | None, float] | None:
        """(lag, seconds) when nothing was committed for `stall_seconds` while the partitions had
        lag; None otherwise. The seconds count from the last committed batch, or from when lag was
        first seen after none, whichever is later: a worker idle for an hour is not stalled the
        moment its next record arrives. Lag is None (unknown) when partitions were assigned that long
        ago and no fetch has answered for any of them since (every answer tells the log's end, even
        an empty one): the worker is stuck in the hand-over or its fetches never come back."""
        s = self.processor.stats
        lag = self.lag()
        now = time.time()
        if lag is None:
            self._lag_since = None
            since = max(s.assigned_at or now, s.last_batch_at or 0.0)
            if s.assigned and now - since > self.config.stall_seconds:
                return None, now - since
            return None
        if not lag:
            self._lag_since = None
            return None
        if self._lag_since is None:
            self._lag_since = now
        seconds = now - max(s.last_batch_at or s.started_at, self._lag_since)
        if seconds > self.config.stall_seconds:
            return lag, seconds
        return None

    def waits_on(self) -> str:
        """What the batch loop and the publishing wait on now, and who holds the relay's lock."""
        relay = getattr(self.processor, "relay", None)
        holder = relay.holder if relay is not None else None
        return self.processor.steps.describe(("relay lock", holder))

    def report(self) -> dict[str, Any]:
        s = self.processor.stats
        problems = self.problems()
        return {
            "status": "ok" if not problems else "not_ready",
            "ready": not problems,
            "problems": problems,
            "assigned": s.assigned,
            "batches": s.batches,
            "messages": s.messages,
            "outcomes": s.outcomes,
            "failed_batches": s.failures,
            "batch_limit": s.batch_limit,
            "seconds_since_last_batch": None
            if s.last_batch_at is None
            else round(time.time() - s.last_batch_at, 1),
            "lag": self.lag(),
            "outbox_unsent": self.probes.outbox_unsent,
            "outbox_oldest_unsent_seconds": self.probes.outbox_oldest_seconds,
            "published": relay.published
            if (relay := getattr(self.processor, "relay", None))
            else 0,
            "incidents": s.incidents[-10:],
        }


async def _answer(call: Any, timeout: float) -> str:
    try:
        await asyncio.wait_for(call, timeout)
    except TimeoutError:
        return f"no answer in {timeout:g} s"
    except Exception as exc:  # any failure is the answer: the probe reports it, never raises
        return f"{type(exc).__name__}: {exc}"[:200]
    return "ok"


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch of a timestamp read back (SQLite returns naive UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return float(moment.timestamp())
