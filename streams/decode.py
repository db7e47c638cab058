"""Step 1 of a batch, `decode`: bytes to a schema model, or a `Rejected` value — decided per message.

Called for every record before batching; must not do I/O. A reason is specific (`schema.<error>`) and
never contains the message's content — no value, and no name the message chose (an unexpected field, a
dict key): its field path is built from the schema's own field names only. So it is safe to send back to
the producer and to show on the change feed.
"""

from __future__ import annotations

import hashlib
import struct
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, RootModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from pydantic_core.core_schema import ErrorType

from rules.identifiers import mask_person_numbers, normalise_person_key
from rules.values import value
from schemas.common import RECEIVED_AT, MessageId, WireModel
from streams.topics import TopicSpec


@value
class Source:
    """Where a message came from: enough to find it again, and the original bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@value
class Decoded:
    """A valid message with where it came from; `message_id` is the report id on dispensings, `digest`
    its `content_hash` (computed here, while the batch before waits on the database)."""

    source: Source
    spec: TopicSpec
    message: BaseModel
    message_id: str
    person_key: str | None
    digest: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that will not be applied: goes to the dead-letter topic with its reason and bytes."""

    source: Source
    reason: str
    message_id: str | None = None
    person_key: str | None = None


_INPUT_IN_MESSAGE: dict[str, str] = {
    "union_tag_invalid": "Input tag does not match any of the expected tags",
    "timezone_offset": "Input should have the required timezone offset",
    "uuid_parsing": "Input should be a valid UUID",
    "url_parsing": "Input should be a valid URL",
    "url_syntax_violation": "Input should be a valid URL",
    "no_such_attribute": "Input has an attribute that is not allowed",
    "get_attribute_error": "Input attribute could not be read",
    "iteration_error": "Input could not be iterated over",
    "mapping_type": "Input should be a valid mapping",
    "bytes_invalid_encoding": "Input should be validly encoded data",
    "datetime_object_invalid": "Input should be a valid datetime object",
}
"""pydantic error types whose message may quote the input (a tag, an offset, a parser's snippet): our own
words instead. Every other built-in type's message comes from the schema (`Input should be 'sale' or
'return'`, a pattern, a bound) or from a parser that names no input (`invalid number at line 1 column 8`).
"""

_BUILT_IN_TYPES = frozenset(typing.get_args(ErrorType))
_OWN_VALIDATORS = frozenset({"value_error", "assertion_error"})
"""Raised by the schemas' own validators, whose messages never repeat a value (and are masked anyway)."""

UNNAMED = "<name>"
"""Stands in the field path for a name the message chose (a dict key): never the name itself."""


def _models_by_name() -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    todo: list[type[BaseModel]] = [WireModel]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found


def _inner(annotation: Any) -> list[Any]:
    """The types a field's annotation may hold, with Optional, unions and Annotated taken apart."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [t for arg in typing.get_args(annotation) for t in _inner(arg)]
    return [annotation]


def _kind(t: Any) -> str:
    """'model', 'sequence', 'mapping' or 'value' for one of a field's types."""
    if isinstance(t, type) and issubclass(t, BaseModel):
        return "model"
    origin = typing.get_origin(t) or t
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return "mapping"
    if isinstance(origin, type) and issubclass(origin, Sequence) and origin not in (str, bytes):
        return "sequence"
    return "value"


def _items(types_: list[Any]) -> list[Any]:
    """The element (or mapping value) types of the sequences and mappings among `types_`."""
    out: list[Any] = []
    for t in types_:
        if _kind(t) in ("sequence", "mapping"):
            args = typing.get_args(t)
            out.extend(inner for a in args[-1:] for inner in _inner(a))
    return out


def field_path(loc: Sequence[int | str], model: type[BaseModel] | None) -> tuple[str, bool]:
    """A readable path (`lines[0].drug_id`) to where an error is, built from `model`'s own field names
    and list indices only; any other part (a name the message chose) becomes `UNNAMED`.

    Returns the path and whether its last part was such a name.
    """
    current: list[Any] = [model] if model is not None else []
    if model is not None and issubclass(model, RootModel):  # a union at the top: its members
        current = _inner(model.model_fields["root"].annotation)
    path = ""
    unnamed = False
    for part in loc:
        unnamed = False
        models = [t for t in current if _kind(t) == "model"]
        containers = [t for t in current if _kind(t) in ("sequence", "mapping")]
        if isinstance(part, int) and not isinstance(part, bool):
            if any(_kind(t) == "sequence" for t in containers):
                path += f"[{part}]"
                current = _items(containers)
                continue
        elif any(part in m.model_fields for m in models):
            path += f".{part}" if path else part
            current = [
                t
                for m in models
                if part in m.model_fields
                for t in _inner(m.model_fields[part].annotation)
            ]
            continue
        elif any(part == m.__name__ for m in models):
            continue  # pydantic names the union member it tried: a class of ours, not a field
        elif any(part in _tags(m) for m in models):
            current = [m for m in models if part in _tags(m)]
            continue  # a discriminated union names the member by its tag: a value of our schema
        unnamed = True
        path += f"[{UNNAMED}]" if containers else (f".{UNNAMED}" if path else UNNAMED)
        current = _items(containers)
    return path, unnamed


