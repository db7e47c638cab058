"""`REGHUB_LOG_FORMAT=json`: one JSON object a line from the real worker (and its supervisor), the API
(uvicorn's access log included) and the CLI, with no person number in any of them."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reghub.broker import EmbeddedBroker, free_ports
from reghub.logs import JsonFormatter, log_format_named, logging_config
from reghub.settings import Settings
from streams.topics import DECISIONS, DISPENSINGS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, report
from tests.test_first_hour import PSEUDONYM_KEY, read_a_person_from_a_real_api, reghub
from tests.test_worker_process import worker_env


def json_lines(text: str) -> list[dict[str, object]]:
    """Every line of `text` as a JSON object; fails naming the first line that is not one."""
    objects = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            parsed = json.loads(line)
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\nin:\n{text[-4000:]}")
        assert isinstance(parsed, dict), line
        assert {"time", "level", "logger", "message"} <= parsed.keys(), line
        objects.append(parsed)
    return objects


def test_the_json_formatter_masks_message_arguments_and_exception() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("reghub.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("report for %s refused", PERSON)
        try:
            raise KeyError(PERSON)
        except KeyError:
            logger.exception("internal error on %s", "r-1")
        # a record made without the masking factory is masked by the formatter itself
        handler.handle(logging.makeLogRecord({"msg": f"raw {PERSON}", "levelname": "INFO"}))
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = out.getvalue()
    assert PERSON not in text
    lines = json_lines(text)
    assert [line["level"] for line in lines] == ["warning", "error", "info"]
    assert lines[0]["message"] == "report for ********** refused"
    assert "KeyError" in str(lines[1]["exception"]) and lines[1]["message"].endswith("r-1")


def test_uvicorns_access_record_names_its_fields() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", f"/v1/persons/{PERSON}", "1.1", 404),
        None,
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["path"] == "/v1/persons/**********" and line["status"] == 404
    assert line["method"] == "GET" and line["client"] == "127.0.0.1:5"
    assert PERSON not in json.dumps(line)


def test_the_log_format_is_text_unless_json_is_asked_for() -> None:
    assert log_format_named(None) == "text"
    assert log_format_named("JSON ") == "json"
    assert log_format_named("yaml") == "text"
    config = logging_config("info", "json")
    assert config["formatters"]["reghub"] == {"()": "reghub.logs.JsonFormatter"}
    assert config["loggers"]["uvicorn.access"]["propagate"] is False
    with pytest.raises(ValueError):
        Settings(pseudonym_key="k" * 16, log_format="yaml")  # type: ignore[arg-type]


def test_a_cli_failure_is_a_json_line(tmp_path: Path) -> None:
    done = reghub(
        "compliance",
        "--date",
        "2025-01-02",
        cwd=tmp_path,
        REGHUB_DATABASE_URL=f"mysql://{PERSON}:pw@db.example/reghub",
        REGHUB_LOG_FORMAT="json",
    )
    assert done.returncode != 0
    assert PERSON not in done.stderr + done.stdout
    lines = json_lines(done.stderr)  # one a setting: the URL's form, the missing key
    assert {line["level"] for line in lines} == {"error"}
    assert any("mysql:// is not supported" in str(line["message"]) for line in lines), lines


def test_the_api_logs_json_lines_with_its_access_log_masked(tmp_path: Path) -> None:
    db = tmp_path / "register.db"
    variables = {
        "REGHUB_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
        "REGHUB_LOG_FORMAT": "json",
    }
    status, stdout, stderr = read_a_person_from_a_real_api(tmp_path, variables)
    assert PERSON not in stdout + stderr
    lines = json_lines(stdout) + json_lines(stderr)
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert {"path": "/v1/persons/**********", "status": status}.items() <= access[-1].items()
    assert any(line["logger"] == "uvicorn.error" for line in lines), lines


@pytest.mark.broker
@pytest.mark.database
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_worker_and_its_supervisor_log_json_lines(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    names = TopicNames(settings.topic_prefix)
    port = free_ports(2)
    await produce(
        broker.bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-json-1", 400_000))), (PERSON.encode(), b"{not json")],
    )
    env = worker_env(broker, settings, port, tmp_path)
    env.update({"REGHUB_LOG_FORMAT": "json", "REGHUB_WORKER_PROCESSES": "2"})
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reghub", "worker"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        records = await read_until(
            broker.bootstrap, names(DECISIONS), lambda r: len(r) >= 1, timeout=60
        )
        assert records, f"no decision within 60 s; log:\n{log_path.read_text()[-4000:]}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert PERSON not in text
    lines = json_lines(text)
    pids = {line["pid"] for line in lines}
    assert len(pids) >= 3, pids  # the supervisor and its two workers
    assert any("register consumer started" in str(line["message"]) for line in lines), text
