"""`reghub tail`: print a topic's messages readably — amounts in kroner, person numbers masked.

Masking goes by field, in bodies, headers and record keys alike: a person key (`person.key`,
`person_key`, the key of a person-keyed topic) is masked whole; an id the sender chose, or a reason, only
where it reads as a CPR number (older data may carry one); P-numbers, pharmacy numbers, amounts and the
other fields the schemas declare are shown as they are. Content under a name no schema declares came
from the sender and is masked like an id, its name included.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from pydantic import BaseModel

from reghub.kafka_options import kafka_client_options
from reghub.settings import Settings
from rules.identifiers import mask_person_numbers
from schemas.common import WireModel
from schemas.decisions import SettlementStatement
from sinks.kafka_client import log_ends, start_client
from streams.topics import ALL, DEAD_LETTER, TopicNames, TopicSpec

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
MASK = "**********"

PERSON_KEY_FIELDS = frozenset({"person_key"})
"""Body fields that hold a person key wherever they are (decisions before they stopped carrying one)."""

PERSON_OBJECTS = frozenset({"person", "new_person", "parent"})
"""Body fields holding a person reference, whose `key` is a person key (every input topic; a new number
and a parent on `cpr.person-events.v1`)."""

ID_FIELDS = frozenset(
    {
        "report_id",
        "message_id",
        "return_of",
        "agreement_id",
        "grant_id",
        "decision_id",
        "reghub-message-id",
    }
)
"""Ids the sender chose: refused today when they may be a CPR number, but older data may carry one, so
whatever in them reads as a CPR number is masked; the rest of the id stays readable. A dispensing or
ordination id is a number of its own kind, like a P-number, and is shown."""

FREE_TEXT_FIELDS = frozenset(
    {"reason", "detail", "reghub-reason", "source", "drug_id", "user", "reported_by"}
)
"""Reasons and details (built without message content today, but older data may quote it) and other
text the sender writes: masked like ids."""

SHOWN_HEADERS = frozenset(
    {"reghub-source-topic", "reghub-source-partition", "reghub-source-offset"}
)


def _models_in(annotation: object) -> list[type[BaseModel]]:
    """The models a field's type refers to (`list[DecisionLine] | None` -> [DecisionLine])."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _known_fields() -> frozenset[str]:
    """Every field name a topic's schema declares, in it or in the models its fields hold (a decision's
    lines): a field not among them came from the sender."""
    names: set[str] = set()
    todo: list[type[BaseModel]] = [spec.schema for spec in ALL if spec.schema is not None]
    todo += [SettlementStatement, WireModel]
    seen: set[type[BaseModel]] = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        names.update(model.model_fields)
        todo.extend(model.__subclasses__())
        for info in model.model_fields.values():
            todo.extend(_models_in(info.annotation))
    return frozenset(names)


KNOWN_FIELDS = _known_fields()


def _masked_text(value: object) -> object:
    """A value whose meaning is unknown or an id: any run of digits that reads as a CPR number masked,
    P-numbers, pharmacy numbers and other numbers left as they are."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (str, int)):
        text = str(value)
        masked = mask_person_numbers(text, MASK)
        return value if masked == text else masked
    return _masked_unknown(value)


def _masked_unknown(value: object) -> object:
    """Content under a name the sender chose: every name and value masked as free text."""
    if isinstance(value, dict):
        return {str(_masked_text(k)): _masked_unknown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_unknown(v) for v in value]
    return _masked_text(value)


def _mask_object(data: dict[str, object], *, in_person: bool = False) -> dict[str, object]:
    return {
        str(_masked_text(k)): mask_field(str(k), v, in_person=in_person) for k, v in data.items()
    }


def mask_field(name: str, value: object, *, in_person: bool = False) -> object:
    """`value` of body field `name` with whatever may be a person number masked, by what the field is:
    a person key whole, an id or a reason where it reads as a CPR number, a known field of another kind
    (a P-number, a pharmacy number, an amount) not at all; content under an unknown name as free text."""
    if name in PERSON_KEY_FIELDS or (in_person and name == "key"):
        return MASK if value is not None else None
    if name in PERSON_OBJECTS and isinstance(value, dict):
        return _mask_object(value, in_person=True)
    if name in ID_FIELDS or name in FREE_TEXT_FIELDS or name in PERSON_OBJECTS:
        return _masked_text(value)
    if name not in KNOWN_FIELDS:
        return _masked_unknown(value)
    if isinstance(value, dict):
        return _mask_object(value)
    if isinstance(value, list):
        return [_mask_object(v) if isinstance(v, dict) else _masked_text(v) for v in value]
    return value


def mask_header(name: str, value: bytes) -> str:
    """A `reghub-*` header's text: the message id and the reason masked like ids, positions shown."""
    text = value.decode(errors="replace")
    return text if name in SHOWN_HEADERS else str(_masked_text(text))


def _person_keyed(spec: TopicSpec | None) -> bool:
    return spec is not None and spec.key.startswith("person key")


