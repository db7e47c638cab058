"""Step 1 of a batch, `decode`: bytes to a schema model, or a `Rejected` value — decided per message.

Called for every record before batching; must not do I/O. A reason is specific (`schema.<error>`) and
never contains the message's content, so it is safe to send back to the producer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from rules.identifiers import normalise_person_key
from streams.topics import DISPENSINGS, SUBSIDY_SCALES, TopicSpec


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from: enough to find it again, and the original bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Decoded:
    """A valid message with where it came from; `message_id` is the report id on dispensings."""

    source: Source
    spec: TopicSpec
    message: BaseModel
    message_id: str
    person_key: str | None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that will not be applied: goes to the dead-letter topic with its reason and bytes."""

    source: Source
    reason: str
    message_id: str | None = None
    person_key: str | None = None


def reason_of(error: ValidationError) -> str:
    """A specific, content-free reason: `schema.<type>: <field path>: <message>`."""
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    message = first["msg"].removeprefix("Value error, ")
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"schema.{first['type']}: {where}: {message}{more}"


def parse(value: bytes, spec: TopicSpec) -> BaseModel:
    """The topic's model from JSON bytes.

    Raises:
        pydantic.ValidationError: the bytes are not a valid message of this topic.
    """
    assert spec.schema is not None
    return spec.schema.model_validate_json(value)


def record_key(message: BaseModel, spec: TopicSpec) -> str:
    """The key a message must travel under: the person key, or a scale's effective date."""
    if spec is SUBSIDY_SCALES:
        return message.effective_from.isoformat()  # type: ignore[attr-defined]
    return message.person.key  # type: ignore[attr-defined]


def _claimed_id(value: bytes) -> str | None:
    """The id an invalid message claims to have, so its sender can match the dead letter to it."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    claimed = data.get("message_id") or data.get("report_id")
    return claimed if isinstance(claimed, str) and len(claimed) <= 64 else None


def decode(source: Source, spec: TopicSpec) -> Decoded | Rejected:
    """Parse and validate one record against its topic's schema; also check the record key."""
    if source.value is None:
        return Rejected(source, "schema.empty_value: a message without a value (tombstone)")
    try:
        message = parse(source.value, spec)
    except ValidationError as exc:
        return Rejected(source, reason_of(exc), _claimed_id(source.value))
    m: Any = message
    person = getattr(m, "person", None)
    decoded = Decoded(
        source,
        spec,
        message,
        m.report_id if spec is DISPENSINGS else m.message_id,
        person.key if person is not None else None,
    )
    key = source.key.decode("utf-8", "replace") if source.key is not None else None
    if key is None or normalise_person_key(key) != record_key(message, spec):
        return Rejected(
            source,
            f"schema.key_mismatch: the record key must be the message's {spec.key}",
            decoded.message_id,
            decoded.person_key,
        )
    return decoded
