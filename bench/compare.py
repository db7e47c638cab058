"""`python -m bench.dispensing_throughput --compare` (needs the `bench` extra: Quix Streams): the same
broker, reports and PostgreSQL server for the ceiling, Quix Streams (`bench/peer_quix.py`), reghub
with one worker in this process (`bench/harness/worker.py`) and reghub as deployed, the real
`reghub worker --processes 2` (`bench/harness/deployed.py`); two rounds alternating (`--rounds`),
each run into a fresh database; the medians, each system's CPU per report (consumer / PostgreSQL / broker and their
sum) and the goals' ratios, each on a line of its own."""

from __future__ import annotations

import argparse
import statistics
import sys

from bench import peer_quix
from bench.harness.deployed import run_deployed
from bench.harness.register import PG_ADMIN_DSN, database
from bench.harness.stage import Stage, stage
from bench.harness.timing import cpu_seconds, process_cpu
from bench.harness.worker import end_to_end

DEPLOYED_PROCESSES = 2
CPU_PARTS = (("consumer", "consumer"), ("postgresql", "postgresql"), ("tansu", "tansu"))


async def run(args: argparse.Namespace) -> None:
    """Refuse without Quix Streams (exit 2); else produce, read the ceiling and compare."""
    if not peer_quix.available():
        print(peer_quix.INSTALL_HINT, file=sys.stderr)
        raise SystemExit(2)
    async with stage(args) as s:
        await compare(args, s)


async def compare(args: argparse.Namespace, s: Stage) -> None:
    """Quix Streams, reghub one worker and reghub deployed in turn, `--rounds` rounds (two by
    default), each run into a fresh database."""
    n: int = args.n
    broker, prefix, topic, top, pid = s.broker, s.prefix, s.topic, s.top, s.broker_pid
    rates: dict[str, list[float]] = {"quix": [], "reghub": [], "deployed": []}
    cpus: dict[str, list[dict[str, float]]] = {"quix": [], "reghub": [], "deployed": []}

    for round_ in range(1, args.rounds + 1):
        async with database(None) as url:
            name = url.rsplit("/", 1)[1]

            def sample(quix_pid: int, name: str = name) -> dict[str, float]:
                found = cpu_seconds(pid, name)
                return {"consumer": process_cpu(quix_pid), **found} if found else {}

            q = await peer_quix.run(broker.bootstrap, topic, n, PG_ADMIN_DSN, name, sample)
        rates["quix"].append(q.rate)
        cpus["quix"].append(q.cpu)
        print(
            f"round {round_}, quix:   {q.rate:,.0f} reports/s ({n} rows in {q.seconds:.2f} s from "
            f"the first record; the last processed at {q.processed_seconds:.2f} s; start and group "
            f"join {q.join_seconds:.1f} s, excluded)"
        )
        async with database(None) as url:
            e2e, _, added = await end_to_end(
                broker.bootstrap, prefix, url, n, args.max_records, None, pid, args.gc_threshold
            )
        rates["reghub"].append(e2e.rate)
        cpus["reghub"].append(
            {"consumer": e2e.cpu.get("worker", 0.0), **e2e.cpu} if e2e.cpu else {}
        )
        print(
            f"round {round_}, reghub: {e2e.rate:,.0f} reports/s ({e2e.records} in "
            f"{e2e.seconds:.2f} s; group join {e2e.join_seconds:.1f} s, excluded; {added} "
            f"purchase rows added)"
        )
        async with database(None) as url:
            d = await run_deployed(
                broker.bootstrap, prefix, url, n, args.max_records, topic, DEPLOYED_PROCESSES, pid
            )
        rates["deployed"].append(d.rate)
        cpus["deployed"].append(d.cpu)
        each = ", ".join(f"{c:.1f}" for c in d.worker_cpu)
        print(
            f"round {round_}, deployed: {d.rate:,.0f} reports/s (reghub worker --processes "
            f"{DEPLOYED_PROCESSES}: {d.records} in {d.seconds:.2f} s from the first worker's "
            f"partitions, the last worker's {d.spread_seconds:.1f} s later; start and group join "
            f"{d.join_seconds:.1f} s, excluded; worker CPU {each} s)"
        )
    med = {k: statistics.median(v) for k, v in rates.items()}
    q_med = med["quix"]
    print()
    print(f"ceiling:         {top.rate:,.0f} reports/s (aiokafka getmany + orjson)")
    print(f"quix (median):   {q_med:,.0f} reports/s (PostgreSQLSink, one row per report)")
    print(f"reghub (median): {med['reghub']:,.0f} reports/s (the register, end to end, one worker)")
    print(
        f"deployed (median): {med['deployed']:,.0f} reports/s (reghub worker --processes "
        f"{DEPLOYED_PROCESSES})"
    )
    sums: dict[str, float] = {}
    for name, runs in cpus.items():
        if all(runs):
            parts, sums[name] = _cpu_per_report(runs, n)
            label = (
                f"{name} (--processes {DEPLOYED_PROCESSES}, workers summed)"
                if name == "deployed"
                else name
            )
            print(f"{label} CPU per report (µs, median of the rounds): {parts}")
    print(f"reghub / quix: {_ratio(med['reghub'], q_med)}")
    print(f"deployed (--processes {DEPLOYED_PROCESSES}) / quix: {_ratio(med['deployed'], q_med)}")
    if "quix" in sums and "reghub" in sums:
        print(f"CPU per report, reghub / quix: {_ratio(sums['reghub'], sums['quix'])}")
    if "quix" in sums and "deployed" in sums:
        print(
            f"CPU per report, deployed (--processes {DEPLOYED_PROCESSES}) / quix: "
            f"{_ratio(sums['deployed'], sums['quix'])}"
        )
    print(f"quix / ceiling: {_ratio(q_med, top.rate)}")
    print(f"reghub / ceiling: {_ratio(med['reghub'], top.rate)}")


def _ratio(a: float, b: float) -> str:
    return f"{a / b if b else 0:.2f}"


def _cpu_per_report(runs: list[dict[str, float]], n: int) -> tuple[str, float]:
    """Each process's CPU over a timed run, per report, and their sum: where a system's reports/s
    come from. Each part is the median of the rounds; the sum is the median of each round's sum."""
    parts = []
    for key, label in CPU_PARTS:
        per = statistics.median(r.get(key, 0.0) for r in runs) / n * 1e6
        parts.append(f"{label} {per:,.0f}")
    total = statistics.median(sum(r.get(k, 0.0) for k, _ in CPU_PARTS) for r in runs) / n * 1e6
    parts.append(f"sum {total:,.0f}")
    return ", ".join(parts), total
