"""The scenario runner's translators: one for every event type of the format, and a case with an
event type the runner cannot send is refused before anything of it is sent."""

from __future__ import annotations

import pytest

from reghub import scenarios
from reghub.scenarios.events import TRANSLATORS, valid_p_number
from reghub.scenarios.hub import in_process


def test_every_event_type_has_a_translator_and_every_translator_a_type() -> None:
    assert set(TRANSLATORS) == scenarios.EVENT_TYPES


def test_a_p_number_failing_modulus_11_gets_its_check_digit_set() -> None:
    assert valid_p_number("1003456784") == "1003456784"
    assert valid_p_number("1003456789") == "1003456784"


async def test_an_unknown_event_type_refuses_the_case_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REGHUB_DATABASE_URL", raising=False)
    case = {
        "id": "X01",
        "person": {"birth_date": "1980-01-01"},
        "events": [
            {"id": "e1", "type": "purchase", "timestamp": "2024-03-01T10:00:00+01:00"},
            {"id": "e2", "type": "teleport"},
        ],
    }
    async with in_process() as hub:
        with pytest.raises(scenarios.ScenarioError, match="e2: unknown event type 'teleport'"):
            await scenarios.run_case(hub, case)
        assert hub.taken == set()  # not even a key was drawn for the person
