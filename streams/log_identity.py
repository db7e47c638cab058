"""Which log a stored offset belongs to: the broker cluster's id and each topic's id.

An offset only means something in the log it was read from. A topic deleted and created again, or a
broker that lost its storage (the embedded Tansu keeps its log in memory), starts a new log whose
offsets restart at 0; the register's stored offsets must then not be used to skip ahead.

Kafka names a log by the cluster id and the topic id (a UUID given when the topic is created), both in
Metadata responses from version 10 on. aiokafka speaks Metadata only up to version 5 (no topic ids), so
the one request is described here with aiokafka's own protocol types and sent on its connection.
"""

from __future__ import annotations

import base64
from io import BytesIO
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.abstract import AbstractType
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)


class _Uuid(AbstractType[bytes]):
    @classmethod
    def encode(cls, value: bytes | None) -> bytes:
        return value or bytes(16)

    @classmethod
    def decode(cls, data: BytesIO) -> bytes:
        value = data.read(16)
        if len(value) != 16:
            raise ValueError("Buffer underrun decoding a UUID")
        return value


class _MetadataResponse_v10(Response):
    API_KEY = 3
    API_VERSION = 10
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_authorized_operations", Int32),
        ("tags", TaggedFields),
    )


class _MetadataRequest_v10(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 10
    RESPONSE_TYPE = _MetadataResponse_v10
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_id", _Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields)
            ),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIdsRequest(Request[_MetadataRequest_v10]):
    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self.topics = topics

    def build(self, request_struct_class: type[_MetadataRequest_v10]) -> _MetadataRequest_v10:
        return request_struct_class([(None, t, {}) for t in self.topics], False, False, False, {})


class LogIdentityUnknown(Exception):
    """The broker did not say which log a topic is (an old broker, or the topic does not exist)."""


async def log_ids(client: AIOKafkaClient, topics: list[str]) -> dict[str, str]:
    """`<cluster id>/<topic id>` for each topic, from one Metadata v10 request.

    Raises:
        LogIdentityUnknown: the broker speaks no Metadata v10, or a topic has no id.
        aiokafka.errors.KafkaError: the broker could not be asked.
    """
    node = client.get_random_node()
    if node is None:
        await client.force_metadata_update()
        node = client.get_random_node()
    try:
        response: Any = await client.send(node, _TopicIdsRequest(topics))
    except NotImplementedError as exc:
        raise LogIdentityUnknown(f"the broker speaks no Metadata v10: {exc}") from exc
    found: dict[str, str] = {}
    for error_code, name, topic_id, *_ in response.topics:
        if error_code or not any(topic_id):
            raise LogIdentityUnknown(f"no topic id for {name} (error {error_code})")
        tid = base64.urlsafe_b64encode(topic_id).rstrip(b"=").decode()
        found[name] = f"{response.cluster_id}/{tid}"
    missing = set(topics) - set(found)
    if missing:
        raise LogIdentityUnknown(f"no metadata for {sorted(missing)}")
    return found
