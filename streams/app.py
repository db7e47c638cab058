"""The faust app: lifecycle, web (health) and timers around the register's batch consumer.

Faust hosts the worker; the register path itself is `streams.processor.RegisterProcessor`, a task of
this app, and does not depend on faust's acks, agents or tables. Periodic jobs are faust timers and
cron jobs (`app.timer`, `app.crontab`): they read like the domain and run beside the batches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.app.base import BootStrategy
from tenacity import RetryCallState

from rules.deadlines import COPENHAGEN
from sinks.ctr_store import CtrStore
from sinks.outbox import purge, purge_interval
from sinks.register import RegisterUnavailable
from sinks.retention import daily as retention_daily
from streams import batch, retrying
from streams.compliance import close_day, yesterday
from streams.fee_ledger import refresh_ledger
from streams.health import Health, HealthConfig
from streams.metrics import CONTENT_TYPE
from streams.obligation_watch import LagWatch, earliest_due, raise_missing
from streams.place_watch import raise_unregistered_starts
from streams.processor import RegisterProcessor
from streams.watchdog import Watchdog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxTimers:
    sweep_seconds: float = 10.0  # how often unsent rows left behind are looked for
    stale_seconds: float = 30.0  # a row unsent this long was left behind by its worker
    keep_hours: float = 1.0  # sent rows are kept this long, then deleted


class WebAndTimersOnly(BootStrategy):
    """What faust starts of itself: its web server and sensors, no Kafka client.

    The app runs no agent and no table: the register's consumer and producers are its own
    (`streams.processor`). Faust's consumer would join a group of its own (`<app id>`) and create its
    leader topic (`<app id>-__assignor-__leader`) for nothing, and its producer would hold a broker
    connection no one uses.
    """

    enable_kafka = False


class HubApp(faust.App):
    """A faust app that starts the register consumer as soon as the app starts, and no Kafka client of
    faust's own (`WebAndTimersOnly`): the timers and the web port start without waiting for a group."""

    BootStrategy = WebAndTimersOnly
    register_consumer: Callable[[], Awaitable[None]] | None = None

    async def on_start(self) -> None:
        await super().on_start()
        if self.register_consumer is not None:
            self.add_future(self.register_consumer())


async def wait_for_register(processor: RegisterProcessor, readiness: Health) -> None:
    """Called once at start, before the consumer joins: read the scales until the register answers.

    A register that is down at start is waited for with a backoff like the batch loop's
    (`streams.retrying.register_at_start`: 1 s, doubling up to `retry_backoff_max_s`): one warning per
    attempt with the time of the next, and readiness false with the reason meanwhile. The worker does
    not exit, so its supervisor does not restart it again and again.
    """

    def waiting(state: RetryCallState) -> None:
        exc = retrying.failure(state)
        delay = retrying.next_delay(state)
        # a database that came up empty: the one thing an operator must do before it can start
        unmigrated = "42P01" in str(exc) or "no such table" in str(exc)
        hint = " — run `reghub db upgrade`" if unmigrated else ""
        readiness.waiting = f"waiting for the register: {exc}{hint}"
        at = (datetime.now(UTC) + timedelta(seconds=delay)).astimezone()
        log.warning(
            "register unavailable at start (%s)%s; next attempt in %.0f s, at %s",
            exc,
            hint,
            delay,
            at.strftime("%H:%M:%S"),
        )

    await retrying.register_at_start(
        RegisterUnavailable, processor.config.retry_backoff_max_s, waiting
    )(processor.pipeline.start)
    readiness.waiting = None