def render_key(
    key: bytes | None,
    spec: TopicSpec | None,
    headers: list[tuple[str, bytes]],
    names: TopicNames,
    show_person_keys: bool,
) -> str:
    """A record key: masked whole on a person-keyed topic (and on a dead letter from one), shown on the
    others (a pharmacy number, a pseudonym, a reporter, a date)."""
    text = (key or b"").decode(errors="replace")
    if show_person_keys:
        return text
    if spec is DEAD_LETTER:
        source = dict(headers).get("reghub-source-topic", b"").decode(errors="replace")
        spec = next((s for s in ALL if names(s) == source), None)
        if spec is None:
            return str(_masked_text(text))
    if spec is None:
        return str(_masked_text(text))
    return MASK if _person_keyed(spec) and text else text


def _shown(value: object) -> str:
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)


def render(value: bytes, headers: list[tuple[str, bytes]], show_person_keys: bool) -> str:
    """A message's body and `reghub-*` headers on one line: amounts in kroner, person numbers masked by
    field unless `show_person_keys`."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        parts = []
        for k, v in data.items():
            if k in _MONEY and isinstance(v, int) and not isinstance(v, bool):
                v = f"{v / 100:.2f} kr"
            elif not show_person_keys:
                v = mask_field(k, v)
            name = k if show_person_keys else str(_masked_text(k))
            if v not in (None, 0, False, "0.00 kr") or k in ("status", "subsidy"):
                parts.append(f"{name}={_shown(v)}")
        text = " ".join(parts)
    elif show_person_keys:
        text = repr(value[:200])
    else:
        text = str(_masked_unknown(repr(value[:200]) if data is None else _shown(data)))
    extra = " ".join(
        f"{k}={v.decode(errors='replace') if show_person_keys else mask_header(k, v)}"
        for k, v in headers
        if k.startswith("reghub-")
    )
    return f"{text} {extra}".strip()


@dataclass(frozen=True, slots=True)
class Filter:
    """Which records `tail` prints; every given field must match."""

    report_id: str | None = None
    message_id: str | None = None
    key: str | None = None

    def matches(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> bool:
        if self.key is not None and (key or b"").decode(errors="replace") != self.key:
            return False
        if self.report_id is None and self.message_id is None:
            return True
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if self.report_id is not None and body.get("report_id") != self.report_id:
            return False
        if self.message_id is not None:
            named = {body.get("report_id"), body.get("message_id")}
            named.update(
                v.decode(errors="replace")
                for k, v in headers
                if k in ("reghub-message-id", "reghub-replay-of")
            )
            return self.message_id in named
        return True


async def tail_topic(
    settings: Settings,
    topic: str,
    *,
    limit: int,
    latest: bool,
    idle_timeout: float,
    show_person_keys: bool,
    to_end: bool = False,
    only: Filter | None = None,
) -> None:
    """Print `topic`'s records, from its beginning (or its end with `latest`), those `only` lets through.

    Stops after `limit` printed records, at the end offsets the topic had when it started (`to_end`), or
    after `idle_timeout` seconds without a record read; otherwise it follows the topic. Reads every
    partition by assignment, without a consumer group: nothing to join, nothing committed.

    Raises:
        BrokerUnavailable: no broker answers.
        SystemExit: the topic does not exist.
    """
    names = TopicNames(settings.topic_prefix)
    name = names.prefix + topic
    spec = next((s for s in ALL if s.base == topic), None)
    only = only or Filter()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        **kafka_client_options(settings),
    )
    await start_client(consumer, settings.kafka_bootstrap, settings.kafka_security_protocol)
    seen = 0
    try:
        await consumer.topics()
        partitions = sorted(consumer.partitions_for_topic(name) or ())
        if not partitions:
            raise SystemExit(f"no topic {name!r} on the broker")
        parts = [TopicPartition(name, p) for p in partitions]
        consumer.assign(parts)
        ends = await log_ends(consumer, parts)  # leaves the consumer there: --latest reads on
        if not latest:
            await consumer.seek_to_beginning(*parts)
        last = time.monotonic()

        async def at_end() -> bool:
            return all([await consumer.position(tp) >= ends[tp] for tp in parts])

        while not limit or seen < limit:
            if to_end and await at_end():
                return
            batch = await consumer.getmany(timeout_ms=500)
            if not batch and idle_timeout and time.monotonic() - last > idle_timeout:
                break
            for tp, records in batch.items():
                for r in records:
                    last = time.monotonic()
                    if to_end and r.offset >= ends[tp]:
                        continue
                    headers = list(r.headers)
                    if not only.matches(r.key, r.value or b"", headers):
                        continue
                    at = datetime.fromtimestamp(r.timestamp / 1000, UTC).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    )
                    key = render_key(r.key, spec, headers, names, show_person_keys)
                    body = render(r.value or b"", headers, show_person_keys)
                    print(f"{tp.partition}/{r.offset} {at} key={key} {body}", flush=True)
                    seen += 1
                    if limit and seen >= limit:
                        return
    finally:
        await consumer.stop()
