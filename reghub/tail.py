"""`reghub tail`: print a topic's messages readably — amounts in kroner, person keys masked."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer

from reghub.kafka_options import kafka_client_options, start_client
from reghub.settings import Settings

_MONEY = {
    "subsidy_entitled",
    "balancing_applied",
    "subsidy",
    "health_supplement",
    "rights_based",
    "citizen_pays",
    "deferred_to_agreement",
    "citizen_pays_at_counter",
    "saldo_before",
    "saldo_after",
    "remaining_balancing",
    "granted_subsidy",
    "deviation",
    "total_own_payment",
    "total_rates_paid",
    "difference_in_citizens_favour",
}
_KEY = re.compile(rb"\b\d{6}-?\d{4}\b")


def _mask(raw: bytes) -> bytes:
    return _KEY.sub(b"**********", raw)


def render(value: bytes, headers: list[tuple[str, bytes]], show_person_keys: bool) -> str:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        parts = []
        for k, v in data.items():
            if k in _MONEY and isinstance(v, int):
                v = f"{v / 100:.2f} kr"
            if k == "person_key" and not show_person_keys:
                v = "**********"
            if v not in (None, 0, False, "0.00 kr") or k in ("status", "subsidy"):
                parts.append(f"{k}={v}")
        text = " ".join(parts)
    else:
        text = repr(value[:200])
    text = text if show_person_keys else _mask(text.encode()).decode()
    extra = " ".join(
        f"{k}={v.decode(errors='replace')}" for k, v in headers if k.startswith("reghub-")
    )
    return f"{text} {extra}".strip()


async def tail_topic(
    settings: Settings,
    topic: str,
    *,
    limit: int,
    latest: bool,
    idle_timeout: float,
    show_person_keys: bool,
) -> None:
    name = settings.topic_prefix + topic
    consumer = AIOKafkaConsumer(
        name,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"reghub-tail-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest" if latest else "earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        **kafka_client_options(settings),
    )
    await start_client(consumer, settings.kafka_bootstrap, settings.kafka_security_protocol)
    seen = 0
    last = time.monotonic()
    try:
        while not limit or seen < limit:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and idle_timeout and time.monotonic() - last > idle_timeout:
                break
            for tp, records in batch.items():
                for r in records:
                    at = datetime.fromtimestamp(r.timestamp / 1000, UTC).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    )
                    key = (r.key or b"").decode(errors="replace")
                    key = key if show_person_keys else _mask(key.encode()).decode()
                    print(
                        f"{tp.partition}/{r.offset} {at} key={key} {render(r.value or b'', list(r.headers), show_person_keys)}",
                        flush=True,
                    )
                    seen += 1
                    last = time.monotonic()
                    if limit and seen >= limit:
                        return
    finally:
        await consumer.stop()
