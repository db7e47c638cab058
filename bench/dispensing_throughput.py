"""Dispensing throughput: N synthetic reports produced, read bare (the ceiling), then by the worker.

Run as `python -m bench.dispensing_throughput [-n 200000] [--partitions 4] [--database-url URL]
[--workers N] [--compare | --latency [--rate R --seconds S] | --rebuild [N]]`.

1. An embedded Tansu broker and the hub topics under a unique prefix, `--partitions` partitions.
2. N reports (`reghub.synthetic`) produced to the dispensings topic, keyed by person, in whole
   batches (`create_batch`/`send_batch`, partitioned as the default partitioner would).
3. The ceiling: a bare aiokafka consumer (own group) reading the topic with `getmany` and
   `orjson.loads`.
4. End to end: the real worker (`reghub.wiring.processor`) into a fresh PostgreSQL database (or
   `--database-url`, e.g. `sqlite+aiosqlite:///…`, or `sqlite` for a temporary file), timed from
   the moment its consumer got its assignment (the group join, several seconds on Tansu, is
   excluded) until the batch that brings it to N messages is committed.

Both consumers are timed the same way (assignment → N records handled). The worker's time is split
per step by the pipeline's own step hook (`Pipeline.on_step`); figures are printed, nothing is
asserted. `--profile FILE` writes a cProfile of the end-to-end phase (pstats format).

`--workers N` (N > 1) runs step 4 as N worker processes (multiprocessing "spawn", one asyncio loop
each, the real `reghub.wiring.processor`) in one consumer group against the same database. Each
worker starts its processor and reports its assignment; once every worker holds partitions and
together they hold every partition of the dispensings topic (disjointly), the parent sets "go" and
the workers call `run()`. End to end is timed from "go" until `select count(*) from purchases`
(polled every 50 ms by the parent) reaches N more rows. No per-step breakdown in that mode; the
prefetch the consumers may do between their assignment and "go" (one fetch per partition) is not
timed, and the polls are not free: a scan of a growing table, their time is printed (on 2 cores
they cost PostgreSQL about 1 CPU-s per 200,000 reports, roughly 10 % off the figure).

Three other modes, each in one invocation:

`--compare` (needs the `bench` extra: Quix Streams): the same broker, the same produced reports and
the same PostgreSQL server for four readers of the topic: the ceiling (step 3), Quix Streams
(`bench/peer_quix.py`: an Application in a child process, its own consumer group from the earliest
offset, `PostgreSQLSink` with one row per report into a fresh database, its defaults otherwise),
reghub end to end (step 4, a fresh database per run) and reghub as deployed: the real
`reghub worker --processes 2` (`bench/harness/deployed.py`, a fresh database per run), timed from
its first worker holding partitions until the register's stored offsets of the topic add up to N.
Two rounds, alternating: Quix, reghub, deployed, Quix, reghub, deployed. Quix is timed from its
first record processed until `count(*)` of its table (polled every 50 ms) reaches N: its sink
writes at each checkpoint (every 5 s by default), so the time to the last record processed is
printed as well. reghub is timed as in step 4 (assignment → the batch bringing it to N committed:
its rows, outputs and offsets in one transaction). Printed: each run, the median per system, CPU
per report per system (consumer, PostgreSQL, Tansu and their sum), the ratio lines
`reghub / quix`, `deployed (--processes 2) / quix` and `CPU per report, reghub / quix`, and each
against the ceiling. Quix's rows are the reports as JSON columns, reghub's are the register's
(purchases, lines, balances, outbox, …): the same input, not the same work.

`--latency [--rate 2000 --seconds 60] [--quix-commit-interval S]` (`bench/latency.py`): a steady
stream of reports while the worker runs; per report produce → committed register row and produce →
decision read back from the decisions topic, p50 / p99 / max. Then the same stream, at the same rate,
into Quix Streams → PostgreSQLSink (`bench/peer_quix.py`, on a topic of its own; without the bench
extra, skipped with a note): per report produce → its row committed, and the ratio of the two p99s,
reghub's decision over Quix's row.

`--rebuild [N] [--rebuild-processes K]` (`bench/rebuild.py`, N = 2,000,000 by default): N reports on
the topic, then a worker in a spawned process replays them into an empty register; its rate and peak
RSS (`VmHWM`). Then the hub as deployed replays them into another empty register: the real
`reghub worker --processes K` (K: the cores by default, as `reghub worker` runs on PostgreSQL; the
harness of `--compare`'s deployed row); its rate and each worker's peak RSS. Goals: 15,000
reports/s, peak RSS < 300 MB per worker.

This module is the command line: it parses the arguments and runs one mode's entry point, `run(args)`
of `bench.throughput` (the default), `bench.throughput_workers` (`--workers N`), `bench.compare`,
`bench.latency` or `bench.rebuild`; what they share is in `bench/harness/`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from bench import compare, latency, rebuild, throughput, throughput_workers
from reghub.settings import Settings
from reghub.supervisor import default_processes


def mode(args: argparse.Namespace) -> Callable[[argparse.Namespace], Awaitable[None]]:
    """The entry point of the mode `args` ask for."""
    if args.latency:
        return latency.run
    if args.rebuild is not None:
        return rebuild.run
    if args.compare:
        return compare.run
    if args.workers > 1:
        return throughput_workers.run
    return throughput.run


async def main(args: argparse.Namespace) -> None:
    """Run the mode `args` ask for."""
    await mode(args)(args)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.dispensing_throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-n", type=int, default=200_000, help="reports to produce (default 200000)")
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    p.add_argument(
        "--database-url",
        default=None,
        help="the register (default: a fresh PostgreSQL database at $REGHUB_TEST_PG, dropped "
        "after; 'sqlite' for a temporary SQLite file)",
    )
    p.add_argument("--persons", type=int, default=20_000, help="distinct persons (default 20000)")
    p.add_argument("--days", type=int, default=300, help="days the reports span from 2024-01-02")
    p.add_argument(
        "--max-records",
        type=int,
        default=Settings.model_fields["batch_max_records"].default,
        help="getmany max_records, both consumers (default: the hub's)",
    )
    p.add_argument(
        "--gc-threshold",
        type=int,
        metavar="N",
        help="experiment: gen-0 GC threshold N (Python's default 700) and gc.freeze() of the "
        "start-up heap, both for the end-to-end phase (default: the interpreter's settings)",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--profile", metavar="FILE", help="cProfile the end-to-end phase into FILE")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes in the end-to-end phase, one consumer group (default 1: in this "
        "process, with the per-step breakdown)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--compare",
        action="store_true",
        help="ceiling, Quix Streams and reghub on the same reports, two rounds (needs the bench "
        "extra)",
    )
    mode.add_argument(
        "--latency", action="store_true", help="produce → committed row / decision at a steady rate"
    )
    mode.add_argument(
        "--rebuild",
        type=int,
        nargs="?",
        const=2_000_000,
        metavar="N",
        help="replay N reports (default 2000000) into an empty register in a worker process: "
        "rate and peak RSS",
    )
    p.add_argument(
        "--rounds", type=int, default=2, help="--compare: rounds of every system (default 2)"
    )
    p.add_argument(
        "--rebuild-processes",
        type=int,
        default=default_processes("postgresql"),
        metavar="K",
        help="--rebuild: then the same replay by `reghub worker --processes K` into a fresh "
        "register (default: the cores, as `reghub worker` on PostgreSQL; 0: not)",
    )
    p.add_argument("--rate", type=int, default=2_000, help="--latency: reports/s (default 2000)")
    p.add_argument("--seconds", type=int, default=60, help="--latency: seconds (default 60)")
    p.add_argument(
        "--quix-commit-interval",
        type=float,
        default=None,
        metavar="S",
        help="--latency: the Quix peer's commit_interval, when its sink writes (default: Quix's, "
        "5 s)",
    )
    args = p.parse_args(argv)
    if args.rate < 1 or args.seconds < 1 or args.rounds < 1:
        p.error("--rate, --seconds and --rounds must be at least 1")
    if args.rebuild is not None and args.rebuild < 1:
        p.error("--rebuild N must be at least 1")
    if (args.compare or args.latency or args.rebuild is not None) and args.workers > 1:
        p.error("--workers is for the default mode only")
    if args.compare and args.database_url is not None:
        p.error("--compare writes into fresh PostgreSQL databases: no --database-url")
    if args.workers < 1:
        p.error("--workers must be at least 1")
    if args.workers > 1 and args.profile:
        p.error("--profile profiles this process: only with --workers 1")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
