"""The layering the README's Layout table states (issue 26): no folder imports a folder above it, and there are
no import circles between modules.

Read from the code's own ``import`` statements (``ast``), every import counted, also those inside functions
(a lazy import is still a dependency). Folders on one layer (``genet``/``emulation``;
``sender``/``player``/``balancer``) import neither each other. The ``genet`` command line (``app/cli.py``) loads the commands' modules by name;
those names are checked against the same rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

#: Bottom first; folders in one tuple share a layer.
LAYERS: list[tuple[str, ...]] = [("foundation",), ("traces",), ("genet", "emulation"),
                                 ("sender", "player", "balancer"), ("deploy",), ("app",)]
LAYER = {folder: k for k, layer in enumerate(LAYERS) for folder in layer}


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    return found


def _graph() -> dict[str, set[str]]:
    files = [p for folder in LAYER for p in (REPO / folder).rglob("*.py")]
    names = {_module_name(p): p for p in files}
    graph = {}
    for name, path in names.items():
        graph[name] = {m for m in _imports(path) if m in names and m != name}
    return graph


def test_no_folder_imports_a_folder_above_it_or_beside_it():
    wrong = []
    for mod, deps in _graph().items():
        own = mod.split(".")[0]
        for dep in deps:
            other = dep.split(".")[0]
            if other != own and LAYER[other] >= LAYER[own]:
                wrong.append(f"{mod} imports {dep}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_circles():
    graph = _graph()
    # collapse `from pkg import x` edges to real modules, then look for a cycle (iterative DFS)
    state: dict[str, int] = {}
    cycles = []

    def visit(start: str) -> None:
        stack = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            for child in children:
                if state.get(child) == 1:
                    cycles.append(path[path.index(child):] + [child])
                elif child not in state:
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(sorted(graph[child]))))
                    break
            else:
                state[node] = 2
                path.pop()
                stack.pop()

    for mod in sorted(graph):
        if mod not in state:
            visit(mod)
    # a package's __init__ importing its own submodules is not a circle of files
    real = [c for c in cycles if not any(a == b.rpartition(".")[0] or b == a.rpartition(".")[0]
                                         for a, b in zip(c, c[1:]))]
    assert not real, "\n".join(" -> ".join(c) for c in real)


def test_the_command_line_loads_only_what_is_below_it():
    from app.cli import SUBCOMMAND_MODULES
    for name in SUBCOMMAND_MODULES:
        assert name.split(".")[0] in LAYER and LAYER[name.split(".")[0]] <= LAYER["app"], name
        assert (REPO / (name.replace(".", "/") + ".py")).is_file(), name


def test_the_layer_list_names_every_product_folder():
    """A new top-level package must be placed in LAYERS (and in the README's table)."""
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert packages - {"tests"} == set(LAYER), packages ^ set(LAYER)
    readme = (REPO / "README.md").read_text()
    for folder in LAYER:
        assert f"| `{folder}/` |" in readme, folder
