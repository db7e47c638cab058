"""The hub as it is deployed on a bare machine: the real `reghub worker --processes N` command (its
supervisor and N worker processes of one consumer group) configured by `REGHUB_*` variables, timed
from the moment the first of its workers holds partitions until the register has read the whole
dispensings topic.

The end is read from the register itself: the workers store each partition's next offset in the
batch's own transaction (`consumer_offsets`), so when those offsets of the dispensings topic add up to
N, N reports are committed. That is a read of a few rows every 50 ms, not a count of a growing table.
The start is read from each worker's `/health` (`assigned`, polled every 20 ms until every worker holds
partitions, then no more). CPU per process is sampled at both ends: the worker processes summed (the
supervisor, which only waits for them, is left out), PostgreSQL, the broker and this process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.harness.broker import JOIN_TIMEOUT_S, SESSION_TIMEOUT_MS
from bench.harness.timing import cpu_seconds, process_cpu
from reghub.broker import free_ports
from sinks.migrations import upgrade
from sinks.register import make_engine

REPO = Path(__file__).resolve().parent.parent.parent
START_TIMEOUT_S = 120.0  # the command's start-up checks, its children's imports and the group join
RUN_TIMEOUT_S = 1800.0
STOP_TIMEOUT_S = 30.0
PSEUDONYM_KEY = "bench-pseudonym-key-0123456789"


@dataclass
class DeployedResult:
    """One run of `reghub worker --processes N`."""

    records: int = 0
    seconds: float = 0.0  # first worker holding partitions → N offsets in the register
    join_seconds: float = 0.0  # command started → first worker holding partitions (excluded)
    spread_seconds: float = 0.0  # first → last worker holding partitions (inside the timed run)
    workers: list[int] = field(default_factory=list)  # pids
    worker_cpu: list[float] = field(default_factory=list)  # CPU seconds each, in the timed run
    peak_mb: list[float] = field(default_factory=list)  # each worker's peak resident set (VmHWM)
    cpu: dict[str, float] = field(default_factory=dict)  # "consumer" = the workers summed

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux `/proc`)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return sorted(found)


def peak_mb(pid: int) -> float:
    """The peak resident set of process `pid` over its life so far, MB (`VmHWM`, Linux `/proc`)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise ValueError(f"no VmHWM for process {pid}")


def _assigned(port: int) -> int | None:
    """Partitions the worker at `port` holds, from its `/health`; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return int(json.loads(resp.read()).get("assigned") or 0)
    except (OSError, ValueError):
        return None


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def run_deployed(
    bootstrap: str,
    prefix: str,
    url: str,
    n: int,
    max_records: int,
    topic: str,
    processes: int = 2,
    broker_pid: int | None = None,
) -> DeployedResult:
    """`reghub worker --processes N` on the stage's topics into the (empty) PostgreSQL register at
    `url`, until it has committed N reports of `topic`; stopped with SIGTERM."""
    engine = make_engine(url)
    try:
        await upgrade(engine)  # as `reghub db upgrade` would: the worker refuses an empty register
    finally:
        await engine.dispose()
    database = url.rsplit("/", 1)[1]
    port = free_ports(processes)
    folder = Path(tempfile.mkdtemp(prefix="reghub-bench-deployed-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "REGHUB_KAFKA_BOOTSTRAP": bootstrap,
            "REGHUB_KAFKA_IDEMPOTENCE": "false",  # the embedded Tansu refuses InitProducerId
            "REGHUB_TOPIC_REPLICATION_FACTOR": "1",  # one broker
            "REGHUB_TOPIC_MIN_INSYNC_REPLICAS": "1",
            "REGHUB_DATABASE_URL": url,
            "REGHUB_TOPIC_PREFIX": prefix,
            "REGHUB_CONSUMER_GROUP": f"{prefix}deployed-{uuid.uuid4().hex[:6]}",
            "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
            "REGHUB_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "REGHUB_REPORT_GRACE_SECONDS": str(10**10),
            "REGHUB_BATCH_MAX_RECORDS": str(max_records),
            "REGHUB_WEB_PORT": str(port),
            "REGHUB_DATA_DIR": str(folder / ".reghub"),
            "REGHUB_LOG_LEVEL": "warning",
        }
    )
    log_path = folder / "worker.log"
    conn = await asyncpg.connect(_pg_dsn(url), timeout=5)
    result = DeployedResult(records=n)
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "reghub", "worker", "--processes", str(processes)],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def alive() -> None:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"reghub worker exited with {proc.returncode}:\n{tail}")

        ports = [port + i for i in range(processes)]
        held: dict[int, float] = {}
        t0 = cpu0 = None
        workers: list[int] = []
        worker_cpu0: list[float] = []
        while len(held) < processes:
            alive()
            answers = await asyncio.gather(*(asyncio.to_thread(_assigned, p) for p in ports))
            now = time.perf_counter()
            for p, a in zip(ports, answers, strict=True):
                if a and p not in held:
                    held[p] = now
            if held and t0 is None:
                workers = _children(proc.pid)
                cpu0 = cpu_seconds(broker_pid, database)
                worker_cpu0 = [process_cpu(w) for w in workers]
                t0 = now
            if t0 is None and now - started > START_TIMEOUT_S:
                raise TimeoutError(f"no worker held partitions within {START_TIMEOUT_S:.0f} s")
            if t0 is not None and now - t0 > JOIN_TIMEOUT_S:
                break  # measured as it is: the spread says how long one worker waited
            await asyncio.sleep(0.02)
        assert t0 is not None and cpu0 is not None
        result.join_seconds = t0 - started
        result.spread_seconds = max(held.values()) - t0

        query = "select coalesce(sum(next_offset), 0) from consumer_offsets where topic = $1"
        while True:
            done = int(await conn.fetchval(query, topic))
            now = time.perf_counter()
            if done >= n:
                break
            alive()
            if now - t0 > RUN_TIMEOUT_S:
                raise TimeoutError(f"reghub worker committed {done} of {n} reports")
            await asyncio.sleep(0.05)
        cpu1 = cpu_seconds(broker_pid, database)
        result.seconds = now - t0
        result.workers = workers
        result.worker_cpu = [process_cpu(w) - c for w, c in zip(workers, worker_cpu0, strict=True)]
        result.peak_mb = [peak_mb(w) for w in workers]
        result.cpu = {k: cpu1[k] - cpu0[k] for k in cpu1}
        if result.cpu:
            result.cpu["consumer"] = sum(result.worker_cpu)
        return result
    finally:
        await conn.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()  # its children die with it (PR_SET_PDEATHSIG)
                proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
