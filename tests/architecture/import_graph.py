"""Vigil's import graph, read from the source with `ast` (nothing is imported or run).

Every import counts: at module level, inside functions (lazy imports) and under
`TYPE_CHECKING`; a dependency is a dependency, whenever it is paid.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The three source roots; under each, the folder is the import path.
SOURCE_ROOTS = (REPO / "services", REPO / "simulators", REPO / "models")
OWN_PACKAGES = ("vigil", "vigil_simulators", "vigil_models")

Graph = dict[str, set[str]]  # module -> modules (own, fully qualified) or top-level externals it imports


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def own(name: str) -> bool:
    return name.split(".", 1)[0] in OWN_PACKAGES


def imports_of(module: str, source: str, is_package: bool) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            # `from package import module` imports the module
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__" and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def build_graph(roots: Iterable[Path] = SOURCE_ROOTS) -> Graph:
    files: dict[str, Path] = {}
    for root in roots:
        for path in root.rglob("*.py"):
            files[module_name(root, path)] = path
    graph: Graph = {}
    for module, path in files.items():
        edges: set[str] = set()
        for name in imports_of(module, path.read_text(encoding="utf-8"), path.name == "__init__.py"):
            if own(name):
                # `from vigil.x import y` where y is a name, not a module: the edge is to vigil.x
                while name and name not in files:
                    name = name.rpartition(".")[0]
                if name and name != module:
                    edges.add(name)
            elif name:
                edges.add(name.split(".", 1)[0])
        graph[module] = edges
    return graph