async def watch_treatment_starts(processor: RegisterProcessor, now: datetime | None = None) -> int:
    """One tick of the worker's treatment-start watch: raise `treatment_before_registration` for every
    place whose stated treatment start has passed while it is unregistered, once, and publish the
    alerts (`streams.place_watch`). Returns how many were raised; a failure is logged and the next tick
    tries again (the alerts of a committed tick stay in the outbox for the sweep)."""
    if processor.consumer is None:
        return 0  # not started yet
    try:
        outbox_id, alerts = await raise_unregistered_starts(
            processor.pipeline.register, processor.pipeline.outputs(), now or datetime.now(UTC)
        )
        await processor.relay.publish(outbox_id, alerts)
    except (RegisterUnavailable, KafkaError) as exc:
        log.warning("treatment-start watch failed, will try again: %s", exc)
        return 0
    return len(alerts)


def hot_path() -> str:
    """How the dispensing hot path runs in this process: compiled by mypyc or as plain Python."""
    return "plain Python" if (batch.__file__ or "").endswith(".py") else "compiled"


def create_app(
    processor: RegisterProcessor,
    *,
    app_id: str,
    bootstrap: str,
    web_port: int,
    session_timeout_ms: int,
    web_host: str = "127.0.0.1",
    scale_refresh_seconds: float = 60.0,
    obligation_check_seconds: float = 1.0,
    place_check_seconds: float = 60.0,
    health: HealthConfig | None = None,
    outbox: OutboxTimers | None = None,
    broker_credentials: Any = None,
    replication_factor: int = 1,
) -> faust.App:
    """A faust app whose one task runs `processor` until the worker stops; `broker_credentials` (faust's
    SSL or SASL credentials) and `replication_factor` stay in faust's configuration, though it starts
    no Kafka client (`WebAndTimersOnly`). Its web port (health, readiness, metrics) binds `web_host`:
    loopback unless the deployment says otherwise."""
    health = health or HealthConfig()
    outbox = outbox or OutboxTimers()
    app = HubApp(
        app_id,
        broker=f"kafka://{bootstrap}",
        broker_session_timeout=session_timeout_ms / 1000,
        broker_heartbeat_interval=1.0,
        topic_partitions=1,
        topic_replication_factor=replication_factor,
        broker_credentials=broker_credentials,
        store="memory://",
        web_port=web_port,
        web_bind=web_host,
        autodiscover=False,
    )
    readiness = Health(processor, health)
    watchdog = Watchdog(processor, readiness)

    async def register_consumer() -> None:
        # probes run from the start, beside faust's own start-up (its timers begin only after that)
        probing = asyncio.create_task(readiness.run())
        watching: asyncio.Task[None] | None = None
        try:
            await wait_for_register(processor, readiness)
            await processor.start()
            log.info("register consumer started (dispensing hot path: %s)", hot_path())
            # a stall is logged, mended or ended by an exit (streams.watchdog); not while stopping
            watching = asyncio.create_task(watchdog.run())
            try:
                await processor.run()
            finally:
                watching.cancel()
                await processor.close()
        finally:
            probing.cancel()

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

    lag_watch = LagWatch()

    @app.timer(interval=obligation_check_seconds)
    async def watch_obligations() -> None:
        """Raise the alert of every report still missing at its due time, and of the worker's own lag
        putting obligations at risk (`streams.obligation_watch`)."""
        if processor.consumer is None:
            return
        now = datetime.now(UTC)
        try:
            outbox_id, alerts = await raise_missing(
                processor.pipeline.register, processor.pipeline.outputs(), now
            )
            await processor.relay.publish(outbox_id, alerts)
            lag = sum(processor.lag_by_partition().values())
            rate = lag_watch.rate(processor.stats.messages)
            due = await earliest_due(processor.pipeline.register, now) if lag else None
            kind = lag_watch.verdict(lag, rate, due, now)
            if kind is not None:
                detail = f"lag {lag} records at {rate:.0f}/s" + (
                    f"; earliest open obligation due {due.isoformat()}" if due else ""
                )
                await processor.relay.enqueue(
                    [processor.pipeline.outputs().incident(kind, "obligations", detail)]
                )
        except (RegisterUnavailable, KafkaError) as exc:
            log.warning("obligation watch failed, will try again: %s", exc)

    @app.timer(interval=place_check_seconds)
    async def watch_place_starts() -> None:
        """Alert the places whose treatment start passed while unregistered (`watch_treatment_starts`)."""
        await watch_treatment_starts(processor)

    @app.timer(interval=outbox.sweep_seconds)
    async def sweep_outbox() -> None:
        """Publish rows a worker committed but left unsent (it crashed, or its broker connection
        failed); rows younger than `stale_seconds` are still their own worker's to publish."""
        if processor.consumer is None:
            return
        try:
            await processor.relay.drain(older_than=outbox.stale_seconds)
        except (RegisterUnavailable, KafkaError) as exc:
            log.warning("outbox sweep failed, will try again: %s", exc)

    @app.timer(interval=purge_interval(outbox.keep_hours))
    async def purge_outbox() -> None:
        """Delete outbox rows sent longer ago than `keep_hours`; unsent rows stay."""
        if processor.consumer is None:
            return
        try:
            async with processor.register.unit_of_work() as uow:
                deleted = await purge(
                    uow.conn, timedelta(hours=outbox.keep_hours), datetime.now(UTC)
                )
            if deleted:
                log.info(
                    "outbox: deleted %d rows sent more than %g h ago", deleted, outbox.keep_hours
                )
        except RegisterUnavailable as exc:
            log.warning("outbox not purged, will try again: %s", exc)

    @app.crontab("5 0 * * *", timezone=COPENHAGEN)
    async def close_yesterday() -> None:
        """Shortly after local midnight: the compliance summary of the day that ended, once."""
        if processor.consumer is None:
            return
        try:
            day = yesterday(datetime.now(UTC))
            outbox_id, records = await close_day(
                processor.register, processor.pipeline.outputs(), day
            )
            await processor.relay.publish(outbox_id, records)
            log.info("compliance: day %s closed, %d reporters", day, len(records))
        except (RegisterUnavailable, KafkaError) as exc:
            log.warning("compliance summary not made; `reghub compliance` shows the day: %s", exc)

    @app.crontab("15 0 * * *", timezone=COPENHAGEN)
    async def fill_fee_ledger() -> None:
        """Shortly after local midnight: the fee ledger up to the current year, so a new year has its row
        for every place registered in it though nothing happened to it (`streams.fee_ledger`)."""
        if processor.consumer is None:
            return
        try:
            async with processor.register.unit_of_work() as uow:
                rows = await refresh_ledger(uow.places, datetime.now(UTC))
            log.info("fee ledger: %d rows up to date", rows)
        except Exception as exc:  # two workers at once may collide; the next night tries again
            log.warning("fee ledger not brought up to date, will try again: %s", exc)

    @app.crontab("30 2 * * *", timezone=COPENHAGEN)
    async def retention() -> None:
        """At 02:30 Copenhagen: delete what § 4 says is due today (`sinks.retention`). Every worker
        runs it; they take turns and the later ones find nothing left. It logs and never raises."""
        await retention_daily(processor.register.engine)

    @app.timer(interval=15.0)
    async def count_obligations() -> None:
        """The register-wide gauges of `/metrics`: obligations by state, the outbox backlog, the last
        closed day's compliance."""
        if processor.consumer is None:
            return
        try:
            async with processor.register.engine.connect() as conn:
                await processor.metrics.refresh_register(CtrStore(conn), datetime.now(UTC))
        except Exception as exc:  # a metric never stops the worker
            log.warning("register gauges not refreshed: %s", exc)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        """Prometheus metrics (`streams.metrics`)."""
        return web.bytes(processor.metrics.text(), content_type=CONTENT_TYPE)

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        """Liveness: 200 while the process runs, with what it has done and why it is not ready."""
        return web.json(readiness.report())

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        """Readiness: 200 when ready, 503 with the reasons otherwise."""
        report = readiness.report()
        return web.json(
            {"ready": report["ready"], "problems": report["problems"]},
            status=200 if report["ready"] else 503,
        )

    return app
