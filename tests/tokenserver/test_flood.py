"""A bounded flood of bogus requests: the valid token keeps being served, storage is untouched.

A few thousand bogus requests (other paths, traversal, percent-encoding, over-long tokens, wrong
methods, bad Host) arrive from several keep-alive connections that pipeline them and from
loops that open a new connection per request, while a prober fetches the valid token on new
connections, as the CA's validators do. No timing is asserted (the benchmark measures that);
what must hold is that every probe got the exact key authorization, every bogus request got its
answer, and Object Storage saw nothing but reads of the valid token.
"""

from __future__ import annotations

import re
import socket
import threading
from collections import Counter

import pytest

from tests.tokenserver.conftest import (
    CHALLENGE,
    KEY_AUTHORIZATION,
    TOKEN,
    World,
    get,
    raw,
    responses,
)

pytestmark = pytest.mark.integration

KEEP_ALIVE_FLOODERS = 6
BATCHES = 10
BATCH = 50  # pipelined requests per write
NEW_CONNECTION_FLOODERS = 2
NEW_CONNECTION_REQUESTS = 150
BOGUS = [
    ("GET", "/"),
    ("GET", "/wp-login.php"),
    ("GET", f"{CHALLENGE}../{TOKEN}"),
    ("GET", f"{CHALLENGE}%2e%2e/{TOKEN}"),
    ("GET", f"{CHALLENGE}{'A' * 300}"),
    ("GET", f"{CHALLENGE}%65{TOKEN[1:]}"),
    ("POST", f"{CHALLENGE}{TOKEN}"),
    ("DELETE", "/healthz"),
]
EXPECTED = {"GET": 404, "POST": 405, "DELETE": 405}


def bogus(i: int, *, close: bool = False) -> bytes:
    method, path = BOGUS[i % len(BOGUS)]
    connection = "Connection: close\r\n" if close else ""
    return f"{method} {path} HTTP/1.1\r\nHost: flood.example\r\n{connection}\r\n".encode()


def keep_alive_flooder(port: int, seen: Counter[int], errors: list[str]) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            for batch in range(BATCHES):
                sock.sendall(b"".join(bogus(batch * BATCH + i) for i in range(BATCH)))
                data = b""
                while len(found := _complete(data)) < BATCH:
                    chunk = sock.recv(65536)
                    if not chunk:
                        errors.append("keep-alive flood connection closed early")
                        return
                    data += chunk
                for offset, status in enumerate(found):
                    method = BOGUS[(batch * BATCH + offset) % len(BOGUS)][0]
                    if status != EXPECTED[method]:
                        errors.append(f"{method} got {status}")
                    seen[status] += 1
    except OSError as exc:
        errors.append(f"keep-alive flooder: {exc!r}")


def _complete(data: bytes) -> list[int]:
    """Statuses of the complete answers at the start of ``data`` (all carry Content-Length)."""
    found = []
    while True:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            return found
        length = int(re.search(rb"Content-Length: ([0-9]+)", head).group(1))
        if len(rest) < length:
            return found
        found.append(int(head[9:12]))
        data = rest[length:]


def new_connection_flooder(port: int, seen: Counter[int], errors: list[str]) -> None:
    for i in range(NEW_CONNECTION_REQUESTS):
        try:
            answer = raw(port, bogus(i, close=True))
        except OSError as exc:
            errors.append(f"new-connection flooder: {exc!r}")
            continue
        status = responses(answer)[0][0]
        if status != EXPECTED[BOGUS[i % len(BOGUS)][0]]:
            errors.append(f"new connection got {status}")
        seen[status] += 1


def test_a_valid_token_keeps_being_served_during_a_flood_of_bogus_requests(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()
    assert get(server.port, CHALLENGE + TOKEN).status == 200  # warm, as after the self-check
    world.clear_log()

    seen: Counter[int] = Counter()
    errors: list[str] = []
    flooders = [
        threading.Thread(target=keep_alive_flooder, args=(server.port, seen, errors))
        for _ in range(KEEP_ALIVE_FLOODERS)
    ] + [
        threading.Thread(target=new_connection_flooder, args=(server.port, seen, errors))
        for _ in range(NEW_CONNECTION_FLOODERS)
    ]
    for thread in flooders:
        thread.start()
    probes: list[tuple[int, bytes]] = []
    while any(thread.is_alive() for thread in flooders) or not probes:
        answer = get(server.port, CHALLENGE + TOKEN)
        probes.append((answer.status, answer.body))
    for thread in flooders:
        thread.join(timeout=60)

    total = (
        KEEP_ALIVE_FLOODERS * BATCHES * BATCH + NEW_CONNECTION_FLOODERS * NEW_CONNECTION_REQUESTS
    )
    assert errors == []
    assert sum(seen.values()) == total
    assert probes == [(200, KEY_AUTHORIZATION.encode())] * len(probes)
    # Storage saw reads of the valid token only (re-reads when its cache entry expired).
    assert all(
        entry["operation"] == "GetObject" and TOKEN in entry["path"]
        for entry in world.storage_calls()
    )
    assert server.stats()["fetches"] <= 1 + len(world.object_reads(TOKEN))
    log = world.access_log(server)
    assert len(log) == 1 + total + len(probes)
