"""`/ready` tells the truth: a real worker process goes unready while its broker is stopped or its
database refuses connections, and ready again when they are back; `/health` stays up and says why."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from reghub.broker import EmbeddedBroker, create_topics, free_port
from reghub.settings import Settings
from streams.topics import TopicNames
from tests.conftest import _admin
from tests.test_worker_process import worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]


def get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


async def wait_ready(port: int, want: bool, timeout: float, log: Path) -> dict:
    deadline = time.monotonic() + timeout
    last: tuple[int, dict] = (0, {})
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(get, port, "/ready")
        if last[0] == (200 if want else 503):
            return last[1]
        await asyncio.sleep(0.5)
    raise AssertionError(f"/ready never became {want}: {last}; log:\n{log.read_text()[-3000:]}")


async def test_ready_follows_the_broker_and_the_database(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    broker = EmbeddedBroker()  # its own broker: this test stops it
    broker.start()
    port = free_port()
    log_path = tmp_path / "worker.log"
    env = worker_env(broker, settings, port, tmp_path)
    env.update({"REGHUB_HEALTH_PROBE_SECONDS": "1", "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap})
    await create_topics(broker.bootstrap, TopicNames(settings.topic_prefix), 2)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reghub", "worker"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        await wait_ready(port, True, 60, log_path)

        assert broker.process is not None
        broker.process.send_signal(signal.SIGSTOP)
        try:
            problems = (await wait_ready(port, False, 30, log_path))["problems"]
            assert any(p.startswith("broker: ") for p in problems), problems
            status, health = await asyncio.to_thread(get, port, "/health")
            assert status == 200 and health["ready"] is False
        finally:
            broker.process.send_signal(signal.SIGCONT)
        await wait_ready(port, True, 60, log_path)

        if database_url.startswith("postgresql"):
            name = database_url.rsplit("/", 1)[1]
            admin = await _admin()
            try:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
                problems = (await wait_ready(port, False, 30, log_path))["problems"]
                assert any(p.startswith("register: ") for p in problems), problems
            finally:
                await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
                await admin.close()
            await wait_ready(port, True, 60, log_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        broker.stop()
