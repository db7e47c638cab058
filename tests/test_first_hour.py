"""The first hour of a partner and an operator: the real `reghub` commands, run as child processes.

A wrong setting, a database that is down, missing or not migrated, or a broker nobody runs is one line on
stderr that names the problem and what to do, and a non-zero exit; never a traceback. The API's access
log prints, masked. A worker whose database is down waits for it with backoff, one line per attempt. A
second `reghub up` in a folder refuses, and the commands find the running hub from folders below it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from reghub.broker import EmbeddedBroker, create_topics, free_port, free_ports
from streams.topics import TopicNames
from tests.conftest import PG_ADMIN_DSN, _admin
from tests.messages import PERSON

REPO = Path(__file__).resolve().parent.parent
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"


def environment(cwd: Path, **variables: str) -> dict[str, str]:
    """The parent's environment without its `REGHUB_*`, plus `variables` (an empty one is left unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    env.update({"PYTHONPATH": str(REPO), "REGHUB_DATA_DIR": str(cwd / ".reghub"), **variables})
    return {k: v for k, v in env.items() if v != ""}


def reghub(
    *args: str, cwd: Path, timeout: float = 60, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed `reghub ARGS` with only the given `REGHUB_*` variables."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "reghub"), *args],
        cwd=cwd,
        env=environment(cwd, **variables),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def get(url: str) -> int:
    """The status of a GET, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


# --- reghub api ---------------------------------------------------------------------------------


def read_a_person_from_a_real_api(
    tmp_path: Path, variables: dict[str, str]
) -> tuple[int, str, str]:
    """Migrate a register, start the real `reghub api` on it, wait for /health, read one person's
    record without a token, stop it: the read's status, and what the API printed to stdout and
    stderr."""
    assert reghub("db", "upgrade", cwd=tmp_path, **variables).returncode == 0
    port = free_port()
    api = subprocess.Popen(
        [str(Path(sys.executable).parent / "reghub"), "api", "--port", str(port)],
        cwd=tmp_path,
        env=environment(tmp_path, **variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while get(f"http://127.0.0.1:{port}/health") == 0:
            assert api.poll() is None and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        status = get(f"http://127.0.0.1:{port}/v1/persons/{PERSON}")
    finally:
        api.send_signal(signal.SIGINT)
        stdout, stderr = api.communicate(timeout=30)
    return status, stdout, stderr


def test_the_api_access_log_prints_each_request_with_the_person_number_masked(
    tmp_path: Path,
) -> None:
    db = tmp_path / "register.db"
    variables = {
        "REGHUB_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }
    status, stdout, stderr = read_a_person_from_a_real_api(tmp_path, variables)

    log = stdout + stderr  # uvicorn writes its access log to stdout, the rest to stderr
    assert status in (401, 403, 404), status
    assert "Logging error" not in log and "Traceback" not in log, log
    assert PERSON not in log
    assert f'"GET /v1/persons/********** HTTP/1.1" {status}' in log, log
    assert '"GET /health HTTP/1.1" 200' in log, log


# --- one line per known failure -----------------------------------------------------------------

FORMS = (
    "postgresql://user:password@host:5432/name (or postgres://…) or sqlite:///path/to/register.db"
)
PG_SERVER = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]  # host:port of the local PostgreSQL


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failed command printed on stderr; fails on anything more."""
    assert done.returncode != 0, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "╭" not in done.stderr, done.stderr
    return lines[0]


@pytest.fixture
async def empty_database() -> AsyncIterator[str]:
    """A new, empty (not migrated) PostgreSQL database on the local server, as a plain URL."""
    name = f"reghub_empty_{uuid.uuid4().hex[:10]}"
    admin = await _admin()
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_ADMIN_DSN.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.parametrize("url", ["mysql://reghub:secret-pw@db.example/reghub", "garbage-secret-pw"])
@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["compliance", "--date", "2025-01-02"], ["worker"], ["api"]]
)
def test_a_database_url_of_another_form_names_the_forms_accepted(
    tmp_path: Path, url: str, command: list[str]
) -> None:
    done = reghub(
        *command, cwd=tmp_path, REGHUB_DATABASE_URL=url, REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY
    )

    line = one_line(done)
    assert done.returncode == 2
    assert line.startswith("REGHUB_DATABASE_URL: ") and line.endswith(f"use {FORMS}"), line
    assert "secret-pw" not in done.stderr


