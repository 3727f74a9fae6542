"""The one free-port helper: a port nothing listens on, that a server can then bind."""

import socket

from vigil.tools.ports import free_port


def test_a_free_port_can_be_bound_and_nothing_answers_on_it():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listening
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
