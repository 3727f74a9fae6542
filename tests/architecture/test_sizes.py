"""Small files and short functions: no Python file over 400 lines without a reason written at
its top, and no function over 80 lines. A reason is a line starting `# Long file:` in the first
30 lines, saying why the file is one idea."""

from __future__ import annotations

import ast

import pytest
from import_graph import REPO, SOURCE_ROOTS

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
TEST_ROOTS = (REPO / "tests",)


def python_files():
    for root in SOURCE_ROOTS + TEST_ROOTS:
        yield from sorted(root.rglob("*.py"))


def long_files() -> list[str]:
    found = []
    for path in python_files():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_FILE_LINES and not any(line.startswith("# Long file:") for line in lines[:30]):
            found.append(f"{path.relative_to(REPO)}: {len(lines)} lines")
    return found


def long_functions() -> list[str]:
    found = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {length} lines")
    return found


def test_no_file_is_long_without_a_reason():
    assert not long_files(), "\n".join(long_files())


def test_no_function_is_long():
    assert not long_functions(), "\n".join(long_functions())


@pytest.mark.parametrize("check", [long_files, long_functions])
def test_the_size_checks_read_the_tree(check):
    assert sum(1 for _ in python_files()) > 150  # a check that reads nothing passes everything


def test_unit_tests_mirror_the_packages():
    """tests/unit/<path>/ holds the tests of services/vigil/<path> (simulators/: vigil_simulators),
    and every test file's name is unique (pytest imports them by basename)."""
    unit = REPO / "tests" / "unit"
    roots = {"simulators": REPO / "simulators" / "vigil_simulators", "models": REPO / "models" / "vigil_models"}
    strays, names = [], {}
    for test in unit.rglob("test_*.py"):
        parts = test.relative_to(unit).parent.parts
        package = (roots[parts[0]].joinpath(*parts[1:]) if parts and parts[0] in roots
                   else REPO.joinpath("services", "vigil", *parts))
        if not parts or not package.is_dir():
            strays.append(str(test.relative_to(REPO)))
        names.setdefault(test.name, []).append(str(test.relative_to(REPO)))
    assert not strays, f"unit tests outside a package's mirror: {strays}"
    assert all(len(paths) == 1 for paths in names.values()), {n: p for n, p in names.items() if len(p) > 1}
    assert len(names) > 30
