"""The faust app: lifecycle, web (health) and timers around the register's batch consumer.

Faust hosts the worker; the register path itself is `streams.processor.RegisterProcessor`, a task of
this app, and does not depend on faust's acks, agents or tables.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust

from streams.processor import RegisterProcessor

log = logging.getLogger(__name__)


def create_app(
    processor: RegisterProcessor,
    *,
    app_id: str,
    bootstrap: str,
    web_port: int,
    session_timeout_ms: int,
) -> faust.App:
    """A faust app whose one task runs `processor` until the worker stops."""
    app = faust.App(
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

    @app.task
    async def register_consumer() -> None:
        await processor.start()
        log.info("register consumer started")
        try:
            await processor.run()
        finally:
            await processor.close()

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
