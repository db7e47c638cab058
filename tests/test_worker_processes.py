"""`reghub worker --processes 2`: two workers of one group from one command, restarted when one dies,
stopped together by SIGTERM without leaving a process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reghub.broker import EmbeddedBroker, free_ports
from reghub.settings import Settings
from reghub.supervisor import default_processes
from streams.topics import DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.test_worker_process import descendants, get_health, left_over, worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]

PERSONS = [f"0505{60 + i:02d}1234" for i in range(8)]  # born 5 May 1960-1967


async def health_of(port: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await asyncio.to_thread(get_health, port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def both_assigned(ports: list[int], timeout: float) -> list[dict]:
    """Wait until every worker holds partitions of the group."""
    deadline = time.monotonic() + timeout
    while True:
        found = [await health_of(p, timeout) for p in ports]
        if all(h.get("assigned") for h in found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


def test_the_default_is_the_cores_on_postgresql_and_one_on_sqlite() -> None:
    assert default_processes("sqlite+aiosqlite:///x.db") == 1
    assert default_processes("postgresql+asyncpg://h/db") == len(os.sched_getaffinity(0))


async def test_two_processes_share_the_group_restart_and_stop_together(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("two worker processes share a PostgreSQL register; SQLite has one writer")
    names = TopicNames(settings.topic_prefix)
    port = free_ports(2)  # the second worker takes the next port
    env = {**worker_env(broker, settings, port, tmp_path), "REGHUB_WEB_PORT": str(port)}
    del env["REGHUB_WORKER_PROCESSES"]
    with open(tmp_path / "workers.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reghub", "worker", "--processes", "2"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    logs = lambda: (tmp_path / "workers.log").read_text()[-4000:]  # noqa: E731
    try:
        found = await both_assigned([port, port + 1], timeout=60)
        assert all(h.get("assigned") for h in found), (found, logs())
        children = descendants(proc.pid)
        assert len(children) >= 2, logs()
        await produce(
            broker.bootstrap,
            names(DISPENSINGS),
            [(key.encode(), as_json(_report(f"r{i}", key))) for i, key in enumerate(PERSONS)],
        )
        records = await read_until(
            broker.bootstrap, names(DECISIONS), lambda r: len(r) >= len(PERSONS), timeout=60
        )
        assert len({r.value for r in records}) == len(PERSONS), logs()
        # one child killed outright: the supervisor starts another on the same port
        victim = next(p for p in children if _listens(p, port))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not (new := [p for p in descendants(proc.pid) if _listens(p, port) and p != victim]):
            assert time.monotonic() < deadline, logs()
            await asyncio.sleep(0.3)
        assert (await health_of(port, 60))["status"] in ("ok", "not_ready"), logs()
        assert new and victim not in descendants(proc.pid)
        seen = descendants(proc.pid)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 60)
        assert code == 0, logs()
        await asyncio.sleep(0.5)
        assert left_over(proc.pid, seen) == [], logs()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _report(report_id: str, key: str) -> dict:
    from tests.messages import report

    return report(report_id, 100_000, person=key)


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` was started for web port `port` (its environment says so)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"REGHUB_WEB_PORT={port}".encode() in environ
