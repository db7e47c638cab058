"""The throughput benchmark's other modes (--latency, --rebuild; --compare in
`tests/test_bench_compare.py`) run on a small scale, so a
rename in the pipeline or in Quix Streams cannot break them unnoticed. Their figures are printed,
never asserted: only that each ran and printed its figure lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.database]

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str, module: str = "bench.dispensing_throughput", timeout: float = 180) -> str:
    """Run a benchmark module with `args`; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_latency_prints_percentiles_of_both_measuring_points_and_of_the_quix_peer() -> None:
    out = bench("--latency", "--rate", "200", "--seconds", "3", "--persons", "50")
    for line in (
        "produce → committed row:",
        "produce → decision read:",
        "quix produce → committed row:",
        "latency p99, reghub decision / quix row:",
    ):
        assert line in out, (line, out)
    assert out.count("(600 reports;") == 3, out


def test_rebuild_prints_the_rate_and_the_workers_peak_rss_alone_and_as_deployed() -> None:
    out = bench("--rebuild", "500", "--persons", "50", "--rebuild-processes", "2")
    assert "rebuild, one worker: " in out and "(500 in " in out, out
    assert "its peak RSS:" in out, out
    assert "rebuild as deployed (reghub worker --processes 2): " in out, out
    assert "peak RSS per worker: " in out, out


def test_handler_cpu_bench_runs_every_report_through_the_handler() -> None:
    out = bench("-n", "300", "--persons", "30", "--runs", "1", module="bench.handle_cpu")
    assert "300 reports, 30 persons" in out, out
    assert "µs CPU per report (needs" in out, out


def test_person_lock_bench_times_both_ways_of_locking() -> None:
    out = bench("--persons", "500", "--batch", "50", "--rounds", "8", module="bench.person_lock")
    assert "50 of 500 persons locked and read per transaction, 8 rounds each:" in out, out
    assert "lock in the read" in out and "lock, then read" in out, out
