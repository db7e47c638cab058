"""`/monitor` shows the workers' error texts (hosts, ports, SQLSTATEs) only to a monitoring token
(issue: bounded under hostile callers), with a real worker process whose register went away."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from api.tokens import mint
from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from sinks.migrations import upgrade
from sinks.register import make_engine
from tests.conftest import PG_ADMIN_DSN
from tests.test_read_api import KEYS, SECRET
from tests.test_worker_process import spawn_reghub, worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]


def _ready(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
        return {}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_worker_error_texts_need_a_monitoring_token(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    from api.app import create_api

    name = f"reghub_gone_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = (
        PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        + f"/{name}"
    )
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    port = free_port()
    env = worker_env(broker, settings.model_copy(update={"database_url": url}), port, tmp_path)
    worker = spawn_reghub(["worker"], env, tmp_path / "worker.log", tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (await asyncio.to_thread(_ready, port)).get(
            "ready"
        ):
            await asyncio.sleep(0.3)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        problems: list[str] = []
        while time.monotonic() < deadline + 30 and not any("register" in p for p in problems):
            problems = (await asyncio.to_thread(_ready, port)).get("problems", [])
            await asyncio.sleep(0.3)
        assert any(p.startswith("register: ") for p in problems), problems
        api = create_api(settings.database_url, [f"http://127.0.0.1:{port}"], tokens=KEYS)
        monitoring = mint(SECRET, "monitoring", "ops", audience=KEYS.audience, issuer=KEYS.issuer)
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            public = (await client.get("/monitor")).json()
            trusted = (
                await client.get("/monitor", headers={"Authorization": f"Bearer {monitoring}"})
            ).json()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    [shown] = public["workers"]
    assert shown["url"] == "worker 1" and "register" in shown["problems"]
    text = json.dumps(shown)
    assert str(port) not in text and "127.0.0.1" not in text and "5432" not in text
    [full] = trusted["workers"]
    assert full["url"] == f"http://127.0.0.1:{port}"
    assert any(p.startswith("register: ") and len(p) > len("register: ") for p in full["problems"])
