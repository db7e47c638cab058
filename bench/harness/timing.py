"""Measuring a benchmark run: one consumer's result, the worker's wall time per batch step, time in
the garbage collector, and CPU seconds per process (this one, the broker, PostgreSQL, the machine)."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field


class GcTimer:
    """Time spent in the cyclic garbage collector while installed (a `gc.callbacks` entry)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started: float | None = None

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1
            self._started = None

    @contextlib.contextmanager
    def installed(self) -> Iterator[GcTimer]:
        gc.callbacks.append(self)
        try:
            yield self
        finally:
            gc.callbacks.remove(self)


@dataclass
class Result:
    """One consumer's run: records handled between its assignment and the last record."""

    records: int = 0
    seconds: float = 0.0
    join_seconds: float = 0.0
    batches: int = 0
    steps: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    gc: GcTimer | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


class StepTimer:
    """Wall time per step of the worker's batch, from the hook the pipeline offers (`on_step`).

    - fetch: getmany + decode, running while the previous batch is written (and waiting for that);
    - load / handle / write: the pipeline's steps inside the register transaction;
    - transaction: the whole unit of work, so BEGIN/COMMIT is what it has beyond the three;
    - publish, commit: the publisher's send-and-await and the offset commit, a task running while
      the next batch is in the register: wall time that overlaps it, not added to it.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.first_batch_at: float | None = None

    def __call__(self, step: str, seconds: float) -> None:
        if self.first_batch_at is None and step != "fetch":
            self.first_batch_at = time.perf_counter() - seconds
        self.seconds[step] += seconds

    def breakdown(self, total: float) -> dict[str, float]:
        s = self.seconds
        return {
            "fetch: getmany + decode (overlaps the batch before)": s["fetch"],
            "load: register reads": s["load"],
            "handle: rules, rows, outputs (CPU)": s["handle"],
            "write": s["write"],
            "BEGIN/COMMIT": s["transaction"] - s["load"] - s["handle"] - s["write"],
            "publish (overlaps the next batch)": s["publish"],
            "offset commit (overlaps the next batch)": s["commit"],
            "outside the register transaction": total - s["transaction"],
        }


def process_cpu(pid: int | str) -> float:
    """CPU seconds (utime + stime) used so far by process `pid` (Linux `/proc`; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_CLIENT_BACKEND = re.compile(r"postgres: (?:\S+: )?\S+ (\S+) (?:\S+\(\d+\)|\[local\])")
"""A PostgreSQL client backend's process title: `postgres: [cluster: ]user database host(port) …`."""


def _serves(pid: str, database: str | None) -> bool:
    """Whether PostgreSQL process `pid` counts for `database`: every one when None; else all but the
    client backends of other databases (the server's own processes, the postmaster, checkpointer,
    WAL writer…, work for every database and count in full)."""
    if database is None:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    m = _CLIENT_BACKEND.match(title)
    return m is None or m.group(1) == database


def cpu_seconds(broker_pid: int | None, database: str | None = None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by this process, the broker, the PostgreSQL processes
    (with `database`, not the client backends of other databases: another program's queries on the
    same server are not this run's) and the whole machine (Linux `/proc`; empty elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")
    of = process_cpu

    try:
        with open("/proc/stat") as f:
            total = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return {}
    postgres = 0.0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() == "postgres" and _serves(entry.name, database):
                    postgres += of(entry.name)
    return {
        "worker": of(os.getpid()),
        "tansu": of(broker_pid) if broker_pid else 0.0,
        "postgresql": postgres,
        "machine": (sum(total) - total[3] - total[4]) / tick,  # all but idle and iowait
    }
