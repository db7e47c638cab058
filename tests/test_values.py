"""`rules.values.value`: plain slots dataclasses on the hot path, immutable under the suite's guard,
compared and hashed as the frozen dataclasses they replace."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from rules.obligations import Obligation
from rules.state import Period, PersonState
from rules.values import VALUES
from sinks.rows import Outgoing


def _period(last_paid_at: datetime | None = None) -> Period:
    return Period(date(2024, 3, 1), date(2025, 2, 28), 1_000, False, None, last_paid_at)


def test_a_field_set_again_is_refused_and_the_value_is_unchanged() -> None:
    period = _period()
    with pytest.raises(dataclasses.FrozenInstanceError):
        period.saldo = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del period.saldo  # type: ignore[misc]
    assert period.saldo == 1_000


def test_replace_builds_a_new_value() -> None:
    state = PersonState("0101901234", date(1990, 1, 1), _period())
    moved = dataclasses.replace(state, died_on=date(2024, 5, 1))
    assert state.died_on is None and moved.died_on == date(2024, 5, 1)
    assert moved.period is state.period


def test_compared_and_hashed_as_a_frozen_dataclass() -> None:
    """Equal values hash alike, so they still serve as set members and dict keys; a field kept out of
    the comparison (a period's `last_paid_at`) is kept out of the hash too."""
    later = _period(datetime(2024, 3, 5, 9, tzinfo=UTC))
    assert _period() == later and hash(_period()) == hash(later)
    assert len({_period(), later, dataclasses.replace(later, saldo=2_000)}) == 2
    a = Outgoing("ctr.decisions.v1", b"11400", b"{}")
    assert {a: 1}[Outgoing("ctr.decisions.v1", b"11400", b"{}")] == 1


def test_every_value_is_a_slots_dataclass() -> None:
    assert Obligation in VALUES and Outgoing in VALUES
    for cls in VALUES:
        assert dataclasses.is_dataclass(cls) and "__slots__" in vars(cls), cls
        assert cls.__hash__ is not None, cls