@pytest.mark.database
async def test_postgres_and_postgresql_urls_get_the_async_driver(
    tmp_path: Path, empty_database: str
) -> None:
    short = empty_database.replace("postgresql://", "postgres://", 1)
    done = await asyncio.to_thread(
        reghub, "db", "upgrade", cwd=tmp_path, REGHUB_DATABASE_URL=short,
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )  # fmt: skip
    again = await asyncio.to_thread(
        reghub, "db", "upgrade", cwd=tmp_path, REGHUB_DATABASE_URL=empty_database,
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )  # fmt: skip

    assert done.returncode == 0 and done.stdout.startswith("applied: 0001_initial_register"), done
    assert again.returncode == 0 and again.stdout.strip() == "register schema is up to date", again


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["compliance", "--date", "2025-01-02"],
        ["person", "show", PERSON],
        ["scenario", "run", str(REPO / "tests" / "scenarios")],
    ],
)
def test_a_database_that_is_down_is_one_line_naming_where_it_was_looked_for(
    tmp_path: Path, command: list[str]
) -> None:
    port = free_port()  # nobody listens there
    done = reghub(
        *command,
        cwd=tmp_path,
        REGHUB_DATABASE_URL=f"postgresql://reghub:secret-pw@127.0.0.1:{port}/reghub",
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
        REGHUB_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",  # the database is the first to fail
    )

    assert one_line(done) == (
        f"the register database does not answer (PostgreSQL at 127.0.0.1:{port}: connection "
        "refused) — start it, or set REGHUB_DATABASE_URL"
    )
    assert "secret-pw" not in done.stderr and PERSON not in done.stderr


@pytest.mark.broker
@pytest.mark.database
@pytest.mark.parametrize(
    "command",
    [["db", "upgrade"], ["compliance", "--date", "2025-01-02"], ["worker", "--processes", "2"]],
)
def test_a_database_that_does_not_exist_is_one_line_saying_how_to_make_it(
    tmp_path: Path, command: list[str], broker: EmbeddedBroker
) -> None:
    name = f"reghub_missing_{uuid.uuid4().hex[:8]}"
    done = reghub(
        *command,
        cwd=tmp_path,
        REGHUB_DATABASE_URL=f"postgresql://{PG_ADMIN_DSN.split('://', 1)[1].rsplit('/', 1)[0]}/{name}",
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
        REGHUB_KAFKA_BOOTSTRAP=broker.bootstrap,
        REGHUB_KAFKA_IDEMPOTENCE="false",
        REGHUB_WEB_PORT=str(free_port()),
    )

    assert one_line(done) == (
        f'database "{name}" does not exist on PostgreSQL at {PG_SERVER} — create it (createdb '
        f"{name}) and run `reghub db upgrade`, or set REGHUB_DATABASE_URL"
    )


@pytest.mark.database
async def test_a_register_not_migrated_says_run_db_upgrade(
    tmp_path: Path, empty_database: str
) -> None:
    done = await asyncio.to_thread(
        reghub, "compliance", "--date", "2025-01-02", cwd=tmp_path,
        REGHUB_DATABASE_URL=empty_database, REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )  # fmt: skip

    name = empty_database.rsplit("/", 1)[1]
    assert one_line(done) == (
        f"the register (PostgreSQL at {PG_SERVER}, {name}) is not migrated — run `reghub db upgrade`"
    )


@pytest.mark.broker
@pytest.mark.database
async def test_the_worker_refuses_to_start_on_a_register_not_migrated(
    tmp_path: Path, empty_database: str, broker: EmbeddedBroker
) -> None:
    done = await asyncio.to_thread(
        reghub, "worker", "--processes", "1", cwd=tmp_path, timeout=60,
        REGHUB_DATABASE_URL=empty_database, REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
        REGHUB_KAFKA_BOOTSTRAP=broker.bootstrap, REGHUB_KAFKA_IDEMPOTENCE="false",
        REGHUB_WEB_PORT=str(free_port()),
    )  # fmt: skip

    name = empty_database.rsplit("/", 1)[1]
    assert one_line(done) == (
        f"the register (PostgreSQL at {PG_SERVER}, {name}) is not migrated — run `reghub db upgrade`"
    )


@pytest.mark.parametrize("processes", ["1", "2"])
def test_the_worker_without_a_broker_is_one_line_and_does_not_start(
    tmp_path: Path, processes: str
) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    done = reghub(
        "worker", "--processes", processes, cwd=tmp_path,
        REGHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'register.db'}",
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY, REGHUB_KAFKA_BOOTSTRAP=bootstrap,
        REGHUB_WEB_PORT=str(free_port()),
    )  # fmt: skip

    assert one_line(done) == (
        f"no broker at {bootstrap} — start the hub with ./up, or set REGHUB_KAFKA_BOOTSTRAP"
    )


