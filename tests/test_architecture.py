"""The house as `../shared/architecture.json` draws it, checked on the source (`ast`, nothing imported):
the streams and the command line know no SQL library, handlers reach no engine even through another
module, no circle of imports, no forbidden arrow between parts, and a topic is a spec and a handler."""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

import pytest

from streams.handlers import HANDLERS, discover
from streams.topics import INPUTS

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "rules", "streams", "sinks", "api", "reghub", "bench")
SQL_LIBRARIES = ("sqlalchemy", "asyncpg")
ROW_VALUES = ("sinks.rows", "sinks.places_rows", "sinks.changes")
"""The modules of `sinks/` a handler may import: typed row values and effects, no SQL."""
ARCHITECTURE = REPO.parent / "shared" / "architecture.json"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
        modules = _modules()
        return [
            f"{node.module}.{alias.name}"
            if f"{node.module}.{alias.name}" in modules
            else node.module
            for alias in node.names
        ]
    return []


@cache
def _imports(module: str, top_level_only: bool) -> frozenset[str]:
    """What `module` imports: every import, or (`top_level_only`) those run when it is imported (not
    inside a function, not under `TYPE_CHECKING`)."""
    tree = ast.parse(_modules()[module].read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            found.update(_imported(node))
            if top_level_only:
                if isinstance(node, ast.If) and not _type_checking(node):
                    visit(node.body)
                    visit(node.orelse)
                elif isinstance(node, ast.Try):
                    visit(node.body)
                    for handler in node.handlers:
                        visit(handler.body)
                    visit(node.orelse)
                    visit(node.finalbody)
            else:
                for child in ast.walk(node):
                    if child is not node:
                        found.update(_imported(child))

    visit(tree.body)
    return frozenset(found)


def _project(name: str) -> str | None:
    """The project module an import names (a package's module, or the package itself)."""
    modules = _modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _uses_sql(module: str) -> bool:
    return any(
        name.split(".")[0] in SQL_LIBRARIES for name in _imports(module, top_level_only=False)
    )


def _reach(module: str) -> set[str]:
    """Every project module `module` imports when it is imported, transitively."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in _imports(todo.pop(), top_level_only=True):
            found = _project(name)
            if found is not None and found not in seen:
                seen.add(found)
                todo.append(found)
    return seen


def _handler_modules() -> list[str]:
    return sorted(m for m in _modules() if m.startswith("streams.handlers"))


def test_no_module_of_streams_imports_a_sql_library() -> None:
    allowed = {"streams.health"}  # the readiness probe's `SELECT 1`
    offenders = [
        m for m in _modules() if m.startswith("streams") and m not in allowed and _uses_sql(m)
    ]
    assert offenders == []


def test_the_command_line_imports_no_sql_library() -> None:
    assert not _uses_sql("reghub.cli")


@pytest.mark.parametrize("handler", _handler_modules())
def test_a_handler_reaches_no_sql_library_even_through_another_module(handler: str) -> None:
    assert not _uses_sql(handler)
    assert [m for m in sorted(_reach(handler)) if _uses_sql(m)] == []


@pytest.mark.parametrize("handler", _handler_modules())
def test_a_handler_imports_only_row_values_of_the_register(handler: str) -> None:
    imported = {_project(n) for n in _imports(handler, top_level_only=False)} - {None}
    assert sorted(m for m in imported if m.startswith("sinks") and m not in ROW_VALUES) == []  # type: ignore[union-attr]


def test_the_row_value_modules_import_no_engine() -> None:
    for module in ROW_VALUES:
        assert not _uses_sql(module), module
        reached = {m for m in _reach(module) if m.startswith("sinks")}
        assert reached <= set(ROW_VALUES), module


def _graph(modules: list[str]) -> dict[str, list[str]]:
    """Who imports whom among `modules`: every import, also one inside a function (a circle put
    off until a call is still a circle)."""
    return {
        m: sorted(
            {p for n in _imports(m, top_level_only=False) if (p := _project(n)) in modules} - {m}
        )
        for m in modules
    }


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The import circles of `graph`, by Tarjan's strongly connected components."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for m in graph:
        if m not in index:
            connect(m)
    return found


def test_no_circle_of_imports() -> None:
    # bench/ is split by its own change (its three modes import one another today)
    modules = sorted(m for m in _modules() if not m.startswith("bench"))
    assert _cycles(_graph(modules)) == []


def test_the_circle_finder_finds_a_circle() -> None:
    """The check above can fail: a circle of three, beside a module outside it, is found."""
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": ["b"], "b": []}) == []


def _part_of(module: str, parts: dict[str, list[str]]) -> str | None:
    """The part a module belongs to: the one whose folder or file names it most closely."""
    path = str(_modules()[module].relative_to(REPO))
    best: tuple[int, str] | None = None
    for part, prefixes in parts.items():
        for prefix in prefixes:
            matches = path == prefix or (prefix.endswith("/") and path.startswith(prefix))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), part)
    return best[1] if best else None


@pytest.mark.skipif(not ARCHITECTURE.exists(), reason="the design is not beside the repository")
def test_no_arrow_the_architecture_forbids() -> None:
    design = json.loads(ARCHITECTURE.read_text(encoding="utf-8"))
    parts = {name: part["is"] for name, part in design["parts"].items()}
    never = {(a, b) for a, b, *_ in design["never"]}
    broken = []
    for module in _modules():
        source = _part_of(module, parts)
        for name in _imports(module, top_level_only=False):
            target_module = _project(name)
            if target_module is None:
                continue
            target = _part_of(target_module, parts)
            if (source, target) in never:
                broken.append(f"{module} -> {target_module} ({source} -> {target})")
    assert broken == []


def test_every_input_topic_has_a_handler_and_every_handler_a_topic() -> None:
    found = discover()
    assert set(found) == set(INPUTS)
    assert list(HANDLERS) == list(INPUTS)  # in the order a batch applies them


def test_a_topic_names_its_key_and_id() -> None:
    for spec in INPUTS:
        assert callable(spec.key_of) and callable(spec.id_of), spec.base
