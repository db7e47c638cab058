"""The `reghub` command line as a partner or an operator runs it: `python -m reghub …` in a child process.

Each command gets its configuration from `REGHUB_*` only and runs in an empty working folder, so nothing
from a local `reghub up` (`.reghub/`) leaks in.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.structs import TopicPartition
from sqlalchemy import select

from reghub.broker import EmbeddedBroker, create_topics, free_port
from reghub.config import ensure_pseudonym_key
from reghub.embedded import _partitions_assigned
from sinks import tables
from sinks.register import make_engine
from streams.topics import ALL, DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, report

REPO = Path(__file__).resolve().parent.parent
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"


def reghub(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m reghub ARGS` with only the given `REGHUB_*` variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    clean.update({"PYTHONPATH": str(REPO), "REGHUB_DATA_DIR": str(cwd / ".reghub"), **env})
    return subprocess.run(
        [sys.executable, "-m", "reghub", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


async def arun(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`reghub` off the event loop (the session loop also serves the broker fixtures)."""
    return await asyncio.to_thread(reghub, *args, cwd=cwd, env=env, timeout=timeout)


async def fresh_prefix(bootstrap: str) -> str:
    prefix = f"c{uuid.uuid4().hex[:8]}."
    await create_topics(bootstrap, TopicNames(prefix), 2)
    return prefix


