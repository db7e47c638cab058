"""The SOR connector's rules: a nightly SOR snapshot (CSV) read into units, diffed against the previous
one, and the differences as `created / changed / closed / replaced` (spec/treatment-places.md § 7).

Pure: the caller reads the file, keeps the previous snapshot and publishes the events. It converges
(spec § 7, DECISION): the same snapshot twice has no differences; an event's message id and time come
from the snapshot's date and the unit, never from its content, so an import published again for the
same date is a duplicate the hub acknowledges, and a value that changes back on a later date is a new
event that is applied; an event carries only the columns the snapshot has (the hub keeps the unit's
other fields as they are), and the hub treats the connector's `unit_added` of a unit it knows as a
change (`converged_event`), so the first import adopts the units the forms added before.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from rules.treatment_places.forms import FORMS
from rules.treatment_places.identifiers import is_postal_code, is_sor_id
from rules.treatment_places.states import State

_COPENHAGEN = ZoneInfo("Europe/Copenhagen")


COLUMNS = (
    "sor_id",
    "name",
    "unit_type",
    "cvr",
    "registrant_id",
    "form",
    "parent_sor_id",
    "street",
    "postal_code",
    "city",
    "main_speciality",
    "end_date",
    "replaced_by_sor_id",
)
"""The snapshot's columns (`;`-separated, a header line first), after SOR's `SOREntity` file: one line
per unit; `end_date` set when SOR closed it, `replaced_by_sor_id` when another unit replaced it."""

ChangeKind = Literal["created", "changed", "closed", "replaced"]


@dataclass(frozen=True, slots=True)
class SorUnit:
    """One unit of a snapshot; empty columns are None."""

    sor_id: str
    name: str
    unit_type: str
    cvr: str | None
    registrant_id: str | None
    form: str
    parent_sor_id: str | None
    street: str
    postal_code: str
    city: str
    main_speciality: str | None
    end_date: date | None
    replaced_by_sor_id: str | None

    @property
    def company_key(self) -> str:
        return self.cvr or self.registrant_id or ""

    def digest(self) -> str:
        """12 hex digits of BLAKE2b over the unit's columns: names this content."""
        text = "\x1f".join("" if v is None else str(v) for v in asdict(self).values())
        return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


@dataclass(frozen=True, slots=True)
class SorChange:
    """A difference between two snapshots; `other` is the replacing unit of a `replaced` one, or the
    replaced unit of a `created` one that replaces another."""

    kind: ChangeKind
    unit: SorUnit
    other: str | None = None


def parse_snapshot(text: str) -> tuple[dict[str, SorUnit], list[tuple[int, str]]]:
    """The units of a snapshot, and (line number, problem) of lines that are not one."""
    reader = csv.DictReader(io.StringIO(text), delimiter=";")
    if reader.fieldnames is None or tuple(reader.fieldnames) != COLUMNS:
        return {}, [(1, f"the header must be {';'.join(COLUMNS)}")]
    units: dict[str, SorUnit] = {}
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(reader, start=2):
        values = {k: (v.strip() or None) if isinstance(v, str) else None for k, v in raw.items()}
        problem = _problem(values, units)
        if problem is not None:
            problems.append((number, problem))
            continue
        end = values["end_date"]
        unit = SorUnit(**{**values, "end_date": date.fromisoformat(end) if end else None})  # type: ignore[arg-type]
        units[unit.sor_id] = unit
    return units, problems


def _problem(values: Mapping[str, str | None], seen: Mapping[str, SorUnit]) -> str | None:
    for required in ("sor_id", "name", "unit_type", "form", "street", "postal_code", "city"):
        if values.get(required) is None:
            return f"{required} is empty"
    sor = values["sor_id"] or ""
    if not is_sor_id(sor):
        return "sor_id is not an SOR id"
    if sor in seen:
        return "sor_id appears twice"
    for other in ("parent_sor_id", "replaced_by_sor_id"):
        if values.get(other) is not None and not is_sor_id(values[other] or ""):
            return f"{other} is not an SOR id"
    if values["form"] not in FORMS:
        return "form is not one of " + ", ".join(FORMS)
    if (values.get("cvr") is None) == (values.get("registrant_id") is None):
        return "a unit has either a cvr or a registrant_id"
    if not is_postal_code(values["postal_code"] or ""):
        return "postal_code is not on the list"
    try:
        if values.get("end_date"):
            date.fromisoformat(values["end_date"] or "")
    except ValueError:
        return "end_date is not an ISO date"
    return None


