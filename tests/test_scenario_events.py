"""The scenario runner takes every event type of the scenario format: the cases in tests/scenarios/
(one or more per event type, worked by hand in their descriptions) in process and through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reghub import scenarios
from reghub.broker import EmbeddedBroker

FOLDER = Path(__file__).resolve().parent / "scenarios"


def _total() -> int:
    return len(list(FOLDER.glob("*.json")))


def _case(name: str) -> dict[str, object]:
    return json.loads(next(FOLDER.glob(f"{name}*.json")).read_text())


def test_every_new_event_type_has_a_case() -> None:
    kinds = {e["type"] for f in FOLDER.glob("*.json") for e in json.loads(f.read_text())["events"]}
    assert kinds == {
        "purchase",
        "correction",
        "repayment",
        "scale",
        "municipal",
        "udligning_registered",
        "renumbering",
    }
    purchases = [
        e
        for f in FOLDER.glob("*.json")
        for e in json.loads(f.read_text())["events"]
        if e["type"] == "purchase"
    ]
    assert any("lines" in e for e in purchases)
    assert any("granted_subsidy" in e for e in purchases)
    assert any("as" in e for e in purchases)


@pytest.mark.database
async def test_the_event_cases_pass_in_process(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REGHUB_DATABASE_URL", database_url)
    code = await scenarios.main([FOLDER], check=True, fast=True)
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"{_total()} passed, 0 failed", out
    assert code == 0


@pytest.mark.broker
@pytest.mark.database
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_event_cases_pass_through_the_pipeline(
    broker: EmbeddedBroker,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REGHUB_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("REGHUB_KAFKA_IDEMPOTENCE", "false")
    monkeypatch.setenv("REGHUB_DATABASE_URL", database_url)
    code = await scenarios.main([FOLDER], check=True)
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"{_total()} passed, 0 failed", out
    assert code == 0


async def test_a_status_is_checked_and_a_refusal_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A parked report expected as registered fails on its status; a refused report expected as
    registered fails with the dead letter's reason; a refused repayment nobody expected fails too."""
    parked = _case("E08")
    parked["expected"][0]["status"] = "registered"  # type: ignore[index]
    refused = _case("E10")
    refused["expected"][0]["status"] = "registered"  # type: ignore[index]
    repaid = _case("E11")
    repaid["id"] = "E11-repayment-too-large"
    repaid["events"][2]["amount"] = "900.00"  # type: ignore[index]
    repaid["expected"] = []
    (tmp_path / "cases.json").write_text(json.dumps({"cases": [parked, refused, repaid]}))
    monkeypatch.delenv("REGHUB_DATABASE_URL", raising=False)
    code = await scenarios.main([tmp_path / "cases.json"], check=True, fast=True)
    out = capsys.readouterr().out
    assert "e1.status: expected 'registered', got 'parked'" in out
    assert "e1: refused: schema.value_error: person:" in out
    assert "r1: repayment refused: rule.repayment_exceeds_debt" in out
    assert out.strip().splitlines()[-1] == "0 passed, 3 failed"
    assert code == 1
