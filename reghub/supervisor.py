"""`reghub worker --processes N`: N register workers of one consumer group, started by one command.

One Python process runs one asyncio loop on one core; a machine with idle cores runs more of them. The
supervisor starts N children (`reghub worker --processes 1`), each with its own web port (the configured
one plus its index: 6066, 6067, …), and:

- forwards SIGTERM and SIGINT to every child and waits for them, so a stop is clean;
- restarts a child that exits on its own, after a backoff that grows to 30 s while it keeps failing;
- lives and dies with its children: each child is killed by the kernel if the supervisor dies, even by
  SIGKILL (Linux `PR_SET_PDEATHSIG`), so no orphan keeps consuming.

The children share the group; Kafka spreads the partitions over them, and the register's row locks keep
two of them from passing each other on one person.

This is for a bare machine. A container runs one process (`reghub worker --processes 1`, as the compose
file does) and is scaled by replicas, so that its health check and its metrics cover all of it and the
orchestrator, not this supervisor, restarts it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
MAX_BACKOFF_S = 30.0


def default_processes(database_url: str) -> int:
    """The number of cores for a PostgreSQL register; 1 for SQLite, which has one writer at a time."""
    if not database_url.startswith("postgresql"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Supervisor:
    """Starts, restarts and stops the children; `run` returns the exit code."""

    def __init__(self, processes: int, web_port: int, command: list[str] | None = None) -> None:
        self.processes = processes
        self.web_port = web_port
        self.command = command or [sys.executable, "-m", "reghub", "worker", "--processes", "1"]
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.failures: dict[int, int] = {}
        self.stopping = False

    def start(self, index: int) -> None:
        env = {**os.environ, "REGHUB_WEB_PORT": str(self.web_port + index)}
        preexec: Callable[[], None] | None = _die_with_parent if sys.platform == "linux" else None
        self.children[index] = subprocess.Popen(self.command, env=env, preexec_fn=preexec)
        log.info("worker %d started (pid %d, web port %d)", index, self.children[index].pid,
                 self.web_port + index)  # fmt: skip

    def stop(self, signum: int, _frame: FrameType | None = None) -> None:
        self.stopping = True
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for index in range(self.processes):
            self.start(index)
        restart_at: dict[int, float] = {}
        while not self.stopping:
            time.sleep(0.2)
            for index, child in list(self.children.items()):
                if self.stopping or child.poll() is None:
                    continue
                if index not in restart_at:
                    self.failures[index] = self.failures.get(index, 0) + 1
                    delay = min(MAX_BACKOFF_S, 0.5 * 2 ** (self.failures[index] - 1))
                    at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
                    log.error("worker %d exited with %s; restarting in %.1f s, at %s", index,
                              child.returncode, delay, at)  # fmt: skip
                    restart_at[index] = time.monotonic() + delay
                elif time.monotonic() >= restart_at[index]:
                    del restart_at[index]
                    self.start(index)
        codes = []
        for child in self.children.values():
            try:
                codes.append(child.wait(60))
            except subprocess.TimeoutExpired:
                child.kill()
                codes.append(child.wait())
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1
