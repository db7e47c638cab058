"""One translator per scenario event type: each turns a case's event into the message its sender
would put on the hub's input topic, sends it, and records the register's answer in the case's results.

`TRANSLATORS` maps every type of `cases.EVENT_TYPES` to its translator; `CaseRun` is what the
translators of one case share while its events are sent in the file's order (their arrival order):
the keys of its `as` labels, the message ids sent so far, the person's current period as the answers
showed it, the open henstand agreement.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from reghub.scenarios.cases import ScenarioError
from reghub.scenarios.hub import Hub
from reghub.scenarios.results import Outcome, answer, purchase_result, settlement_result
from rules.identifiers import is_p_number
from rules.money import kroner_to_ore, ore_to_kroner
from schemas.snapshot import SnapshotPerson
from streams.topics import (
    CORRECTIONS,
    DEFERRALS,
    DISPENSINGS,
    INDIVIDUAL_GRANTS,
    MUNICIPAL_GRANTS,
    PERSON_EVENTS,
    SUBSIDY_SCALES,
    TopicSpec,
)

GRANT_KINDS = {"enkelt": "s145_single", "terminal": "s148_terminal", "forhoejet": "s151_increased"}
DEFAULT_PHARMACY = "12300"
DEFAULT_MUNICIPALITY = 101
SCALE_FIELDS = (
    ("t1", "t1"),
    ("t2", "t2"),
    ("t3", "t3"),
    ("t4", "t4"),
    ("t4c", "t4_child"),
    ("cap", "own_payment_cap"),
)
"""A scale event's thresholds (kroner) and their names on the wire (øre)."""


def valid_p_number(value: str) -> str:
    """The scenario's P-number, or the same number with its check digit set so it passes modulus 11."""
    if is_p_number(value):
        return value
    for last in "0123456789":
        candidate = value[:9] + last
        if is_p_number(candidate):
            return candidate
    return "1003456788"


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


def _renumbering_sender(source: str, pharmacy: str) -> dict[str, str]:
    """A renumbering's sender: the pharmacy (default), the CPR register's feed or the agency; a
    pharmacy's renumbering onto a number with a history of its own is held for review (spec § 7)."""
    if source == "pharmacy":
        return {"source": "pharmacy", "pharmacy_number": pharmacy}
    return {"source": source}


def expect_applied(outcome: Outcome) -> None:
    """Refuse the case when a setup event (a grant, a balancing amount, an agreement) was rejected.

    Raises:
        ScenarioError: the hub dead-lettered the message.
    """
    kind, body = outcome
    if kind == "rejected":
        raise ScenarioError(f"rejected: {body.get('reghub-reason')}")


def _empty_view() -> dict[str, Any]:
    """A person's period before any answer showed it: no saldo, no period."""
    return {
        "saldo_after": "0.00",
        "period_start": None,
        "period_end": None,
        "previous_period_end": None,
        "under18": None,
    }


@dataclass(frozen=True)
class Event:
    """One event of a case as it is sent: its fields in the scenario file, its id, the message id it
    goes under (`s<run>:<id>`) and the key of the person its `as` label (default "a") names."""

    fields: dict[str, Any]
    id: str
    message_id: str
    key: str

    @property
    def type(self) -> str:
        """The event type, one of `cases.EVENT_TYPES`."""
        return str(self.fields["type"])


