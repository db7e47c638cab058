"""`reghub up`: the embedded hub — Tansu broker, SQLite register, worker and API as child processes.

The children run in their own process group and die with this process (PR_SET_PDEATHSIG), so Ctrl-C or
a kill of `reghub up` leaves no broker, worker or API behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from api.tokens import mint
from reghub.broker import EmbeddedBroker, create_hub_topics, die_with_parent, free_port
from reghub.config import (
    EMBEDDED_FILE,
    data_dir,
    ensure_pseudonym_key,
    ensure_token_key,
    hub_running,
    load_settings,
    lock_hub,
    private_folder,
    private_sqlite_file,
)
from reghub.failures import Failure
from sinks import tables
from sinks.migrations import upgrade
from sinks.register import make_engine


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "reghub", *args],
        env=env,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def run_embedded(
    *, demo: bool, rate: int, persons: int, api_port: int, duration: float
) -> int:
    """Start everything, print a live one-line summary, and stop it all on Ctrl-C, SIGTERM or `duration`.

    Raises:
        Failure: another `reghub up` runs in this folder (one hub per folder: it holds the lock).
    """
    folder = private_folder(data_dir().resolve())  # register, key and logs: the owner's only
    lock = lock_hub(folder)
    if lock is None:
        raise Failure((_already_running(folder),))
    try:
        return await _run_embedded(
            folder, demo=demo, rate=rate, persons=persons, api_port=api_port, duration=duration
        )
    finally:
        os.close(lock)


def _already_running(folder: Path) -> str:
    """The one line a second `reghub up` prints about the first."""
    found = hub_running(folder) or {}
    pid = found.get("pid", "?")
    where = [f"pid {pid}"]
    if "kafka_bootstrap" in found:
        where.append(f"broker {found['kafka_bootstrap']}")
    if "api" in found:
        where.append(f"dashboard {found['api']}/dashboard")
    return (
        f"a hub already runs in {folder} ({', '.join(where)}) — use it, or stop it first "
        f"(Ctrl-C where it runs, or kill {pid})"
    )


async def _run_embedded(
    folder: Path, *, demo: bool, rate: int, persons: int, api_port: int, duration: float
) -> int:
    key = ensure_pseudonym_key(folder)
    token_key = ensure_token_key(folder)
    broker = EmbeddedBroker(log_path=folder / "tansu.log")
    broker.start()
    children: list[subprocess.Popen[bytes]] = []
    try:
        env = {
            **os.environ,
            "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
            "REGHUB_KAFKA_IDEMPOTENCE": "false",
            "REGHUB_PSEUDONYM_KEY": key,
            "REGHUB_API_TOKEN_SECRET": token_key,
            "REGHUB_DATA_DIR": str(folder),
            "REGHUB_DATABASE_URL": os.environ.get(
                "REGHUB_DATABASE_URL", f"sqlite+aiosqlite:///{folder / 'register.db'}"
            ),
            "REGHUB_KAFKA_SESSION_TIMEOUT_MS": os.environ.get(
                "REGHUB_KAFKA_SESSION_TIMEOUT_MS", "6000"
            ),
            "REGHUB_WEB_PORT": str(free_port()),
            # one broker: one replica of each topic, and a write needs only that one
            "REGHUB_TOPIC_REPLICATION_FACTOR": "1",
            "REGHUB_TOPIC_MIN_INSYNC_REPLICAS": "1",
        }
        settings = load_settings(
            kafka_bootstrap=broker.bootstrap,
            kafka_idempotence=False,
            pseudonym_key=key,
            database_url=env["REGHUB_DATABASE_URL"],
            topic_replication_factor=1,
            topic_min_insync_replicas=1,
        )
        await create_hub_topics(settings)
        private_sqlite_file(settings.database_url)
        engine = make_engine(settings.database_url)
        await upgrade(engine)
        if not _port_is_free(api_port):
            busy, api_port = api_port, free_port()
            print(f"port {busy} is taken; the API uses {api_port}", flush=True)
        children.append(_spawn(["worker"], env, folder / "worker.log"))
        worker_web = f"http://127.0.0.1:{env['REGHUB_WEB_PORT']}"
        api_env = {**env, "REGHUB_WORKER_URLS": json.dumps([worker_web])}
        children.append(_spawn(["api", "--port", str(api_port)], api_env, folder / "api.log"))
        # what the other commands, run here or below, read to find this hub (reghub.config)
        (folder / EMBEDDED_FILE).write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "kafka_bootstrap": broker.bootstrap,
                    "database_url": settings.database_url,
                    "api": f"http://127.0.0.1:{api_port}",
                }
            )
        )
        register = make_url(settings.database_url).render_as_string(hide_password=True)
        # the dashboard shows the workers' error texts to a monitoring token only (`api.app`)
        watch = mint(
            token_key.encode(),
            "monitoring",
            "dashboard",
            audience=settings.api_token_audience,
            issuer=settings.api_token_issuer,
            ttl=timedelta(days=1),
        )
        from reghub.demo import DEMO_PERSON

        print(
            f"reghub up: broker {broker.bootstrap}, register {register}, logs in {folder}\n"
            f"  API and dashboard  http://127.0.0.1:{api_port}/dashboard#token={watch}\n"
            f"  worker             {worker_web}/health   {worker_web}/ready\n"
            f"  decisions          {_reghub_command()} tail ctr.decisions.v1"
            "   (in another shell, in this folder or below)\n"
            f"  a read token       {_reghub_command()} token --role pharmacy --pharmacy-number 12300"
            f"   (then http://127.0.0.1:{api_port}/docs)"
            + (
                f"\n  a demo person      http://127.0.0.1:{api_port}/v1/persons/"
                f"{DEMO_PERSON.key}/status?purpose=dispensing"
                if demo
                else ""
            ),
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(_summary(engine, children, stop, f"{worker_web}/health"))]
        producer_stats: dict[str, int] = {}
        if demo:
            from reghub.demo import run_demo

            tasks.append(
                asyncio.create_task(
                    run_demo(settings, rate=rate, persons=persons, stop=stop, stats=producer_stats)
                )
            )
        if duration:
            loop.call_later(duration, stop.set)
        await stop.wait()
        print("\nstopping…", flush=True)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        await engine.dispose()
        return 0
    finally:
        for child in reversed(children):
            _stop(child)
        broker.stop()
        with contextlib.suppress(FileNotFoundError):
            (folder / EMBEDDED_FILE).unlink()


def _reghub_command() -> str:
    """How to run `reghub` from here: the venv's script, relative when it lies below this folder."""
    script = Path(sys.executable).parent / "reghub"
    if not script.exists():
        return f"{sys.executable} -m reghub"
    relative = os.path.relpath(script)
    return str(script) if relative.startswith("..") else relative


