"""The dispensing hot path compiled with mypyc, used only while it was compiled from the source as it is.

`python -m reghub.native_build` compiles `MODULES` (the rules a dispensing report runs through, its
handler and the batch it is merged into) with mypyc into `<venv>/reghub-native/<key>/`, where `<key>`
is a hash of every source file of `SOURCE_PACKAGES`, of `MODULES` and of the Python version, and writes
a `.pth` file into the venv's site-packages that calls `install()` when any Python process of the venv
starts.

`install()` puts an import hook in front of Python's own finders that loads the compiled modules, but
only when the key they were built for is still that of the source on disk: after any edit of the
source, the modules run as plain Python until they are compiled again (`scripts/venv.sh`, run by
`./test` and `./up`, does that). Nothing is compiled in the source tree, so a stale compiled module
can never shadow its source. Where no C compiler or no mypy is at hand, or the build fails, or
`REGHUB_NATIVE=0` is set, the same modules run as plain Python, with the same results: mypyc compiles
the code as it is typed, and checks the declared types at run time where plain Python does not.

This module imports only the standard library: it runs at every start of every Python process in the
venv.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

MODULES: tuple[str, ...] = (
    "rules.dispensing",
    "rules.subsidy",
    "rules.lines",
    "rules.balancing",
    "rules.periods",
    "rules.scales",
    "rules.obligations",
    "rules.deadlines",
    "streams.handlers.dispensings",
    "streams.batch",
    "streams.obligation_effects",
)
"""What is compiled: measured by `bench.handle_cpu`, these are where a report's handling spends its time."""

SOURCE_PACKAGES: tuple[str, ...] = ("rules", "schemas", "streams", "sinks")
"""Whose every source file goes into the key: the compiled modules import from all of them, and mypyc
builds in what it knows of the modules it imports (a `Final` constant, a class's layout)."""

DISABLE_VARIABLE = "REGHUB_NATIVE"
PTH_NAME = "reghub-native.pth"
MANIFEST = "manifest.json"


def source_root() -> Path:
    """The folder that holds the `rules`, `streams`, … packages: the checkout, or site-packages."""
    return Path(__file__).resolve().parent.parent


def native_root(prefix: str | None = None) -> Path:
    """Where this venv keeps its compiled builds."""
    return Path(prefix or sys.prefix) / "reghub-native"


def source_key(root: Path | None = None) -> str:
    """A hash of every source file the compiled modules are built from, of which are compiled, and of
    this Python."""
    root = root or source_root()
    digest = hashlib.sha256(sys.version.encode())
    digest.update(" ".join(MODULES).encode())
    for package in SOURCE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def read_manifest(native: Path) -> dict[str, object] | None:
    try:
        manifest = json.loads((native / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled file of each module in `compiled`; any other module is not its business."""

    def __init__(self, compiled: dict[str, Path]) -> None:
        self.compiled = compiled

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.compiled.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def _installed() -> bool:
    return any(isinstance(finder, _CompiledFinder) for finder in sys.meta_path)


def _disabled() -> bool:
    return os.environ.get(DISABLE_VARIABLE, "1") == "0"


def status() -> str:
    """`compiled`, `disabled`, `not built` or `stale`: how `MODULES` run in this process."""
    if _installed():
        return "compiled"
    if _disabled():
        return "disabled"
    return "not built" if read_manifest(native_root()) is None else "stale"


def install() -> bool:
    """Load `MODULES` compiled from now on, if this venv has a build for the source as it is, and
    `REGHUB_NATIVE=0` is not set; else change nothing. Called at start by the venv's `.pth` file."""
    if _disabled():
        return False
    return _installed() or load(native_root(), source_root())


def load(native: Path, root: Path) -> bool:
    """Load `MODULES` compiled from `native`'s build if it was made from the source under `root`."""
    manifest = read_manifest(native)
    if manifest is None or manifest.get("key") != source_key(root):
        return False
    build_dir = native / str(manifest["key"])
    modules = manifest.get("modules")
    if not isinstance(modules, dict):
        return False
    compiled = {name: build_dir / str(file) for name, file in modules.items()}
    if not all(file.is_file() for file in compiled.values()):
        return False
    if any(name in sys.modules for name in compiled):
        return False  # too late: a module already runs as Python, and two copies must not mix
    # the runtime library the compiled modules share is imported by a top-level name of its own
    sys.path.append(str(build_dir))
    sys.meta_path.insert(0, _CompiledFinder(compiled))
    return True
