"""The rooms of src/hyperpod_local and what each may import (docs/architecture.md): every
import in the package, at module level or inside a function, read from the source. No module
imports itself through others, and no room reaches into one it must not know."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = "hyperpod_local"
ROOT = Path(__file__).resolve().parent.parent / "src" / PACKAGE

# Room -> the rooms of ours it may import (itself always). Modules at the package root
# (server, mock, backend, settings, demo, pytest_plugin) compose the rooms and are left out;
# two root modules are leaves any room may name: version and startup (the error a server
# that cannot start raises, and its wording).
ALLOWED = {
    "domain": set(),
    "http": set(),
    "wire": {"domain"},
    "store": {"domain"},
    "providers": {"domain", "store"},
    "engine": {"domain", "store", "providers"},
    "api": {"domain", "store", "engine", "wire"},
    "outlets": {"domain", "store"},
    "admin": {"domain", "store", "engine", "api", "wire", "backend", "outlets"},
    # The web console: reads through the store's repositories and the API's views, acts
    # through the wire protocol (so the API's rules hold) and the admin API's fault views.
    "console": {"domain", "store", "api", "wire", "admin", "backend", "outlets"},
    # Metrics and the request log: fed by the wire's and the engine's observers, and reading
    # the store at scrape time; only the composing root modules (backend, server) import it.
    "telemetry": {"domain", "store", "engine", "wire"},
    "cli": {
        "domain",
        "settings",
        "backend",
        "demo",
        "http",
        "server",
        "wire",
        "engine",
        "providers",
    },
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts:
            continue  # Alembic loads these by path, never by import
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()
LEAVES = {f"{PACKAGE}.version", f"{PACKAGE}.startup"}


def _type_checking_only(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path) -> set[str]:
    """The modules of ours that `path` imports, outside `if TYPE_CHECKING:` blocks."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name in MODULES and name not in LEAVES}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_module_imports_itself_through_others() -> None:
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def walk(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                walk(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            walk(module)
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_each_room_imports_only_what_it_may(room: str) -> None:
    allowed = ALLOWED[room] | {room}
    reaches = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _room(module) == room
        for target in targets
        if _room(target) not in allowed
    )
    assert reaches == []


def test_the_engine_knows_providers_by_their_interface_only() -> None:
    reaches = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _room(module) == "engine"
        for target in targets
        if _room(target) == "providers" and target != f"{PACKAGE}.providers.base"
    )
    assert reaches == []


def test_the_engine_leaves_the_sim_providers_instances_to_it() -> None:
    # The sim provider keeps its instances and volumes in the store; the engine asks the
    # provider for them, so a provider that keeps them elsewhere needs no engine change.
    reaches = sorted(
        f"{module} uses tx.instances"
        for module, path in MODULES.items()
        if _room(module) == "engine" and "tx.instances" in path.read_text()
    )
    assert reaches == []


def test_the_engine_reads_no_node_counts_of_a_group() -> None:
    # ClusterRepository.get, the engine's lookup, leaves a group's counts out (CurrentCount
    # and the others stay 0): counting costs what a step does, and no step needs them.
    counted = re.compile(
        r"\.(current_count|active_scaling|type_counts|release_counts|failed_count|stranded)\b"
    )
    readers = [
        module
        for module, path in _modules().items()
        if _room(module) == "engine" and counted.search(path.read_text())
    ]
    assert readers == []


def test_only_the_counting_repositories_write_nodes() -> None:
    # group_node_counts is kept by the code that writes `nodes` (store/node_counts.py), not
    # by triggers: a write to `nodes` anywhere else would leave the counts wrong.
    writes = re.compile(
        r"(update|delete)\(nodes\)|nodes\.(insert|update|delete)\(|"
        r"(UPDATE|INSERT INTO|DELETE FROM) nodes\b"
    )
    writers = sorted(
        module
        for module, path in MODULES.items()
        if ".migrations." not in module and writes.search(path.read_text())
    )
    assert writers == [f"{PACKAGE}.store.clusters", f"{PACKAGE}.store.nodes"]


def test_step_modules_do_not_import_each_other() -> None:
    steps = {
        f"{PACKAGE}.engine.{name}"
        for name in ("cluster_steps", "node_steps", "health_agent", "deep_health_checks")
    } | {f"{PACKAGE}.engine.software_steps"}
    reaches = sorted(
        f"{module} imports {target}"
        for module in steps
        for target in GRAPH[module]
        if target in steps
    )
    assert reaches == []


def test_the_leaves_import_nothing_of_ours() -> None:
    for leaf in LEAVES:
        assert _imports(MODULES[leaf]) == set()
        assert f"import {PACKAGE}" not in MODULES[leaf].read_text().replace("from __future__", "")


def test_every_module_was_read() -> None:
    # A guard on the checks above: they looked at the whole package.
    assert {f"{PACKAGE}.engine.runner", f"{PACKAGE}.wire.protocol", f"{PACKAGE}.cli"} <= set(GRAPH)
    assert f"{PACKAGE}.engine.steps" in GRAPH[f"{PACKAGE}.engine.runner"]
