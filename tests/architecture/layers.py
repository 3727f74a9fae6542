"""Vigil's layer rules, as data, and the checks that enforce them on an import graph.

The layers, from the top (each may import only what is below it):

    vigil.cli                the `vigil` command
    vigil.tools              benchmarks, dashboards as code, explain-eval
    vigil_models             training and evaluating the learned models
    vigil.runtimes           composition roots: embedded, gateway, processor, notifier
    vigil_simulators         simulated wearables and their ground truth
    vigil.web                the HTTP API and web pages
    vigil.shell              the shared shell: contract, pipeline, MQTT, stores, scoring, explain, desk, notify
    vigil.settings           the one configuration object
    vigil.core               the pure clinical core

docs/architecture.md explains each; tests/architecture/test_layers.py runs these checks.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from import_graph import Graph, own

LAYERS = (
    "vigil.cli",
    "vigil.tools",
    "vigil_models",
    "vigil.runtimes",
    "vigil_simulators",
    "vigil.web",
    "vigil.shell",
    "vigil.settings",
    "vigil.core",
)
# Runtimes never import each other; what they share lives in vigil.runtimes.shared.
INDEPENDENT_RUNTIMES = (
    "vigil.runtimes.embedded",
    "vigil.runtimes.gateway",
    "vigil.runtimes.processor",
    "vigil.runtimes.notifier",
)
SHARED_RUNTIME = "vigil.runtimes.shared"
# (importer, imported, why)
FORBIDDEN = (
    ("vigil.shell.notify", "vigil.shell.desk", "a channel delivers what the desk decided; it never reaches back"),
)
# The core may import the standard library, itself, and nothing else.
CORE = "vigil.core"
IO_LIBRARIES = ("paho", "amqtt", "faust", "aiokafka", "influxdb_client", "sqlalchemy", "aiohttp", "httpx",
                "openai", "onnxruntime", "psycopg", "twilio", "requests", "socket", "sqlite3", "urllib")
STDLIB_WITH_IO = ("socket", "sqlite3", "urllib", "http", "asyncio", "subprocess", "ssl", "smtplib", "ftplib")


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.importer} imports {self.imported}"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> int | None:
    for index, layer in enumerate(LAYERS):
        if within(module, layer):
            return index
    return None


def check_layers(graph: Graph) -> list[Violation]:
    found = []
    for importer, edges in graph.items():
        mine = layer_of(importer)
        for imported in edges:
            theirs = layer_of(imported) if own(imported) else None
            if mine is not None and theirs is not None and theirs < mine:
                found.append(Violation(f"layers ({LAYERS[mine]} is below {LAYERS[theirs]})", importer, imported))
    return found


def check_runtimes_independent(graph: Graph) -> list[Violation]:
    found = []
    for importer, edges in graph.items():
        for imported in edges:
            for a in INDEPENDENT_RUNTIMES + (SHARED_RUNTIME,):
                for b in INDEPENDENT_RUNTIMES:
                    if a != b and within(importer, a) and within(imported, b):
                        found.append(Violation("one runtime imports another", importer, imported))
    return found


def check_forbidden(graph: Graph) -> list[Violation]:
    return [Violation(f"forbidden ({why})", importer, imported)
            for importer, edges in graph.items() for imported in edges
            for source, target, why in FORBIDDEN if within(importer, source) and within(imported, target)]


def check_core_is_pure(graph: Graph) -> list[Violation]:
    found = []
    for importer, edges in graph.items():
        if not within(importer, CORE):
            continue
        for imported in edges:
            top = imported.split(".", 1)[0]
            if own(imported):
                ok = within(imported, CORE)
            else:
                ok = top in sys.stdlib_module_names and top not in STDLIB_WITH_IO and top not in IO_LIBRARIES
            if not ok:
                found.append(Violation("the core imports only the standard library (no I/O) and itself", importer, imported))
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_graph(graph: Graph) -> Graph:
    """Modules folded into their sibling packages: vigil.shell.desk.desk -> vigil.shell.desk.

    An edge a -> b is kept when a and b are different children of the same parent package,
    so a cycle here is two sibling packages that import each other (like alerting <-> notify)."""
    folded: Graph = {}
    for importer, edges in graph.items():
        for imported in edges:
            if not own(imported):
                continue
            a, b = importer.split("."), imported.split(".")
            common = 0
            while common < min(len(a), len(b)) and a[common] == b[common]:
                common += 1
            # Siblings inside one of Vigil's packages; the three top-level packages are ordered by LAYERS.
            if 1 <= common < min(len(a), len(b)):
                source, target = ".".join(a[:common + 1]), ".".join(b[:common + 1])
                folded.setdefault(source, set()).add(target)
                folded.setdefault(target, set())
    return folded


def check_acyclic(graph: Graph) -> list[Violation]:
    found = [Violation("import cycle between modules", " -> ".join(cycle), cycle[0]) for cycle in cycles(graph)]
    found += [Violation("import cycle between sibling packages", " <-> ".join(cycle), cycle[0])
              for cycle in cycles(package_graph(graph))]
    return found


CHECKS = (check_layers, check_runtimes_independent, check_forbidden, check_core_is_pure, check_acyclic)


def violations(graph: Graph) -> list[Violation]:
    return [violation for check in CHECKS for violation in check(graph)]
