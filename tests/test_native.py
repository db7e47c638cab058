"""The dispensing hot path compiled with mypyc (`reghub.native`): the suite runs it, it gives exactly
what plain Python gives, a changed source is never run from an old build, and a failed build leaves
plain Python running."""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import subprocess
import sys
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import pytest

from reghub import native
from reghub.native_build import build, copy_source

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _run(code: str, *args: str, **env: str) -> str:
    """`code` with `args` in a fresh Python of this venv (its `.pth` file runs at start), with `env`
    added."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=native.source_root(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def digest(n: int) -> str:
    """A hash of everything the handler path makes of `n` synthetic reports in batches of 250: the
    rows for the register, the outputs, the counts and the persons' states, batch by batch."""
    from bench.handle_cpu import decode_all, records
    from rules.scales import KNOWN_SCALES, ScaleBook
    from rules.state import PersonState
    from streams.batch import Batch, Loaded
    from streams.handlers import HANDLERS
    from streams.handlers.base import ApplyConfig, Context
    from streams.outputs import Outputs
    from streams.topics import DISPENSINGS, TopicNames

    handler = HANDLERS[DISPENSINGS]
    config = ApplyConfig("native-test", 60, b"native-test-pseudonym-key-012345")
    now = datetime(2025, 1, 10, 12, tzinfo=UTC)
    states: dict[str, PersonState] = {}
    hashed = sha256()
    reports = decode_all(records(n, 300, seed=11))
    for first in range(0, n, 250):
        chunk = reports[first : first + 250]
        out = Outputs(TopicNames(), config.pseudonym_secret, now)
        loaded = Loaded(
            states={d.person_key: states[d.person_key] for d in chunk if d.person_key in states}
        )  # type: ignore[index]
        batch = Batch(loaded, ScaleBook(KNOWN_SCALES), out)
        for d in chunk:
            batch.merge(d, handler.handle(batch, d, Context(now, config, out)), False)
        states.update(batch.changes.persons)
        for part in (batch.changes, batch.outputs, batch.counts, batch.rejected_at):
            hashed.update(repr(part).encode())
    return hashed.hexdigest()


def test_the_suite_runs_the_hot_path_compiled() -> None:
    if os.environ.get(native.DISABLE_VARIABLE) == "0":
        pytest.skip("REGHUB_NATIVE=0: this run is the plain-Python one")
    assert native.status() == "compiled", (
        "the build is missing or stale: python -m reghub.native_build"
    )
    manifest = native.read_manifest(native.native_root())
    assert manifest is not None
    assert sorted(manifest["modules"]) == sorted(native.MODULES)
    for name in native.MODULES:
        file = Path(importlib.import_module(name).__file__ or "")
        assert file.name.endswith(SUFFIX), name
        assert file.is_relative_to(native.native_root() / str(manifest["key"])), name


def test_compiled_and_plain_python_make_the_same_of_the_same_reports() -> None:
    code = (
        "from reghub import native; from tests.test_native import digest; "
        "import streams.batch as b; print(native.status(), b.__file__.endswith('.py'), digest(6000))"
    )
    compiled = _run(code).split()
    plain = _run(code, **{native.DISABLE_VARIABLE: "0"}).split()
    assert compiled[:2] == ["compiled", "False"]
    assert plain[:2] == ["disabled", "True"]
    assert compiled[2] == plain[2]


def test_any_change_of_the_source_changes_the_key(tmp_path: Path) -> None:
    copy = copy_source(native.source_root(), tmp_path)
    assert native.source_key(copy) == native.source_key()
    with (copy / "sinks" / "tables.py").open("a") as f:
        f.write("# a comment is a change too\n")
    assert native.source_key(copy) != native.source_key()


def test_a_build_is_loaded_only_for_the_source_it_was_made_from(tmp_path: Path) -> None:
    copy = copy_source(native.source_root(), tmp_path)
    (copy / "rules" / "periods.py").write_text(
        (copy / "rules" / "periods.py").read_text() + "\nCHANGED = True\n"
    )
    code = (
        "from pathlib import Path; from reghub import native; import sys; "
        "loaded = native.load(native.native_root(), Path(sys.argv[-1])); "
        "import rules.dispensing as d; print(loaded, d.__file__.endswith('.py'))"
    )
    # the venv's own start-up hook stays out of it (REGHUB_NATIVE=0); `load` is what it calls
    for root, expected in ((native.source_root(), "True False"), (copy, "False True")):
        assert _run(code, str(root), **{native.DISABLE_VARIABLE: "0"}) == expected, root


def test_a_failed_build_changes_nothing_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = copy_source(native.source_root(), tmp_path / "source")
    periods = copy / "rules" / "periods.py"
    periods.write_text(periods.read_text() + "\ndef broken() -> int:\n    return 'not an int'\n")
    where = tmp_path / "native"
    assert build(root=copy, native=where) == 1
    said = capsys.readouterr().err
    assert "mypyc failed; the hot path runs as plain Python" in said
    assert 'Incompatible return value type (got "str", expected "int")' in said
    assert native.read_manifest(where) is None
    assert [p.name for p in where.iterdir()] == []
    assert native.load(where, copy) is False