def _tags(model: type[BaseModel]) -> set[str]:
    """The values of `model`'s one-valued `Literal` string fields: the tags a union may name it by."""
    tags: set[str] = set()
    for f in model.model_fields.values():
        if typing.get_origin(f.annotation) is typing.Literal:
            args = typing.get_args(f.annotation)
            if len(args) == 1 and isinstance(args[0], str):
                tags.add(args[0])
    return tags


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in _OWN_VALIDATORS:
        text = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return mask_person_numbers(text, "<person number>")
    if kind in _INPUT_IN_MESSAGE:
        return _INPUT_IN_MESSAGE[kind]
    if kind not in _BUILT_IN_TYPES:  # a custom error: its template may carry anything
        return "Input is not valid here"
    return error["msg"]


def reason_of(error: ValidationError, model: type[BaseModel] | None = None) -> str:
    """A specific, content-free reason: `schema.<type>: <field path>: <message>`.

    `model` is the schema validated against (by default the wire model the error names). The path keeps
    only its declared field names and list indices; an unexpected field is reported where it was, never
    by its name (`schema.extra_forbidden: lines[0]: an unexpected field`). The message is pydantic's
    only where it cannot quote the input.
    """
    first = error.errors(include_url=False, include_input=False, include_context=False)[0]
    if model is None:
        model = _models_by_name().get(error.title)
    where, unnamed = field_path(first["loc"], model)
    if first["type"] == "extra_forbidden" and unnamed:
        for suffix in (f".{UNNAMED}", f"[{UNNAMED}]", UNNAMED):
            if where.endswith(suffix):
                where = where.removesuffix(suffix)
                break
        message = "an unexpected field"
    else:
        message = _message(first)
    more = f" (+{error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"schema.{first['type']}: {where or 'message'}: {message}{more}"


def parse(value: bytes, spec: TopicSpec, timestamp_ms: int = 0) -> BaseModel:
    """The topic's model from JSON bytes; `timestamp_ms`, when the record reached the broker (0:
    unknown), bounds its times (`schemas.common.EventTime`).

    Raises:
        pydantic.ValidationError: the bytes are not a valid message of this topic.
    """
    assert spec.schema is not None
    # the model's own validator, as `model_validate_json` calls it, without that wrapper's frame
    validator = spec.schema.__pydantic_validator__
    if timestamp_ms > 0:
        received = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
        return validator.validate_json(value, context={RECEIVED_AT: received})
    return validator.validate_json(value)


def record_key(message: BaseModel, spec: TopicSpec) -> str:
    """The key a message must travel under (`TopicSpec.key_of`): the person key, a scale's effective
    date, or a treatment-place registration's company (CVR number or registrant id)."""
    return spec.key_of(message.root if isinstance(message, RootModel) else message)


_MESSAGE_ID: TypeAdapter[str] = TypeAdapter(MessageId)


def _claimed_id(value: bytes) -> str | None:
    """The id an invalid message claims to have, so its sender can match the dead letter to it; None
    unless it is a well-formed id (`schemas.common.MessageId`): one that may be a CPR number, or any
    other text, never reaches the dead letter's headers or the change feed."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    claimed = data.get("message_id") or data.get("report_id")
    try:
        return _MESSAGE_ID.validate_python(claimed, strict=True)
    except ValidationError:
        return None


def content_hash(value: bytes | None) -> int:
    """64 bits of BLAKE2b over the message's canonical JSON (sorted keys, no whitespace), so a resend
    that only reorders or re-spaces its fields is the same message, and one that changes a value is not."""
    raw = value or b""
    try:  # decoded messages are JSON anyway; a `try` costs less than `contextlib.suppress`'s object
        raw = orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        return _hash(raw)
    return _hash(raw)


_SIGNED_64 = struct.Struct(">q").unpack
"""Eight bytes as a big-endian signed integer: `int.from_bytes(…, "big", signed=True)`, parsed once."""


def _hash(raw: bytes) -> int:
    return _SIGNED_64(hashlib.blake2b(raw, digest_size=8).digest())[0]


def decode(source: Source, spec: TopicSpec) -> Decoded | Rejected:
    """Parse and validate one record against its topic's schema; also check the record key."""
    if source.value is None:
        return Rejected(source, "schema.empty_value: a message without a value (tombstone)")
    try:
        message = parse(source.value, spec, source.timestamp_ms)
    except ValidationError as exc:
        return Rejected(source, reason_of(exc, spec.schema), _claimed_id(source.value))
    if isinstance(message, RootModel):  # a union of events: the event itself
        message = message.root
    m: Any = message
    person = getattr(m, "person", None)
    message_id = spec.id_of(m)
    person_key = person.key if person is not None else None
    key = source.key.decode("utf-8", "replace") if source.key is not None else None
    if key is None or normalise_person_key(key) != spec.key_of(m):
        return Rejected(
            source,
            f"schema.key_mismatch: the record key must be the message's {spec.key}",
            message_id,
            person_key,
        )
    return Decoded(source, spec, message, message_id, person_key, content_hash(source.value))
