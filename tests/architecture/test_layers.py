"""The architecture, checked: layers, independent runtimes, a pure core, no import cycles."""

from __future__ import annotations

import copy

import pytest
from import_graph import build_graph
from layers import (
    check_acyclic,
    check_core_is_pure,
    check_forbidden,
    check_layers,
    check_runtimes_independent,
    violations,
)


@pytest.fixture(scope="module")
def graph():
    return build_graph()


def test_the_source_tree_keeps_every_layer_rule(graph):
    found = violations(graph)
    assert not found, "layer rules broken:\n" + "\n".join(map(str, found))


def test_the_graph_sees_the_whole_tree(graph):
    # A checker that reads nothing passes everything: make sure it read the real tree.
    assert len(graph) > 100
    assert "vigil.shell.stores.sql" in graph["vigil.runtimes.embedded.runtime"]
    assert "sqlalchemy" in graph["vigil.shell.stores.sql"]
    assert "vigil.core.incident" in graph["vigil.settings"]
    assert any(module.startswith("vigil_simulators.") for module in graph)
    assert any(module.startswith("vigil_models.") for module in graph)


def violated(graph, importer, imported):
    broken = copy.deepcopy(graph)
    broken.setdefault(importer, set()).add(imported)
    return broken


@pytest.mark.parametrize("library", ["sqlalchemy", "aiohttp", "paho", "onnxruntime", "faust", "httpx", "openai",
                                     "aiokafka", "influxdb_client", "amqtt", "socket", "sqlite3"])
def test_the_core_importing_io_fails(graph, library):
    found = check_core_is_pure(violated(graph, "vigil.core.news2", library))
    assert [(v.importer, v.imported) for v in found] == [("vigil.core.news2", library)]


def test_the_core_importing_the_shell_fails(graph):
    found = violations(violated(graph, "vigil.core.patient", "vigil.shell.stores.sql"))
    rules = {v.rule for v in found}
    assert "layers (vigil.core is below vigil.shell)" in rules
    assert "the core imports only the standard library (no I/O) and itself" in rules


def test_one_runtime_importing_another_fails(graph):
    found = check_runtimes_independent(violated(graph, "vigil.runtimes.gateway.gateway", "vigil.runtimes.processor.app"))
    assert [(v.importer, v.imported) for v in found] == [("vigil.runtimes.gateway.gateway", "vigil.runtimes.processor.app")]
    found = check_runtimes_independent(violated(graph, "vigil.runtimes.shared.alerting", "vigil.runtimes.embedded.runtime"))
    assert len(found) == 1


def test_a_channel_importing_the_desk_fails(graph):
    found = check_forbidden(violated(graph, "vigil.shell.notify.channels.sms", "vigil.shell.desk.desk"))
    assert [(v.importer, v.imported) for v in found] == [("vigil.shell.notify.channels.sms", "vigil.shell.desk.desk")]


def test_the_shell_importing_a_runtime_fails(graph):
    found = check_layers(violated(graph, "vigil.shell.pipeline.pipeline", "vigil.runtimes.embedded.runtime"))
    assert len(found) == 1 and found[0].importer == "vigil.shell.pipeline.pipeline"


def test_an_import_cycle_fails(graph):
    # Two shell packages that import each other: each edge alone is allowed by the layers.
    broken = violated(graph, "vigil.shell.stores.sql", "vigil.shell.desk.desk")
    assert "vigil.shell.stores.sql" in broken["vigil.shell.desk.desk"]  # desk -> stores already
    found = check_acyclic(broken)
    assert any("vigil.shell.desk" in v.importer and "vigil.shell.stores" in v.importer for v in found)


def test_the_checker_reads_a_real_violation_from_files(tmp_path):
    """End to end on files: a core module that imports sqlalchemy is caught by the same code."""
    from import_graph import build_graph as build

    core = tmp_path / "src" / "vigil" / "core"
    core.mkdir(parents=True)
    (tmp_path / "src" / "vigil" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "news2.py").write_text("import math\n\ndef score():\n    from sqlalchemy import select\n    return select\n")
    found = violations(build([tmp_path / "src"]))
    assert [(v.importer, v.imported) for v in found] == [("vigil.core.news2", "sqlalchemy")]
