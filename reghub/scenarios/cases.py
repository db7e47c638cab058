"""Loading scenario cases (format: ../shared/spec/scenarios/README.md) and refusing what the runner
cannot send, before anything of a case is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


class ScenarioError(Exception):
    """A scenario's setup event was refused by the hub, or it has an event the runner cannot send."""


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


def refuse_unsupported(events: list[dict[str, Any]]) -> None:
    """Refuse a scenario with an event the runner cannot send, before anything of it is sent.

    Raises:
        ScenarioError: an event's `type` is not one of `EVENT_TYPES`.
    """
    for event in events:
        kind = event.get("type")
        if kind not in EVENT_TYPES:
            raise ScenarioError(f"{event.get('id')}: unknown event type {kind!r}")
