"""What the token server answers without ever asking Object Storage.

Every request here is checked twice: the answer, and the emulator's request log, which must
show no call by the token server at all (the namespace is configured, so nothing else is due).
"""

from __future__ import annotations

import select
import socket
import time

import pytest

from tests.tokenserver.conftest import (
    CHALLENGE,
    KEY_AUTHORIZATION,
    TOKEN,
    World,
    get,
    raw,
    responses,
    statuses,
)

pytestmark = pytest.mark.integration


def request(line: str, *headers: str) -> bytes:
    head = "\r\n".join((line, *headers, "Connection: close"))
    return f"{head}\r\n\r\n".encode()


HOST = "Host: www.example.com"
GET_TOKEN = f"GET {CHALLENGE}{TOKEN} HTTP/1.1"
# (id, raw request, expected status). The stored token is TOKEN: several of these would reach it
# if the server decoded or normalised the path.
BOGUS = [
    ("traversal", request(f"GET {CHALLENGE}../{TOKEN} HTTP/1.1", HOST), 404),
    ("traversal-back-in", request(f"GET {CHALLENGE}x/../{TOKEN} HTTP/1.1", HOST), 404),
    ("dot-dot-only", request(f"GET {CHALLENGE}.. HTTP/1.1", HOST), 404),
    ("encoded-dot-dot", request(f"GET {CHALLENGE}%2e%2e/x HTTP/1.1", HOST), 404),
    ("encoded-slash", request(f"GET /.well-known%2Facme-challenge%2F{TOKEN} HTTP/1.1", HOST), 404),
    ("percent-encoded-token", request(f"GET {CHALLENGE}%65{TOKEN[1:]} HTTP/1.1", HOST), 404),
    ("over-long-token", request(f"GET {CHALLENGE}{'A' * 257} HTTP/1.1", HOST), 404),
    ("empty-token", request(f"GET {CHALLENGE} HTTP/1.1", HOST), 404),
    ("sub-path", request(f"GET {CHALLENGE}{TOKEN}/x HTTP/1.1", HOST), 404),
    ("token-with-dot", request(f"GET {CHALLENGE}{TOKEN}.x HTTP/1.1", HOST), 404),
    ("other-case-prefix", request(f"GET /.WELL-KNOWN/acme-challenge/{TOKEN} HTTP/1.1", HOST), 404),
    ("double-slash", request(f"GET /{CHALLENGE}{TOKEN} HTTP/1.1", HOST), 404),
    ("other-path", request("GET /wp-login.php HTTP/1.1", HOST), 404),
    ("root", request("GET / HTTP/1.1", HOST), 404),
    ("post", request(f"POST {CHALLENGE}{TOKEN} HTTP/1.1", HOST, "Content-Length: 0"), 405),
    ("put", request(f"PUT {CHALLENGE}{TOKEN} HTTP/1.1", HOST, "Content-Length: 0"), 405),
    ("delete", request(f"DELETE {CHALLENGE}{TOKEN} HTTP/1.1", HOST), 405),
    ("options", request("OPTIONS * HTTP/1.1", HOST), 405),
    ("lower-case-get", request(f"get {CHALLENGE}{TOKEN} HTTP/1.1", HOST), 405),
    ("bogus-host", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", "Host: evil host/../"), 400),
    ("host-with-path", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", "Host: a.example/x"), 400),
    ("oversize-host", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", f"Host: {'a.' * 200}com"), 400),
    ("empty-host", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", "Host: "), 400),
    ("two-hosts", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", HOST, "Host: b.example"), 400),
    ("no-host-on-1.1", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1"), 400),
    ("absolute-form-bad-authority", request(f"GET http://a b/{CHALLENGE}{TOKEN} HTTP/1.1"), 400),
    ("no-version", request(f"GET {CHALLENGE}{TOKEN}", HOST), 400),
    ("extra-space", request(f"GET  {CHALLENGE}{TOKEN} HTTP/1.1", HOST), 400),
    ("http-2", request(f"GET {CHALLENGE}{TOKEN} HTTP/2.0", HOST), 505),
    ("not-http", request(f"GET {CHALLENGE}{TOKEN} FTP/1.1", HOST), 400),
    ("header-without-colon", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", HOST, "Junk"), 400),
    ("space-before-colon", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", HOST, "X-A : b"), 400),
    ("obs-fold", request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", HOST, "X-A: b", " folded"), 400),
    ("bad-content-length", request(GET_TOKEN, HOST, "Content-Length: x"), 400),
    # int() refuses over 4,300 digits: the length is refused, the connection not dropped.
    ("5000-digit-content-length", request(GET_TOKEN, HOST, f"Content-Length: {'9' * 5000}"), 400),
    ("19-digit-content-length", request(GET_TOKEN, HOST, f"Content-Length: {'1' * 19}"), 400),
    ("signed-content-length", request(GET_TOKEN, HOST, "Content-Length: +5"), 400),
    ("two-content-lengths", request(GET_TOKEN, HOST, "Content-Length: 5, 5"), 400),
    ("unicode-digit-content-length", request(GET_TOKEN, HOST).replace(
        b"Connection", "Content-Length: \u0665\r\nConnection".encode()), 400),
    ("request-line-too-long", request(f"GET {CHALLENGE}{'A' * 3000} HTTP/1.1", HOST), 414),
    ("head-too-large", request(GET_TOKEN, HOST, f"X-Big: {'b' * 9000}"), 431),
    ("too-many-headers", request(GET_TOKEN, HOST, *[f"X-{i}: v" for i in range(70)]), 431),
    ("binary", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
]  # fmt: skip


@pytest.mark.parametrize(("data", "expected"), [b[1:] for b in BOGUS], ids=[b[0] for b in BOGUS])
def test_bogus_requests_are_answered_without_touching_storage(
    world: World, data: bytes, expected: int
):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()
    world.clear_log()

    answer = raw(server.port, data)

    status, headers, _ = responses(answer)[0]
    assert status == expected
    assert KEY_AUTHORIZATION.encode() not in answer
    if expected == 405:
        assert headers["allow"] == "GET, HEAD"
    if expected not in (404, 405):  # errors in the request itself end the connection
        assert headers["connection"] == "close"
    assert world.storage_calls() == []
    assert server.stats()["fetches"] == 0


def test_the_same_token_without_the_tricks_is_served(world: World):
    # The control for the table above: the stored object is reachable the straight way.
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()

    answer = raw(server.port, request(f"GET {CHALLENGE}{TOKEN} HTTP/1.1", HOST))

    assert responses(answer) == [(200, responses(answer)[0][1], KEY_AUTHORIZATION.encode())]


def test_a_query_string_is_ignored_and_absolute_form_is_accepted(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()

    query = get(server.port, f"{CHALLENGE}{TOKEN}?via=test")
    absolute = raw(server.port, request(f"GET http://www.example.com{CHALLENGE}{TOKEN} HTTP/1.1"))

    assert query.body == KEY_AUTHORIZATION.encode()
    assert responses(absolute)[0][0::2] == (200, KEY_AUTHORIZATION.encode())


def test_http_1_0_without_host_is_served_and_closed(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()

    answer = raw(server.port, f"GET {CHALLENGE}{TOKEN} HTTP/1.0\r\n\r\n".encode(), timeout=10)

    ((status, headers, body),) = responses(answer)  # and then the server closed the connection
    assert (status, body) == (200, KEY_AUTHORIZATION.encode())
    assert headers["connection"] == "close"


def test_health_needs_no_host_and_no_storage(world: World):
    server = world.start()

    answer = raw(server.port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    head = raw(server.port, b"HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")

    assert responses(answer)[0][0::2] == (200, b"ok\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert head.endswith(b"\r\n\r\n")
    assert world.storage_calls() == []


def test_keep_alive_serves_many_requests_on_one_connection(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()
    one = f"GET {CHALLENGE}{TOKEN} HTTP/1.1\r\nHost: a.example\r\n\r\n".encode()

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        answers = []
        for _ in range(5):
            sock.sendall(one)
            answers.append(_read_one(sock))

    assert answers == [KEY_AUTHORIZATION.encode()] * 5
    assert server.stats()["open_connections"] <= 1


def _read_one(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += sock.recv(4096)
    return body


def test_a_request_with_a_body_is_answered_and_its_body_never_parsed(world: World):
    # A body that is itself a request (smuggling): it must not be answered as one.
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()
    smuggled = f"GET {CHALLENGE}{TOKEN} HTTP/1.1\r\nHost: a.example\r\n\r\n"
    data = (
        f"GET /healthz HTTP/1.1\r\nHost: a.example\r\nContent-Length: {len(smuggled)}\r\n\r\n"
        + smuggled
    ).encode()

    answer = raw(server.port, data)

    assert statuses(answer) == [200]
    assert KEY_AUTHORIZATION.encode() not in answer
    assert world.storage_calls() == []


def test_a_slow_head_gets_408_and_the_connection_closed(world: World):
    server = world.start(header_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        # Trickle one header byte at a time (slowloris) until the server answers: the deadline
        # counts from the first byte of the head, not from the last one.
        for _ in range(100):
            sock.sendall(b"X")
            # poll(), not select(): a long test session may hold descriptors above 1023.
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            if poller.poll(100):
                break
        else:
            pytest.fail("no answer while the head kept trickling in: each byte reset the deadline")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"Connection: close" in answer


def test_an_idle_connection_is_closed_after_the_idle_timeout(world: World):
    server = world.start(idle_timeout=0.3)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        assert sock.recv(1) == b""  # closed by the server, long before our 15 s


def test_connections_over_the_limit_get_503_and_are_closed(world: World):
    server = world.start(max_connections=3)
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    try:
        assert _wait(lambda: server.stats()["open_connections"] == 3)

        over = raw(server.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")

        assert statuses(over) == [503]
        assert server.stats()["rejected_connections"] == 1
    finally:
        for sock in held:
            sock.close()
    assert _wait(lambda: server.stats()["open_connections"] == 0)
    assert get(server.port, "/healthz").status == 200


def test_a_client_that_does_not_read_does_not_grow_the_server(world: World):
    # Pipeline far more requests than fit in the buffers without reading any answer: the
    # server stops reading (flow control) instead of buffering answers without bound.
    server = world.start(header_timeout=1)
    one = b"GET /nope HTTP/1.1\r\nHost: a.example\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent = 0
        try:
            for _ in range(200_000):
                sock.sendall(one)
                sent += 1
        except OSError:  # our send buffer filled up (timeout) or the server gave up on us
            pass
    assert sent < 200_000  # back-pressure reached the client
    assert get(server.port, "/healthz").status == 200


def _wait(condition, attempts: int = 200) -> bool:
    for _ in range(attempts):
        if condition():
            return True
        time.sleep(0.02)
    return False
