"""`python -m bench.dispensing_throughput --compare` (needs the `bench` extra: Quix Streams): the same
broker, reports and PostgreSQL server for the ceiling, Quix Streams (`bench/peer_quix.py`) and
reghub end to end, two rounds alternating, each into a fresh database; the medians, their ratios
and each system's CPU per report."""

from __future__ import annotations

import argparse
import statistics
import sys

from bench import peer_quix
from bench.harness.register import PG_ADMIN_DSN, database
from bench.harness.stage import Stage, stage
from bench.harness.timing import cpu_seconds, process_cpu
from bench.harness.worker import end_to_end


async def run(args: argparse.Namespace) -> None:
    """Refuse without Quix Streams (exit 2); else produce, read the ceiling and compare."""
    if not peer_quix.available():
        print(peer_quix.INSTALL_HINT, file=sys.stderr)
        raise SystemExit(2)
    async with stage(args) as s:
        await compare(args, s)


async def compare(args: argparse.Namespace, s: Stage) -> None:
    """Quix Streams and reghub in turn, two rounds, each into a fresh database."""
    n: int = args.n
    broker, prefix, topic, top, pid = s.broker, s.prefix, s.topic, s.top, s.broker_pid
    quix: list[float] = []
    reghub: list[float] = []
    quix_cpu: list[dict[str, float]] = []
    reghub_cpu: list[dict[str, float]] = []

    def sample(quix_pid: int) -> dict[str, float]:
        found = cpu_seconds(pid)
        return {"consumer": process_cpu(quix_pid), **found} if found else {}

    for round_ in (1, 2):
        async with database(None) as url:
            q = await peer_quix.run(
                broker.bootstrap, topic, n, PG_ADMIN_DSN, url.rsplit("/", 1)[1], sample
            )
        quix.append(q.rate)
        quix_cpu.append(q.cpu)
        print(
            f"round {round_}, quix:   {q.rate:,.0f} reports/s ({n} rows in {q.seconds:.2f} s from "
            f"the first record; the last processed at {q.processed_seconds:.2f} s; start and group "
            f"join {q.join_seconds:.1f} s, excluded)"
        )
        async with database(None) as url:
            e2e, _, added = await end_to_end(
                broker.bootstrap, prefix, url, n, args.max_records, None, pid, args.gc_threshold
            )
        reghub.append(e2e.rate)
        reghub_cpu.append({"consumer": e2e.cpu.get("worker", 0.0), **e2e.cpu} if e2e.cpu else {})
        print(
            f"round {round_}, reghub: {e2e.rate:,.0f} reports/s ({e2e.records} in "
            f"{e2e.seconds:.2f} s; group join {e2e.join_seconds:.1f} s, excluded; {added} "
            f"purchase rows added)"
        )
    q_med, r_med = statistics.median(quix), statistics.median(reghub)
    print()
    print(f"ceiling:        {top.rate:,.0f} reports/s (aiokafka getmany + orjson)")
    print(f"quix (median):  {q_med:,.0f} reports/s (PostgreSQLSink, one row per report)")
    print(f"reghub (median): {r_med:,.0f} reports/s (the register, end to end)")
    print(f"reghub / quix:  {r_med / q_med if q_med else 0:.2f}")
    print(f"quix / ceiling: {q_med / top.rate if top.rate else 0:.2f}")
    print(f"reghub / ceiling: {r_med / top.rate if top.rate else 0:.2f}")
    for name, runs in (("quix", quix_cpu), ("reghub", reghub_cpu)):
        if all(runs):
            print(f"{name} CPU per report (µs, median of the rounds): {_cpu_per_report(runs, n)}")


def _cpu_per_report(runs: list[dict[str, float]], n: int) -> str:
    """Each process's CPU over a timed run, per report: where a system's reports/s come from."""
    parts = []
    for key, label in (("consumer", "consumer"), ("postgresql", "postgresql"), ("tansu", "tansu")):
        per = statistics.median(r.get(key, 0.0) for r in runs) / n * 1e6
        parts.append(f"{label} {per:,.0f}")
    return ", ".join(parts)
