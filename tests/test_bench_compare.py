"""`--compare` runs on a small scale (one round), so a rename in the pipeline, in the supervisor or in
Quix Streams cannot break it unnoticed. Its own file, so that the suite runs it beside the other
benchmark modes: it starts the real `reghub worker --processes 2`. Figures are printed, never asserted:
only that each system ran and every figure and ratio line was printed."""

from __future__ import annotations

import pytest

from tests.test_bench_modes import bench

pytestmark = [pytest.mark.broker, pytest.mark.database]


def test_compare_runs_quix_reghub_and_the_deployed_hub_and_prints_the_ratios() -> None:
    # one round: the deployed row starts the real `reghub worker --processes 2`, whose start-up takes
    # a while; the rounds loop is the same for one or two
    out = bench("--compare", "--rounds", "1", "-n", "300", "--persons", "50", timeout=300)
    for line in (
        "ceiling:",
        "round 1, quix:",
        "round 1, reghub:",
        "round 1, deployed:",
        "quix (median):",
        "reghub (median):",
        "deployed (median):",
        "reghub / quix:",
        "deployed (--processes 2) / quix:",
        "CPU per report, reghub / quix:",
        "quix / ceiling:",
        "reghub / ceiling:",
        "quix CPU per report (µs, median of the rounds): consumer",
        "reghub CPU per report (µs, median of the rounds): consumer",
        "deployed (--processes 2, workers summed) CPU per report (µs, median of the rounds): "
        "consumer",
    ):
        assert line in out, (line, out)
    assert out.count("300 purchase rows added") == 1, out