# --- --help -------------------------------------------------------------------------------------


def test_help_names_every_variable_and_no_python_type(tmp_path: Path) -> None:
    top = reghub("--help", cwd=tmp_path)
    commands = [
        ["up"], ["worker"], ["api"], ["tail"], ["send"], ["scenario", "run"], ["fees"],
        ["db", "upgrade"], ["token"],
    ]  # fmt: skip
    pages = {" ".join(c): reghub(*c, "--help", cwd=tmp_path) for c in commands}

    assert top.returncode == 0, top
    text = " ".join(top.stdout.split())  # the page is wrapped to the terminal's width
    for variable in ("REGHUB_PSEUDONYM_KEY", "REGHUB_DATABASE_URL", "REGHUB_KAFKA_BOOTSTRAP"):
        assert variable in text, variable
    assert FORMS in text
    worker = " ".join(pages["worker"].stdout.split())
    assert "REGHUB_PSEUDONYM_KEY, REGHUB_KAFKA_BOOTSTRAP and REGHUB_DATABASE_URL" in worker
    for name, page in {"": top, **pages}.items():
        assert page.returncode == 0, (name, page)
        for python in ("<bool>", "<int>", "<float>", "<str>", "<path>", "list[", "{files}"):
            assert python not in page.stdout, (name, python, page.stdout)
    assert "INTEGER" in pages["up"].stdout and "PATH" in pages["send"].stdout


# --- a worker whose database is down ------------------------------------------------------------

