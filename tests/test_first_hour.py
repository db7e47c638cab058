"""The first hour of a partner and an operator: the real `reghub` commands, run as child processes.

A wrong setting, a database that is down, missing or not migrated, or a broker nobody runs is one line on
stderr that names the problem and what to do, and a non-zero exit; never a traceback. The API's access
log prints, masked. A worker whose database is down waits for it with backoff, one line per attempt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from reghub.broker import free_port
from tests.messages import PERSON

REPO = Path(__file__).resolve().parent.parent
PSEUDONYM_KEY = "test-pseudonym-key-0123456789"


def environment(cwd: Path, **variables: str) -> dict[str, str]:
    """The parent's environment without its `REGHUB_*`, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGHUB_")}
    env.update({"PYTHONPATH": str(REPO), "REGHUB_DATA_DIR": str(cwd / ".reghub"), **variables})
    return env


def reghub(
    *args: str, cwd: Path, timeout: float = 60, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed `reghub ARGS` with only the given `REGHUB_*` variables."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "reghub"), *args],
        cwd=cwd,
        env=environment(cwd, **variables),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def get(url: str) -> int:
    """The status of a GET, 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


# --- reghub api ---------------------------------------------------------------------------------


def test_the_api_access_log_prints_each_request_with_the_person_number_masked(
    tmp_path: Path,
) -> None:
    db = tmp_path / "register.db"
    variables = {
        "REGHUB_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "REGHUB_PSEUDONYM_KEY": PSEUDONYM_KEY,
    }
    assert reghub("db", "upgrade", cwd=tmp_path, **variables).returncode == 0
    port = free_port()
    api = subprocess.Popen(
        [str(Path(sys.executable).parent / "reghub"), "api", "--port", str(port)],
        cwd=tmp_path,
        env=environment(tmp_path, **variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while get(f"http://127.0.0.1:{port}/health") == 0:
            assert api.poll() is None and time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        status = get(f"http://127.0.0.1:{port}/v1/persons/{PERSON}")
    finally:
        api.send_signal(signal.SIGINT)
        stdout, stderr = api.communicate(timeout=30)

    log = stdout + stderr  # uvicorn writes its access log to stdout, the rest to stderr
    assert status in (401, 403, 404), status
    assert "Logging error" not in log and "Traceback" not in log, log
    assert PERSON not in log
    assert f'"GET /v1/persons/********** HTTP/1.1" {status}' in log, log
    assert '"GET /health HTTP/1.1" 200' in log, log
