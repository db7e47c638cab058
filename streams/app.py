"""The faust app: lifecycle, web (health) and timers around the register's batch consumer.

Faust hosts the worker; the register path itself is `streams.processor.RegisterProcessor`, a task of
this app, and does not depend on faust's acks, agents or tables. Periodic jobs are faust timers and
cron jobs (`app.timer`, `app.crontab`): they read like the domain and run beside the batches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust

from sinks.register import RegisterUnavailable
from streams.processor import RegisterProcessor

log = logging.getLogger(__name__)


class HubApp(faust.App):
    """A faust app that starts the register consumer as soon as the app starts.

    Faust starts `@app.task`s only once its own consumer group has joined (about 3 s on Tansu with a
    6 s session timeout, measured from the worker's log); the register consumer does not need that
    group, so it starts beside the join, not after it.
    """

    register_consumer: Callable[[], Awaitable[None]] | None = None

    async def on_start(self) -> None:
        await super().on_start()
        if self.register_consumer is not None:
            self.add_future(self.register_consumer())


def create_app(
    processor: RegisterProcessor,
    *,
    app_id: str,
    bootstrap: str,
    web_port: int,
    session_timeout_ms: int,
    scale_refresh_seconds: float = 60.0,
) -> faust.App:
    """A faust app whose one task runs `processor` until the worker stops."""
    app = HubApp(
        app_id,
        broker=f"kafka://{bootstrap}",
        broker_session_timeout=session_timeout_ms / 1000,
        broker_heartbeat_interval=1.0,
        topic_partitions=1,
        topic_replication_factor=1,
        store="memory://",
        web_port=web_port,
        web_bind="0.0.0.0",
        autodiscover=False,
    )

    async def register_consumer() -> None:
        await processor.start()
        log.info("register consumer started")
        try:
            await processor.run()
        finally:
            await processor.close()

    app.register_consumer = register_consumer

    @app.timer(interval=scale_refresh_seconds)
    async def refresh_scales() -> None:
        """Every worker re-reads the subsidy scales: the scale topic has one partition, so only one
        worker of the group consumes it, and a scale replaced there reaches the others this way."""
        if processor.consumer is None:
            return  # not started yet
        try:
            await processor.pipeline.refresh_scales()
        except RegisterUnavailable as exc:
            log.warning("scales not refreshed, will try again: %s", exc)

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        s = processor.stats
        return web.json(
            {
                "status": "ok",
                "batches": s.batches,
                "messages": s.messages,
                "outcomes": s.outcomes,
                "failed_batches": s.failures,
                "seconds_since_last_batch": None
                if s.last_batch_at is None
                else round(time.time() - s.last_batch_at, 1),
            }
        )

    return app
