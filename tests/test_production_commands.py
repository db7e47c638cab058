"""Production commands never pick up development state (issue: bounded under hostile callers and long
runs): a folder with an old `.reghub/` (keys, a register) but no `reghub up` holding it gives the
worker, the API and `reghub token` nothing; the worker's web port binds loopback unless told."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from tests.test_first_hour import one_line, reghub
from tests.test_worker_process import spawn_reghub, worker_env

STALE = "stale-development-key-0123456789"


def stale_hub(folder: Path) -> None:
    """What a stopped `reghub up` leaves: its keys and register in `.reghub/`, no lock held."""
    data = folder / ".reghub"
    data.mkdir()
    (data / "pseudonym.key").write_text(STALE)
    (data / "api-token.key").write_text(STALE)


@pytest.mark.parametrize("command", [["worker"], ["worker", "--processes", "2"], ["api"]])
def test_a_worker_or_api_without_a_register_url_outside_the_hub_is_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    stale_hub(tmp_path)
    done = reghub(*command, cwd=tmp_path, REGHUB_PSEUDONYM_KEY="a-production-key-0123456789")
    assert done.returncode == 2
    assert one_line(done) == (
        "REGHUB_DATABASE_URL is not set: name the register (postgresql://user@host/db), or run the "
        "embedded hub with ./up"
    )
    assert sorted(p.name for p in (tmp_path / ".reghub").iterdir()) == [
        "api-token.key",
        "pseudonym.key",
    ]  # no SQLite register made under the working directory


def test_token_outside_the_hub_does_not_sign_with_a_stale_development_key(tmp_path: Path) -> None:
    stale_hub(tmp_path)
    done = reghub("token", "--role", "agency", cwd=tmp_path)
    assert done.returncode == 2
    assert "REGHUB_API_TOKEN_SECRET" in one_line(done)
    assert STALE not in done.stdout + done.stderr


@pytest.mark.broker
@pytest.mark.database
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_workers_web_port_binds_loopback_unless_told(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    outside = [
        a for a in socket.gethostbyname_ex(socket.gethostname())[2] if not a.startswith("127.")
    ]
    if not outside:
        outside = [_route_address()]
    results = {}
    for host in ("", "0.0.0.0"):
        port = free_port()
        env = worker_env(broker, settings, port, tmp_path)
        if host:
            env["REGHUB_WEB_HOST"] = host
        worker = spawn_reghub(["worker"], env, tmp_path / f"worker-{port}.log", tmp_path)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _answers("127.0.0.1", port):
                assert worker.poll() is None, (tmp_path / f"worker-{port}.log").read_text()
                await asyncio.sleep(0.3)
            results[host or "default"] = (_answers("127.0.0.1", port), _answers(outside[0], port))
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(30)
    assert results == {"default": (True, False), "0.0.0.0": (True, True)}


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _route_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        return probe.getsockname()[0]
