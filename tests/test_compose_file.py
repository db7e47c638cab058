"""Static checks of the production-like docker-compose.yml.

These run `docker-compose config`, which validates and interpolates the file without
needing a Docker engine. The checker is Debian bookworm's `docker-compose` package
(1.29.x, /usr/bin/docker-compose). A missing binary is a test failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
EXPECTED_SERVICES = {"secrets", "kafka", "postgres", "migrate", "topics", "worker", "api"}
REGHUB_SERVICES = ("migrate", "topics", "worker", "api")
TEST_KEY = "test-only-pseudonym-key-not-a-secret"


def _docker_compose() -> str:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose binary not found; the compose file check needs it. "
            "Install it with: apt-get update && apt-get install -y docker-compose",
            pytrace=False,
        )
    return binary


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    # An explicit empty --env-file so a stray .env in the repo cannot change the result.
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def _run_config(
    env_file: Path, *args: str, pseudonym_key: str | None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("REGHUB_PSEUDONYM_KEY", None)
    if pseudonym_key is not None:
        env["REGHUB_PSEUDONYM_KEY"] = pseudonym_key
    cmd = [
        _docker_compose(),
        "--env-file",
        str(env_file),
        "-f",
        str(COMPOSE_FILE),
        "config",
        *args,
    ]
    return subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _service_block(rendered: str, name: str) -> str:
    """The lines of one service in `docker-compose config` output (2-space indented YAML)."""
    lines = rendered.splitlines()
    start = lines.index(f"  {name}:") + 1
    end = start
    while end < len(lines) and (lines[end].startswith("   ") or not lines[end].strip()):
        end += 1
    return "\n".join(lines[start:end])


def test_compose_file_is_valid(empty_env_file: Path) -> None:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    result = _run_config(empty_env_file, "-q", pseudonym_key=TEST_KEY)
    assert result.returncode == 0, (
        f"docker-compose config rejected {COMPOSE_FILE.name}:\n{result.stdout}\n{result.stderr}"
    )


def test_compose_file_requires_pseudonym_key(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, "-q", pseudonym_key=None)
    assert result.returncode != 0, (
        "docker-compose config accepted the file without REGHUB_PSEUDONYM_KEY; "
        "the key must have no default"
    )
    assert "REGHUB_PSEUDONYM_KEY" in result.stderr or "pseudonym key" in result.stderr, (
        result.stderr
    )


def test_compose_file_defines_all_services(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, "--services", pseudonym_key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    services = {line.strip() for line in result.stdout.splitlines() if line.strip()}
    missing = EXPECTED_SERVICES - services
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_worker_scaling_and_startup_order_survive_normalisation(empty_env_file: Path) -> None:
    # Checked on the normalised output (plain text: PyYAML is not a project dependency),
    # so we know the checker kept deploy.replicas and the completion conditions.
    result = _run_config(empty_env_file, pseudonym_key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    rendered = result.stdout
    worker = _service_block(rendered, "worker")
    assert "replicas: 2" in worker
    assert worker.count("condition: service_completed_successfully") == 2
    assert "condition: service_healthy" in worker
    assert TEST_KEY in rendered


def test_worker_health_check_asks_for_readiness(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, pseudonym_key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    worker = _service_block(result.stdout, "worker")
    assert "http://127.0.0.1:6066/ready" in worker
    assert "/health" not in worker


def test_clients_use_sasl_ssl_and_read_their_secrets_from_files(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, pseudonym_key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    rendered = result.stdout
    for name in REGHUB_SERVICES:
        block = _service_block(rendered, name)
        assert "REGHUB_KAFKA_BOOTSTRAP: kafka:9094" in block, name
        assert "REGHUB_KAFKA_SECURITY_PROTOCOL: SASL_SSL" in block, name
        assert "REGHUB_KAFKA_SSL_CAFILE: /run/secrets/reghub/ca.crt" in block, name
        assert "REGHUB_SECRETS_DIR: /run/secrets/reghub" in block, name
        # one broker in this stack: one replica, one in sync (production defaults are 3 and 2)
        assert "REGHUB_TOPIC_REPLICATION_FACTOR: '1'" in block, name
        assert "REGHUB_TOPIC_MIN_INSYNC_REPLICAS: '1'" in block, name
        # passwords come from the secrets volume, never from the environment
        assert "REGHUB_DATABASE_URL" not in block and "SASL_PASSWORD" not in block, name
    kafka = _service_block(rendered, "kafka")
    assert "SASL_SSL://kafka:9094" in kafka
    assert "INTERNAL://127.0.0.1:9092" in kafka  # plaintext only on the broker's own loopback
    postgres = _service_block(rendered, "postgres")
    assert "POSTGRES_PASSWORD_FILE" in postgres and "POSTGRES_PASSWORD:" not in postgres


def test_the_monitoring_profile_scrapes_and_reads_lag_from_the_broker(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, pseudonym_key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    rendered = result.stdout
    for name in ("kafka-exporter", "prometheus", "grafana"):  # only with --profile monitoring
        assert "- monitoring" in _service_block(rendered, name), name
    exporter = _service_block(rendered, "kafka-exporter")
    assert "network_mode: service:kafka" in exporter  # the broker's loopback listener, no password
    assert "--kafka.server=127.0.0.1:9092" in exporter
    prometheus = _service_block(rendered, "prometheus")
    assert "deploy/prometheus:/etc/prometheus:ro" in prometheus
    grafana = _service_block(rendered, "grafana")
    assert "deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE: /run/secrets/grafana_admin_password" in grafana
    assert "GF_SECURITY_ADMIN_PASSWORD:" not in grafana
