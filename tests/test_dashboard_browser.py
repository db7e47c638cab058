"""The dashboard in a real headless browser (Debian's chromium, driven by selenium): what an operator sees.

A real worker process and the API process on a register with one purchase and one dead letter: the page
shows the purchase, the subsidy in Danish kroner, the worker running with its partitions' lag, the dead
letter's reason, a Danish time; when the API process stops, a banner says it does not answer.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reghub.broker import EmbeddedBroker, free_port
from reghub.settings import Settings
from streams.topics import DECISIONS, DISPENSINGS, TopicNames
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
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=da-DK"):
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

        await asyncio.to_thread(until, shows("register", "køb 1"), 30, "one purchase")
        # 4,000 kr on saldo 0: 730 × 50 % + 2,110 × 75 % + 85 × 85 % = 2,019.75 kr, in Danish
        assert "tilskud ydet 2.019,75 kr." in text("register")
        await asyncio.to_thread(until, shows("workers", "kører"), 30, "the worker running")
        await asyncio.to_thread(until, shows("deadletters", "schema.json_invalid 1"), 30, "reason")
        assert names(DISPENSINGS) in text("lag")
        assert re.search(r"\d{1,2}\.\d{1,2}\.\d{4}", text("updated")), text("updated")
        assert PERSON not in driver.page_source  # type: ignore[attr-defined]
        assert not driver.find_element("id", "banner").is_displayed()  # type: ignore[attr-defined]

        os.killpg(api.pid, signal.SIGTERM)
        api.wait(20)
        banner = lambda: driver.find_element("id", "banner").is_displayed()  # type: ignore[attr-defined]  # noqa: E731
        await asyncio.to_thread(until, banner, 15, "the error banner")
        assert "API svarer ikke" in text("banner")
        assert "køb 1" in text("register")  # the last figures stay, marked stale
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
