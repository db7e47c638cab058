"""The `reghub` command line as a partner or an operator runs it: `python -m reghub …` in a child process.

Each command gets its configuration from `REGHUB_*` only and runs in an empty working folder, so nothing
from a local `reghub up` (`.reghub/`) leaks in.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from sqlalchemy import select

from reghub.broker import EmbeddedBroker, create_topics
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
    missing = as_json({k: v for k, v in report("r-cli-3", 100).items() if k != "pharmacy_number"})
    file = tmp_path / "reports.jsonl"
    file.write_bytes(good + b"\n" + b'{"report_id": "r-cli-2", "lines": [\n' + missing + b"\n")

    done = await arun(
        "send",
        "ctr.dispensings.v1",
        str(file),
        cwd=tmp_path,
        env={
            "REGHUB_KAFKA_BOOTSTRAP": broker.bootstrap,
            "REGHUB_TOPIC_PREFIX": prefix,
            "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
        },
    )

    assert done.returncode == 1, done
    assert done.stdout.strip() == "sent 1, refused 2", done
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 2, done.stderr
    assert errors[0].startswith("line 2: schema.json_invalid"), done.stderr
    assert errors[1] == "line 3: schema.missing: pharmacy_number: Field required", done.stderr
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
    assert first.stdout.strip() == "applied: 0001_initial_register, 0002_drop_schema_migrations"
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