def _open(unit: SorUnit | None) -> bool:
    return unit is not None and unit.end_date is None


def diff(previous: Mapping[str, SorUnit], current: Mapping[str, SorUnit]) -> list[SorChange]:
    """What changed from `previous` to `current`, new units first (a replacing unit exists before the
    one it replaces closes), then changes, then closures, each by SOR id.

    A unit absent from `current` that was open in `previous` is closed; one that carries an end date
    is closed, or replaced when it names the unit replacing it.
    """
    replaces = {
        u.replaced_by_sor_id: u.sor_id
        for u in (*previous.values(), *current.values())
        if u.replaced_by_sor_id is not None
    }
    created: list[SorChange] = []
    changed: list[SorChange] = []
    closed: list[SorChange] = []
    for sor in sorted(current.keys() | previous.keys()):
        before, now = previous.get(sor), current.get(sor)
        if now is None:
            if _open(before):
                assert before is not None
                closed.append(SorChange("closed", before))
        elif not _open(now):
            if before is None or _open(before):
                kind: ChangeKind = "replaced" if now.replaced_by_sor_id else "closed"
                closed.append(SorChange(kind, now, now.replaced_by_sor_id))
        elif before is None or not _open(before):
            created.append(SorChange("created", now, replaces.get(sor)))
        elif before != now:
            changed.append(SorChange("changed", now))
    return [*created, *changed, *closed]


def snapshot_time(snapshot_date: date) -> datetime:
    """The time of a snapshot's events: the start of its day in Denmark."""
    return datetime.combine(snapshot_date, time(0), _COPENHAGEN)


def event_of(change: SorChange, snapshot_date: date) -> tuple[str, dict[str, Any]]:
    """The `stps.registrations.v1` event of a difference in the snapshot of `snapshot_date`, filed by
    the SOR connector (role `sds`), with its record key (the company). Its id names the unit and the
    date, so one import published twice gives the same events. A closure without an end date closes
    on the snapshot's date."""
    u = change.unit
    company = {"cvr": u.cvr} if u.cvr else {"registrant_id": u.registrant_id}
    common: dict[str, Any] = {
        "message_id": f"sor-{u.sor_id}-{snapshot_date.isoformat()}",
        "sent_at": snapshot_time(snapshot_date).isoformat(),
        "form": u.form,
        "filer": {"role": "sds", "user": "sor-connector"},
        "company": company,
        "sor_id": u.sor_id,
    }
    if change.kind in ("closed", "replaced"):
        closing = {"event": "unit_closed", "closed_on": (u.end_date or snapshot_date).isoformat()}
        if change.other is not None:
            closing["replaced_by_sor_id"] = change.other
        return u.company_key, {**common, **closing}
    unit: dict[str, Any] = {
        "event": "unit_added" if change.kind == "created" else "unit_changed",
        "name": u.name,
        "unit_type": u.unit_type,
        "postal_address": {"street": u.street, "postal_code": u.postal_code, "city": u.city},
        "parent_sor_id": u.parent_sor_id,  # null when SOR has none: the snapshot says so
        "main_speciality": u.main_speciality,
    }
    if change.other is not None:
        unit["replaces_sor_id"] = change.other
    return u.company_key, {**common, **unit}


def converged_event(event: str, current: State | None) -> str:
    """What a unit event of the SOR connector means for a place in state `current`: the connector
    states what SOR holds, not what the hub knew. Its `unit_added` of a unit the hub knows (a form
    added it first) is a change that adopts it; its `unit_changed` of a unit the hub does not know
    adds it."""
    if event == "unit_added" and current in ("SOR_ONLY", "REGISTERED", "DEREGISTERED"):
        return "unit_changed"
    if event == "unit_changed" and current is None:
        return "unit_added"
    return event
