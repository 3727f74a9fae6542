"""A free TCP port on the loopback interface: the one helper the benches and the tests share."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is bound to now, chosen by the operating system.

    The port is released before it is returned, so another process could take it in between;
    on one test machine that race is rare enough, and a server that loses it fails loudly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
