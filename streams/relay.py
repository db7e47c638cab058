"""The outbox relay: publishes what the register committed, in commit order, and marks it sent.

The worker hands each committed batch's outputs straight to `publish` (no read back), and marks what it
published sent at most once per `mark_interval_s` (and at `flush`). Whenever that may not be the whole
story — at start, after a failed publish, when partitions are assigned, and on a timer
for rows another worker left behind — `drain` publishes every unsent row from the register first, oldest
first, so an output is never published before an earlier one of the same key is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta

from sinks import outbox
from sinks.errors import RegisterUnavailable
from sinks.publisher import PERMANENT, Publisher
from sinks.register import Register
from sinks.rows import Outgoing

log = logging.getLogger(__name__)

DRAIN_ROWS = 20  # rows per drain transaction: up to 20 batches' outputs


class Relay:
    """Publishes outbox rows for one worker.

    `dirty` means rows may be unsent that this worker has not published in order yet: the next
    `publish` drains the register first.

    Raises (from `publish`, `drain`, `enqueue`):
        aiokafka.errors.KafkaError: the broker did not take the outputs; they stay unsent.
        RegisterUnavailable: the register could not be read; nothing was lost.
    """

    def __init__(
        self,
        register: Register,
        publisher: Publisher,
        mark_interval_s: float = 1.0,
        incident: Callable[[str, str, str], Outgoing] | None = None,
    ) -> None:
        self.register = register
        self.publisher = publisher
        self.mark_interval_s = mark_interval_s
        self.incident = (
            incident  # builds an alert (kind, topic, detail) for an undeliverable output
        )
        self.undeliverable = 0  # outputs the broker refused for good since start
        self.dirty = True
        self.published = 0  # records published since start, drains included
        self.last_sent_at: float | None = None
        self._lock = asyncio.Lock()
        self.holder: tuple[str, float] | None = None  # who holds the lock, since (monotonic)
        self._unmarked: list[int] = []  # rows published, not yet marked sent
        self._marked_at = -math.inf

    async def publish(self, outbox_id: int | None, outputs: Sequence[Outgoing]) -> None:
        """Publish a committed batch's outputs (kept as outbox row `outbox_id`); mark them sent, with
        the rows published before, if `mark_interval_s` has passed since the last mark.

        A row is marked in a transaction of its own; one per batch was a third of each batch's
        publishing, which the next batch waits for. A row published and not yet marked when the
        worker dies is published again at the next start: a duplicate, never a loss."""
        async with self._locked("publish"):
            if self.dirty:
                await self._drain()
                return
            if outbox_id is None:
                return
            try:
                await self._send(outputs, outbox_id)
            except BaseException:
                self.dirty = True
                raise
            self._sent(len(outputs))
            self._unmarked.append(outbox_id)
            if time.monotonic() - self._marked_at >= self.mark_interval_s:
                await self._mark()

    async def flush(self) -> None:
        """Mark sent now every row published and not yet marked: before the partitions go to another
        worker (whose first drain would publish them again) and when the worker stops."""
        async with self._locked("flush"):
            if self._unmarked:
                await self._mark()

    async def enqueue(self, outputs: Sequence[Outgoing]) -> None:
        """Outputs that belong to no batch (a worker's own alerts): kept, then published like a batch."""
        if not outputs:
            return
        async with self.register.unit_of_work() as uow:
            outbox_id = await outbox.add(uow.conn, outputs, datetime.now(UTC))
        await self.publish(outbox_id, outputs)

    async def drain(self, older_than: float = 0.0) -> int:
        """Publish unsent rows, oldest first; with `older_than`, only rows committed that many seconds
        ago or earlier (a timer's sweep for rows another worker left). Returns records published."""
        async with self._locked("outbox sweep" if older_than else "drain"):
            return await self._drain(older_than)

    @contextlib.asynccontextmanager
    async def _locked(self, why: str) -> AsyncIterator[None]:
        """The relay's lock, noting who holds it (`holder`): a stall names it (`streams.watchdog`)."""
        async with self._lock:
            self.holder = (why, time.monotonic())
            try:
                yield
            finally:
                self.holder = None

    async def _drain(self, older_than: float = 0.0) -> int:
        published = 0
        before = datetime.now(UTC) - timedelta(seconds=older_than) if older_than else None
        while True:
            marked = self._unmarked  # published already: marked first, so not published again
            async with self.register.unit_of_work() as uow:
                await outbox.lock(uow.conn)
                if marked:
                    await outbox.mark_sent(uow.conn, marked, datetime.now(UTC))
                rows = await outbox.unsent(uow.conn, DRAIN_ROWS, before)
                for outbox_id, payload in rows:
                    outputs = outbox.decode(payload)
                    await self._send(outputs, outbox_id)
                    published += len(outputs)
                await outbox.mark_sent(uow.conn, [i for i, _ in rows], datetime.now(UTC))
            self._unmarked = []
            if len(rows) < DRAIN_ROWS:
                break
        if not older_than:
            self.dirty = False
        if published:
            self._sent(published)
            log.info("outbox: published %d records left unsent", published)
        return published

    async def _send(self, outputs: Sequence[Outgoing], outbox_id: int) -> None:
        """Publish one outbox row. An output the broker refuses for good (`sinks.publisher.PERMANENT`:
        too large, a topic it may not write) is an incident of its own: logged, alerted on the alerts
        topic, left in the outbox row for the operator, and the row counts as published, so a restart
        does not hit the same row forever and the partition goes on.

        Raises:
            aiokafka.errors.KafkaError: not delivered now; the row stays unsent.
        """
        try:
            await self.publisher.publish(outputs, outbox_id)
            return
        except PERMANENT as exc:
            log.error("outbox row %d: the broker refuses an output for good (%s)", outbox_id, exc)
        refused = await self.publisher.publish_each(outputs, outbox_id)
        alerts = []
        for i, m, exc in refused:
            self.undeliverable += 1
            detail = (
                f"output {outbox_id}.{i}, {len(m.value)} bytes, refused for good "
                f"({type(exc).__name__}); kept in the outbox row, the worker goes on"
            )
            log.error("undeliverable to %s: %s", m.topic, detail)
            if self.incident is not None:
                alerts.append(self.incident("output_undeliverable", m.topic, detail))
        if alerts:
            try:
                await self.publisher.publish(alerts)
            except PERMANENT as exc:  # the alerts topic itself: the log above must do
                log.error("the undeliverable-output alerts are refused too: %s", exc)

    def _sent(self, records: int) -> None:
        self.published += records
        self.last_sent_at = time.time()

    async def _mark(self) -> None:
        """Mark the published rows sent; if the register is unreachable now, try again with the next
        row (a row left unmarked is published again by a later drain: a duplicate, never a loss)."""
        ids = self._unmarked
        self._marked_at = time.monotonic()
        try:
            async with self.register.unit_of_work() as uow:
                await outbox.mark_sent(uow.conn, ids, datetime.now(UTC))
        except RegisterUnavailable as exc:
            log.warning("outbox: %d rows published but not yet marked sent: %s", len(ids), exc)
            self._unmarked = ids
            return
        self._unmarked = []
