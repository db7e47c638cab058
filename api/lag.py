"""The register's lag as the broker sees it, and the alerts of the last hour, for the dashboard.

Lag is asked of Kafka, not of the workers: the register's consumer group's committed offsets (an admin
client's OffsetFetch) against each input partition's end (`sinks.kafka_client.log_ends`, which mends
Tansu's end offsets). So a worker that died leaves its partitions' lag on view, growing, instead of
taking it away with its `/metrics`. Per topic: the messages not committed, summed over its partitions,
and the lag in seconds: the age of the oldest message not committed, over its partitions. That age
counts from the record's timestamp (at the committed offset; `CreateTime` unless the topic keeps
`LogAppendTime`) or, when later, from the round in which this API first saw the record in the log: a
producer may stamp old times (a replay, the demo's clock), and a record seen arriving has not waited
longer than that. Its trend compares the seconds with those about `TREND_WINDOW_S` ago.

A background task (`BrokerView.run`) asks every `EVERY_S` with `TIMEOUT_S` for the whole round, so a
request never waits for the broker: `/monitor` shows the last answer and, when there is none recent,
"broker unreachable". Alerts are read from the alerts topic by a consumer of no group, from
`ALERT_BACKLOG` records before each partition's end at start; only their kind and time are kept (no
person, no reporter).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from sinks.kafka_client import BrokerUnavailable, log_ends, start_client

EVERY_S = 2.0
"""How often the broker is asked."""
TIMEOUT_S = 8.0
"""The longest one round of questions may take (connect, offsets, ends, the oldest records)."""
TREND_WINDOW_S = 30.0
"""The trend compares the lag with the one asked about this long ago (or the oldest kept, if younger)."""
CLOSE_S = 2.0
"""The longest a client is given to stop."""
ALERT_WINDOW_S = 3600.0
"""Alerts counted: those of the last hour."""
ALERT_BACKLOG = 2000
"""Records per partition of the alerts topic read back at start."""
CLEARING = frozenset({"report_resolved", "obligations_at_risk_cleared"})
"""Alert kinds that say something is over: shown, never a reason for concern."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaAccess:
    """Where and what to ask: the bootstrap address, the register's consumer group, its input topics,
    the alerts topic, and what gives the client options (`reghub.kafka_options.kafka_client_options` in the shell;
    called at each connect, so that a TLS file that cannot be read shows as the broker unreachable
    instead of stopping the API)."""

    bootstrap: str
    group: str
    topics: tuple[str, ...]
    alerts_topic: str
    options: Callable[[], Mapping[str, Any]] = dict


@dataclass(frozen=True, slots=True)
class Sample:
    """One topic's lag at one time: messages not committed and the oldest one's age in seconds."""

    at: float
    messages: int
    seconds: float


def trend(then: Sample | None, now: Sample) -> str:
    """ "growing", "shrinking" or "steady" from `then` to `now`, by the seconds of lag (a second's
    jitter ignored: the message count swings with each commit of a worker that keeps up), or "new"
    without an earlier sample."""
    if then is None:
        return "new"
    if now.seconds > then.seconds + 1:
        return "growing"
    if now.seconds < then.seconds - 1:
        return "shrinking"
    return "steady"


