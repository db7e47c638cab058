"""No circle of imports among the modules of `bench/`: every import counts, those inside functions
too (which is how the modes used to import one another), read from the source with `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path, root: Path) -> str:
    """`bench/faults/hub.py` → `bench.faults.hub`; a package's `__init__.py` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of `known` that the module `name` (file `path`) imports, anywhere in its body.

    `from p import x` counts as an import of `p.x` when that is a module, else of `p`; relative
    imports are resolved against the module's package.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return {m for m in found if m in known and m != name}


def import_graph(root: Path, folder: str) -> dict[str, set[str]]:
    """Each module under `root/folder` and the modules of that folder it imports."""
    files = {module_name(p, root): p for p in sorted((root / folder).rglob("*.py"))}
    known = set(files)
    return {name: imports_of(path, name, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle found by a depth-first search, each as the modules along it (first repeated)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_module_of_bench_imports_itself_round_a_circle() -> None:
    graph = import_graph(ROOT, "bench")
    assert "bench.dispensing_throughput" in graph and "bench.harness.stage" in graph
    assert cycles(graph) == []


def test_the_modes_share_the_harness_and_not_one_another() -> None:
    graph = import_graph(ROOT, "bench")
    for mode in ("bench.latency", "bench.rebuild", "bench.compare", "bench.throughput"):
        assert "bench.dispensing_throughput" not in graph[mode], mode
        assert any(m.startswith("bench.harness") for m in graph[mode]), mode


def test_a_circle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    """The check itself: the shape the benchmarks had (a mode importing the command line's module
    inside a function, which imports the mode at the top) is reported, relative imports too."""
    pkg = tmp_path / "b"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "main.py").write_text("from b import mode\n")
    (pkg / "mode.py").write_text("def run():\n    from .main import helper\n")
    (pkg / "alone.py").write_text("import b.mode\n")
    graph = import_graph(tmp_path, "b")
    assert graph["b.main"] == {"b.mode"} and graph["b.mode"] == {"b.main"}
    assert graph["b.alone"] == {"b.mode"}
    found = cycles(graph)
    assert len(found) == 1 and set(found[0]) == {"b.main", "b.mode"}, found
