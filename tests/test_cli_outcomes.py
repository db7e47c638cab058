"""A partner finds its own message's outcome: `reghub send --wait` and `reghub tail`'s filters, run as
commands against the real broker and a real worker (issue 31.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reghub.settings import Settings
from sinks.register import Register
from streams.topics import SUBSIDY_SCALES, TopicNames
from tests.kafka_helpers import as_json, running_worker
from tests.messages import PERSON, SCALE_2025, report
from tests.test_cli import PSEUDONYM_KEY, arun, message_count

pytestmark = [pytest.mark.broker, pytest.mark.database]

OTHER = "0707701234"


def env(settings: Settings) -> dict[str, str]:
    return {
        "REGHUB_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "REGHUB_KAFKA_IDEMPOTENCE": "false",
        "REGHUB_TOPIC_PREFIX": settings.topic_prefix,
        "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }


def jsonl(path: Path, *messages: dict[str, object]) -> Path:
    path.write_bytes(b"".join(as_json(m) + b"\n" for m in messages))
    return path


async def test_send_wait_prints_each_lines_decision_or_dead_letter_and_tail_finds_them(
    settings: Settings, register: Register, tmp_path: Path
) -> None:
    """w1 4,000 kr on 2 April 2024 on saldo 0: 2,019.75 (as in test_ctr_topics); w2 returns a sale
    nobody reported; w3 is dated 2025, where no scale is in force."""
    reports = jsonl(
        tmp_path / "reports.jsonl",
        report("w1", 400_000),
        report("w2", -10_000, kind="return", return_of="nobody-sold-this"),
        report("w3", 10_000, "2025-02-01T10:00:00+01:00", person=OTHER),
    )
    async with running_worker(settings, register):
        done = await arun(
            "send", "ctr.dispensings.v1", str(reports), "--wait", "60",
            cwd=tmp_path, env=env(settings), timeout=120,
        )  # fmt: skip
        assert done.returncode == 1, done  # one line was dead-lettered
        assert done.stdout.splitlines() == [
            "sent 3, refused 0",
            "line 1 w1: registered: subsidy 2019.75 kr, citizen pays 1980.25 kr, "
            "saldo 0.00 kr -> 4000.00 kr",
            "line 2 w2: dead-lettered: rule.return_of_unknown_report",
            "line 3 w3: parked (rule.unknown_scale: no subsidy scale in force on 2025-02-01)",
        ], done
        again = await arun(
            "send", "ctr.dispensings.v1", str(jsonl(tmp_path / "w1.jsonl", report("w1", 400_000))),
            "--wait", "60", cwd=tmp_path, env=env(settings), timeout=120,
        )  # fmt: skip
        assert again.returncode == 0, again
        assert again.stdout.splitlines()[1].startswith("line 1 w1: duplicate: subsidy 2019.75 kr")
        scale = jsonl(tmp_path / "scale.jsonl", SCALE_2025)
        loaded = await arun(
            "send", "ctr.subsidy-scales.v1", str(scale), "--wait", "60",
            cwd=tmp_path, env=env(settings), timeout=120,
        )  # fmt: skip
        assert loaded.returncode == 0, loaded
        assert loaded.stdout.splitlines() == ["sent 1, refused 0", "line 1 scale-2025: applied"]
    assert PERSON not in done.stdout + done.stderr and OTHER not in done.stdout + done.stderr

    async def tail(*args: str) -> list[str]:
        shown = await arun("tail", *args, "--to-end", cwd=tmp_path, env=env(settings))
        assert shown.returncode == 0, shown
        assert PERSON not in shown.stdout and OTHER not in shown.stdout
        return shown.stdout.splitlines()

    # --to-end stops by itself, with no --timeout; w3's decision twice: parked, then registered
    w3 = await tail("ctr.decisions.v1", "--report-id", "w3")
    assert [("status=parked" in ln, "status=registered" in ln) for ln in w3] == [
        (True, False),
        (False, True),
    ], w3
    assert all("report_id=w3" in ln for ln in w3)
    dead = await tail("ctr.dead-letter.v1", "--id", "w2")
    assert len(dead) == 1 and "reghub-reason=rule.return_of_unknown_report" in dead[0], dead
    replay = await tail("ctr.dispensings.v1", "--id", "w3")
    assert len(replay) == 2 and "reghub-replay-of=w3" in replay[1], replay
    by_key = await tail("ctr.dispensings.v1", "--key", OTHER)
    assert len(by_key) == 2 and all("report_id=w3" in ln for ln in by_key), by_key
    assert len(await tail("ctr.dispensings.v1", "--key", PERSON)) == 3  # w1 twice, w2
    assert len(await tail("ctr.dispensings.v1")) == 5


async def test_send_wait_without_a_worker_says_no_answer_within_its_time(
    settings: Settings, tmp_path: Path
) -> None:
    reports = jsonl(tmp_path / "one.jsonl", report("q1", 10_000))
    done = await arun(
        "send", "ctr.dispensings.v1", str(reports), "--wait", "2",
        cwd=tmp_path, env=env(settings),
    )  # fmt: skip
    assert done.returncode == 1, done
    assert done.stdout.splitlines() == ["sent 1, refused 0", "line 1 q1: no answer within 2 s"]


async def test_send_refuses_a_scale_whose_cap_does_not_match_its_bands_before_sending(
    settings: Settings, tmp_path: Path
) -> None:
    """The worker would dead-letter it (`rules.subsidy.scale_problems`); send refuses it by line."""
    wrong = {**SCALE_2025, "message_id": "scale-2025-wrong", "own_payment_cap": 400_000}
    file = jsonl(tmp_path / "scales.jsonl", SCALE_2025, wrong)
    done = await arun("send", "ctr.subsidy-scales.v1", str(file), cwd=tmp_path, env=env(settings))
    assert done.returncode == 1, done
    assert done.stdout.strip() == "sent 1, refused 1", done
    assert done.stderr.strip().startswith(
        "line 2: scale.cap_mismatch: adult own payment at the 100% edge is 4696.25 kr, "
        "stated cap 4000.00 kr"
    ), done
    topic = TopicNames(settings.topic_prefix)(SUBSIDY_SCALES)
    assert await message_count(settings.kafka_bootstrap, topic) == 1
