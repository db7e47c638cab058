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
from pathlib import Path

from sqlalchemy import func, select

from reghub.broker import EmbeddedBroker, create_topics, die_with_parent, free_port
from reghub.config import EMBEDDED_FILE, data_dir, ensure_pseudonym_key, load_settings
from reghub.wiring import topic_names
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
    """Start everything, print a live one-line summary, and stop it all on Ctrl-C, SIGTERM or `duration`."""
    folder = data_dir().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    key = ensure_pseudonym_key(folder)
    broker = EmbeddedBroker(log_path=folder / "tansu.log")
    broker.start()
    children: list[subprocess.Popen[bytes]] = []
    (folder / EMBEDDED_FILE).write_text(json.dumps({"kafka_bootstrap": broker.bootstrap}))
    try:
        env = {
            **os.environ,
            "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
            "REGHUB_PSEUDONYM_KEY": key,
            "REGHUB_DATA_DIR": str(folder),
            "REGHUB_DATABASE_URL": os.environ.get(
                "REGHUB_DATABASE_URL", f"sqlite+aiosqlite:///{folder / 'register.db'}"
            ),
            "REGHUB_KAFKA_SESSION_TIMEOUT_MS": os.environ.get(
                "REGHUB_KAFKA_SESSION_TIMEOUT_MS", "6000"
            ),
            "REGHUB_WEB_PORT": str(free_port()),
        }
        settings = load_settings(
            kafka_bootstrap=broker.bootstrap,
            pseudonym_key=key,
            database_url=env["REGHUB_DATABASE_URL"],
        )
        await create_topics(broker.bootstrap, topic_names(settings), settings.topic_partitions)
        engine = make_engine(settings.database_url)
        await upgrade(engine)
        if not _port_is_free(api_port):
            busy, api_port = api_port, free_port()
            print(f"port {busy} is taken; the API uses {api_port}", flush=True)
        children.append(_spawn(["worker"], env, folder / "worker.log"))
        children.append(_spawn(["api", "--port", str(api_port)], env, folder / "api.log"))
        print(
            f"reghub up: broker {broker.bootstrap}, register {settings.database_url}, "
            f"API and dashboard http://127.0.0.1:{api_port}/dashboard, logs in {folder}",
            flush=True,
        )
        print("  try: reghub tail ctr.decisions.v1   (in another shell, same folder)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(_summary(engine, children, stop))]
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


async def _summary(
    engine: object, children: list[subprocess.Popen[bytes]], stop: asyncio.Event
) -> None:
    """Every second: what the register holds and how fast it grows, on one line."""
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
        now = time.monotonic()
        rate = (purchases - last) / (now - last_t)
        last, last_t = purchases, now
        print(
            f"\rregister: {purchases} purchases, {people} persons, {parked} parked, "
            f"subsidy {subsidy / 100:,.2f} kr — {rate:,.0f} reports/s   ",
            end="",
            flush=True,
        )