@dataclass
class CaseRun:
    """What the translators of one case share while its events are sent in order."""

    hub: Hub
    case: dict[str, Any]
    birth: date
    run: str  # ids of 8 hex digits at most: never a run of ten like a CPR number
    now: str
    keys: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    first_day: str = "2000-01-01"
    last_day: str = "2000-01-01"  # the last purchase's day: a renumbering's or balancing's default
    pharmacy: str = DEFAULT_PHARMACY
    agreement: str | None = None  # the henstand agreement a settlement settles
    has_supplement: bool = False  # the person has a helbredstillæg: purchases report it, even 0

    @classmethod
    async def begin(cls, hub: Hub, case: dict[str, Any]) -> CaseRun:
        """A fresh key for label "a", the person's existing period imported into the register and
        their helbredstillæg granted when the case gives them.

        Raises:
            ScenarioError: the helbredstillæg grant was rejected.
        """
        person = case["person"]
        birth = date.fromisoformat(person["birth_date"])
        events = case["events"]
        key = await hub.new_person(birth)
        run = cls(hub, case, birth, uuid.uuid4().hex[:8], datetime.now(UTC).isoformat())
        run.keys["a"] = key
        if "existing_period" in person:
            await run._import_existing_period(person["existing_period"])
        run.first_day = min(
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
        run.last_day = run.first_day
        if "helbredstillaeg_tillaegsprocent" in person:
            run.has_supplement = True
            await run._grant_supplement(person["helbredstillaeg_tillaegsprocent"])
        run.pharmacy = next(
            (e["pharmacy_id"] for e in events if "pharmacy_id" in e), DEFAULT_PHARMACY
        )
        return run

    async def _import_existing_period(self, ep: dict[str, Any]) -> None:
        snap = SnapshotPerson(
            person={"key": self.keys["a"]},  # type: ignore[arg-type]
            period_start=date.fromisoformat(ep["start"]),
            period_end=date.fromisoformat(ep["end"]),
            saldo=kroner_to_ore(ep["saldo"]),
            under18=ep["under18"],
        )
        await self.hub.import_period(snap, f"scenario-{self.run}")
        self.view_of(self.keys["a"]).update(
            saldo_after=ore_to_kroner(snap.saldo),
            period_start=ep["start"],
            period_end=ep["end"],
            under18=ep["under18"],
        )

    async def _grant_supplement(self, percentage: Any) -> None:
        mid = f"s{self.run}:hs"
        key = self.keys["a"]
        message = {
            "message_id": mid,
            "sender": {"municipality_code": DEFAULT_MUNICIPALITY, "user": "scenario"},
            "decided_at": self.now,
            "kind": "health_supplement",
            "action": "grant",
            "decision_id": mid,
            "supplement_percentage": str(percentage),
            "valid_from": self.first_day,
            "person": {"key": key},
        }
        expect_applied(await self.hub.send(MUNICIPAL_GRANTS, key, message, mid, "change"))

    async def key_of_label(self, label: str) -> str:
        """The key an `as` label names: fresh for this run the first time it is used."""
        if label not in self.keys:
            self.keys[label] = await self.hub.new_person(self.birth)
        return self.keys[label]

    def view_of(self, key: str) -> dict[str, Any]:
        """The current period of the person `key` names, as the answers so far showed it."""
        return self.views.setdefault(key, _empty_view())

    def sent_id(self, event_id: str) -> str:
        """The message id an earlier event went under, whatever label it was sent under."""
        return self.ids.get(event_id, f"s{self.run}:{event_id}")

    async def arrive(self, fields: dict[str, Any]) -> Event:
        """The next event of the case, with its message id and its person's key."""
        eid = fields["id"]
        mid = self.ids[eid] = f"s{self.run}:{eid}"
        key = await self.key_of_label(str(fields.get("as", "a")))
        self.view_of(key)
        return Event(fields, eid, mid, key)

    async def send(
        self, spec: TopicSpec, key: str, message: dict[str, Any], event: Event, wait_for: str
    ) -> Outcome:
        """Send `message` for `event` and wait for the hub's `wait_for` output or its rejection."""
        return await self.hub.send(spec, key, message, event.message_id, wait_for)


# -- the translators, one per event type ----------------------------------------------------------


async def purchase(run: CaseRun, e: Event) -> None:
    """A dispensing report (`ctr.dispensings.v1`): one line or `lines`, a return, a granted
    subsidy, under henstand; a purchase the citizen opted out of (§ 7 stk. 2) is not sent."""
    event = e.fields
    run.last_day = event["timestamp"][:10]
    view = run.view_of(e.key)
    if event.get("citizen_opts_out_of_ctr"):
        # § 7 stk. 2: the pharmacy reports nothing, so nothing is sent and nothing registered
        run.results.append(
            {
                "event_id": e.id,
                "reported_to_ctr": False,
                "subsidy": "0.00",
                "citizen_pays": ore_to_kroner(sum(ln["actual_price"] for ln in _lines(event))),
                "saldo_after": view["saldo_after"],
                "period_start": view["period_start"],
                "period_end": view["period_end"],
                "under18": view["under18"],
            }
        )
        return
    outcome, body = await run.send(DISPENSINGS, e.key, _purchase_message(run, e), e, "decision")
    if outcome != "decision":
        run.results.append(
            {
                "event_id": e.id,
                "reported_to_ctr": True,
                "status": "refused",
                "reason": body.get("reghub-reason"),
            }
        )
        return
    result = purchase_result(e.id, body, event, run.has_supplement)
    view.update({k: result.get(k) for k in view if k in result})
    run.results.append(result)


def _purchase_message(run: CaseRun, e: Event) -> dict[str, Any]:
    event = e.fields
    p_number = valid_p_number(event.get("pharmacy_site_p_number", "1003456788"))
    if p_number != event.get("pharmacy_site_p_number", p_number):
        run.hub.notes.add(
            f"note: scenario P-number {event['pharmacy_site_p_number']} fails modulus 11; "
            f"sent as {p_number}"
        )
    message = {
        "report_id": e.message_id,
        "pharmacy_number": event.get("pharmacy_id", run.pharmacy),
        "pharmacy_site_p_number": p_number,
        "dispensing_id": event.get("dispensing_id", e.id),
        "ordination_id": event.get("ordination_id", "01"),
        "paid_or_invoiced_at": event["timestamp"],
        "person": {"key": e.key},
        "lines": _lines(event),
        "under_deferral": bool(event.get("under_henstand", False)),
    }
    if event.get("granted_subsidy") is not None:
        message["granted_subsidy"] = kroner_to_ore(event["granted_subsidy"])
    if event.get("is_return_of"):
        message.update(kind="return", return_of=run.sent_id(event["is_return_of"]))
    return message


async def grant(run: CaseRun, e: Event) -> None:
    """An individual grant (enkelt-, terminal- or forhøjet tilskud) entered by the agency; setup."""
    event = e.fields
    message = {
        "message_id": e.message_id,
        "sent_at": run.now,
        "sender": {"user": "scenario"},
        "action": "enter",
        "grant_id": e.message_id,
        "kind": GRANT_KINDS[event["grant_type"]],
        "drug_id": event.get("drug_id"),
        "valid_from": event["valid_from"],
        "valid_to": event["valid_to"],
        "person": {"key": e.key},
    }
    expect_applied(await run.send(INDIVIDUAL_GRANTS, e.key, message, e, "change"))


async def udligning_registered(run: CaseRun, e: Event) -> None:
    """A balancing amount (udligning) the agency registers on `ctr.corrections.v1`; setup."""
    event = e.fields
    message = {
        "message_id": e.message_id,
        "sent_at": run.now,
        "sender": {"ordered_by": "agency", "reported_by": "scenario"},
        "action": "balancing",
        "amount": kroner_to_ore(event["amount"]),
        "hardship_deferral": bool(event.get("hardship_deferral", False)),
        "arose_on": event.get("arose_in_period_start", run.last_day),
        "person": {"key": e.key},
    }
    expect_applied(await run.send(CORRECTIONS, e.key, message, e, "change"))


def _correction_message(run: CaseRun, e: Event, action: str) -> dict[str, Any]:
    """The fields a correction, a cancellation and a repayment share on `ctr.corrections.v1`."""
    event = e.fields
    return {
        "message_id": e.message_id,
        "sent_at": _sent_at(event, run.now),
        "sender": {"ordered_by": event.get("ordered_by", "agency"), "reported_by": "scenario"},
        "action": action,
        "person": {"key": e.key},
    }


async def correction(run: CaseRun, e: Event) -> None:
    """A correction (new lines) or cancellation of an earlier purchase, its `target`."""
    event = e.fields
    message = _correction_message(run, e, event.get("action", "correct"))
    message["report_id"] = run.sent_id(event["target"])
    if message["action"] == "correct":
        message["lines"] = _lines(event)
    run.results.append(
        answer(e.id, e.type, await run.send(CORRECTIONS, e.key, message, e, "change"))
    )


async def repayment(run: CaseRun, e: Event) -> None:
    """A repayment of part of a balance the person owes."""
    message = _correction_message(run, e, "repayment")
    message["amount"] = kroner_to_ore(e.fields["amount"])
    run.results.append(
        answer(e.id, e.type, await run.send(CORRECTIONS, e.key, message, e, "change"))
    )


async def renumbering(run: CaseRun, e: Event) -> None:
    """A person's number replaced (`cpr.person-events.v1`, keyed by the old key): the `from`
    label's key becomes the `to` label's; once applied both labels share one view of the period."""
    event = e.fields
    old, new = await run.key_of_label(event["from"]), await run.key_of_label(event["to"])
    message = {
        "message_id": e.message_id,
        "sent_at": _sent_at(event, run.now),
        "sender": _renumbering_sender(event.get("sender", "pharmacy"), run.pharmacy),
        "event": "number_replaced",
        "person": {"key": old},
        "new_person": {"key": new},
        "effective_on": event.get("date", run.last_day),
    }
    result = answer(e.id, e.type, await run.send(PERSON_EVENTS, old, message, e, "change"))
    run.results.append(result)
    if result["status"] == "applied":
        # one view per person: both labels now name the same person, whose period (after a
        # merge, the merged one) the register holds
        run.views[new] = run.views[old] = run.view_of(old)
        run.views[old].update(await run.hub.register_view(old))


async def scale(run: CaseRun, e: Event) -> None:
    """A subsidy scale (`ctr.subsidy-scales.v1`, keyed by its effective date); it is the whole
    register's, so it reaches every scenario run beside it."""
    event = e.fields
    message = {
        "message_id": e.message_id,
        "effective_from": event["effective_from"],
        "valid_to": event.get("valid_to"),
        "source": event.get("source") or f"scenario {run.case['id']}"[:500],
    }
    for name, wire in SCALE_FIELDS:
        if event.get(name) is not None:
            message[wire] = kroner_to_ore(event[name])
    outcome = await run.send(SUBSIDY_SCALES, event["effective_from"], message, e, "change")
    run.results.append(answer(e.id, e.type, outcome))


async def municipal(run: CaseRun, e: Event) -> None:
    """A municipal decision (helbredstillæg by default) granted or ended."""
    event = e.fields
    kind = event.get("kind", "health_supplement")
    decision = event.get("decision", e.id)
    message = {
        "message_id": e.message_id,
        "sender": {
            "municipality_code": event.get("municipality_code", DEFAULT_MUNICIPALITY),
            "user": "scenario",
        },
        "decided_at": _sent_at(event, run.now),
        "kind": kind,
        "action": event.get("action", "grant"),
        "decision_id": f"s{run.run}:{decision}",
        "valid_from": event["valid_from"],
        "valid_to": event.get("valid_to"),
        "person": {"key": e.key},
    }
    if event.get("percentage") is not None:
        message["supplement_percentage"] = str(event["percentage"])
    if kind == "health_supplement":
        run.has_supplement = True
    outcome = await run.send(MUNICIPAL_GRANTS, e.key, message, e, "change")
    run.results.append(answer(e.id, e.type, outcome))


def _henstand_message(run: CaseRun, e: Event, action: str) -> dict[str, Any]:
    event = e.fields
    return {
        "message_id": e.message_id,
        "sent_at": f"{event.get('reported_to_ctr_on', event['date'])}T12:00:00+00:00",
        "pharmacy_number": run.pharmacy,
        "action": action,
        "agreement_id": run.agreement or e.message_id,
        "date": event["date"],
        "person": {"key": e.key},
    }


async def henstand_agreement(run: CaseRun, e: Event) -> None:
    """A henstand agreement entered by the pharmacy (`ctr.deferrals.v1`); setup."""
    run.agreement = e.message_id
    message = _henstand_message(run, e, "entered")
    message.update(monthly_rate=kroner_to_ore(e.fields["monthly_rate"]), rates=e.fields["rates"])
    expect_applied(await run.send(DEFERRALS, e.key, message, e, "change"))


async def henstand_settlement(run: CaseRun, e: Event) -> None:
    """The settlement of the open henstand agreement; its decision is the result."""
    message = _henstand_message(run, e, "settle")
    outcome, body = await run.send(DEFERRALS, e.key, message, e, "decision")
    if outcome != "decision":
        run.results.append({"event_id": e.id, "error": body.get("reghub-reason", body)})
    else:
        run.results.append(settlement_result(e.id, body))


Translator = Callable[[CaseRun, Event], Awaitable[None]]

TRANSLATORS: dict[str, Translator] = {
    "purchase": purchase,
    "grant": grant,
    "udligning_registered": udligning_registered,
    "henstand_agreement": henstand_agreement,
    "henstand_settlement": henstand_settlement,
    "correction": correction,
    "repayment": repayment,
    "scale": scale,
    "municipal": municipal,
    "renumbering": renumbering,
}
"""The translator of each event type of the scenario format."""
