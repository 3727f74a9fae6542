import os

import pytest


@pytest.fixture(autouse=True)
def embedded_environment(monkeypatch):
    """End-to-end tests of the embedded mode must not pick up the real servers' settings that
    tests/run.sh exports for the integration tests."""
    for name in list(os.environ):
        if name.startswith("VIGIL_"):
            monkeypatch.delenv(name)
