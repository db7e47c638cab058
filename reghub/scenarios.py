"""`reghub scenario run|check`: worked CTR cases through the real broker, worker and register.

Each scenario (format: shared/spec/scenarios/README.md) gets a fresh person key. Its domain events are
translated into wire messages on the hub's topics, sent one at a time, and each is awaited on the output
topics (decision, change feed or dead letter) before the next is sent, because a grant and a purchase
travel on different topics. Many scenarios run at once.

Every event type of the format is sent: purchases (one line or `lines`, returns, `granted_subsidy`,
henstand), grants, balancing amounts, henstand agreements and settlements, corrections and cancellations
and repayments (`ctr.corrections.v1`), scales (`ctr.subsidy-scales.v1`, keyed by their effective date; a
scale is the whole register's, so it reaches every scenario run beside it) and municipal decisions.
Events go in the file's order, which is their arrival order, whatever their payment dates. Each `as`
label is a fresh key of its own; a `renumbering` moves the person from one label's key to another's
(`cpr.person-events.v1`, keyed by the old key).
Whatever the register answers is reported as it is: a purchase's `status` (`registered`, `parked`,
`duplicate`, or `refused` with the dead letter's reason), and for the other new events their outcome. The broker is the embedded Tansu unless
REGHUB_KAFKA_BOOTSTRAP names one; the register is a fresh SQLite file unless REGHUB_DATABASE_URL names one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import select

from reghub import wiring
from reghub.broker import EmbeddedBroker, create_topics
from reghub.settings import Settings
from reghub.snapshot import import_person
from rules.identifiers import is_p_number
from rules.money import kroner_to_ore, ore_to_kroner
from schemas.snapshot import SnapshotPerson
from sinks import tables
from sinks.migrations import upgrade
from sinks.register import Register, make_engine
from streams.decode import Decoded, Source, decode
from streams.pipeline import Pipeline
from streams.topics import (
    CHANGES,
    CORRECTIONS,
    DEAD_LETTER,
    DECISIONS,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    INPUTS,
    MUNICIPAL_GRANTS,
    PERSON_EVENTS,
    SUBSIDY_SCALES,
    TopicNames,
    TopicSpec,
)

GRANT_KINDS = {"enkelt": "s145_single", "terminal": "s148_terminal", "forhoejet": "s151_increased"}
DEFAULT_PHARMACY = "12300"
WAIT_SECONDS = 60.0


def load_cases(paths: list[Path]) -> list[dict[str, Any]]:
    """Scenario files, folders of them, or files `{"cases": [...]}`; in name order."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    cases: list[dict[str, Any]] = []
    for file in files:
        data = json.loads(file.read_text())
        cases.extend(data.get("cases", [data]))
    return cases


def valid_p_number(value: str) -> str:
    """The scenario's P-number, or the same number with its check digit set so it passes modulus 11."""
    if is_p_number(value):
        return value
    for last in "0123456789":
        candidate = value[:9] + last
        if is_p_number(candidate):
            return candidate
    return "1003456788"


def fresh_cpr(birth: date, rng: random.Random, taken: set[str]) -> str:
    """A CPR-shaped key for a scenario person, born on `birth`, not used before in this run."""
    yy = birth.year % 100
    if 1900 <= birth.year <= 1999:
        digits = "0123"
    elif 2000 <= birth.year <= 2036:
        digits = "49" if yy <= 36 else "5678"
    else:
        digits = "5678"
    while True:
        key = f"{birth:%d%m%y}{rng.choice(digits)}{rng.randint(0, 999):03d}"
        if key not in taken:
            taken.add(key)
            return key


