"""Static checks of the production-like docker-compose.yml.

These run `docker compose config` (or Debian bookworm's `docker-compose` 1.29, whichever is there),
which validates and interpolates the file without needing a Docker engine, with the options of the
README's own `up` command. A missing binary is a test failure, never a skip.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
README = REPO_ROOT / "README.md"
EXPECTED_SERVICES = {
    "secrets", "kafka", "postgres", "migrate", "topics", "worker", "api",
    "kafka-exporter", "prometheus", "grafana",
}  # fmt: skip
REGHUB_SERVICES = ("migrate", "topics", "worker", "api")
TEST_KEY = "test-only-pseudonym-key-not-a-secret"


def _docker_compose() -> list[str]:
    """`docker compose` when the Docker CLI has the plugin, else Debian's `docker-compose`."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(
            "docker-compose binary not found; the compose file check needs it. "
            "Install it with: apt-get update && apt-get install -y docker-compose",
            pytrace=False,
        )
    return [binary]


def readme_production_block() -> list[str]:
    """The lines of the README's shell block in "Production" that ends with the compose `up` command."""
    section = README.read_text().split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        lines = [line for line in block.splitlines() if line.strip()]
        if lines and lines[-1].startswith("docker compose "):
            return lines
    raise AssertionError("README 'Production' has no sh block ending with `docker compose … up`")


def readme_up_options() -> list[str]:
    """The global options of the README's `docker compose … up -d --build` (e.g. the profile)."""
    words = shlex.split(readme_production_block()[-1])
    assert words[:2] == ["docker", "compose"], words
    up = words.index("up")
    assert {"-d", "--build"} <= set(words[up + 1 :]), f"the README's command must build: {words}"
    return words[2:up]


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
        *_docker_compose(),
        "--env-file",
        str(env_file),
        "-f",
        str(COMPOSE_FILE),
        *readme_up_options(),
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


def test_the_readme_makes_every_secret_file_the_compose_file_names(
    empty_env_file: Path, tmp_path: Path
) -> None:
    """The README's commands before `up`, run in an empty folder, make exactly the files the compose
    file's `secrets:` name, each readable and not empty, in a folder only its owner enters."""
    result = _run_config(empty_env_file, pseudonym_key=None)
    assert result.returncode == 0, result.stderr
    named = [entry["file"] for entry in yaml.safe_load(result.stdout)["secrets"].values()]
    wanted = {Path(f).relative_to(REPO_ROOT) for f in named}
    assert {p.name for p in wanted} == {
        "reghub_pseudonym_key", "reghub_api_token_secret", "grafana_admin_password"
    }  # fmt: skip
    script = "set -euo pipefail\n" + "\n".join(readme_production_block()[:-1])
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for relative in wanted:
        made = tmp_path / relative
        assert made.is_file() and len(made.read_text().strip()) >= 32, relative
        assert made.stat().st_mode & 0o777 == 0o444, relative
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700


def _secret_names(service: dict[str, object]) -> set[str]:
    """The compose secrets a normalised service mounts (short or long form)."""
    entries = service.get("secrets") or []
    assert isinstance(entries, list)
    return {e["source"] if isinstance(e, dict) else str(e) for e in entries}


def test_secrets_are_files_never_environment_variables(empty_env_file: Path) -> None:
    # the key needs no variable: the stack reads it from its file
    result = _run_config(empty_env_file, pseudonym_key=None)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name, service in services.items():
        environment = service.get("environment") or {}
        for variable in environment:
            assert not re.search(r"PSEUDONYM_KEY$|TOKEN_SECRET$|PASSWORD$", variable), (
                name,
                variable,
            )
    for name in REGHUB_SERVICES:
        assert "reghub_pseudonym_key" in _secret_names(services[name]), name
        environment = services[name]["environment"]
        assert environment["REGHUB_SECRETS_DIR"] == "/run/secrets/reghub:/run/secrets", name
    assert _secret_names(services["api"]) == {"reghub_pseudonym_key", "reghub_api_token_secret"}
    assert _secret_names(services["worker"]) == {"reghub_pseudonym_key"}
    assert _secret_names(services["grafana"]) == {"grafana_admin_password"}
    # an environment that happens to hold a key changes nothing in the stack
    leaked = _run_config(empty_env_file, pseudonym_key=TEST_KEY)
    assert leaked.returncode == 0 and TEST_KEY not in leaked.stdout


def test_compose_file_defines_all_services(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, "--services", pseudonym_key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    services = {line.strip() for line in result.stdout.splitlines() if line.strip()}
    missing = EXPECTED_SERVICES - services
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_worker_scaling_and_startup_order_survive_normalisation(empty_env_file: Path) -> None:
    # Checked on the normalised output,
    # so we know the checker kept deploy.replicas and the completion conditions.
    result = _run_config(empty_env_file, pseudonym_key=TEST_KEY)
    assert result.returncode == 0, result.stderr
    rendered = result.stdout
    worker = _service_block(rendered, "worker")
    assert "replicas: 2" in worker
    assert worker.count("condition: service_completed_successfully") == 2
    assert "condition: service_healthy" in worker


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
        assert "REGHUB_SECRETS_DIR: /run/secrets/reghub:/run/secrets" in block, name
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


def test_one_worker_process_per_container_each_checked_and_scraped(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, pseudonym_key=None)
    assert result.returncode == 0, result.stderr
    worker = yaml.safe_load(result.stdout)["services"]["worker"]
    assert worker["command"] == ["reghub", "worker", "--processes", "1"]
    assert "REGHUB_WEB_PORT" not in worker["environment"]  # 6066, where the checks look
    assert "http://127.0.0.1:6066/ready" in " ".join(worker["healthcheck"]["test"])
    scrape = yaml.safe_load((REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "reghub-worker"]
    assert job["dns_sd_configs"][0]["names"] == ["worker"]
    assert job["dns_sd_configs"][0]["port"] == 6066


def test_the_image_leaves_the_secret_files_out() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert "secrets" in ignored  # the build context would copy them into the image


def test_every_reghub_container_logs_json(empty_env_file: Path) -> None:
    result = _run_config(empty_env_file, pseudonym_key=None)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for name in REGHUB_SERVICES:
        assert services[name]["environment"]["REGHUB_LOG_FORMAT"] == "json", name
