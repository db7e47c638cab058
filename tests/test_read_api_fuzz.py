"""The running API (`reghub api`, a real process) against generated requests: its OpenAPI document is
served, and schemathesis' valid and invalid requests from that document, under every kind of token and
none, never get a 5xx. The tokens come from `reghub token`, as a developer's would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis.generation import GenerationMode

from reghub.broker import free_port
from reghub.settings import Settings
from sinks.register import Register
from tests.messages import PERSON
from tests.test_read_api import DOCTOR, PARENT, _fill
from tests.test_worker_process import spawn_reghub

pytestmark = [pytest.mark.broker, pytest.mark.database]

REPO = Path(__file__).resolve().parent.parent
SECRET = "fuzz-api-token-secret-0123456789abcdef"


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "REGHUB_DATABASE_URL": settings.database_url,
            "REGHUB_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
            "REGHUB_API_TOKEN_SECRET": SECRET,
            "REGHUB_DATA_DIR": str(REPO / ".no-embedded-hub-here"),
        }
    )
    return env


def _token(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "reghub", "token", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the API exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise AssertionError("the API did not become ready")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_generated_requests_under_every_token_get_no_server_error(
    settings: Settings, register: Register, tmp_path: Path
) -> None:
    await _fill(settings, register)
    env = _env(settings)
    port = free_port()
    api = spawn_reghub(["api", "--port", str(port)], env, tmp_path / "api.log", tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.to_thread(_wait_ready, url, api)
        tokens = {
            "none": None,
            "pharmacy": _token(env, "--role", "pharmacy", "--pharmacy-number", "12300"),
            "doctor": _token(env, "--role", "doctor", "--authorisation-id", DOCTOR),
            "citizen": _token(env, "--role", "citizen", "--cpr", PARENT),
            "agency": _token(env, "--role", "agency"),
            "municipality": _token(env, "--role", "municipality"),
            "stps": _token(env, "--role", "stps"),
            "registrant": _token(env, "--role", "registrant", "--cvr", "20000236"),
        }
        failures = await asyncio.to_thread(_fuzz, url, tokens)
    finally:
        os.killpg(api.pid, signal.SIGTERM)
        api.wait(20)
    log = (tmp_path / "api.log").read_text()
    assert failures == [], failures
    assert PERSON not in log and PARENT not in log  # the access log masks person numbers


def _fuzz(url: str, tokens: dict[str, str | None]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/v1/persons/{person}/status",
        "/v1/persons/{person}/purchases",
        "/v1/quotes",
        "/v1/audit",
        "/v1/places/{place}",
    }
    calls = 0
    for op in operations:
        label = f"{op.method.upper()} {op.path}"
        pinned = {"person": PERSON} if "{person}" in op.path else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for person in (None, pinned) if pinned else (None,):
                strategy = op.as_strategy(mode, path_parameters=person)
                try:
                    calls += _run(strategy, url, tokens, label, failures)
                except Unsatisfiable:  # nothing invalid to send (an operation without parameters)
                    assert mode is GenerationMode.NEGATIVE, label
    assert calls > 500, calls
    return failures


def _run(
    strategy: SearchStrategy[schemathesis.Case],
    url: str,
    tokens: dict[str, str | None],
    label: str,
    failures: list[str],
) -> int:
    """Send each generated request under every token; a 5xx is a failure. Returns the calls made."""
    calls = 0

    @given(case=strategy)
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: CI does not fail by chance
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal calls
        for name, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = case.call(base_url=url, headers=headers, timeout=10)
            calls += 1
            if response.status_code >= 500:
                failures.append(f"{label} as {name}: {response.status_code} {response.text[:200]}")

    run()
    return calls
