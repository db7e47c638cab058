"""The dashboard in a real headless browser (Debian's chromium, driven by selenium): what an operator sees.

A real worker process and the API process on a register with one purchase and one dead letter: the page
shows the purchase, the subsidy in kroner, the worker running with its partitions' lag, the dead
letter's reason, a UTC time; when the API process stops, a banner says it does not answer.

The overall state at the top, from real input through the real pipeline: green with a worker keeping
up; amber when a payment's report has not come and its due time is near; red when it is overdue, and
when the worker is stopped, while the lag the API asks of the broker grows. Without a worker: the lag
of records waiting 20 s is amber and growing, of records waiting two minutes red; an API whose broker
does not answer shows red "broker unreachable" and still answers at once.

With `DASHBOARD_SCREENSHOTS=DIR` the green and red pages are saved there as PNGs (the README's are in
`docs/`: `DASHBOARD_SCREENSHOTS=docs .venv/bin/pytest tests/test_dashboard_browser.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from streams.topics import CORRECTIONS, DECISIONS, DISPENSINGS, PAYMENTS, TopicNames
from tests.kafka_helpers import as_json, produce, read_until
from tests.messages import PERSON, report
from tests.test_worker_process import spawn_reghub, wait_for_health, worker_env

pytestmark = [pytest.mark.broker, pytest.mark.database]

CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM = shutil.which("chromium")


def browser() -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--lang=en-GB",
        "--window-size=1280,1250",
    ):
        options.add_argument(arg)
    if CHROMIUM:
        options.binary_location = CHROMIUM
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout} s: {what}")
        time.sleep(0.3)


@pytest.mark.skipif(
    CHROMEDRIVER is None, reason="needs Debian's chromium-driver (./test installs it)"
)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one is enough
async def test_an_operator_sees_the_register_the_worker_and_a_banner_when_the_api_stops(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    names = TopicNames(settings.topic_prefix)
    web, api_port = free_port(), free_port()
    env = worker_env(broker, settings, web, tmp_path)
    await produce(
        broker.bootstrap,
        names(DISPENSINGS),
        [(PERSON.encode(), as_json(report("r-dash-1", 400_000))), (PERSON.encode(), b"{oops")],
    )
    worker = spawn_reghub(["worker"], env, tmp_path / "worker.log", tmp_path)
    api_env = {**env, "REGHUB_WORKER_URLS": f'["http://127.0.0.1:{web}"]'}
    api = spawn_reghub(["api", "--port", str(api_port)], api_env, tmp_path / "api.log", tmp_path)
    driver = None
    try:
        await read_until(broker.bootstrap, names(DECISIONS), lambda r: len(r) >= 1, timeout=60)
        await wait_for_health(web, worker, timeout=30)
        driver = browser()
        await asyncio.to_thread(driver.get, f"http://127.0.0.1:{api_port}/dashboard")  # type: ignore[attr-defined]

        def text(element_id: str) -> str:
            return driver.find_element("id", element_id).text  # type: ignore[attr-defined]

        def shows(element_id: str, wanted: str) -> Callable[[], bool]:
            return lambda: wanted in text(element_id)

        await asyncio.to_thread(until, shows("register", "purchases 1"), 30, "one purchase")
        # 4,000 kr on saldo 0: 730 × 50 % + 2,110 × 75 % + 85 × 85 % = 2,019.75 kr
        assert "subsidy granted DKK 2,019.75" in text("register")
        await asyncio.to_thread(until, shows("workers", "running"), 30, "the worker running")
        await asyncio.to_thread(until, shows("deadletters", "schema.json_invalid 1"), 30, "reason")
        assert names(DISPENSINGS) in text("lag")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", text("updated")), text("updated")
        assert PERSON not in driver.page_source  # type: ignore[attr-defined]
        assert not driver.find_element("id", "banner").is_displayed()  # type: ignore[attr-defined]

        os.killpg(api.pid, signal.SIGTERM)
        api.wait(20)
        banner = lambda: driver.find_element("id", "banner").is_displayed()  # type: ignore[attr-defined]  # noqa: E731
        await asyncio.to_thread(until, banner, 15, "the error banner")
        assert "The API does not answer" in text("banner")
        assert "purchases 1" in text("register")  # the last figures stay, marked stale
    finally:
        if driver is not None:
            driver.quit()  # type: ignore[attr-defined]
        for proc in (api, worker):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


SHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


class Page:
    """The dashboard in a headless browser: the overall state and the text of its parts."""

    def __init__(self, port: int) -> None:
        self.driver: Any = browser()
        self.driver.get(f"http://127.0.0.1:{port}/dashboard")

    def text(self, element_id: str) -> str:
        return str(self.driver.find_element("id", element_id).text)

    def level(self) -> str:
        return str(self.driver.find_element("id", "state").get_attribute("data-level") or "")

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            until(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the state: {self.text('state')!r}") from None

    def wait_level(self, level: str, timeout: float, reason: str = "") -> None:
        self.wait(
            lambda: self.level() == level and reason in self.text("reasons"),
            timeout,
            f"{level} {reason!r}",
        )

    def topic_lag(self, topic: str) -> tuple[int, float, str]:
        """The lag table's row of `topic`: messages, seconds, trend."""
        table = self.driver.execute_script(
            "return [...document.querySelectorAll('#topic-lag tr')]"
            ".map(r => [...r.querySelectorAll('th,td')].map(c => c.innerText))"
        )  # in one go: the page replaces the rows every 2 s
        for cells in table:
            if cells and cells[0] == topic:
                seconds = re.fullmatch(r"(\d+) s|(\d+) min (\d+) s", cells[2])
                assert seconds, cells
                s = int(seconds[1]) if seconds[1] else 60 * int(seconds[2]) + int(seconds[3])
                return int(cells[1].replace(",", "")), float(s), cells[3]
        return 0, 0.0, ""

    def screenshot(self, name: str) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            assert self.driver.save_screenshot(str(Path(SHOTS) / name))

    def quit(self) -> None:
        self.driver.quit()


