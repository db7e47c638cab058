"""`python -m bench.faults`: the command line, and the campaign run from it."""

from __future__ import annotations

import argparse
import asyncio
import logging

import bench.faults
from bench.faults.campaign import RUNNERS, SCENARIOS, campaign
from bench.faults.report import details, table


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.faults",
        description=bench.faults.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-n", type=int, default=20_000, help="reports per scenario (default 20000)")
    p.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run, in order (default: {','.join(SCENARIOS)})",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    p.add_argument("--persons", type=int, default=2_000, help="distinct persons (default 2000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument(
        "--stream-seconds",
        type=float,
        default=60.0,
        help="how long the reports stream in (kill9, pg-terminate; default 60)",
    )
    p.add_argument("--kills", type=int, default=20, help="kill9: kill -9s (default 20)")
    p.add_argument("--restart-min", type=float, default=0.5, help="kill9: restart delay from (s)")
    p.add_argument("--restart-max", type=float, default=3.0, help="kill9: restart delay to (s)")
    p.add_argument("--stall", type=float, default=60.0, help="broker-stall: seconds (default 60)")
    p.add_argument(
        "--stall-victims",
        type=int,
        default=0,
        metavar="N",
        help="broker-stall: workers killed -9 during the stall (default 0: all of them)",
    )
    p.add_argument("--refuse", type=float, default=45.0, help="db-refuses: seconds (default 45)")
    p.add_argument("--terminations", type=int, default=5, help="pg-terminate: how many (default 5)")
    p.add_argument(
        "--fuzz", type=int, default=100_000, help="fuzz: hostile records (default 100000)"
    )
    p.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds after the fault to become quiet before the scenario fails (default 300)",
    )
    p.add_argument(
        "--crash-loop-seconds",
        type=float,
        default=60.0,
        help="give a scenario up when workers have crashed 3 times or more and nothing changed "
        "for this long (default 60)",
    )
    p.add_argument("--logs", metavar="DIR", help="keep worker and broker logs in DIR")
    p.add_argument(
        "--keep-database",
        action="store_true",
        help="leave each scenario's database for inspection (its name is printed)",
    )
    args = p.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in RUNNERS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    if args.workers < 1 or args.n < 1:
        p.error("--workers and -n must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # the campaign's own clients retry through a stopped broker; their complaints are expected
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    print(
        f"fault campaign: {args.n} reports per scenario, {args.workers} workers, "
        f"{args.partitions} partitions, {args.persons} persons; scenarios {', '.join(args.only)}",
        flush=True,
    )
    rows = asyncio.run(campaign(args))
    print()
    print(table(rows))
    print()
    print(details(rows))
    return 0 if rows and all(r.passed for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
