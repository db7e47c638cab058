"""`python -m reghub.native_build [--force]`: compile `reghub.native.MODULES` with mypyc for this venv.

Run by `scripts/venv.sh` (so by `./test` and `./up`) and by the Dockerfile; compiles again only when the
source changed (`reghub.native.source_key`). The compiled files go to `<venv>/reghub-native/<key>/`,
never into the source tree, and a `.pth` file makes every Python process of the venv load them
(`reghub.native.install`). A failed build leaves the modules to run as plain Python, and says why.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from reghub.native import (
    MANIFEST,
    MODULES,
    PTH_NAME,
    SOURCE_PACKAGES,
    native_root,
    read_manifest,
    source_key,
    source_root,
)

PARTIAL = ".partial"


def copy_source(root: Path, into: Path) -> Path:
    """The packages of `SOURCE_PACKAGES` under `root`, copied into `into` (bytecode left out)."""
    for package in SOURCE_PACKAGES:
        shutil.copytree(
            root / package, into / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return into


def _compile(into: Path, root: Path) -> dict[str, str]:
    """Run mypyc over `MODULES` in a copy of the source; the compiled files, copied into `into`."""
    with tempfile.TemporaryDirectory(prefix="reghub-native-") as scratch:
        work = copy_source(root, Path(scratch))
        paths = [name.replace(".", "/") + ".py" for name in MODULES]
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", "--ignore-missing-imports", *paths],
            cwd=work,
            capture_output=True,
            text=True,
            env={**os.environ, "MYPY_CACHE_DIR": str(work / ".mypy_cache")},
        )
        if done.returncode != 0:
            raise RuntimeError((done.stdout + done.stderr).strip()[-4000:])
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        into.mkdir(parents=True)
        modules: dict[str, str] = {}
        for name in MODULES:
            built = work / (name.replace(".", "/") + suffix)
            target = name + suffix
            shutil.copy2(built, into / target)
            modules[name] = target
        for shared in work.glob(f"*__mypyc{suffix}"):
            shutil.copy2(shared, into / shared.name)
        return modules


def _mypy_version() -> str | None:
    try:
        return importlib.metadata.version("mypy")
    except importlib.metadata.PackageNotFoundError:
        return None


def build(*, force: bool = False, root: Path | None = None, native: Path | None = None) -> int:
    """Compile `MODULES` for the source under `root` (this one's) into `native` (this venv's), unless
    done already; 0 when they are ready. A failed build changes nothing there and returns 1."""
    venv_own = native is None
    root = root or source_root()
    native = native or native_root()
    key = source_key(root)
    manifest = read_manifest(native)
    compiler = _mypy_version()
    # a new mypy, after the venv's packages changed, compiles again: its runtime library may differ
    if not force and manifest and manifest.get("key") == key and manifest.get("mypy") == compiler:
        return 0
    began = time.monotonic()
    print("compiling the dispensing hot path with mypyc (about a minute)…", file=sys.stderr)
    native.mkdir(parents=True, exist_ok=True)
    # a build of its own in a folder of its own: two at once (two checkouts' ./test) never mix
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=PARTIAL, dir=native))
    try:
        modules = _compile(staging / "out", root)
        shutil.rmtree(native / key, ignore_errors=True)
        (staging / "out").rename(native / key)
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        print(f"mypyc failed; the hot path runs as plain Python:\n{error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = staging.with_name(staging.name + ".json")
    written.write_text(json.dumps({"key": key, "mypy": compiler, "modules": modules}, indent=1))
    written.replace(native / MANIFEST)
    _remove_old_builds(native, key)
    if venv_own:
        _write_pth()
    print(
        f"done: {len(modules)} modules compiled ({time.monotonic() - began:.0f} s)", file=sys.stderr
    )
    return 0


def _remove_old_builds(native: Path, key: str) -> None:
    """Every build but `key`'s, and what a build that was stopped half-way left (after an hour)."""
    for old in native.iterdir():
        if not old.is_dir() or old.name == key:
            continue
        if old.name.endswith(PARTIAL) and time.time() - old.stat().st_mtime < 3600:
            continue  # another build, under way
        shutil.rmtree(old, ignore_errors=True)


def _write_pth() -> None:
    """The line that makes every Python process of this venv call `install()` at start."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    line = "import reghub.native as n; n.install()\n"
    (site_packages / PTH_NAME).write_text(line)


if __name__ == "__main__":
    sys.exit(build(force="--force" in sys.argv[1:]))
