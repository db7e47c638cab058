"""The production worker (`python -m reghub worker`) as a real child process, configured only by `REGHUB_*`.

It answers a report with a decision, reports itself healthy on its faust web port, and stops on SIGTERM
without leaving a process behind.
"""

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

import orjson
import pytest

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from streams.topics import DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, report

pytestmark = [pytest.mark.broker, pytest.mark.database]

REPO = Path(__file__).resolve().parent.parent


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def descendants(pid: int) -> set[int]:
    """Every descendant of `pid`, from /proc/<pid>/task/*/children."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            for k in map(int, kids):
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def left_over(group: int, known: set[int]) -> list[int]:
    """Processes still running (not zombies) that are in `group` or were seen as descendants."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is not None and st[0] != "Z" and (st[1] == group or int(entry.name) in known):
            alive.append(int(entry.name))
    return alive


def get_metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    assert "_created" not in text  # a counter's start time is no series to scrape
    return text


def get_health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


async def wait_for_health(port: int, proc: subprocess.Popen[bytes], timeout: float) -> dict:
    """Poll /health until it answers with at least one message processed (or `timeout` passes)."""
    deadline = time.monotonic() + timeout
    last: dict | Exception | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"worker exited with {proc.returncode} before /health answered"
        try:
            last = await asyncio.to_thread(get_health, port)
            if last.get("messages", 0) >= 1:
                return last
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
        await asyncio.sleep(0.3)
    raise AssertionError(f"/health on port {port} did not report a message in {timeout} s: {last}")


def spawn_reghub(
    args: list[str], env: dict[str, str], log: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """`python -m reghub ARGS` in its own process group (so it and its children can be killed
    together), its output in `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "reghub", *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def worker_env(broker: EmbeddedBroker, settings: Settings, port: int, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
            "REGHUB_KAFKA_IDEMPOTENCE": "false",
            "REGHUB_DATABASE_URL": settings.database_url,
            "REGHUB_TOPIC_PREFIX": settings.topic_prefix,
            "REGHUB_CONSUMER_GROUP": settings.consumer_group,
            "REGHUB_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
            "REGHUB_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "REGHUB_WEB_PORT": str(port),
            "REGHUB_REPORT_GRACE_SECONDS": "1000000000",
            "REGHUB_DATA_DIR": str(tmp / ".reghub"),
            "REGHUB_WORKER_PROCESSES": "1",  # one process per command: the tests count them
        }
    )
    return env


async def test_the_worker_process_decides_reports_health_and_stops_on_sigterm(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    names = TopicNames(settings.topic_prefix)
    port = free_port()
    log_path = tmp_path / "worker.log"
    await produce(
        broker.bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-proc-1", 400_000))), (PERSON.encode(), b"{not json")],
    )
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reghub", "worker"],
            env=worker_env(broker, settings, port, tmp_path),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so leftovers can be found
        )
    seen: set[int] = set()
    try:
        records = await read_until(
            broker.bootstrap, names(DECISIONS), lambda r: len(r) >= 1, timeout=60
        )
        assert records, f"no decision within 60 s; worker log:\n{log_path.read_text()[-4000:]}"
        assert records[0].key == b"12300"
        decision = orjson.loads(records[0].value)
        assert decision["report_id"] == "r-proc-1"
        assert decision["status"] == "registered"
        assert decision["subsidy"] == 201_975
        assert decision["saldo_after"] == 400_000

        health = await wait_for_health(port, proc, timeout=30)
        assert health["status"] == "ok"
        assert health["messages"] >= 1
        assert health["failed_batches"] == 0

        metrics = await asyncio.to_thread(get_metrics, port)
        topic = names(DISPENSINGS)
        assert f'reghub_messages_in_total{{topic="{topic}"}} 2.0' in metrics, metrics
        assert 'reghub_dead_letters_total{reason="schema.json_invalid"} 1.0' in metrics, metrics
        assert f'reghub_outputs_total{{topic="{names(DECISIONS)}"}} 1.0' in metrics, metrics
        assert "reghub_batch_commit_seconds_count" in metrics
        assert f'reghub_consumer_lag{{partition="0",topic="{topic}"}}' in metrics or (
            f'reghub_consumer_lag{{partition="1",topic="{topic}"}}' in metrics
        ), metrics
        assert PERSON not in metrics

        seen = descendants(proc.pid)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"worker still running 20 s after SIGTERM; log:\n{log_path.read_text()[-4000:]}"
            )
        stopped_in = time.monotonic() - started
        assert code in (0, -signal.SIGTERM), (
            f"exit code {code}; log:\n{log_path.read_text()[-4000:]}"
        )
        assert stopped_in < 20
        await asyncio.sleep(0.5)  # let any orphan be reaped
        assert left_over(proc.pid, seen) == [], "processes left behind after the worker stopped"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
