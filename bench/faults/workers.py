"""The worker processes: one `python -m reghub worker` each, and the scenario's pool of them, which
tells the kills it made on purpose from the exits nobody caused and probes /health."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from reghub.broker import free_port

REPO = Path(__file__).resolve().parent.parent.parent

HEALTH_GRACE_S = 8.0  # a worker started this recently may not answer /health yet
START_LIMIT_S = 120.0  # a worker that has not answered /health this long after a start is a miss


class Worker:
    """One `python -m reghub worker` process, in its own process group."""

    def __init__(self, index: int, env: dict[str, str], folder: Path) -> None:
        self.index = index
        self.env = env
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.answered = False  # /health answered since the last start
        self.starts = 0
        self.last_health: dict[str, Any] = {}

    @property
    def log_path(self) -> Path:
        return self.folder / f"worker-{self.index}.log"

    def start(self) -> None:
        # one process per worker: the campaign starts, kills and counts them itself
        env = {**self.env, "REGHUB_WEB_PORT": str(self.port), "REGHUB_WORKER_PROCESSES": "1"}
        with open(self.log_path, "ab") as out:
            out.write(f"--- start {self.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reghub", "worker"],
                env=env,
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started_at = time.monotonic()
        self.answered = False
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL of its group after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as resp:
            return json.loads(resp.read())

    def last_error(self) -> str:
        """The exception that ended its last run, as its log tells it: the last one logged since
        that run started (not counting errors of the logging itself), with the last frame of the
        project's own code before it."""
        text = self.log_tail(200_000)
        run = text[text.rfind("--- start ") :].splitlines()
        candidates: list[tuple[str, str]] = []
        frame, in_logging_error, logging_errors = "", False, 0
        for ln in run:
            stripped = ln.strip()
            if stripped == "--- Logging error ---":
                in_logging_error, logging_errors = True, logging_errors + 1
            elif in_logging_error and stripped.startswith("Message:"):
                in_logging_error = False
            if in_logging_error:
                continue
            if stripped.startswith(f'File "{REPO}/') and "site-packages" not in stripped:
                frame = stripped.replace(f"{REPO}/", "")
            elif re.match(r"^[\w.]+(Error|Exception)\b", ln):
                candidates.append((stripped, frame))
        if candidates:
            error, where = candidates[-1]
            return f"{error} ({where})" if where else error
        if logging_errors:
            return "no exception in its log: the crash's own log record failed to format"
        return "no exception in its log"

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class Pool:
    """The scenario's workers: started, killed on purpose, restarted; exits nobody caused are crashes."""

    def __init__(self, env: dict[str, str], folder: Path, count: int) -> None:
        self.workers = [Worker(i, env, folder) for i in range(count)]
        self.expected: set[int] = set()  # workers killed on purpose and not started again yet
        self.crashes: list[str] = []
        self.kills = 0
        self.health_probes = 0
        self.health_misses: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        for w in self.workers:
            w.start()
        self._tasks = [
            asyncio.create_task(self._supervise()),
            asyncio.create_task(self._probe_health()),
        ]

    async def ready(self, timeout: float = 60.0) -> None:
        """Until every worker answers /health."""
        deadline = time.monotonic() + timeout
        waiting = set(range(len(self.workers)))
        while waiting and time.monotonic() < deadline:
            for i in list(waiting):
                with contextlib.suppress(OSError, ValueError):
                    await asyncio.to_thread(self.workers[i].health)
                    waiting.discard(i)
            await asyncio.sleep(0.2)
        if waiting:
            tails = "\n".join(self.workers[i].log_tail() for i in waiting)
            raise RuntimeError(f"workers {sorted(waiting)} did not answer /health:\n{tails}")

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.alive and w.index not in self.expected]

    def kill9(self, w: Worker) -> None:
        self.expected.add(w.index)
        w.kill9()
        self.kills += 1

    def restart(self, w: Worker) -> None:
        w.start()
        self.expected.discard(w.index)

    async def restart_after(self, w: Worker, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self._stopping:
            self.restart(w)

    async def _supervise(self) -> None:
        """An exit nobody caused is a crash: noted with its code and log, and the worker restarted."""
        while True:
            await asyncio.sleep(0.2)
            for w in self.workers:
                if w.index in self.expected or w.alive or self._stopping:
                    continue
                code = w.proc.returncode if w.proc is not None else None
                self.crashes.append(
                    f"worker {w.index} exited with {code} at {time.strftime('%H:%M:%S')}: "
                    f"{w.last_error()}"
                )
                await asyncio.sleep(1.0)
                if not self._stopping:
                    w.start()

    async def _probe_health(self) -> None:
        """/health of every live worker once a second. A worker counts from its first answer after
        a start: until then it is still starting (its imports alone may take 20 s on a loaded
        machine), unless it has not answered `START_LIMIT_S` after the start, which is a miss."""
        while True:
            await asyncio.sleep(1.0)
            for w in self.workers:
                if not w.alive or w.index in self.expected:
                    continue
                since = time.monotonic() - w.started_at
                if since < HEALTH_GRACE_S:
                    continue
                try:
                    w.last_health = await asyncio.to_thread(w.health)
                except (OSError, ValueError) as exc:
                    if not w.answered and since < START_LIMIT_S:
                        continue  # still starting
                    self.health_probes += 1
                    if w.alive and not self._stopping:
                        self.health_misses.append(f"worker {w.index}: {exc}")
                else:
                    w.answered = True
                    self.health_probes += 1

    async def stop(self) -> list[int | None]:
        self._stopping = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return await asyncio.gather(*(asyncio.to_thread(w.stop) for w in self.workers))
