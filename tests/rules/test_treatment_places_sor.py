"""The SOR connector's diff, spec/treatment-places.md § 7: a nightly snapshot into created / changed /
closed / replaced; the same snapshot twice has no differences. The sample snapshots are tests/data's,
read here as text before the no-I/O guard starts (module import)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from rules.treatment_places.sor import (
    COLUMNS,
    SorChange,
    converged_event,
    diff,
    event_of,
    parse_snapshot,
)
from schemas.treatment_places import Registration

DATA = Path(__file__).resolve().parent.parent / "data"
FIRST = (DATA / "sor_snapshot_1.csv").read_text(encoding="utf-8")
SECOND = (DATA / "sor_snapshot_2.csv").read_text(encoding="utf-8")
DAY = date(2024, 7, 2)


def _units(text: str) -> dict:
    units, problems = parse_snapshot(text)
    assert problems == []
    return units


def test_the_first_snapshot_creates_every_unit_and_the_same_snapshot_again_nothing() -> None:
    first = _units(FIRST)
    changes = diff({}, first)
    assert [(c.kind, c.unit.sor_id) for c in changes] == [("created", s) for s in sorted(first)]
    assert diff(first, first) == []
    assert diff(first, _units(FIRST)) == []


def test_the_second_snapshot_gives_exactly_its_differences() -> None:
    first, second = _units(FIRST), _units(SECOND)
    changes = [(c.kind, c.unit.sor_id[:4], c.other and c.other[:4]) for c in diff(first, second)]
    assert changes == [
        ("created", "5106", "5105"),  # the new owner's unit, replacing 5105
        ("changed", "5102", None),  # moved address
        ("closed", "5103", None),  # gone from the file
        ("replaced", "5105", "5106"),  # end date, replaced by 5106
    ]
    assert diff(second, second) == []


def test_each_difference_is_a_valid_registration_event_filed_by_the_sor_connector() -> None:
    changes = diff(_units(FIRST), _units(SECOND))
    events = []
    for change in changes:
        key, message = event_of(change, DAY)
        event = Registration.model_validate_json(json.dumps(message)).root
        assert event.company.key == key and event.filer.role == "sds"
        assert event.sent_at.isoformat() == "2024-07-02T00:00:00+02:00"  # the snapshot's day
        events.append(event)
    assert [e.event for e in events] == ["unit_added", "unit_changed", "unit_closed", "unit_closed"]
    assert events[0].replaces_sor_id == changes[3].unit.sor_id
    assert events[2].closed_on == DAY and events[3].closed_on == date(2024, 6, 30)
    assert events[3].replaced_by_sor_id == changes[0].unit.sor_id
    # a column SOR leaves empty is sent as null: the snapshot says there is none
    assert "parent_sor_id" in events[0].model_fields_set and events[0].parent_sor_id is None


def test_an_events_id_comes_from_the_snapshots_date_and_the_unit_not_its_content() -> None:
    """spec § 7 (DECISION): the same import published again has the same ids and content (a duplicate
    the hub acknowledges); a value that changes back on a later day is a new event."""
    change = diff(_units(FIRST), _units(SECOND))[1]
    renamed = SorChange("changed", replace(change.unit, name="Lægerne Valby"))
    key, message = event_of(change, DAY)
    assert (key, message) == event_of(change, DAY)
    assert message["message_id"] == f"sor-{change.unit.sor_id}-2024-07-02"
    assert event_of(renamed, DAY)[1]["message_id"] == message["message_id"]
    later = DAY + timedelta(days=2)
    assert event_of(change, later)[1]["message_id"] == f"sor-{change.unit.sor_id}-2024-07-04"


def test_the_connectors_unit_events_converge_on_what_the_register_knows() -> None:
    """spec § 7: the first import adopts a unit a form added (its `unit_added` is a change), and a
    change of a unit the register never saw adds it; forms' own states are left to the state rules."""
    for state in ("SOR_ONLY", "REGISTERED", "DEREGISTERED"):
        assert converged_event("unit_added", state) == "unit_changed"  # type: ignore[arg-type]
    assert converged_event("unit_added", None) == "unit_added"
    assert converged_event("unit_added", "NOTIFIED") == "unit_added"
    assert converged_event("unit_changed", None) == "unit_added"
    assert converged_event("unit_changed", "REGISTERED") == "unit_changed"
    assert converged_event("unit_closed", "CLOSED_IN_SOR") == "unit_closed"


def test_bad_lines_are_reported_by_number() -> None:
    head = ";".join(COLUMNS)
    good = FIRST.splitlines()[1]
    bad_sor = "1" + good[1:]
    _, problems = parse_snapshot("\n".join([head, good, bad_sor, good]))
    assert problems == [(3, "sor_id is not an SOR id"), (4, "sor_id appears twice")]
    assert parse_snapshot("a;b\n1;2\n")[1] == [(1, f"the header must be {head}")]