@dataclass
class Outputs:
    """Routes the hub's outputs to whoever waits for a message id: decisions, changes, dead letters."""

    waiters: dict[str, asyncio.Future[tuple[str, dict[str, Any]]]] = field(default_factory=dict)

    def expect(self, message_id: str, kind: str) -> asyncio.Future[tuple[str, dict[str, Any]]]:
        """A future for the `kind` ("decision" or "change") of output, or the message's rejection."""
        future: asyncio.Future[tuple[str, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.waiters[f"{kind}:{message_id}"] = future
        return future

    def deliver(self, message_id: str, kind: str, body: dict[str, Any]) -> None:
        wanted = ("decision", "change") if kind == "rejected" else (kind,)
        for want in wanted:
            future = self.waiters.pop(f"{want}:{message_id}", None)
            if future is not None and not future.done():
                future.set_result((kind, body))

    def route(
        self, names: TopicNames, topic: str, value: bytes, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Hand one output message to whoever waits for its message id."""
        if topic == names(DEAD_LETTER):
            found = {k: v.decode() for k, v in headers}
            self.deliver(found.get("reghub-message-id", ""), "rejected", found)
            return
        body = orjson.loads(value)
        if topic == names(DECISIONS):
            self.deliver(body.get("report_id") or body["message_id"], "decision", body)
        elif topic == names(CHANGES) and body["outcome"] != "rejected":
            self.deliver(body["message_id"], "change", body)

    async def follow(self, bootstrap: str, names: TopicNames) -> None:
        consumer = AIOKafkaConsumer(
            names(DECISIONS),
            names(CHANGES),
            names(DEAD_LETTER),
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while True:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    for r in records:
                        self.route(names, tp.topic, r.value, r.headers)
        finally:
            await consumer.stop()


@dataclass
class Hub:
    """What a scenario needs of the running pipeline."""

    settings: Settings
    names: TopicNames
    producer: AIOKafkaProducer | None
    outputs: Outputs
    register: Register
    rng: random.Random = field(default_factory=random.Random)
    taken: set[str] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)

    async def send(
        self, spec: TopicSpec, key: str, message: dict[str, Any], message_id: str, wait_for: str
    ) -> tuple[str, dict[str, Any]]:
        """Send one message and wait for the hub's decision or change record about it."""
        future = self.outputs.expect(message_id, wait_for)
        assert self.producer is not None
        await self.producer.send_and_wait(self.names(spec), orjson.dumps(message), key=key.encode())
        return await asyncio.wait_for(future, WAIT_SECONDS)

    async def new_person(self, birth: date) -> str:
        async with self.register.engine.connect() as conn:
            while True:
                key = fresh_cpr(birth, self.rng, self.taken)
                q = select(tables.persons.c.person_key).where(tables.persons.c.person_key == key)
                if (await conn.execute(q)).first() is None:
                    return key


@dataclass
class InProcessHub(Hub):
    """The same decode, pipeline and register, without the broker: fast, for working on the rules.

    Each message is decoded and run through `streams.pipeline.Pipeline` in its own batch, one at a
    time; its outputs are routed straight back, and a parked report a new scale releases is replayed
    into the pipeline as the worker would. The broker mode is the one that counts.
    """

    pipeline: Pipeline | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _offset: int = 0

    async def send(
        self, spec: TopicSpec, key: str, message: dict[str, Any], message_id: str, wait_for: str
    ) -> tuple[str, dict[str, Any]]:
        future = self.outputs.expect(message_id, wait_for)
        async with self._lock:
            if self.pipeline is None:
                self.pipeline = Pipeline(
                    self.register, self.names, wiring.apply_config(self.settings)
                )
                await self.pipeline.start()
            await self._run(spec, key.encode(), orjson.dumps(message))
        return await asyncio.wait_for(future, WAIT_SECONDS)

    async def _run(self, spec: TopicSpec, key: bytes | None, value: bytes) -> None:
        assert self.pipeline is not None
        self._offset += 1
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        source = Source(self.names(spec), 0, self._offset, key, value, now_ms)
        item = decode(source, spec)
        if isinstance(item, Decoded):
            result = await self.pipeline.run([item], [], {})
        else:
            result = await self.pipeline.run([], [item], {})
        for out in result.outputs:
            replayed = next((s for s in INPUTS if self.names(s) == out.topic), None)
            if replayed is not None:
                await self._run(replayed, out.key, out.value)
            else:
                self.outputs.route(self.names, out.topic, out.value, out.headers)


EVENT_TYPES = frozenset(
    {
        "purchase",
        "grant",
        "udligning_registered",
        "henstand_agreement",
        "henstand_settlement",
        "correction",
        "repayment",
        "scale",
        "municipal",
        "renumbering",
    }
)
"""Every event type of the scenario format the runner sends."""

DEFAULT_MUNICIPALITY = 101


def _refuse_unsupported(events: list[dict[str, Any]]) -> None:
    """Refuse a scenario with an event the runner cannot send, before anything of it is sent."""
    for event in events:
        kind = event.get("type")
        if kind not in EVENT_TYPES:
            raise ScenarioError(f"{event.get('id')}: unknown event type {kind!r}")


def _sent_at(event: dict[str, Any], now: str) -> str:
    """When an agency or municipal message was sent: the event's own time or date, else now."""
    if event.get("timestamp"):
        return str(event["timestamp"])
    if event.get("date"):
        return f"{event['date']}T12:00:00+01:00"
    return now


def _lines(event: dict[str, Any]) -> list[dict[str, Any]]:
    """A purchase's or correction's lines on the wire: its `lines`, or its single line's fields."""
    given = event.get("lines") or [event]
    return [
        {
            "drug_id": ln.get("drug_id", "SCENARIO-DRUG"),
            "reimbursement_price": kroner_to_ore(ln["tilskudspris"]),
            "actual_price": kroner_to_ore(ln["actual_price"]),
            "generally_reimbursed": ln.get("generally_reimbursed", True),
        }
        for ln in given
    ]


async def _register_view(hub: Hub, key: str) -> dict[str, Any]:
    """The current period of the person `key` names (any of their numbers), as the register has it;
    nothing when they have none."""
    t = tables
    async with hub.register.engine.connect() as conn:
        row = (
            await conn.execute(
                select(t.persons.c.person_key, t.persons.c.alias_of).where(
                    t.persons.c.person_key == key
                )
            )
        ).first()
        if row is None:
            return {}
        internal = row.alias_of or row.person_key
        period = (
            await conn.execute(
                select(t.subsidy_periods)
                .join(
                    t.persons,
                    (t.persons.c.person_key == t.subsidy_periods.c.person_key)
                    & (t.persons.c.current_period_start == t.subsidy_periods.c.period_start),
                )
                .where(t.persons.c.person_key == internal)
            )
        ).first()
    if period is None:
        return {}
    return {
        "saldo_after": ore_to_kroner(period.saldo),
        "period_start": period.period_start.isoformat(),
        "period_end": period.period_end.isoformat(),
        "previous_period_end": (
            period.previous_period_end.isoformat() if period.previous_period_end else None
        ),
        "under18": period.under18,
    }


def _answer(eid: str, kind: str, outcome: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """The register's answer to an event that is not a purchase: its change-feed outcome, or
    `refused` with the dead letter's reason."""
    got, body = outcome
    if got == "rejected":
        return {
            "event_id": eid,
            "type": kind,
            "status": "refused",
            "reason": body.get("reghub-reason"),
        }
    return {"event_id": eid, "type": kind, "status": body.get("outcome", "applied")}


async def run_case(hub: Hub, case: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one scenario; returns its results in the shape of `expected`.

    Events are sent in the file's order (their arrival order), whatever their payment dates. Each `as`
    label (default "a") is a key of its own, fresh for this run; a purchase's `is_return_of` and a
    correction's `target` name an earlier event, whatever label it was sent under.
    """
    person = case["person"]
    birth = date.fromisoformat(person["birth_date"])
    events = case["events"]
    _refuse_unsupported(events)
    keys = {"a": await hub.new_person(birth)}

    async def key_of(event: dict[str, Any]) -> str:
        return await key_of_label(str(event.get("as", "a")))

    async def key_of_label(label: str) -> str:
        if label not in keys:
            keys[label] = await hub.new_person(birth)
        return keys[label]

    run = uuid.uuid4().hex[:8]  # ids of 8 hex digits at most: never a run of ten like a CPR number
    ids: dict[str, str] = {}
    now = datetime.now(UTC).isoformat()
    views: dict[str, dict[str, Any]] = {}

    def view_of(key: str) -> dict[str, Any]:
        return views.setdefault(
            key,
            {
                "saldo_after": "0.00",
                "period_start": None,
                "period_end": None,
                "previous_period_end": None,
                "under18": None,
            },
        )

    if "existing_period" in person:
        ep = person["existing_period"]
        snap = SnapshotPerson(
            person={"key": keys["a"]},  # type: ignore[arg-type]
            period_start=date.fromisoformat(ep["start"]),
            period_end=date.fromisoformat(ep["end"]),
            saldo=kroner_to_ore(ep["saldo"]),
            under18=ep["under18"],
        )
        async with hub.register.engine.begin() as conn:
            await import_person(conn, snap, f"scenario-{run}")
        view_of(keys["a"]).update(
            saldo_after=ore_to_kroner(snap.saldo),
            period_start=ep["start"],
            period_end=ep["end"],
            under18=ep["under18"],
        )
    first_day = min(
        (
            e.get("timestamp", "")[:10]
            or e.get("date")
            or e.get("valid_from")
            or e.get("effective_from")
            or "9999"
            for e in events
        ),
        default="2000-01-01",
    )
    has_supplement = "helbredstillaeg_tillaegsprocent" in person
    if has_supplement:
        mid = f"s{run}:hs"
        message = {
            "message_id": mid,
            "sender": {"municipality_code": DEFAULT_MUNICIPALITY, "user": "scenario"},
            "decided_at": now,
            "kind": "health_supplement",
            "action": "grant",
            "decision_id": mid,
            "supplement_percentage": str(person["helbredstillaeg_tillaegsprocent"]),
            "valid_from": first_day,
            "person": {"key": keys["a"]},
        }
        await _expect_applied(await hub.send(MUNICIPAL_GRANTS, keys["a"], message, mid, "change"))
    pharmacy = next((e["pharmacy_id"] for e in events if "pharmacy_id" in e), DEFAULT_PHARMACY)
    agreement: str | None = None
    last_day = first_day
    results: list[dict[str, Any]] = []
    for event in events:
        eid = event["id"]
        mid = ids[eid] = f"s{run}:{eid}"
        kind = event["type"]
        key = await key_of(event)
        ref = {"key": key}
        view = view_of(key)
        if kind == "purchase":
            last_day = event["timestamp"][:10]
            if event.get("citizen_opts_out_of_ctr"):
                # § 7 stk. 2: the pharmacy reports nothing, so nothing is sent and nothing registered
                results.append(
                    {
                        "event_id": eid,
                        "reported_to_ctr": False,
                        "subsidy": "0.00",
                        "citizen_pays": ore_to_kroner(
                            sum(ln["actual_price"] for ln in _lines(event))
                        ),
                        "saldo_after": view["saldo_after"],
                        "period_start": view["period_start"],
                        "period_end": view["period_end"],
                        "under18": view["under18"],
                    }
                )
                continue
            p_number = valid_p_number(event.get("pharmacy_site_p_number", "1003456788"))
            if p_number != event.get("pharmacy_site_p_number", p_number):
                hub.notes.add(
                    f"note: scenario P-number {event['pharmacy_site_p_number']} fails modulus 11; "
                    f"sent as {p_number}"
                )
            message = {
                "report_id": mid,
                "pharmacy_number": event.get("pharmacy_id", pharmacy),
                "pharmacy_site_p_number": p_number,
                "dispensing_id": event.get("dispensing_id", eid),
                "ordination_id": event.get("ordination_id", "01"),
                "paid_or_invoiced_at": event["timestamp"],
                "person": ref,
                "lines": _lines(event),
                "under_deferral": bool(event.get("under_henstand", False)),
            }
            if event.get("granted_subsidy") is not None:
                message["granted_subsidy"] = kroner_to_ore(event["granted_subsidy"])
            if event.get("is_return_of"):
                returned = event["is_return_of"]
                message.update(kind="return", return_of=ids.get(returned, f"s{run}:{returned}"))
            outcome, body = await hub.send(DISPENSINGS, key, message, mid, "decision")
            if outcome != "decision":
                results.append(
                    {
                        "event_id": eid,
                        "reported_to_ctr": True,
                        "status": "refused",
                        "reason": body.get("reghub-reason"),
                    }
                )
                continue
            result = _purchase_result(eid, body, event, has_supplement)
            view.update({k: result.get(k) for k in view if k in result})
            results.append(result)
        elif kind == "grant":
            message = {
                "message_id": mid,
                "sent_at": now,
                "sender": {"user": "scenario"},
                "action": "enter",
                "grant_id": mid,
                "kind": GRANT_KINDS[event["grant_type"]],
                "drug_id": event.get("drug_id"),
                "valid_from": event["valid_from"],
                "valid_to": event["valid_to"],
                "person": ref,
            }
            await _expect_applied(await hub.send(INDIVIDUAL_GRANTS, key, message, mid, "change"))
        elif kind == "udligning_registered":
            message = {
                "message_id": mid,
                "sent_at": now,
                "sender": {"ordered_by": "agency", "reported_by": "scenario"},
                "action": "balancing",
                "amount": kroner_to_ore(event["amount"]),
                "hardship_deferral": bool(event.get("hardship_deferral", False)),
                "arose_on": event.get("arose_in_period_start", last_day),
                "person": ref,
            }
            await _expect_applied(await hub.send(CORRECTIONS, key, message, mid, "change"))
        elif kind in ("correction", "repayment"):
            message = {
                "message_id": mid,
                "sent_at": _sent_at(event, now),
                "sender": {
                    "ordered_by": event.get("ordered_by", "agency"),
                    "reported_by": "scenario",
                },
                "action": event.get("action", "correct") if kind == "correction" else "repayment",
                "person": ref,
            }
            if kind == "repayment":
                message["amount"] = kroner_to_ore(event["amount"])
            else:
                target = event["target"]
                message["report_id"] = ids.get(target, f"s{run}:{target}")
                if message["action"] == "correct":
                    message["lines"] = _lines(event)
            answer = await hub.send(CORRECTIONS, key, message, mid, "change")
            results.append(_answer(eid, kind, answer))
        elif kind == "renumbering":
            old, new = await key_of_label(event["from"]), await key_of_label(event["to"])
            message = {
                "message_id": mid,
                "sent_at": _sent_at(event, now),
                "sender": _renumbering_sender(event.get("sender", "pharmacy"), pharmacy),
                "event": "number_replaced",
                "person": {"key": old},
                "new_person": {"key": new},
                "effective_on": event.get("date", last_day),
            }
            answer = await hub.send(PERSON_EVENTS, old, message, mid, "change")
            result = _answer(eid, kind, answer)
            results.append(result)
            if result["status"] == "applied":
                # one view per person: both labels now name the same person, whose period (after a
                # merge, the merged one) the register holds
                views[new] = views[old] = view_of(old)
                views[old].update(await _register_view(hub, old))
        elif kind == "scale":
            message = {
                "message_id": mid,
                "effective_from": event["effective_from"],
                "valid_to": event.get("valid_to"),
                "source": event.get("source") or f"scenario {case['id']}"[:500],
            }
            for name, wire in (
                ("t1", "t1"),
                ("t2", "t2"),
                ("t3", "t3"),
                ("t4", "t4"),
                ("t4c", "t4_child"),
                ("cap", "own_payment_cap"),
            ):
                if event.get(name) is not None:
                    message[wire] = kroner_to_ore(event[name])
            answer = await hub.send(SUBSIDY_SCALES, event["effective_from"], message, mid, "change")
            results.append(_answer(eid, kind, answer))
        elif kind == "municipal":
            municipal_kind = event.get("kind", "health_supplement")
            decision = event.get("decision", eid)
            message = {
                "message_id": mid,
                "sender": {
                    "municipality_code": event.get("municipality_code", DEFAULT_MUNICIPALITY),
                    "user": "scenario",
                },
                "decided_at": _sent_at(event, now),
                "kind": municipal_kind,
                "action": event.get("action", "grant"),
                "decision_id": f"s{run}:{decision}",
                "valid_from": event["valid_from"],
                "valid_to": event.get("valid_to"),
                "person": ref,
            }
            if event.get("percentage") is not None:
                message["supplement_percentage"] = str(event["percentage"])
            if municipal_kind == "health_supplement":
                has_supplement = True
            answer = await hub.send(MUNICIPAL_GRANTS, key, message, mid, "change")
            results.append(_answer(eid, kind, answer))
        else:  # henstand_agreement, henstand_settlement
            entered = kind == "henstand_agreement"
            if entered:
                agreement = mid
            message = {
                "message_id": mid,
                "sent_at": f"{event.get('reported_to_ctr_on', event['date'])}T12:00:00+00:00",
                "pharmacy_number": pharmacy,
                "action": "entered" if entered else "settle",
                "agreement_id": agreement or mid,
                "date": event["date"],
                "person": ref,
            }
            if entered:
                message.update(
                    monthly_rate=kroner_to_ore(event["monthly_rate"]), rates=event["rates"]
                )
            outcome, body = await hub.send(
                DEFERRALS, key, message, mid, "change" if entered else "decision"
            )
            if entered:
                await _expect_applied((outcome, body))
            elif outcome != "decision":
                results.append({"event_id": eid, "error": body.get("reghub-reason", body)})
            else:
                results.append(
                    {
                        "event_id": eid,
                        "total_own_payment": ore_to_kroner(body["total_own_payment"]),
                        "total_rates_paid": ore_to_kroner(body["total_rates_paid"]),
                        "difference_in_citizens_favour": ore_to_kroner(
                            body["difference_in_citizens_favour"]
                        ),
                        "payout_with_statement": body["payout_with_statement"],
                    }
                )
    return results


async def _expect_applied(outcome: tuple[str, dict[str, Any]]) -> None:
    kind, body = outcome
    if kind == "rejected":
        raise ScenarioError(f"rejected: {body.get('reghub-reason')}")


class ScenarioError(Exception):
    """A scenario's setup event was refused by the hub."""


def _kr(amount: int | None) -> str | None:
    return None if amount is None else ore_to_kroner(amount)


def _label(message_id: str) -> str:
    """A scenario's own id of a message the runner sent as `s<run>:<id>`."""
    return message_id.split(":", 1)[-1]


def _purchase_result(
    eid: str, d: dict[str, Any], event: dict[str, Any], supplement: bool
) -> dict[str, Any]:
    if d.get("subsidy") is None:  # parked, or no answer: a decision without amounts
        return {
            "event_id": eid,
            "reported_to_ctr": True,
            "status": d["status"],
            "reason": d.get("reason"),
        }
    out: dict[str, Any] = {
        "event_id": eid,
        "reported_to_ctr": True,
        "status": d["status"],
        "subsidy_entitled": _kr(d["subsidy_entitled"]),
    }
    balancing = d["balancing_applied"] != 0 or d["remaining_balancing"] != 0
    if balancing:
        out["udligning_applied"] = _kr(d["balancing_applied"])
    out["subsidy"] = _kr(d["subsidy"])
    if supplement or d["health_supplement"]:
        out["helbredstillaeg"] = _kr(d["health_supplement"])
    if d["rights_based"]:
        out["rights_based"] = _kr(d["rights_based"])
    if event.get("under_henstand"):
        out["egenbetaling_deferred_to_henstand"] = _kr(d["deferred_to_agreement"])
        out["citizen_pays_at_counter"] = _kr(d["citizen_pays_at_counter"])
    out.update(
        citizen_pays=_kr(d["citizen_pays"]),
        saldo_after=_kr(d["saldo_after"]),
        period_start=d["period_start"],
        period_end=d["period_end"],
        previous_period_end=d["previous_period_end"],
        under18=d["under18"],
    )
    if balancing:
        out["remaining_udligning"] = _kr(d["remaining_balancing"])
    if event.get("granted_subsidy") is not None or d.get("deviation"):
        out["granted_subsidy"] = _kr(d.get("granted_subsidy"))
        out["deviation"] = _kr(d.get("deviation"))
    out.update(_purchase_details(d))
    return out


def _purchase_details(d: dict[str, Any]) -> dict[str, Any]:
    """A decision's lines (when more than one), billing, balancing and henstand agreement, in the
    scenarios' terms; only what is there."""
    out: dict[str, Any] = {}
    if len(d.get("lines") or ()) > 1:
        out["lines"] = [
            {
                "drug_id": ln["drug_id"],
                "subsidy": _kr(ln["subsidy"]),
                "helbredstillaeg": _kr(ln["health_supplement"]),
                "rights_based": _kr(ln["rights_based"]),
                "citizen_pays": _kr(ln["citizen_pays"]),
            }
            for ln in d["lines"]
        ]
    for field_name, name in (
        ("health_supplement_billed_to", "helbredstillaeg_billed_to"),
        ("rights_based_billed_to", "rights_based_billed_to"),
    ):
        billed = d.get(field_name)
        if billed is not None:
            out[name] = {
                "municipality_code": billed["municipality_code"],
                "decision": _label(billed["decision_id"]),
            }
    if d.get("balancing"):
        out["udligning"] = [
            {"amount": _kr(b["amount"]), "arose_in_period_start": b["period_start"]}
            for b in d["balancing"]
        ]
    if d.get("agreement_id"):
        out["henstand_agreement"] = _label(d["agreement_id"])
    return out


def compare(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences, one line each; empty when every expected field matches.

    An event sent twice is answered by its last result. `status` is checked when given; a refused
    event fails unless its expectation says `refused`, and so does a refused correction, repayment,
    scale or municipal decision that `expected` does not mention.
    """
    by_id = {r["event_id"]: r for r in actual}
    problems = []
    for exp in expected:
        got = by_id.get(exp["event_id"])
        if got is None:
            problems.append(f"{exp['event_id']}: no result")
            continue
        if "error" in got:
            problems.append(f"{exp['event_id']}: {got['error']}")
            continue
        if got.get("status") == "refused" and exp.get("status") != "refused":
            problems.append(f"{exp['event_id']}: refused: {got.get('reason')}")
            continue
        for k, v in exp.items():
            if k not in got:
                problems.append(f"{exp['event_id']}.{k}: expected {v!r}, missing")
            elif got[k] != v:
                problems.append(f"{exp['event_id']}.{k}: expected {v!r}, got {got[k]!r}")
    wanted = {exp["event_id"] for exp in expected}
    for got in by_id.values():
        if "type" in got and got["status"] == "refused" and got["event_id"] not in wanted:
            problems.append(f"{got['event_id']}: {got['type']} refused: {got.get('reason')}")
    return problems


@contextlib.asynccontextmanager
async def in_process() -> AsyncIterator[Hub]:
    """A register (a fresh SQLite file unless REGHUB_DATABASE_URL names one) and no broker."""
    folder = tempfile.TemporaryDirectory(prefix="reghub-scenarios-")
    url = os.environ.get("REGHUB_DATABASE_URL") or f"sqlite+aiosqlite:///{folder.name}/register.db"
    settings = Settings(
        database_url=url,
        consumer_group="scenarios-in-process",
        pseudonym_key=uuid.uuid4().hex,
        report_grace_seconds=10**10,
    )
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    register = Register(engine)
    try:
        yield InProcessHub(settings, TopicNames(""), None, Outputs(), register)
    finally:
        await register.close()
        folder.cleanup()


@contextlib.asynccontextmanager
async def pipeline() -> AsyncIterator[Hub]:
    """Broker (embedded unless configured), a register, the real worker, and the output router."""
    broker: EmbeddedBroker | None = None
    bootstrap = os.environ.get("REGHUB_KAFKA_BOOTSTRAP")
    if bootstrap is None:
        broker = EmbeddedBroker()
        broker.start()
        bootstrap = broker.bootstrap
    folder = tempfile.TemporaryDirectory(prefix="reghub-scenarios-")
    url = os.environ.get("REGHUB_DATABASE_URL") or f"sqlite+aiosqlite:///{folder.name}/register.db"
    prefix = f"scn{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap=bootstrap,
        kafka_idempotence=False,
        database_url=url,
        topic_prefix=prefix,
        consumer_group=f"{prefix}register",
        topic_partitions=4,
        kafka_session_timeout_ms=6000,
        pseudonym_key=os.environ.get("REGHUB_PSEUDONYM_KEY") or uuid.uuid4().hex,
        report_grace_seconds=10**10,
    )
    names = TopicNames(prefix)
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    register = Register(engine)
    await create_topics(bootstrap, names, settings.topic_partitions)
    processor = wiring.processor(settings, register)
    await processor.start()
    worker = asyncio.create_task(processor.run())
    outputs = Outputs()
    router = asyncio.create_task(outputs.follow(bootstrap, names))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        yield Hub(settings, names, producer, outputs, register)
    finally:
        await producer.stop()
        router.cancel()
        await processor.stop()
        await asyncio.gather(worker, router, return_exceptions=True)
        await processor.close()
        await register.close()
        if broker is not None:
            broker.stop()
        folder.cleanup()


async def main(paths: list[Path], *, check: bool, concurrency: int = 32, fast: bool = False) -> int:
    """Run (and with `check`, compare) every case; returns the exit code.

    `fast` runs them in this process without a broker (`InProcessHub`).
    """
    cases = load_cases(paths)
    limit = asyncio.Semaphore(concurrency)
    async with in_process() if fast else pipeline() as hub:

        async def one(case: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | str]:
            async with limit:
                try:
                    return case, await run_case(hub, case)
                except (ScenarioError, TimeoutError) as exc:
                    return case, f"{type(exc).__name__}: {exc}"

        done = await asyncio.gather(*(one(c) for c in cases))
    for note in sorted(hub.notes):
        print(note, file=sys.stderr)
    passed = failed = 0
    for case, results in done:
        if isinstance(results, str):
            failed += 1
            print(f"FAIL {case['id']}: {results}")
            continue
        if not check:
            print(json.dumps({"id": case["id"], "results": results}, ensure_ascii=False))
            passed += 1
            continue
        problems = compare(case.get("expected", []), results)
        if problems:
            failed += 1
            print(f"FAIL {case['id']}")
            for p in problems:
                print(f"     {p}")
        else:
            passed += 1
            print(f"ok   {case['id']}")
    if check:
        print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _renumbering_sender(source: str, pharmacy: str) -> dict[str, str]:
    """A renumbering's sender: the pharmacy (default), the CPR register's feed or the agency; a
    pharmacy's renumbering onto a number with a history of its own is held for review (spec § 7)."""
    if source == "pharmacy":
        return {"source": "pharmacy", "pharmacy_number": pharmacy}
    return {"source": source}
