"""The throughput benchmark runs end to end on a small N, so a rename in the pipeline cannot break it
unnoticed. Its figures are printed, never asserted: only that it ran and reported every step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.database]

ROOT = Path(__file__).resolve().parent.parent


def test_the_throughput_benchmark_runs_and_prints_its_steps() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.dispensing_throughput", "-n", "3000", "--persons", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "3000 purchase rows added" in out, out
    for step in ("load: register reads", "handle: rules", "write", "publish", "offset commit"):
        assert step in out, (step, out)
