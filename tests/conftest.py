import os

import pytest

from vigil.tools.ports import free_port as _free_port


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture
def http_port() -> int:
    return _free_port()


@pytest.fixture(autouse=True)
def embedded_environment(request, monkeypatch):
    """Unit and end-to-end tests of the embedded mode must not pick up the real servers'
    settings that tests/run.sh exports for the integration tests."""
    if request.node.get_closest_marker("integration") is None:
        for name in list(os.environ):
            if name.startswith("VIGIL_"):
                monkeypatch.delenv(name)
