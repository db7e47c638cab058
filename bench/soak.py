"""Soak: the hub as deployed, fed at a steady rate for an hour with the dashboard open; does it stay flat?

Run as `python -m bench.soak [--rate 300] [--minutes 60] [--csv [PATH]] [--trace]`. It starts what
the fault campaign starts (`bench.faults.hub`: a fresh Tansu broker, a fresh migrated PostgreSQL
database, one `python -m reghub worker` process) and `python -m reghub api` beside it, as real
processes; produces dispensing reports at `--rate` a second (about 1 % returns of recent reports and
0.2 % malformed ones, as `reghub up --demo` does, over `--persons` persons, the event clock walking
through about a year); loads `/dashboard` and asks `/monitor` every 2 s with a monitoring token, as a
browser showing the dashboard does; and every `--sample` seconds notes the worker's and the API's RSS
(`/proc`), `/monitor`'s latency, the outbox's rows and size (`pg_total_relation_size`) and the lag
(records no committed offset covers).

It prints a table every 5 minutes and, at the end, a verdict over the last half of the run: the RSS
slope of worker and API (MB/min, least squares), `/monitor` latency in the first and last 5 minutes,
whether the worker kept up (at the end no more than a minute of reports behind), and whether the
outbox stayed bounded (its size grew less than a tenth as fast in the last half as in
the first quarter, or not at all). The worker keeps sent outbox rows `--outbox-keep-hours` (0.25 by
default, so that an hour shows the purge; the hub's default is 1 h). On a PostgreSQL server that runs
without autovacuum (some development and CI servers do) the space of purged rows is never used again,
so the soak vacuums the outbox after each sample in its stead (`--vacuum`).

`--trace` has worker and API start tracemalloc 30 s after they start (a `sitecustomize` the soak
writes into its folder) and write their 25 largest allocation growths since a minute later to
`tracemalloc-<pid>-<minutes>min.txt` in the run's folder every `--trace-every` seconds: where memory
grows, by line (`--trace-frames` deep; each frame slows the worker further).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from api.tokens import mint
from bench.faults.hub import Hub
from bench.faults.workers import REPO
from reghub import synthetic
from reghub.broker import free_port
from streams.topics import DISPENSINGS

TOKEN_SECRET = "soak-api-token-secret-0123456789abcdef"
AUDIENCE = "reghub-api"
ISSUER = "reghub-dev"
TABLE_EVERY_S = 300.0

TRACE_HOOK = '''"""Written by bench.soak --trace: tracemalloc in this process, top growths to files."""
import os, threading, time, tracemalloc

if os.environ.get("SOAK_TRACE_DIR"):

    def _dump() -> None:
        # started once the process runs: tracing its imports made the worker miss its start-up checks
        folder, every = os.environ["SOAK_TRACE_DIR"], float(os.environ["SOAK_TRACE_EVERY"])
        time.sleep(30.0)
        tracemalloc.start(int(os.environ["SOAK_TRACE_FRAMES"]))
        time.sleep(60.0)
        base = tracemalloc.take_snapshot()
        started = time.monotonic()
        while True:
            time.sleep(every)
            snap = tracemalloc.take_snapshot().filter_traces(
                (tracemalloc.Filter(False, tracemalloc.__file__),)
            )
            minutes = (time.monotonic() - started) / 60
            lines = [f"after {minutes:.1f} min; traced "
                     f"{tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB"]
            for kind in ("lineno", "traceback"):
                lines.append(f"--- top growths by {kind}")
                for stat in snap.compare_to(base, kind)[:25]:
                    lines.append(f"{stat.size_diff / 1e3:+10.1f} kB {stat.count_diff:+8d} blocks")
                    frames = stat.traceback.format() if kind == "traceback" else [
                        str(stat.traceback[0])]
                    lines.extend("    " + f for f in frames)
            name = f"tracemalloc-{os.getpid()}-{minutes:05.1f}min.txt"
            with open(os.path.join(folder, name), "w") as out:
                out.write("\\n".join(lines) + "\\n")

    threading.Thread(target=_dump, daemon=True, name="soak-trace").start()
'''


@dataclass
class Sample:
    """One sample of the run; `monitor_*` over the `/monitor` calls since the previous sample."""

    minute: float
    produced: int
    acked: int
    lag: int | None
    worker_rss_mb: float | None
    api_rss_mb: float | None
    monitor_p50_ms: float | None
    monitor_max_ms: float | None
    monitor_calls: int
    monitor_errors: int
    outbox_rows: int | None
    outbox_unsent: int | None
    outbox_mb: float | None
    worker_restarts: int


@dataclass
class Traffic:
    produced: int = 0
    acked: int = 0
    failed: int = 0


@dataclass
class Poller:
    """What the dashboard's browser sees: `/monitor` latencies (s) and errors since the last take."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    last_error: str = ""

    def take(self) -> tuple[list[float], int]:
        latencies, errors = self.latencies, self.errors
        self.latencies, self.errors = [], 0
        return latencies, errors


