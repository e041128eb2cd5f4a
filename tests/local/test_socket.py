"""The served connections have TCP_NODELAY: without it Nagle holds each response ~40 ms."""

from __future__ import annotations

import socket

from scaimind_local import LocalCoordinator

from ._util import client_for


def test_accepted_connections_have_tcp_nodelay(coordinator: LocalCoordinator) -> None:
    with client_for(coordinator) as api:
        assert api.get("/benchmarks").status_code == 200  # the keep-alive connection stays open
        connections = coordinator._server.server_state.connections
        socks = [c.transport.get_extra_info("socket") for c in connections]
        assert socks
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in socks)
