"""The soak (`bench.soak`): its verdict on made-up samples, and a short run of the real thing, so a rename
cannot break it unnoticed."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import Sample, slope, verdict

REPO = Path(__file__).resolve().parent.parent


def samples(worker_growth: float, outbox_late: float, lag_end: int) -> list[Sample]:
    """60 minutes, a sample a minute: the API flat, the worker growing `worker_growth` MB/min, the
    outbox growing 2 MB/min for 15 minutes and `outbox_late` MB/min after, `lag_end` at the end."""
    out = []
    for m in range(61):
        outbox = 2.0 * min(m, 15) + outbox_late * max(0, m - 15)
        out.append(
            Sample(
                minute=float(m),
                produced=300 * 60 * m,
                acked=300 * 60 * m,
                lag=lag_end if m == 60 else 100,
                worker_rss_mb=150 + worker_growth * m,
                api_rss_mb=110.0,
                monitor_p50_ms=50.0,
                monitor_max_ms=80.0,
                monitor_calls=30,
                monitor_errors=0,
                outbox_rows=1_000,
                outbox_unsent=0,
                outbox_mb=outbox,
                worker_restarts=0,
            )
        )
    return out


def test_slope_is_least_squares_and_needs_three_points() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == pytest.approx(2.0)
    assert slope([(0, 1), (1, 3)]) is None


def test_a_flat_run_passes() -> None:
    lines, ok = verdict(samples(0.0, 0.0, 100), 60.0, 0.1, 300)
    assert ok, lines
    assert any("bounded" in line for line in lines)


def test_a_growing_worker_fails() -> None:
    lines, ok = verdict(samples(0.5, 0.0, 100), 60.0, 0.1, 300)
    assert not ok
    assert any(line.startswith("worker RSS") and "GROWS" in line for line in lines)


def test_an_outbox_that_keeps_growing_fails() -> None:
    lines, ok = verdict(samples(0.0, 2.0, 100), 60.0, 0.1, 300)
    assert not ok
    assert any(line.startswith("outbox") and "GROWS" in line for line in lines)


def test_a_worker_more_than_a_minute_behind_at_the_end_fails() -> None:
    lines, ok = verdict(samples(0.0, 0.0, 300 * 60 + 1), 60.0, 0.1, 300)
    assert not ok
    assert any("FELL BEHIND" in line for line in lines)


@pytest.mark.broker
@pytest.mark.database
def test_a_short_soak_prints_its_table_verdict_and_samples(tmp_path: Path) -> None:
    folder = tmp_path / "soak"
    args = ["--rate", "50", "--minutes", "0.5", "--sample", "5", "--persons", "500"]
    args += ["--outbox-keep-hours", "0.002", "--folder", str(folder), "--csv"]
    run = subprocess.run(
        [sys.executable, "-m", "bench.soak", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = run.stdout + run.stderr
    assert "verdict over the last half:" in out, out
    assert "/monitor calls answered:" in out and "failed: 0" in out, out
    assert "Traceback" not in out, out
    with open(folder / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 4
    assert all(float(r["worker_rss_mb"]) > 0 and float(r["api_rss_mb"]) > 0 for r in rows)
    assert int(rows[-1]["acked"]) >= 50 * 20
