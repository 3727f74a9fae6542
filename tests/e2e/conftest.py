"""Fixtures of the end-to-end tests."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from ward import Inbox

from vigil.tools.ports import free_port


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on a free port; yields (controller, inbox)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()
