"""Loopback networking helpers for the sandbox: free ports and waiting for listeners."""

from __future__ import annotations

import socket
import time


def free_port(*, udp_too: bool = False) -> int:
    """A TCP port on 127.0.0.1 that is free right now (and, with ``udp_too``, free for UDP).

    The kernel picks it (bind to port 0); we never assume a well-known port is free, because on a
    shared machine another Pebble may already hold 14000 and a client would silently talk to it.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    msg = "could not find a free loopback port"
    raise RuntimeError(msg)


def wait_for_tcp(host: str, port: int, *, timeout: float) -> bool:
    """Poll until something accepts TCP connections at host:port; False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False