WAITING = re.compile(
    r"register unavailable at start \((.+)\); next attempt in (\d+) s, at \d\d:\d\d:\d\d"
)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def forward(port: int, to_host: str, to_port: int) -> asyncio.Server:
    """A TCP forwarder on `port` to the real PostgreSQL: the database 'comes up' when it starts."""

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(to_host, to_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(connect, "127.0.0.1", port)


def periods_of(status: int, body: dict) -> bool:
    """Whether a status answer shows a current or a previous period."""
    shown = body.get("status", {}) if status == 200 else {}
    return bool(shown.get("current_period") or shown.get("previous_period"))


def ready(port: int) -> tuple[int, str]:
    """/ready's status and body, (0, "") when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.broker
@pytest.mark.database
@pytest.mark.parametrize("processes", [1, 2])
async def test_a_worker_waits_for_its_database_with_backoff_one_line_per_attempt(
    tmp_path: Path, empty_database: str, broker: EmbeddedBroker, processes: int
) -> None:
    migrated = await asyncio.to_thread(
        reghub, "db", "upgrade", cwd=tmp_path, REGHUB_DATABASE_URL=empty_database,
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated
    prefix = f"w{uuid.uuid4().hex[:8]}."
    await create_topics(broker.bootstrap, TopicNames(prefix), 2)
    server_host, server_port = PG_SERVER.rsplit(":", 1)
    db_port, web_port = (
        free_port(),
        free_ports(processes),
    )  # nobody listens on db_port until `forward`
    url = empty_database.replace(PG_SERVER, f"127.0.0.1:{db_port}")
    log_path = tmp_path / "worker.log"
    variables = {
        "REGHUB_DATABASE_URL": url,
        "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
        "REGHUB_KAFKA_IDEMPOTENCE": "false",
        "REGHUB_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "REGHUB_TOPIC_PREFIX": prefix,
        "REGHUB_CONSUMER_GROUP": f"{prefix}register",
        "REGHUB_WEB_PORT": str(web_port),
        "REGHUB_RETRY_BACKOFF_MAX_S": "2",
    }
    ports = [web_port + i for i in range(processes)]
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "reghub"), "worker", "--processes", str(processes)],
            cwd=tmp_path,
            env=environment(tmp_path, **variables),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server: asyncio.Server | None = None
    try:
        # three attempts take about 5 s; the rest is each process's imports, 20-27 s on a loaded machine
        deadline = time.monotonic() + 90
        while len(WAITING.findall(log_path.read_text())) < 3 * processes:
            assert worker.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.5)
        for port in ports:
            status, body = await asyncio.to_thread(ready, port)
            assert status == 503 and "waiting for the register" in body, (status, body)
        waited = log_path.read_text()

        server = await forward(db_port, server_host, int(server_port))
        deadline = time.monotonic() + 60
        for port in ports:
            while (await asyncio.to_thread(ready, port))[0] != 200:
                assert worker.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, log_path.read_text()[-4000:]
                await asyncio.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 60)
        if server is not None:
            server.close()
    text = log_path.read_text()

    assert "Traceback" not in text and "Crashed" not in text, text
    assert text.count("[^Worker]: Starting...") == processes  # never restarted
    assert "exited with" not in text  # the supervisor had nothing to restart
    attempts = WAITING.findall(waited)
    assert all("Connect call failed" in reason for reason, _ in attempts), attempts
    # each worker's attempts back off: 1 s, then 2 s (the maximum set here), one line each
    assert sorted(int(delay) for _, delay in attempts)[:processes] == [1] * processes
    assert {int(delay) for _, delay in attempts} == {1, 2}, attempts
    assert len(WAITING.findall(text)) < 30 * processes, text


# --- one embedded hub per folder ----------------------------------------------------------------


@pytest.mark.broker
@pytest.mark.database
def test_a_second_up_refuses_naming_the_first_and_commands_find_it_from_below(
    tmp_path: Path,
) -> None:
    api_port = free_port()
    first = subprocess.Popen(
        [str(Path(sys.executable).parent / "reghub"), "up", "--duration", "120",
         "--api-port", str(api_port)],
        cwd=tmp_path,
        env=environment(tmp_path, REGHUB_DATA_DIR=""),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    below = tmp_path / "src" / "deeper"
    below.mkdir(parents=True)
    found = tmp_path / ".reghub" / "embedded.json"
    try:
        deadline = time.monotonic() + 60
        while not found.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "reghub up did not start"
            time.sleep(0.3)
        bootstrap = json.loads(found.read_text())["kafka_bootstrap"]

        second = reghub("up", cwd=tmp_path, REGHUB_DATA_DIR="")
        from_below = reghub("up", cwd=below, REGHUB_DATA_DIR="")
        compliance = reghub("compliance", "--date", "2025-01-02", cwd=below, REGHUB_DATA_DIR="")
        tail = reghub("tail", "ctr.decisions.v1", "--timeout", "1", cwd=below, REGHUB_DATA_DIR="")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)

    refusal = (
        f"a hub already runs in {tmp_path / '.reghub'} (pid {first.pid}, broker {bootstrap}, "
        f"dashboard http://127.0.0.1:{api_port}/dashboard) — use it, or stop it first (Ctrl-C "
        f"where it runs, or kill {first.pid})"
    )
    assert one_line(second) == refusal
    assert one_line(from_below) == refusal
    assert compliance.returncode == 0, compliance  # the hub's register, not a new one down here
    assert compliance.stdout.strip() == "no reporting obligations on 2025-01-02", compliance
    assert tail.returncode == 0 and tail.stderr == "", tail  # the hub's broker
    assert not (below / ".reghub").exists()
    assert first.returncode == 0 and not found.exists()


@pytest.mark.parametrize("processes", [1, 2])
def test_the_worker_on_a_web_port_that_is_taken_is_one_line(tmp_path: Path, processes: int) -> None:
    first = free_ports(processes)
    port = first + processes - 1  # the last worker's port is the one taken
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = reghub(
            "worker", "--processes", str(processes), cwd=tmp_path,
            REGHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'register.db'}",
            REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY, REGHUB_WEB_PORT=str(first),
        )  # fmt: skip

    which = "web port" if processes == 1 else f"web port of worker {processes - 1}"
    assert one_line(done) == (
        f"port {port} (the {which}) is taken — stop what uses it, or set REGHUB_WEB_PORT"
    )


def test_a_file_that_is_not_there_is_one_line_naming_it_masked(tmp_path: Path) -> None:
    done = reghub(
        "send", "ctr.dispensings.v1", f"reports-{PERSON}.jsonl", cwd=tmp_path,
        REGHUB_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
    )  # fmt: skip

    assert one_line(done) == "reports-**********.jsonl: No such file or directory"


@pytest.mark.broker
@pytest.mark.database
@pytest.mark.parametrize(
    ("revision", "fix"),
    [
        ("0012_partial_obligation_indexes", "this reghub needs {head} — run `reghub db upgrade`"),
        (
            "9999_from_a_newer_reghub",
            "newer than this reghub knows ({head}) — run the reghub version",
        ),
    ],
)
async def test_the_worker_refuses_a_register_at_another_revision(
    tmp_path: Path, empty_database: str, broker: EmbeddedBroker, revision: str, fix: str
) -> None:
    from alembic.script import ScriptDirectory

    from sinks.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    migrated = await asyncio.to_thread(
        reghub, "db", "upgrade", cwd=tmp_path, REGHUB_DATABASE_URL=empty_database,
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated
    if revision in known_revisions():  # behind: really downgraded, so `db upgrade` can mend it
        from alembic import command

        from sinks.register import make_engine

        engine = make_engine(empty_database.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            async with engine.begin() as conn:
                await conn.run_sync(
                    lambda c: command.downgrade(alembic_config(c), revision)  # type: ignore[arg-type]
                )
        finally:
            await engine.dispose()
    else:
        connection = await asyncpg.connect(empty_database)
        try:
            await connection.execute("UPDATE alembic_version SET version_num = $1", revision)
        finally:
            await connection.close()

    done = await asyncio.to_thread(
        reghub, "worker", "--processes", "1", cwd=tmp_path,
        REGHUB_DATABASE_URL=empty_database, REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
        REGHUB_KAFKA_BOOTSTRAP=broker.bootstrap, REGHUB_KAFKA_IDEMPOTENCE="false",
        REGHUB_WEB_PORT=str(free_port()),
    )  # fmt: skip

    again = await asyncio.to_thread(
        reghub, "db", "upgrade", cwd=tmp_path, REGHUB_DATABASE_URL=empty_database,
        REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )  # fmt: skip

    name = empty_database.rsplit("/", 1)[1]
    line = one_line(done)
    assert line.startswith(
        f"the register (PostgreSQL at {PG_SERVER}, {name}) is at revision {revision}, "
    ), line
    assert fix.format(head=head) in line, line
    if revision in known_revisions():
        assert again.returncode == 0, again  # behind: `db upgrade` mends it
    else:
        assert one_line(again) == (
            f"the register (PostgreSQL at {PG_SERVER}, {name}) is at a revision this reghub does "
            f"not know ('{revision}') — run the reghub version that migrated it"
        )


def known_revisions() -> list[str]:
    from alembic.script import ScriptDirectory

    from sinks.migrations import alembic_config

    return [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]


@pytest.mark.database
async def test_the_api_refuses_a_register_not_migrated(tmp_path: Path, empty_database: str) -> None:
    done = await asyncio.to_thread(
        reghub, "api", "--port", str(free_port()), cwd=tmp_path,
        REGHUB_DATABASE_URL=empty_database, REGHUB_PSEUDONYM_KEY=PSEUDONYM_KEY,
    )  # fmt: skip

    name = empty_database.rsplit("/", 1)[1]
    assert one_line(done) == (
        f"the register (PostgreSQL at {PG_SERVER}, {name}) is not migrated — run `reghub db upgrade`"
    )


def test_the_demo_person_of_the_readme_is_read_and_an_unknown_one_is_404(tmp_path: Path) -> None:
    """The README's curl: the port `up` prints, a person the demo always reports a sale for; a person
    the register does not know is 404, not a zero saldo."""
    api_port = free_port()
    up = subprocess.Popen(
        [str(Path(sys.executable).parent / "reghub"), "up", "--demo", "--rate", "20",
         "--duration", "150", "--api-port", str(api_port)],
        cwd=tmp_path,
        env=environment(tmp_path, REGHUB_DATA_DIR=""),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    demo = "4208999999"
    found = tmp_path / ".reghub" / "embedded.json"

    def get(path: str, token: str) -> tuple[int, dict]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except (urllib.error.URLError, ConnectionError):
            return 0, {}

    try:
        deadline = time.monotonic() + 60
        while not found.exists():
            assert up.poll() is None, up.communicate()
            assert time.monotonic() < deadline, "reghub up did not start"
            time.sleep(0.3)
        made = reghub("token", "--role", "pharmacy", "--pharmacy-number", "12300", cwd=tmp_path,
                      REGHUB_DATA_DIR="")  # fmt: skip
        token = made.stdout.strip()
        status, body = 0, {}
        deadline = time.monotonic() + 90
        # known (200) as soon as any fact about the person is registered, perhaps a grant before
        # the first purchase: wait for a period
        while not periods_of(status, body) and time.monotonic() < deadline:
            status, body = get(f"/v1/persons/{demo}/status?purpose=dispensing", token)
            time.sleep(0.5)
        unknown = get("/v1/persons/4208999998/status?purpose=dispensing", token)
    finally:
        up.send_signal(signal.SIGINT)
        printed, _ = up.communicate(timeout=60)
    assert f"API and dashboard  http://127.0.0.1:{api_port}/dashboard" in printed, printed
    assert f"http://127.0.0.1:{api_port}/v1/persons/{demo}/status?purpose=dispensing" in printed
    assert status == 200, body
    shown = body["status"]
    # the demo's traffic is dated 2024, so today its period is the previous one
    assert (shown["current_period"] or shown["previous_period"])["start"].startswith("2024"), body
    assert unknown == (404, {"detail": "no person with that number in the register"})
