"""Running the chosen scenarios one after another, each into a row of the table."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.faults.fuzz import Fuzz
from bench.faults.progress import log
from bench.faults.report import Row, table
from bench.faults.scenarios import BrokerStall, DbRefuses, Kill9, PgTerminate

SCENARIOS = ("kill9", "broker-stall", "db-refuses", "pg-terminate", "fuzz")

RUNNERS: dict[str, Callable[[argparse.Namespace, Path], Any]] = {
    "kill9": Kill9,
    "broker-stall": BrokerStall,
    "db-refuses": DbRefuses,
    "pg-terminate": PgTerminate,
    "fuzz": Fuzz,
}


async def campaign(args: argparse.Namespace) -> list[Row]:
    folder = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="reghub-faults-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        for name in args.only:
            began = time.monotonic()
            try:
                row = await RUNNERS[name](args, folder).run()
            except Exception as exc:  # a scenario that breaks is a failed line, not a stopped run
                row = Row(name)
                row.problems.append(f"the scenario broke: {type(exc).__name__}: {exc}")
                row.notes.append(traceback.format_exc(limit=-4))
            log(f"{name}: done in {time.monotonic() - began:.0f} s")
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
    finally:
        if not args.logs:
            shutil.rmtree(folder, ignore_errors=True)
    return rows