async def message_count(bootstrap: str, topic: str) -> int:
    """How many messages `topic` holds: the sum of its partitions' end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetch metadata
        parts = consumer.partitions_for_topic(topic) or set()
        assert parts, f"no partitions known for {topic}"
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return sum(ends.values())
    finally:
        await consumer.stop()


# --- reghub send --------------------------------------------------------------------------------


@pytest.mark.broker
async def test_send_produces_the_good_line_and_refuses_the_bad_ones_by_line_number(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    prefix = await fresh_prefix(broker.bootstrap)
    topic = TopicNames(prefix)(DISPENSINGS)
    good = as_json(report("r-cli-1", 10_000))
    missing = as_json({k: v for k, v in report("r-cli-3", 100).items() if k != "dispensing_id"})
    file = tmp_path / "reports.jsonl"
    file.write_bytes(good + b"\n" + b'{"report_id": "r-cli-2", "lines": [\n' + missing + b"\n")

    done = await arun(
        "send",
        "ctr.dispensings.v1",
        str(file),
        cwd=tmp_path,
        env={
            "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
            "REGHUB_KAFKA_IDEMPOTENCE": "false",
            "REGHUB_TOPIC_PREFIX": prefix,
            "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
        },
    )

    assert done.returncode == 1, done
    assert done.stdout.strip() == "sent 1, refused 2", done
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2, done.stderr
    assert errors[0].startswith("line 2: schema.json_invalid"), done.stderr
    assert errors[1] == "line 3: schema.missing: dispensing_id: Field required", done.stderr
    assert PERSON not in done.stderr  # reasons never repeat the person key
    records = await read_until(broker.bootstrap, topic, lambda r: len(r) >= 1)
    assert [(r.key, r.value) for r in records] == [(PERSON.encode(), good)]
    assert await message_count(broker.bootstrap, topic) == 1


# --- reghub schemas export ----------------------------------------------------------------------


def test_schemas_export_writes_one_json_schema_per_topic(tmp_path: Path) -> None:
    out = tmp_path / "partner-schemas"
    done = reghub("schemas", "export", str(out), cwd=tmp_path, env={})

    assert done.returncode == 0, done
    expected = {f"{spec.base}.schema.json" for spec in ALL if spec.schema is not None}
    assert {p.name for p in out.glob("*.schema.json")} == expected
    assert {Path(line).name for line in done.stdout.split()} == expected
    for spec in ALL:
        if spec.schema is None:
            continue  # the dead-letter topic carries the original bytes, whatever they were
        schema = json.loads((out / f"{spec.base}.schema.json").read_text())
        assert schema["x-topic"] == {"name": spec.base, "key": spec.key, "sender": spec.sender}
        assert schema["$id"] == f"urn:reghub:{spec.base}"
        assert "properties" in schema or "oneOf" in schema, spec.base
    dispensing = json.loads((out / "ctr.dispensings.v1.schema.json").read_text())
    assert {"report_id", "person", "lines"} <= set(dispensing["required"])
    assert set(dispensing["properties"]) >= {"report_id", "person", "lines", "pharmacy_number"}
    decisions = json.loads((out / "ctr.decisions.v1.schema.json").read_text())
    assert {s["title"] for s in decisions["oneOf"]} == {"PurchaseDecision", "SettlementStatement"}
    # each member is embedded as it is, so no reference may point at the document's root
    assert "$ref" not in json.dumps(decisions)
    purchase = next(s for s in decisions["oneOf"] if s["title"] == "PurchaseDecision")
    details = {"lines", "health_supplement_billed_to", "rights_based_billed_to", "balancing"}
    assert details | {"agreement_id"} <= set(purchase["properties"])
    line = purchase["properties"]["lines"]["anyOf"][0]["items"]
    assert {"drug_id", "subsidy", "health_supplement", "rights_based", "citizen_pays"} <= set(
        line["properties"]
    )
    # a parked report's decision has no amounts: null, never 0
    assert {"type": "null"} in purchase["properties"]["subsidy"]["anyOf"]
    assert purchase["properties"]["subsidy"]["default"] is None


# --- reghub tail --------------------------------------------------------------------------------


@pytest.mark.broker
async def test_tail_prints_a_decision_in_kroner_with_the_person_key_masked(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    prefix = await fresh_prefix(broker.bootstrap)
    decision = {
        "schema_version": 1,
        "kind": "purchase",
        "report_id": "r-tail-1",
        "status": "registered",
        "pharmacy_number": "12300",
        "person_key": PERSON,
        "subsidised": True,
        "subsidy_entitled": 201_975,
        "subsidy": 201_975,
        "citizen_pays": 198_025,
        "saldo_before": 0,
        "saldo_after": 400_000,
        "period_start": "2024-04-02",
        "period_end": "2025-04-01",
        "under18": False,
    }
    await produce(
        broker.bootstrap, TopicNames(prefix)(DECISIONS), [(b"12300", orjson.dumps(decision))]
    )

    done = await arun(
        "tail",
        "ctr.decisions.v1",
        "--limit",
        "1",
        "--timeout",
        "40",
        cwd=tmp_path,
        env={
            "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
            "REGHUB_KAFKA_IDEMPOTENCE": "false",
            "REGHUB_TOPIC_PREFIX": prefix,
            "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
        },
    )

    assert done.returncode == 0, done
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    line = lines[0]
    assert "key=12300" in line
    assert "report_id=r-tail-1" in line and "status=registered" in line
    assert "subsidy=2019.75 kr" in line
    assert "citizen_pays=1980.25 kr" in line
    assert "saldo_after=4000.00 kr" in line
    assert "period_start=2024-04-02" in line
    assert "person_key=**********" in line
    assert PERSON not in done.stdout and PERSON not in done.stderr


# --- reghub db upgrade --------------------------------------------------------------------------


def test_db_upgrade_applies_once_then_reports_up_to_date(tmp_path: Path) -> None:
    db = tmp_path / "new" / "folder" / "register.db"  # the folder does not exist yet
    env = {
        "REGHUB_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }
    first = reghub("db", "upgrade", cwd=tmp_path, env=env)
    second = reghub("db", "upgrade", cwd=tmp_path, env=env)

    assert first.returncode == 0, first
    revisions = sorted(p.stem for p in (REPO / "sinks" / "migrations" / "versions").glob("0*.py"))
    assert first.stdout.strip() == "applied: " + ", ".join(revisions)
    assert second.returncode == 0, second
    assert second.stdout.strip() == "register schema is up to date"
    assert db.is_file()


# --- reghub register import ---------------------------------------------------------------------


async def test_register_import_imports_the_good_line_and_refuses_a_wrong_period(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'register.db'}"
    env = {"REGHUB_DATABASE_URL": url, "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY}
    assert (await arun("db", "upgrade", cwd=tmp_path, env=env)).returncode == 0
    good = {
        "person": {"key": PERSON},
        "period_start": "2024-04-02",
        "period_end": "2025-04-01",
        "saldo": 400_000,
        "under18": False,
        "open_balances": [{"amount": -1_500, "arose_on": "2024-05-01"}],
    }
    wrong_end = {
        "person": {"key": "0101801234"},
        "period_start": "2024-04-02",
        "period_end": "2025-04-02",  # start + 1 year, not start + 1 year − 1 day
        "saldo": 10_000,
        "under18": False,
    }
    file = tmp_path / "snapshot.jsonl"
    file.write_bytes(as_json(good) + b"\n" + as_json(wrong_end) + b"\n")

    done = await arun("register", "import", str(file), cwd=tmp_path, env=env)

    assert done.returncode == 1, done
    assert done.stdout.strip() == "imported 1, refused 1", done
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("line 2:"), done.stderr
    assert "period_end must be period_start + 1 year − 1 day" in errors[0], done.stderr
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            persons = (await conn.execute(select(tables.persons))).all()
            periods = (await conn.execute(select(tables.subsidy_periods))).all()
            balances = (await conn.execute(select(tables.balances))).all()
    finally:
        await engine.dispose()
    assert [p.person_key for p in persons] == [PERSON]
    assert [(p.person_key, p.saldo, str(p.period_end)) for p in periods] == [
        (PERSON, 400_000, "2025-04-01")
    ]
    assert [(b.amount, b.remaining) for b in balances] == [(-1_500, -1_500)]


# --- a newcomer's mistakes: one line each, never a traceback, never a secret --------------------

HINT = "— start the hub with ./up, or set REGHUB_KAFKA_BOOTSTRAP"


def _nobody_listens() -> str:
    return f"127.0.0.1:{free_port()}"


def test_tail_without_a_broker_prints_one_hint_line_and_fails(tmp_path: Path) -> None:
    bootstrap = _nobody_listens()
    done = reghub(
        "tail", "ctr.decisions.v1", cwd=tmp_path, env={"REGHUB_KAFKA_BOOTSTRAP": bootstrap}
    )

    assert done.returncode != 0, done
    assert done.stderr.strip() == f"no broker at {bootstrap} {HINT}", done.stderr
    assert done.stdout == ""


def test_send_without_a_broker_prints_one_hint_line_and_fails(tmp_path: Path) -> None:
    bootstrap = _nobody_listens()
    file = tmp_path / "reports.jsonl"
    file.write_bytes(as_json(report("r-cli-nobroker", 10_000)) + b"\n")

    done = reghub(
        "send",
        "ctr.dispensings.v1",
        str(file),
        cwd=tmp_path,
        env={"REGHUB_KAFKA_BOOTSTRAP": bootstrap},
    )

    assert done.returncode != 0, done
    assert done.stderr.strip() == f"no broker at {bootstrap} {HINT}", done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_missing_pseudonym_key_is_named_and_no_setting_is_echoed(tmp_path: Path) -> None:
    secrets = {
        "REGHUB_DATABASE_URL": "postgresql+asyncpg://reghub:db-password-1234@127.0.0.1:1/reghub",
        "REGHUB_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "REGHUB_KAFKA_SASL_USERNAME": "reghub",
        "REGHUB_KAFKA_SASL_PASSWORD": "sasl-password-5678",
    }
    done = reghub("worker", cwd=tmp_path, env=secrets)

    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("REGHUB_PSEUDONYM_KEY is not set"), done.stderr
    for value in secrets.values():
        assert value not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "database_url" not in done.stderr


def test_invalid_settings_are_one_line_each_without_their_values(tmp_path: Path) -> None:
    done = reghub(
        "db",
        "upgrade",
        cwd=tmp_path,
        env={"REGHUB_PSEUDONYM_KEY": "too-short-key", "REGHUB_TOPIC_PARTITIONS": "four"},
    )

    assert done.returncode == 2, done
    assert sorted(done.stderr.strip().splitlines()) == [
        "REGHUB_PSEUDONYM_KEY: at least 16 characters",
        "REGHUB_TOPIC_PARTITIONS: Input should be a valid integer, unable to parse string as an integer",
    ], done.stderr
    assert "too-short-key" not in done.stderr and "four" not in done.stderr


def test_settings_come_from_files_in_the_secrets_folder(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    db = tmp_path / "from-file.db"
    (secrets / "reghub_pseudonym_key").write_text(PSEUDONYM_KEY + "\n")
    (secrets / "reghub_database_url").write_text(f"sqlite+aiosqlite:///{db}\n")

    done = reghub("db", "upgrade", cwd=tmp_path, env={"REGHUB_SECRETS_DIR": str(secrets)})

    assert done.returncode == 0, done
    assert db.is_file()


def test_a_new_sqlite_register_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "private" / "register.db"
    env = {
        "REGHUB_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }

    assert reghub("db", "upgrade", cwd=tmp_path, env=env).returncode == 0

    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_the_embedded_pseudonym_key_and_its_folder_are_the_owners_only(tmp_path: Path) -> None:
    folder = tmp_path / ".reghub"
    key = ensure_pseudonym_key(folder)

    assert len(key) >= 16 and ensure_pseudonym_key(folder) == key
    assert stat.S_IMODE((folder / "pseudonym.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_summary_says_joining_until_the_worker_reports_its_partitions() -> None:
    pages = iter([b"{}", b'{"status": "ok", "assigned": 0}', b'{"status": "ok", "assigned": 4}'])

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = next(pages)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    try:
        assert [_partitions_assigned(url) for _ in range(3)] == [None, 0, 4]
    finally:
        server.shutdown()
        server.server_close()
    assert _partitions_assigned(url) is None  # nobody answers: still joining


@pytest.mark.broker
async def test_topics_create_with_one_replica_and_min_insync_one_on_tansu(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}."
    env = {
        "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
        "REGHUB_TOPIC_PREFIX": prefix,
        "REGHUB_TOPIC_REPLICATION_FACTOR": "1",
        "REGHUB_TOPIC_MIN_INSYNC_REPLICAS": "1",
    }
    first = await arun("topics", "create", cwd=tmp_path, env=env)
    second = await arun("topics", "create", cwd=tmp_path, env=env)

    assert first.returncode == 0, first
    assert first.stdout.startswith("created: "), first
    assert second.stdout.strip() == "all topics exist", second
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        topic = TopicNames(prefix)(DISPENSINGS)
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [resource] = response.resources
    configs = {entry[0]: entry[1] for entry in resource[4]}
    assert configs["min.insync.replicas"] == "1"
    assert configs["cleanup.policy"] == "delete"