class BrokerView:
    """The last answers of the broker about the register's lag and the recent alerts.

    `run` asks in the background until cancelled; `view` is what `/monitor` shows, without waiting.
    """

    def __init__(
        self,
        access: KafkaAccess,
        every_s: float = EVERY_S,
        timeout_s: float = TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access = access
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.error: str | None = None
        self.answered_at: float | None = None
        self.topics: list[dict[str, Any]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._alerts: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._assigned: set[TopicPartition] = set()
        self._oldest: dict[TopicPartition, tuple[int, float | None]] = {}
        self._ends_seen: dict[TopicPartition, tuple[int, int]] = {}  # the broker's end, mended
        self._arrivals: dict[TopicPartition, deque[tuple[int, float]]] = {}  # (end, first seen at)
        self._first_seen_end: dict[TopicPartition, int] = {}
        self._history: dict[str, deque[Sample]] = {}
        self._alert_times: deque[tuple[float, str]] = deque()

    async def run(self) -> None:
        """Ask every `every_s` until cancelled; a round that fails or takes longer than `timeout_s`
        closes the clients (the next round connects again) and leaves `error` set. One log line when
        the broker stops answering and one when it answers again; the client library's own
        connection errors, which would repeat many times a second, are not logged (these are the
        API's only Kafka clients)."""
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        try:
            while True:
                before = self.error
                try:
                    await asyncio.wait_for(self.refresh(), self.timeout_s)
                    self.error = None
                except BrokerUnavailable:
                    self.error = "broker unreachable"
                except TimeoutError:
                    self.error = f"broker unreachable (no answer within {self.timeout_s:g} s)"
                except Exception as exc:  # any failure of the round is shown, never raised
                    self.error = f"broker unreachable ({type(exc).__name__})"
                if self.error is not None:
                    if before is None:
                        log.warning(
                            "lag not asked of Kafka at %s: %s", self.access.bootstrap, self.error
                        )
                    await self.close()
                elif before is not None:
                    log.warning("lag asked of Kafka at %s again", self.access.bootstrap)
                await asyncio.sleep(self.every_s)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the clients, each given `CLOSE_S` (a client of a broker that went away may wait for
        it), and forget what was learnt of the log: it may be another one when the broker is back."""
        clients: list[Any] = [c for c in (self._consumer, self._alerts, self._admin) if c]
        self._consumer = self._alerts = self._admin = None
        for client in clients:
            stop = client.close if isinstance(client, AIOKafkaAdminClient) else client.stop
            try:
                await asyncio.wait_for(stop(), CLOSE_S)
            except asyncio.CancelledError:
                # a consumer's stop re-raises its fetch task's cancellation: only ours is ours
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except Exception:  # a client of a broker that went away may fail to stop: it is gone
                pass
        self._assigned = set()
        self._ends_seen = {}
        self._oldest = {}
        self._arrivals = {}
        self._first_seen_end = {}

    async def _connect(self) -> None:
        a = self.access
        options = a.options()
        protocol = str(options.get("security_protocol", "PLAINTEXT"))
        common = {"bootstrap_servers": a.bootstrap, "request_timeout_ms": 5000, **options}
        reading = {
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": 50,  # offset lookups wait behind a pending fetch: keep it short
        }
        self._consumer = AIOKafkaConsumer(**reading, **common)
        await start_client(self._consumer, a.bootstrap, protocol)
        self._admin = AIOKafkaAdminClient(**common)
        await start_client(self._admin, a.bootstrap, protocol)
        self._alerts = AIOKafkaConsumer(**reading, **common)
        await start_client(self._alerts, a.bootstrap, protocol)
        await self._start_alerts()

    async def _start_alerts(self) -> None:
        """Assign the alerts topic and go back `ALERT_BACKLOG` records from each partition's end."""
        consumer = self._alerts
        assert consumer is not None
        await consumer.topics()
        tps = [
            TopicPartition(self.access.alerts_topic, p)
            for p in sorted(consumer.partitions_for_topic(self.access.alerts_topic) or ())
        ]
        if not tps:
            return
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await log_ends(consumer, tps)
        for tp in tps:
            consumer.seek(tp, max(begins[tp], ends[tp] - ALERT_BACKLOG))

    async def refresh(self) -> None:
        """One round: the group's committed offsets, the ends, the oldest records not committed (only
        where the committed offset moved since the last round), and the alerts published since.

        Raises:
            BrokerUnavailable: no broker answered at the bootstrap address.
        """
        if self._consumer is None:
            await self._connect()
        consumer, admin = self._consumer, self._admin
        assert consumer is not None and admin is not None
        await consumer.topics()  # the metadata of every topic, for their partitions
        tps = [
            TopicPartition(topic, p)
            for topic in self.access.topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if set(tps) != self._assigned:
            consumer.assign(tps)
            self._assigned = set(tps)
        consumer.resume(*tps)
        try:
            await self._lag(consumer, admin, tps)
        finally:
            consumer.pause(*tps)  # between rounds the input is not fetched: this reads no stream
        await self._read_alerts(self.clock())
        self.answered_at = self.clock()

    async def _lag(
        self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient, tps: list[TopicPartition]
    ) -> None:
        committed = await admin.list_consumer_group_offsets(self.access.group, partitions=tps)
        done = {tp: o.offset for tp, o in committed.items() if o.offset >= 0}
        # without a commit the worker starts from the beginning (auto_offset_reset earliest)
        unread = [tp for tp in tps if tp not in done]
        begins = await consumer.beginning_offsets(unread) if unread else {}
        ends = await self._ends(consumer, tps)
        starts = {tp: done[tp] if tp in done else begins[tp] for tp in tps}
        behind = [tp for tp in tps if ends[tp] > starts[tp]]
        await self._oldest_times(consumer, {tp: starts[tp] for tp in behind})
        now = self.clock()
        self._observe(ends, starts, now)
        self.topics = self._by_topic(tps, starts, ends, now)

    def _observe(
        self, ends: dict[TopicPartition, int], starts: dict[TopicPartition, int], now: float
    ) -> None:
        """Note when each partition's end moved: a record this API saw arrive is known to have waited
        since then at most, whatever its producer's timestamp says. The records already there at the
        first round (or after the end went back: another log) have only their timestamps."""
        for tp, end in ends.items():
            seen = self._arrivals.get(tp)
            if seen is None or end < seen[-1][0]:
                self._arrivals[tp] = deque([(end, now)])
                self._first_seen_end[tp] = end
                continue
            if end > seen[-1][0]:
                seen.append((end, now))
            while len(seen) > 1 and seen[0][0] <= starts[tp]:
                seen.popleft()  # all of its records are consumed

    def _arrived(self, tp: TopicPartition, offset: int) -> float | None:
        """When this API first saw the record at `offset` in the log; None if it was there before."""
        if offset < self._first_seen_end.get(tp, offset + 1):
            return None
        return next((at for end, at in self._arrivals.get(tp, ()) if end > offset), None)

    def _age(self, tp: TopicPartition, offset: int, now: float) -> float | None:
        """The age of the record at `offset`: since its timestamp, or since this API saw it arrive
        when that is later (a producer may set an old timestamp: a replay, a demo's clock)."""
        stamped = self._oldest.get(tp, (0, None))[1]
        arrived = self._arrived(tp, offset)
        if stamped is None and arrived is None:
            return None
        since = max(t for t in (stamped, arrived) if t is not None)
        return max(0.0, now - since)

    async def _ends(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """Each partition's end: the broker's answer, mended by `log_ends` (a fetch of the last batch)
        only where that answer changed since the last round."""
        if not tps:
            return {}
        answered = await consumer.end_offsets(tps)
        changed = [tp for tp in tps if self._ends_seen.get(tp, (-1, 0))[0] != answered[tp]]
        if changed:
            mended = await log_ends(consumer, changed)
            for tp in changed:
                self._ends_seen[tp] = (answered[tp], mended[tp])
        return {tp: self._ends_seen[tp][1] for tp in tps}

    async def _oldest_times(
        self, consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int]
    ) -> None:
        """The timestamp (s) of the record at each partition's committed offset, fetched only for the
        partitions whose committed offset moved since it was last fetched."""
        wanted = {tp: at for tp, at in starts.items() if self._oldest.get(tp, (-1, None))[0] != at}
        for tp, at in wanted.items():
            consumer.seek(tp, at)
        pending = set(wanted)
        deadline = time.monotonic() + 3
        while pending and time.monotonic() < deadline:
            fetched = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in fetched.items():
                if tp in pending and records:
                    first = records[0]  # aiokafka drops the batch's records before the position
                    self._oldest[tp] = (wanted[tp], first.timestamp / 1000)
                    pending.discard(tp)
        for tp in pending:  # nothing readable there (a compacted gap): age unknown this round
            self._oldest[tp] = (wanted[tp], None)
        for tp in list(self._oldest):
            if tp not in starts:
                del self._oldest[tp]

    def _by_topic(
        self,
        tps: list[TopicPartition],
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        now: float,
    ) -> list[dict[str, Any]]:
        shown: list[dict[str, Any]] = []
        for topic in self.access.topics:
            mine = [tp for tp in tps if tp.topic == topic]
            if not mine:
                continue
            messages = sum(max(0, ends[tp] - starts[tp]) for tp in mine)
            ages = [
                age
                for tp in mine
                if ends[tp] > starts[tp] and (age := self._age(tp, starts[tp], now)) is not None
            ]
            seconds = round(max(ages, default=0.0), 1)
            sample = Sample(now, messages, seconds)
            history = self._history.setdefault(topic, deque())
            while len(history) > 1 and now - history[1].at >= TREND_WINDOW_S:
                history.popleft()
            then = history[0] if history else None
            history.append(sample)
            shown.append(
                {
                    "topic": topic,
                    "messages": messages,
                    "seconds": seconds,
                    "trend": trend(then, sample),
                    "compared_with_seconds_ago": None if then is None else round(now - then.at),
                    "partitions": [
                        {
                            "partition": tp.partition,
                            "committed": starts[tp],
                            "end": ends[tp],
                            "messages": max(0, ends[tp] - starts[tp]),
                        }
                        for tp in mine
                    ],
                }
            )
        return shown

    async def _read_alerts(self, now: float) -> None:
        """The alerts published since the last round: their kind and time, for the last hour."""
        consumer = self._alerts
        if consumer is None or not consumer.assignment():
            if consumer is not None:
                await self._start_alerts()
            return
        for _ in range(20):  # at most 20 fetches a round; the rest waits for the next one
            fetched = await consumer.getmany(timeout_ms=50, max_records=5000)
            if not fetched:
                break
            for records in fetched.values():
                for record in records:
                    self._alert_times.append((record.timestamp / 1000, _kind(record.value)))
        while self._alert_times and self._alert_times[0][0] < now - ALERT_WINDOW_S:
            self._alert_times.popleft()

    def alerts(self) -> dict[str, int]:
        """Alerts of the last `ALERT_WINDOW_S` by kind (a kind the hub does not know: "unknown")."""
        since = self.clock() - ALERT_WINDOW_S
        counted: dict[str, int] = {}
        for at, kind in self._alert_times:
            if at >= since:
                counted[kind] = counted.get(kind, 0) + 1
        return dict(sorted(counted.items()))

    def view(self, stale_after_s: float) -> dict[str, Any]:
        """What `/monitor` shows: "ok" with the lag per topic and the alerts, or "unreachable" with why
        (also when the last answer is older than `stale_after_s`), or "starting" before the first."""
        now = self.clock()
        if self.answered_at is None:
            state = "unreachable" if self.error else "starting"
        elif self.error or now - self.answered_at > stale_after_s:
            state = "unreachable"
        else:
            state = "ok"
        return {
            "state": state,
            "error": self.error
            or (
                f"no answer for {now - self.answered_at:.0f} s" if state == "unreachable" else None
            ),
            "asked_at": None
            if self.answered_at is None
            else datetime.fromtimestamp(self.answered_at, UTC).isoformat(),
            "every_s": self.every_s,
            "trend_window_s": TREND_WINDOW_S,
            "topics": self.topics if state == "ok" else [],
            "alerts": self.alerts(),
        }


def _kind(value: bytes | None) -> str:
    try:
        kind = json.loads(value or b"{}").get("kind")
    except (ValueError, AttributeError):
        return "unknown"
    return kind if isinstance(kind, str) and kind.isidentifier() else "unknown"
