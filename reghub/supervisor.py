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

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType

from tenacity import RetryCallState

from streams import retrying

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
MAX_BACKOFF_S = 30.0
STOP_TIMEOUT_S = 60.0
POLL_S = 0.2  # how often a child is checked for having exited


def default_processes(database_url: str) -> int:
    """The number of cores for a PostgreSQL register; 1 for SQLite, which has one writer at a time."""
    if not database_url.startswith("postgresql"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Supervisor:
    """Starts, restarts and stops the children; `run` returns the exit code.

    Each child is kept by a restart policy of its own (`streams.retrying.restarts`), all on one asyncio
    loop in the main thread: that thread forks every child, and the children's `PR_SET_PDEATHSIG`
    follows the thread that forked them, so it must live as long as the supervisor does.
    """

    def __init__(self, processes: int, web_port: int, command: list[str] | None = None) -> None:
        self.processes = processes
        self.web_port = web_port
        self.command = command or [sys.executable, "-m", "reghub", "worker", "--processes", "1"]
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False
        self._stopped = asyncio.Event()

    def start(self, index: int) -> None:
        env = {**os.environ, "REGHUB_WEB_PORT": str(self.web_port + index)}
        preexec: Callable[[], None] | None = _die_with_parent if sys.platform == "linux" else None
        self.children[index] = subprocess.Popen(self.command, env=env, preexec_fn=preexec)
        log.info("worker %d started (pid %d, web port %d)", index, self.children[index].pid,
                 self.web_port + index)  # fmt: skip

    def stop(self, signum: int, _frame: FrameType | None = None) -> None:
        self.stopping = True
        self._stopped.set()
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        return asyncio.run(self._run())

    async def _run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        codes = await asyncio.gather(*(self._keep(index) for index in range(self.processes)))
        return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1

    async def _keep(self, index: int) -> int:
        """Run child `index`, and start it again each time it exits on its own, after a backoff that
        grows while it keeps failing; its last exit code once the supervisor stops."""

        async def child() -> int:
            if self.stopping:  # stopped before it started, or while waiting to restart it
                exited = self.children.get(index)
                return exited.returncode if exited is not None else 0
            self.start(index)
            return await self._exit_code(self.children[index])

        def restarting(state: RetryCallState) -> None:
            assert state.outcome is not None
            delay = retrying.next_delay(state)
            at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
            log.error("worker %d exited with %s; restarting in %.1f s, at %s", index,
                      state.outcome.result(), delay, at)  # fmt: skip

        policy = retrying.restarts(
            lambda _code: not self.stopping,
            MAX_BACKOFF_S,
            restarting,
            lambda seconds: retrying.until(self._stopped, seconds),
        )
        code: int = await policy(child)
        return code

    async def _exit_code(self, child: subprocess.Popen[bytes]) -> int:
        """Wait until `child` exits; once the supervisor stops, kill it if it has not exited within
        `STOP_TIMEOUT_S`."""
        killed_at: float | None = None
        while (code := child.poll()) is None:
            if self.stopping:
                killed_at = killed_at or time.monotonic() + STOP_TIMEOUT_S
                if time.monotonic() >= killed_at:
                    child.kill()
                    return child.wait()
            await asyncio.sleep(POLL_S)
        return code