def _partitions_assigned(health_url: str) -> int | None:
    """The worker's assigned partitions from its /health page (`assigned`); None while it does not
    answer or does not say."""
    try:
        with urllib.request.urlopen(health_url, timeout=0.5) as response:
            assigned = json.loads(response.read()).get("assigned")
    except (OSError, ValueError, AttributeError):
        return None
    return assigned if isinstance(assigned, int) else None


async def _summary(
    engine: object, children: list[subprocess.Popen[bytes]], stop: asyncio.Event, health_url: str
) -> None:
    """Every second: whether the worker has joined, what the register holds and how fast it grows, on
    one line."""
    last, last_t = 0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(1.0)
        for child in children:
            if child.poll() is not None:
                print(
                    f"\na child process exited ({child.args[3]}, code {child.returncode}); see its log"
                )
                stop.set()
                return
        async with engine.connect() as conn:  # type: ignore[attr-defined]
            purchases = (
                await conn.execute(select(func.count()).select_from(tables.purchases))
            ).scalar()
            people = (await conn.execute(select(func.count()).select_from(tables.persons))).scalar()
            parked = (
                await conn.execute(select(func.count()).select_from(tables.parked_messages))
            ).scalar()
            subsidy = (
                await conn.execute(select(func.coalesce(func.sum(tables.purchases.c.subsidy), 0)))
            ).scalar()
        assigned = await asyncio.to_thread(_partitions_assigned, health_url)
        worker = f"worker: {assigned} partitions" if assigned else "worker: joining…"
        now = time.monotonic()
        rate = (purchases - last) / (now - last_t)
        last, last_t = purchases, now
        print(
            f"\r{worker} | register: {purchases} purchases, {people} persons, {parked} parked, "
            f"subsidy {subsidy / 100:,.2f} kr — {rate:,.0f} reports/s   ",
            end="",
            flush=True,
        )
