"""The compose `monitoring` profile's files: Prometheus' config and alert rules pass `promtool`, and every
metric the rules and the Grafana dashboard ask for is one the worker or the API exports (or the Kafka
lag exporter's, or Prometheus' own `up`). A missing `promtool` is a failure, never a skip (`./test`
installs Debian's `prometheus`, which has it)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_api
from streams.metrics import Metrics

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = REPO / "deploy" / "prometheus" / "prometheus.yml"
RULES = REPO / "deploy" / "prometheus" / "rules" / "reghub.rules.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "reghub.json"
DATASOURCE = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# danielqsj/kafka-exporter's series the files may use, and Prometheus' own
EXTERNAL = {
    "up",
    "kafka_brokers",
    "kafka_topic_partitions",
    "kafka_topic_partition_current_offset",
    "kafka_topic_partition_oldest_offset",
    "kafka_consumergroup_current_offset",
    "kafka_consumergroup_lag",
    "kafka_consumergroup_lag_sum",
    "kafka_consumergroup_members",
}
# PromQL words that look like metric names
_NOT_METRICS = {
    "sum", "max", "min", "avg", "count", "by", "without", "and", "or", "unless", "on", "ignoring",
    "rate", "irate", "delta", "increase", "absent", "clamp_min", "clamp_max", "histogram_quantile",
    "le", "topic", "reason", "state", "job", "resource", "outcome", "consumergroup", "bool",
}  # fmt: skip
_NAME = re.compile(r"(?<![\w\"'$.{])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w\"'])")


def exported_from_text(text: str) -> set[str]:
    """The series names a Prometheus text page declares (`# TYPE` lines), with a histogram's
    `_bucket`, `_sum` and `_count`: labelled families with no child yet are declared too."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every series the worker's `/metrics` and the API's `/metrics` declare."""
    worker = Metrics().text().decode()
    db = tmp_path_factory.mktemp("api") / "register.db"
    api = TestClient(create_api(f"sqlite+aiosqlite:///{db}", []))  # no lifespan: no database use
    response = api.get("/metrics")
    assert response.status_code == 200
    names = exported_from_text(worker) | exported_from_text(response.text)
    assert "reghub_batch_commit_seconds_bucket" in names and "reghub_api_reads_total" in names
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression: the identifiers outside label matchers, strings,
    durations and legend templates that are no PromQL function, keyword or label."""
    bare = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", " ", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)  # grouping labels
    found = {m for m in _NAME.findall(bare) if not re.fullmatch(r"\d.*", m)}
    return found - _NOT_METRICS


def rule_expressions() -> list[str]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in loaded["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    loaded = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in loaded["panels"] for target in panel["targets"]]


def _promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool not found; install it with: apt-get install -y prometheus", pytrace=False
        )
    return binary


def test_promtool_accepts_the_rules_and_the_config() -> None:
    for check in (["check", "rules", str(RULES)], ["check", "config", str(PROMETHEUS)]):
        done = subprocess.run(
            [_promtool(), *check], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check can fail: a rule whose expression does not parse is refused."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(reghub_x[5m])\n"
    )
    done = subprocess.run(
        [_promtool(), "check", "rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0


def test_every_metric_of_the_rules_and_the_dashboard_is_exported(exported: set[str]) -> None:
    known = exported | EXTERNAL
    used: dict[str, set[str]] = {}
    for source, expressions in (
        ("rules", rule_expressions()),
        ("dashboard", dashboard_expressions()),
    ):
        for expr in expressions:
            for name in metric_names(expr):
                used.setdefault(name, set()).add(source)
    unknown = {name: sources for name, sources in used.items() if name not in known}
    assert not unknown, f"metrics nobody exports: {unknown}"
    # what the dashboard must show, by the series it reads
    shown = set().union(*(metric_names(e) for e in dashboard_expressions()))
    for needed in (
        "kafka_consumergroup_lag",
        "reghub_messages_in_total",
        "reghub_batch_commit_seconds_bucket",
        "reghub_dead_letters_total",
        "reghub_obligations",
        "reghub_outbox_unsent_records",
        "reghub_compliance_last_day",
    ):
        assert needed in shown, needed


def test_the_name_check_finds_an_unknown_metric(exported: set[str]) -> None:
    """The check itself: a misspelt series is found, labels, functions and durations are not."""
    expr = 'sum by (topic) (rate(reghub_mesages_in_total{topic="a"}[5m])) / up{job="x"} > 0.5'
    assert metric_names(expr) == {"reghub_mesages_in_total", "up"}
    assert "reghub_mesages_in_total" not in exported | EXTERNAL


def test_grafana_reads_the_compose_prometheus_and_every_worker_is_scraped() -> None:
    source = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]
    assert source["url"] == "http://prometheus:9090"
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert {t["datasource"]["uid"] for p in panels for t in p["targets"]} == {source["uid"]}
    jobs = {
        job["job_name"]: job for job in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    }
    # every worker replica by the compose network's DNS, each on its own (one process) web port
    assert jobs["reghub-worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": 6066, "refresh_interval": "15s"}
    ]
    assert jobs["reghub-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["kafka-exporter"]["static_configs"][0]["targets"] == ["kafka:9308"]
