"""Which log a stored offset belongs to (`streams.log_identity`), asked of the real Tansu broker through
confluent-kafka's admin API: the broker's cluster id and each topic's id, in Kafka's text form."""

from __future__ import annotations

import re
import uuid

import pytest

from reghub.broker import EmbeddedBroker, create_topics
from streams.log_identity import LogIdentityUnknown, log_ids
from streams.topics import INPUTS, TopicNames

pytestmark = pytest.mark.broker

TOPIC_ID = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 bytes, URL-safe base64 without padding


async def test_each_topic_is_named_by_the_cluster_and_its_own_id(broker: EmbeddedBroker) -> None:
    names = TopicNames(f"id{uuid.uuid4().hex[:8]}.")
    await create_topics(broker.bootstrap, names, 2)
    topics = [names(spec) for spec in INPUTS]
    found = await log_ids(broker.bootstrap, topics)
    assert sorted(found) == sorted(topics)
    clusters = {value.split("/", 1)[0] for value in found.values()}
    assert clusters == {broker.cluster_id}
    ids = [value.split("/", 1)[1] for value in found.values()]
    assert all(TOPIC_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert await log_ids(broker.bootstrap, topics[:1]) == {topics[0]: found[topics[0]]}


async def test_a_topic_the_broker_does_not_have_has_no_identity(broker: EmbeddedBroker) -> None:
    with pytest.raises(LogIdentityUnknown, match="UNKNOWN_TOPIC_OR_PART"):
        await log_ids(broker.bootstrap, [f"missing{uuid.uuid4().hex[:8]}"])
