"""Throughput, one worker (the default mode of `python -m bench.dispensing_throughput`): the stage's
reports read by the real worker in this process into a fresh register; reports/s end to end, where
the worker's time went, and the ratio to the ceiling."""

from __future__ import annotations

import argparse
import os

from bench.harness.register import database
from bench.harness.stage import finish, stage
from bench.harness.worker import end_to_end


async def run(args: argparse.Namespace) -> None:
    """Produce, read the ceiling, then time the worker end to end; print the figures."""
    async with stage(args) as s:
        async with database(args.database_url) as url:
            e2e, dialect, added = await end_to_end(
                s.broker.bootstrap, s.prefix, url, args.n, args.max_records, args.profile,
                s.broker_pid, args.gc_threshold,
            )  # fmt: skip
        mean = e2e.records / max(e2e.batches, 1)
        print(
            f"end to end: {e2e.rate:,.0f} reports/s ({e2e.records} in {e2e.seconds:.2f} s; "
            f"group join {e2e.join_seconds:.1f} s, excluded; {added} purchase rows added)"
        )
        print("  where the worker's time went (wall, s; % of the timed run):")
        for step, sec in e2e.steps.items():
            share = f"{100 * sec / e2e.seconds:5.1f} %" if not step.startswith("(") else ""
            print(f"    {step:<52} {sec:8.2f}  {share}")
        if e2e.gc is not None:
            g = e2e.gc
            print(
                f"  garbage collector: {g.seconds:.2f} s ({100 * g.seconds / e2e.seconds:.1f} %), "
                f"collections per generation {g.collections}"
            )
        if e2e.cpu:
            c = e2e.cpu
            other = c["machine"] - c["worker"] - c["tansu"] - c["postgresql"]
            print(
                f"  CPU used in the timed run (s): worker {c['worker']:.1f}, tansu "
                f"{c['tansu']:.1f}, postgresql {c['postgresql']:.1f}, everything else "
                f"{other:.1f}; the machine had {os.cpu_count()} cores x {e2e.seconds:.1f} s"
            )
    finish(s.produce_rate, s.top, e2e, dialect, mean)