def api_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def page(port: int) -> Iterator[Page]:
    """The dashboard of the API at `port`, once that answers (waiting blocks: the tests run nothing
    else in their event loop meanwhile)."""
    until(lambda: api_up(port), 60, f"the API on port {port}")
    shown = Page(port)
    try:
        yield shown
    finally:
        shown.quit()


async def produce_at(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], at: datetime
) -> None:
    """Records whose broker timestamp (CreateTime) is `at`: as if they had waited since then."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(
                topic, value, key=key, timestamp_ms=int(at.timestamp() * 1000)
            )
    finally:
        await producer.stop()


def payment(n: int, paid: datetime) -> bytes:
    return orjson.dumps(
        {
            "message_id": f"pay-dash-{n}",
            "pharmacy_number": "12300",
            "dispensing_id": f"d-dash-{n}",
            "paid_at": paid.isoformat(),
            "person": {"key": PERSON},
        }
    )


needs_chromium = pytest.mark.skipif(
    CHROMEDRIVER is None, reason="needs Debian's chromium-driver (./test installs it)"
)


@needs_chromium
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_state_goes_green_amber_red_from_real_input_and_a_stopped_worker(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    """Green with a worker keeping up; a payment whose report has not come: amber while its due time
    is under 30 s away, red once it is overdue (listed in red, today's compliance counts it
    missing); the worker stopped: red, and the lag the API asks of the broker grows."""
    names = TopicNames(settings.topic_prefix)
    web, api_port = free_port(), free_port()
    env = {**worker_env(broker, settings, web, tmp_path), "REGHUB_REPORT_GRACE_SECONDS": "60"}
    # a 2024 sale (a year with a built-in scale) that reached the broker 10 s after its payment: on time
    paid = datetime.fromisoformat(report("r-green-1", 1)["paid_or_invoiced_at"])
    sale = [(PERSON.encode(), as_json(report("r-green-1", 400_000)))]
    await produce_at(broker.bootstrap, names(DISPENSINGS), sale, paid + timedelta(seconds=10))
    worker = spawn_reghub(["worker"], env, tmp_path / "worker.log", tmp_path)
    api_env = {**env, "REGHUB_WORKER_URLS": f'["http://127.0.0.1:{web}"]'}
    api = spawn_reghub(["api", "--port", str(api_port)], api_env, tmp_path / "api.log", tmp_path)
    try:
        await read_until(broker.bootstrap, names(DECISIONS), lambda r: len(r) >= 1, timeout=60)
        await wait_for_health(web, worker, timeout=30)
        with page(api_port) as p:
            await asyncio.to_thread(p.wait_level, "green", 60)
            assert p.text("state-words") == "GREEN: All well"
            assert "none overdue" in p.text("overdue") and "none at risk" in p.text("at-risk")
            await asyncio.to_thread(
                p.wait, lambda: p.topic_lag(names(DISPENSINGS))[2] != "", 10, "lag"
            )
            assert p.topic_lag(names(DISPENSINGS))[:2] == (0, 0.0)
            await asyncio.to_thread(p.screenshot, "dashboard-green.png")

            # paid 45 s ago, due in 15 s (60 s of grace): at risk until the worker's watch finds it missing
            paid = datetime.now(UTC) - timedelta(seconds=45)
            await produce(broker.bootstrap, names(PAYMENTS), [(PERSON.encode(), payment(1, paid))])
            await asyncio.to_thread(p.wait_level, "amber", 15, "due within 30 s and not met")
            assert "12300: payment:12300:d-dash-1" in p.text("at-risk")
            await asyncio.to_thread(p.wait_level, "red", 30, "1 obligation overdue")
            assert "12300: payment:12300:d-dash-1" in p.text("overdue")
            # the worker's report_missing alert, read from the alerts topic
            await asyncio.to_thread(
                p.wait, lambda: "report_missing 1" in p.text("reasons"), 15, "alert"
            )
            assert "none at risk" in p.text("at-risk")
            shown_as = "return document.querySelector('#overdue tr').className"
            assert p.driver.execute_script(shown_as) == "red"
            await asyncio.to_thread(
                p.wait, lambda: "12300" in p.text("compliance"), 15, "compliance"
            )
            # reporter, on time, late, missing, resolved
            assert re.search(r"12300 0 0 1 0 ", p.text("compliance")), p.text("compliance")

            stop(worker)
            await asyncio.to_thread(p.wait_level, "red", 20, "worker 1 does not answer")
            reports = [(PERSON.encode(), as_json(report(f"r-after-{i}", 10_000))) for i in range(3)]
            await produce(broker.bootstrap, names(DISPENSINGS), reports)
            await asyncio.to_thread(
                p.wait, lambda: p.topic_lag(names(DISPENSINGS))[0] == 3, 20, "3 messages of lag"
            )
            first = p.topic_lag(names(DISPENSINGS))
            await asyncio.to_thread(
                p.wait,
                lambda: (
                    p.topic_lag(names(DISPENSINGS))[1] >= first[1] + 3
                    and "growing" in p.topic_lag(names(DISPENSINGS))[2]
                ),
                20,
                "the lag growing",
            )
            assert p.topic_lag(names(DISPENSINGS))[0] == 3  # nobody consumes: it stays
            await asyncio.to_thread(p.screenshot, "dashboard-red.png")
            assert PERSON not in p.driver.page_source
    finally:
        stop(api, worker)


@needs_chromium
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_lag_without_a_worker_grows_and_a_broker_that_does_not_answer_is_red(
    broker: EmbeddedBroker, settings: Settings, tmp_path: Path
) -> None:
    """No worker consumes: records that waited 20 s before the API started are amber and growing,
    records that waited two minutes red; a record the API saw arrive counts from then, whatever old
    timestamp its producer gave it. An API whose broker does not answer says so in red and still
    answers at once."""
    names = TopicNames(settings.topic_prefix)
    api_port, dead_port = free_port(), free_port()
    env = worker_env(broker, settings, free_port(), tmp_path)
    now = datetime.now(UTC)
    waiting = [(PERSON.encode(), as_json(report(f"r-wait-{i}", 10_000))) for i in range(4)]
    await produce_at(broker.bootstrap, names(DISPENSINGS), waiting, now - timedelta(seconds=20))
    payments = [(PERSON.encode(), payment(i, now)) for i in range(2)]
    await produce_at(broker.bootstrap, names(PAYMENTS), payments, now - timedelta(minutes=2))
    api = spawn_reghub(["api", "--port", str(api_port)], env, tmp_path / "api.log", tmp_path)
    dead_env = {**env, "REGHUB_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    dead = spawn_reghub(
        ["api", "--port", str(dead_port)], dead_env, tmp_path / "dead.log", tmp_path
    )
    try:
        with page(api_port) as p:
            await asyncio.to_thread(p.wait_level, "red", 60, f"RED: {names(PAYMENTS)}: ")
            assert f"AMBER: {names(DISPENSINGS)}: " in p.text("reasons")
            assert "no worker listed" in p.text("reasons")
            assert p.topic_lag(names(PAYMENTS))[:2] >= (2, 120.0)
            messages, seconds, _ = p.topic_lag(names(DISPENSINGS))
            assert messages == 4 and 20 <= seconds < 60
            await asyncio.to_thread(
                p.wait,
                lambda: "growing" in p.topic_lag(names(DISPENSINGS))[2],
                20,
                "the trend growing",
            )
            assert p.topic_lag(names(DISPENSINGS))[1] > seconds
            replayed = [(PERSON.encode(), b"{}")]
            await produce_at(
                broker.bootstrap, names(CORRECTIONS), replayed, now - timedelta(minutes=10)
            )
            await asyncio.to_thread(
                p.wait, lambda: p.topic_lag(names(CORRECTIONS))[0] == 1, 20, "the replayed one"
            )
            assert p.topic_lag(names(CORRECTIONS))[1] < 10  # seen arriving, not 10 minutes old
        with page(dead_port) as p:
            await asyncio.to_thread(p.wait_level, "red", 60, "broker unreachable")
            assert "broker unreachable" in p.text("topic-lag")
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{dead_port}/monitor", timeout=5) as resp:
            body = orjson.loads(resp.read())
        assert time.monotonic() - started < 2
        assert body["state"]["level"] == "red" and body["lag"]["state"] == "unreachable"
    finally:
        stop(api, dead)
