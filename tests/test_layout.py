"""The project's layout holds: no import cycles between its packages, plumbing that knows
no stage, and top-level package names that no installed distribution also uses.

The import graph is static (``ast``, no imports run) and counts imports inside functions
too: a cycle hidden in a function is still a cycle between the packages.
"""

from __future__ import annotations

import ast
from importlib.metadata import packages_distributions
from pathlib import Path

from customer720.settings import PROJECT_ROOT

# Every top-level package of the project (dags/ and tests/ are folders of scripts).
PACKAGES = (
    "activate",
    "bench",
    "customer720",
    "ingest",
    "ml",
    "orchestrate",
    "quality",
    "simulator",
)
PLUMBING = "customer720"


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def _package_graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> the modules that import it."""
    modules = _modules()
    graph: dict[str, dict[str, list[str]]] = {p: {} for p in PACKAGES}
    for name, path in modules.items():
        for target in _imports(name, path, modules):
            src, dst = name.split(".")[0], target.split(".")[0]
            if src != dst:
                graph[src].setdefault(dst, []).append(f"{name} -> {target}")
    return graph


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_packages() -> None:
    graph = _package_graph()
    problems = []
    for component in _cycles(graph):
        edges = [
            edge
            for src in component
            for dst, via in graph[src].items()
            if dst in component
            for edge in via
        ]
        problems.append(f"cycle {' <-> '.join(component)}:\n    " + "\n    ".join(edges))
    assert not problems, "\n".join(problems)


def test_plumbing_imports_no_stage_or_glue_package() -> None:
    # customer720/ is what every stage uses; it knowing a stage makes the cycles above.
    assert _package_graph()[PLUMBING] == {}


def test_no_installed_distribution_shares_a_top_level_package_name() -> None:
    # The stage packages are top-level (`python -m ingest`): installed into a venv with a
    # distribution that ships a module of the same name, one would shadow the other.
    ours = {"customer720"}
    clashes = {
        name: sorted(set(dists) - ours)
        for name, dists in packages_distributions().items()
        if name in PACKAGES and set(dists) - ours
    }
    assert not clashes, f"installed distributions also provide: {clashes}"
