"""The supervisor's restart backoff, through a real supervisor process and real children: a child that
keeps exiting is started again after 0.5 s, 1 s, 2 s … (one line per restart), a stop during the wait
starts nothing more, and the exit code says a child failed. No broker or database needed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

from reghub.broker import free_port

SUPERVISOR = """
import logging, sys
from reghub.supervisor import Supervisor
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
child = [sys.executable, "-c", "raise SystemExit(3)"]
sys.exit(Supervisor(1, int(sys.argv[1]), child).run())
"""

RESTARTING = re.compile(
    r"worker 0 exited with 3; restarting in (\d+\.\d) s, at \d\d:\d\d:\d\d", re.MULTILINE
)


def test_a_failing_child_is_restarted_with_a_doubling_backoff_until_the_stop() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(free_port())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        # the fourth restart waits 4 s: the stop comes during that wait
        while len(RESTARTING.findall("".join(lines))) < 4:
            assert time.monotonic() < deadline, "".join(lines)
            line = proc.stdout.readline()
            assert line, "".join(lines)  # the supervisor exited early
            lines.append(line)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(lines) + rest
    assert RESTARTING.findall(text) == ["0.5", "1.0", "2.0", "4.0"], text
    assert text.count("worker 0 started") == 4, text  # the stop ended the wait: no fifth start
    assert "Traceback" not in text, text
    assert proc.returncode == 1, text  # the child's last exit (3) was a failure
