"""The shared worked scenarios, through the real broker, worker and register (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reghub import scenarios
from reghub.broker import EmbeddedBroker

pytestmark = [pytest.mark.broker, pytest.mark.database]

SCENARIOS = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "scenarios"


def _folder() -> Path:
    if not SCENARIOS.is_dir():
        pytest.fail(
            f"the shared scenarios are missing: {SCENARIOS} (clone ../shared beside the repo)"
        )
    return SCENARIOS


async def test_every_shared_scenario_passes_through_the_pipeline(
    broker: EmbeddedBroker,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REGHUB_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("REGHUB_KAFKA_IDEMPOTENCE", "false")
    monkeypatch.setenv("REGHUB_DATABASE_URL", database_url)
    code = await scenarios.main([_folder()], check=True)
    out = capsys.readouterr().out
    total = len(list(_folder().glob("*.json")))
    assert out.strip().splitlines()[-1] == f"{total} passed, 0 failed", out
    assert code == 0


async def test_a_wrong_expectation_fails_the_check(
    broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cases file with one altered figure: `check` reports it and exits non-zero."""
    case = json.loads((_folder() / "C06-adult-one-purchase-crossing-three-tiers.json").read_text())
    good = json.loads((_folder() / "C09-child-first-purchase.json").read_text())
    case["expected"][0]["subsidy"] = "2019.76"
    (tmp_path / "cases.json").write_text(json.dumps({"cases": [case, good]}))
    monkeypatch.setenv("REGHUB_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("REGHUB_KAFKA_IDEMPOTENCE", "false")
    monkeypatch.delenv("REGHUB_DATABASE_URL", raising=False)
    code = await scenarios.main([tmp_path / "cases.json"], check=True)
    out = capsys.readouterr().out
    assert "e1.subsidy: expected '2019.76', got '2019.75'" in out
    assert out.strip().splitlines()[-1] == "1 passed, 1 failed"
    assert code == 1


def test_the_command_line_runs_a_scenario_on_its_own_embedded_broker(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reghub",
            "scenario",
            "run",
            str(_folder() / "C32-rounding-half-oere.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["id"] == "C32-rounding-half-oere"
    assert result["results"][1]["subsidy"] == "85.09"


async def test_the_in_process_mode_agrees_without_a_broker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--in-process`: the same decode, rules and register, no broker (for quick work on the rules)."""
    monkeypatch.delenv("REGHUB_DATABASE_URL", raising=False)
    code = await scenarios.main([_folder()], check=True, fast=True)
    total = len(list(_folder().glob("*.json")))
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"{total} passed, 0 failed"
    assert code == 0