class SoakHub(Hub):
    """The fault campaign's hub with the soak's extra worker settings (outbox retention, tracing)."""

    def __init__(self, args: argparse.Namespace, folder: Path, extra_env: dict[str, str]) -> None:
        super().__init__("soak", args, folder)
        self.extra_env = extra_env

    def worker_env(self) -> dict[str, str]:
        return {**super().worker_env(), **self.extra_env}


def rss_mb(pid: int) -> float | None:
    """Resident set size of `pid` from /proc, in MB; None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _get(url: str, token: str | None, timeout: float = 30.0) -> bytes:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


async def feed(
    bootstrap: str, topic: str, args: argparse.Namespace, stop: asyncio.Event, traffic: Traffic
) -> None:
    """Dispensing reports at `args.rate` a second until `stop`: like the demo traffic, with a clock
    that walks through about a year over the run and memory that does not grow with it."""
    rng = random.Random(args.seed)
    people = synthetic.persons(args.persons, rng)
    shops = synthetic.pharmacies()
    total = max(1.0, args.rate * args.minutes * 60)
    step = 365 * 86_400 / total
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=20
    )
    await producer.start()

    def acked(future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            traffic.failed += 1
        else:
            traffic.acked += 1

    recent: deque[tuple[str, synthetic.Person]] = deque(maxlen=2_000)
    clock = synthetic.DEMO_START
    began = time.monotonic()
    try:
        while not stop.is_set():
            n = traffic.produced
            report_id = f"soak-r{n}"
            person = rng.choice(people)
            clock += timedelta(seconds=step * rng.uniform(0.5, 1.5))
            if n and rng.random() < 0.002:
                value = b'{"report_id": "' + report_id.encode() + b'", "lines": "not a list"}'
            elif recent and rng.random() < 0.01:
                original, person = rng.choice(recent)
                message = synthetic.report(report_id, person, rng.choice(shops), clock, rng)
                message.update(
                    kind="return",
                    return_of=original,
                    lines=[{"drug_id": "000001", "reimbursement_price": -1, "actual_price": -1}],
                )
                value = orjson.dumps(message)
            else:
                message = synthetic.report(report_id, person, rng.choice(shops), clock, rng)
                value = orjson.dumps(message)
                recent.append((report_id, person))
            future = await producer.send(
                topic,
                value,
                key=person.key.encode(),
                timestamp_ms=int(clock.timestamp() * 1000) + 1_500,
            )
            future.add_done_callback(acked)
            traffic.produced += 1
            ahead = traffic.produced / args.rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 15)


async def poll_dashboard(
    base: str, token: str, every: float, stop: asyncio.Event, poller: Poller
) -> None:
    """A browser with the dashboard open: the page now and every 5 minutes (a reload), `/monitor`
    every `every` seconds whether or not the previous call has answered (`setInterval`)."""

    async def monitor() -> None:
        began = time.monotonic()
        try:
            body = await asyncio.to_thread(_get, f"{base}/monitor", token)
            json.loads(body)
            poller.latencies.append(time.monotonic() - began)
        except (OSError, ValueError) as exc:
            poller.errors += 1
            poller.last_error = f"{type(exc).__name__}: {exc}"[:200]

    calls: set[asyncio.Task[None]] = set()
    page_at = 0.0
    while not stop.is_set():
        if time.monotonic() - page_at >= TABLE_EVERY_S:
            page_at = time.monotonic()
            with contextlib.suppress(OSError):
                await asyncio.to_thread(_get, f"{base}/dashboard", None)
        task = asyncio.create_task(monitor())
        calls.add(task)
        task.add_done_callback(calls.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
    await asyncio.gather(*calls, return_exceptions=True)


def start_api(
    hub: SoakHub, folder: Path, port: int, env_extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    assert hub.pool is not None
    env = {
        **hub.worker_env(),
        **env_extra,
        "REGHUB_API_TOKEN_SECRET": TOKEN_SECRET,
        "REGHUB_WORKER_URLS": json.dumps([f"http://127.0.0.1:{w.port}" for w in hub.pool.workers]),
    }
    with open(folder / "api.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "reghub", "api", "--port", str(port)],
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def wait_for_api(base: str, process: subprocess.Popen[bytes], folder: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            await asyncio.to_thread(_get, f"{base}/health", None, 2.0)
            return
        await asyncio.sleep(0.3)
    tail = (folder / "api.log").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the API did not answer /health:\n{tail}")


def stop_process(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


async def sample_once(
    hub: SoakHub,
    api: subprocess.Popen[bytes],
    began: float,
    traffic: Traffic,
    poller: Poller,
) -> Sample:
    assert hub.sql is not None and hub.pool is not None
    worker = hub.pool.workers[0]
    latencies, errors = poller.take()
    rows = await hub.sql.fetch(
        "SELECT count(*) AS n, count(*) FILTER (WHERE sent_at IS NULL) AS unsent, "
        "pg_total_relation_size('outbox') AS size FROM outbox"
    )
    lag = await hub.lag()
    return Sample(
        minute=round((time.monotonic() - began) / 60, 2),
        produced=traffic.produced,
        acked=traffic.acked,
        lag=None if lag is None else lag[0],
        worker_rss_mb=rss_mb(worker.proc.pid) if worker.proc is not None else None,
        api_rss_mb=rss_mb(api.pid),
        monitor_p50_ms=round(statistics.median(latencies) * 1000, 1) if latencies else None,
        monitor_max_ms=round(max(latencies) * 1000, 1) if latencies else None,
        monitor_calls=len(latencies),
        monitor_errors=errors,
        outbox_rows=int(rows[0]["n"]) if rows else None,
        outbox_unsent=int(rows[0]["unsent"]) if rows else None,
        outbox_mb=round(rows[0]["size"] / 1e6, 1) if rows else None,
        worker_restarts=worker.starts - 1,
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


HEADER = (
    f"{'min':>6} {'reports/s':>9} {'lag':>7} {'worker MB':>9} {'API MB':>7} "
    f"{'/monitor p50':>12} {'max ms':>7} {'outbox rows':>11} {'unsent':>6} {'outbox MB':>9}"
)


def table_row(window: list[Sample], previous: Sample | None) -> str:
    """One line for the samples of a 5-minute window: rate over it, the last values, /monitor's median."""
    last = window[-1]
    start_minute, start_acked = (previous.minute, previous.acked) if previous else (0.0, 0)
    minutes = max(1e-9, last.minute - start_minute)
    p50s = [s.monitor_p50_ms for s in window if s.monitor_p50_ms is not None]
    maxes = [s.monitor_max_ms for s in window if s.monitor_max_ms is not None]
    return (
        f"{last.minute:>6.1f} {(last.acked - start_acked) / minutes / 60:>9,.0f} "
        f"{'–' if last.lag is None else f'{last.lag:,}':>7} {_fmt(last.worker_rss_mb):>9} "
        f"{_fmt(last.api_rss_mb):>7} {_fmt(statistics.median(p50s) if p50s else None):>12} "
        f"{_fmt(max(maxes) if maxes else None, 0):>7} "
        f"{'–' if last.outbox_rows is None else f'{last.outbox_rows:,}':>11} "
        f"{'–' if last.outbox_unsent is None else f'{last.outbox_unsent:,}':>6} "
        f"{_fmt(last.outbox_mb):>9}"
    )


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y) points; None with fewer than 3."""
    if len(points) < 3:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def verdict(
    samples: list[Sample], minutes: float, rss_limit: float, rate: float
) -> tuple[list[str], bool]:
    """Lines saying how the last half went, and whether it stayed flat and kept up (at the end no
    more than a minute of reports behind)."""
    lines: list[str] = []
    ok = True
    half = minutes / 2
    last_half = [s for s in samples if s.minute >= half]
    for name, attr in (("worker", "worker_rss_mb"), ("API", "api_rss_mb")):
        pts = [(s.minute, getattr(s, attr)) for s in last_half if getattr(s, attr) is not None]
        k = slope(pts)
        flat = k is not None and k <= rss_limit
        ok &= flat
        span = f"{pts[0][1]:.1f} → {pts[-1][1]:.1f} MB" if pts else "no samples"
        lines.append(
            f"{name} RSS over the last half: {_fmt(k, 3)} MB/min ({span}) — "
            f"{'flat' if flat else 'GROWS'} (limit {rss_limit} MB/min)"
        )

    def p50(window: list[Sample]) -> float | None:
        values = [s.monitor_p50_ms for s in window if s.monitor_p50_ms is not None]
        return statistics.median(values) if values else None

    first = p50([s for s in samples if s.minute <= 5])
    last = p50([s for s in samples if s.minute > samples[-1].minute - 5]) if samples else None
    flat = first is not None and last is not None and last <= 2 * first + 50
    ok &= flat
    lines.append(
        f"/monitor p50: {_fmt(first)} ms in the first 5 min, {_fmt(last)} ms in the last 5 — "
        f"{'flat' if flat else 'GROWS'}"
    )
    errors = sum(s.monitor_errors for s in samples)
    calls = sum(s.monitor_calls for s in samples)
    lines.append(f"/monitor calls answered: {calls:,}, failed: {errors:,}")
    sized = [(s.minute, s.outbox_mb) for s in samples if s.outbox_mb is not None]
    early = slope([p for p in sized if p[0] <= minutes / 4])
    late = slope([p for p in sized if p[0] >= half])
    bounded = late is not None and late <= max(0.1 * (early or 0.0), 0.05)
    ok &= bounded
    end = samples[-1] if samples else None
    lines.append(
        f"outbox: {_fmt(early, 2)} MB/min in the first quarter, {_fmt(late, 2)} MB/min in the last "
        f"half; at the end {'–' if end is None or end.outbox_rows is None else f'{end.outbox_rows:,}'}"
        f" rows, {_fmt(end.outbox_mb if end else None)} MB — {'bounded' if bounded else 'GROWS'}"
    )
    behind = [s.lag for s in last_half if s.lag is not None]
    kept_up = bool(behind) and behind[-1] <= rate * 60
    ok &= kept_up
    lines.append(
        f"lag: at most {max(behind, default=0):,} records in the last half, "
        f"{f'{behind[-1]:,}' if behind else '–'} at the end — "
        f"{'kept up' if kept_up else 'FELL BEHIND (more than a minute of reports)'}"
    )
    restarts = end.worker_restarts if end else 0
    if restarts:
        ok = False
        lines.append(f"the worker was restarted {restarts} times (crashes)")
    return lines, ok


async def soak(args: argparse.Namespace) -> int:
    folder = Path(args.folder or tempfile.mkdtemp(prefix="reghub-soak-")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    extra = {
        "REGHUB_OUTBOX_KEEP_HOURS": str(args.outbox_keep_hours),
        "REGHUB_LOG_LEVEL": args.log_level,
    }
    if args.trace:
        hook = folder / "trace-hook"
        hook.mkdir(exist_ok=True)
        (hook / "sitecustomize.py").write_text(TRACE_HOOK)
        extra.update(
            PYTHONPATH=f"{hook}{os.pathsep}{REPO}",
            SOAK_TRACE_DIR=str(folder),
            SOAK_TRACE_EVERY=str(args.trace_every),
            SOAK_TRACE_FRAMES=str(args.trace_frames),
        )
    print(
        f"soak: {args.rate} reports/s for {args.minutes} min; logs and samples in {folder}",
        flush=True,
    )
    hub = SoakHub(args, folder, extra)
    samples: list[Sample] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with hub.running():
        assert hub.pool is not None
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = start_api(hub, folder, port, extra)
        try:
            await wait_for_api(base, api, folder)
            token = mint(
                TOKEN_SECRET.encode(),
                "monitoring",
                "soak-dashboard",
                audience=AUDIENCE,
                issuer=ISSUER,
                ttl=timedelta(hours=args.minutes / 60 + 2),
            )
            traffic, poller = Traffic(), Poller()
            began = time.monotonic()
            tasks = [
                asyncio.create_task(
                    feed(hub.bootstrap, hub.topic(DISPENSINGS), args, stop, traffic)
                ),
                asyncio.create_task(poll_dashboard(base, token, args.poll, stop, poller)),
            ]
            loop.call_later(args.minutes * 60, stop.set)
            assert hub.sql is not None
            vacuum = args.vacuum == "always" or (
                args.vacuum == "auto" and await hub.sql.scalar("SHOW autovacuum") == "off"
            )
            if vacuum:
                print(
                    "this PostgreSQL runs without autovacuum: the soak vacuums the outbox after "
                    "each sample in its stead (--vacuum never: not)",
                    flush=True,
                )
            print(HEADER, flush=True)
            window: list[Sample] = []
            previous: Sample | None = None
            next_table = began + TABLE_EVERY_S
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.sample)
                for task in tasks:
                    if task.done() and task.exception() is not None:
                        raise task.exception()  # type: ignore[misc]
                sample = await sample_once(hub, api, began, traffic, poller)
                if vacuum:  # what autovacuum does: the purged rows' space is used again
                    await hub.sql.fetch("VACUUM outbox")
                samples.append(sample)
                window.append(sample)
                if args.csv:
                    write_csv(Path(args.csv), samples)
                if time.monotonic() >= next_table - 1 or stop.is_set():
                    print(table_row(window, previous), flush=True)
                    if poller.last_error:
                        print(f"       /monitor failed: {poller.last_error}", flush=True)
                        poller.last_error = ""
                    previous, window = sample, []
                    next_table += TABLE_EVERY_S
            await asyncio.gather(*tasks, return_exceptions=True)
            if traffic.failed:
                print(f"{traffic.failed} reports were not acknowledged by the broker", flush=True)
        finally:
            stop_process(api)
    ran = samples[-1].minute if samples else 0.0  # less than asked when stopped early
    lines, ok = verdict(samples, ran, args.rss_limit, args.rate)
    print("verdict over the last half:", flush=True)
    for line in lines:
        print(f"  {line}", flush=True)
    if hub.pool is not None and hub.pool.crashes:
        print("  crashes: " + "; ".join(hub.pool.crashes), flush=True)
    return 0 if ok else 1


def write_csv(path: Path, samples: list[Sample]) -> None:
    new = path.with_suffix(path.suffix + ".new")
    with open(new, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(asdict(samples[0])))
        writer.writeheader()
        writer.writerows(asdict(s) for s in samples)
    new.replace(path)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=300.0, help="reports a second")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--persons", type=int, default=200_000, help="persons the reports are about")
    p.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between /monitor calls")
    p.add_argument("--outbox-keep-hours", type=float, default=0.25)
    p.add_argument(
        "--vacuum",
        choices=("auto", "always", "never"),
        default="auto",
        help="VACUUM the outbox after each sample (auto: when the server's autovacuum is off)",
    )
    p.add_argument("--rss-limit", type=float, default=0.1, help="MB/min still called flat")
    p.add_argument(
        "--csv",
        nargs="?",
        const="",
        default=None,
        help="samples as CSV (default: in the run's folder)",
    )
    p.add_argument("--folder", help="logs and samples (default: a new folder under the temp dir)")
    p.add_argument("--trace", action="store_true", help="tracemalloc growths of worker and API")
    p.add_argument("--trace-every", type=float, default=120.0)
    p.add_argument(
        "--trace-frames", type=int, default=1, help="frames per allocation (more: slower worker)"
    )
    p.add_argument("--log-level", default="warning")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--keep-database", action="store_true")
    args = p.parse_args(argv)
    # what bench.faults.hub.Hub reads of its arguments
    args.workers, args.stall, args.settle_timeout, args.crash_loop_seconds = 1, 0.0, 60.0, 30.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.csv == "":
        args.folder = args.folder or tempfile.mkdtemp(prefix="reghub-soak-")
        args.csv = str(Path(args.folder) / "samples.csv")
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
