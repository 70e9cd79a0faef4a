"""The token server against the emulated Object Storage, through the real ``oci`` SDK.

Every request here crosses the real stack: an HTTP client -> the asyncio server -> the token
cache -> the SDK signed with the token server's resource principal -> the emulator, which
enforces the least-privilege policy (read objects of the challenge bucket only).
"""

from __future__ import annotations

import io
import json
import socket
import threading

import oci
import pytest

from tests.tokenserver.conftest import (
    BUCKET,
    CHALLENGE,
    KEY_AUTHORIZATION,
    OTHER_BUCKET,
    TOKEN,
    World,
    get,
    raw,
    statuses,
)
from tokenserver import ObjectStorageTokens, TokenServer

pytestmark = pytest.mark.integration


def test_a_stored_token_is_served_exactly_as_text_plain(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()

    answer = get(server.port, CHALLENGE + TOKEN)

    assert answer.status == 200
    assert answer.body == KEY_AUTHORIZATION.encode()
    assert answer.headers["content-type"] == "text/plain"
    assert answer.headers["content-length"] == str(len(KEY_AUTHORIZATION))
    assert answer.headers["cache-control"] == "no-store"
    assert "date" in answer.headers
    # Read through the SDK as the token server's resource principal, nothing else.
    (read,) = world.object_reads(TOKEN)
    assert read["operation"] == "GetObject"
    assert read["status"] == 200
    assert read["principal"] == "ocid1.computecontainerinstance.oc1.phx.tokenserver"


def test_head_answers_the_headers_of_get_without_a_body(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()

    head_request = f"HEAD {CHALLENGE}{TOKEN} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    answer = raw(server.port, head_request.encode())

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(KEY_AUTHORIZATION)}".encode() in head
    assert b"Content-Type: text/plain" in head
    assert body == b""


def test_an_unknown_token_is_404_after_one_read(world: World):
    server = world.start()

    answer = get(server.port, CHALLENGE + "unknownToken_-123")

    assert answer.status == 404
    assert [(e["operation"], e["status"]) for e in world.object_reads()] == [("GetObject", 404)]


def test_a_token_in_another_bucket_is_not_found(world: World):
    # Written to a bucket the server does not serve (and may not read): never served.
    world.put(TOKEN, KEY_AUTHORIZATION, bucket=OTHER_BUCKET)
    server = world.start()

    assert get(server.port, CHALLENGE + TOKEN).status == 404
    assert all(BUCKET in e["path"] for e in world.object_reads())


def test_the_namespace_is_looked_up_when_not_configured(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start(namespace=None)

    assert get(server.port, CHALLENGE + TOKEN).body == KEY_AUTHORIZATION.encode()
    assert get(server.port, CHALLENGE + "other").status == 404

    operations = [e["operation"] for e in world.storage_calls()]
    assert operations.count("GetNamespace") == 1  # looked up once, at start or on first miss
    assert operations.count("GetObject") == 2


def test_a_found_token_is_served_from_memory_within_the_ttl(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start(cache_seconds=120)
    assert get(server.port, CHALLENGE + TOKEN).status == 200

    world.delete(TOKEN)  # the renewer's clean-up right after the validation
    again = [get(server.port, CHALLENGE + TOKEN) for _ in range(5)]

    assert [a.body for a in again] == [KEY_AUTHORIZATION.encode()] * 5
    assert len(world.object_reads(TOKEN)) == 1
    log = world.access_log(server)
    assert [entry["cache"] for entry in log] == ["miss"] + ["hit"] * 5


def test_a_found_token_expires_from_memory(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start(cache_seconds=0.2)
    assert get(server.port, CHALLENGE + TOKEN).status == 200
    world.delete(TOKEN)

    answers = poll_until(lambda: get(server.port, CHALLENGE + TOKEN).status == 404)

    assert answers, "the deleted token was still served after its cache entry expired"
    assert len(world.object_reads(TOKEN)) >= 2


def test_not_found_is_remembered_for_the_negative_ttl(world: World):
    server = world.start(negative_cache_seconds=120)
    assert get(server.port, CHALLENGE + TOKEN).status == 404

    repeats = [get(server.port, CHALLENGE + TOKEN).status for _ in range(20)]
    world.put(TOKEN, KEY_AUTHORIZATION)  # written after the 404: hidden until the entry expires

    assert repeats == [404] * 20
    assert get(server.port, CHALLENGE + TOKEN).status == 404
    assert len(world.object_reads(TOKEN)) == 1


def test_a_negative_answer_expires_so_a_new_token_appears(world: World):
    server = world.start(negative_cache_seconds=0.2)
    assert get(server.port, CHALLENGE + TOKEN).status == 404
    world.put(TOKEN, KEY_AUTHORIZATION)

    assert poll_until(lambda: get(server.port, CHALLENGE + TOKEN).status == 200)
    assert get(server.port, CHALLENGE + TOKEN).body == KEY_AUTHORIZATION.encode()


def test_concurrent_misses_for_one_token_share_one_read(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    # Hold the read long enough for every request to arrive while it is in flight.
    world.fault(operation="GetObject", latency=0.5, times=1)
    server = world.start()

    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(get(server.port, CHALLENGE + TOKEN).body))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [KEY_AUTHORIZATION.encode()] * 8
    assert len(world.object_reads(TOKEN)) == 1
    caches = sorted(e["cache"] for e in world.access_log(server))
    assert caches.count("miss") == 1
    assert set(caches) <= {"miss", "coalesced", "hit"}


def test_a_hung_object_storage_gives_503_while_health_and_cached_tokens_answer(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start(storage_timeout=0.5)
    assert get(server.port, CHALLENGE + TOKEN).status == 200  # cached before the outage
    world.fault(operation="GetObject", hang=True)  # held until the emulator stops

    slow = get(server.port, CHALLENGE + "notCachedToken", timeout=30)

    assert slow.status == 503
    assert slow.headers["retry-after"] == "1"
    assert b"notCachedToken" not in slow.body
    assert get(server.port, "/healthz").status == 200
    assert get(server.port, CHALLENGE + TOKEN).body == KEY_AUTHORIZATION.encode()


def test_health_is_served_while_a_read_is_in_flight(world: World):
    world.fault(operation="GetObject", hang=True)
    server = world.start(storage_timeout=30)
    pending: list[int] = []
    thread = threading.Thread(
        target=lambda: pending.append(get(server.port, CHALLENGE + TOKEN, timeout=60).status)
    )
    thread.start()
    # The read is held by the emulator (the fault fired), not merely submitted.
    assert poll_until(lambda: world.emulator.faults.rules()[0]["fired"] == 1)

    assert get(server.port, "/healthz").status == 200  # not behind the stuck read

    world.emulator.faults.clear()
    world.emulator.faults.stopping.set()  # release the held request
    thread.join(timeout=60)
    assert pending == [503]  # released with OCI's 503, relayed as "try again"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (500, "InternalServerError", 502),
        (503, "ServiceUnavailable", 503),
        (429, "TooManyRequests", 503),
        (404, "BucketNotFound", 502),  # a missing bucket or policy is a fault, not "no token"
    ],
)
def test_object_storage_errors_are_bad_gateway_or_unavailable_and_not_cached(
    world: World, status: int, code: str, expected: int
):
    world.put(TOKEN, KEY_AUTHORIZATION)
    world.fault(operation="GetObject", status=status, code=code, times=1)
    server = world.start()

    failed = get(server.port, CHALLENGE + TOKEN)
    recovered = get(server.port, CHALLENGE + TOKEN)

    assert failed.status == expected
    assert code.encode() not in failed.body  # details go to the log, not to the client
    assert recovered.body == KEY_AUTHORIZATION.encode()
    assert len(world.object_reads(TOKEN)) == 2


def test_when_every_fetch_slot_is_busy_a_new_miss_gets_503_at_once(
    world: World, caplog: pytest.LogCaptureFixture
):
    world.fault(operation="GetObject", hang=True)
    server = world.start(storage_threads=1, max_pending_fetches=1, storage_timeout=30)
    stuck = threading.Thread(target=lambda: get(server.port, CHALLENGE + "first", timeout=60))
    stuck.start()
    assert poll_until(lambda: server.stats()["fetches"] == 1)

    with caplog.at_level("WARNING", logger="tokenserver"):
        others = [get(server.port, f"{CHALLENGE}other{i}", timeout=10) for i in range(6)]

    assert [answer.status for answer in others] == [503] * 6
    assert server.stats()["fetches"] == 1  # none of them reached the pool
    assert server.stats()["refused_fetches"] == 6
    assert get(server.port, "/healthz").status == 200
    saturation = [r for r in caplog.records if "saturated" in r.getMessage()]
    assert len(saturation) == 1  # a flood of misses is one log line, not one per request
    world.emulator.faults.stopping.set()
    stuck.join(timeout=60)


def test_the_access_log_is_json_per_request_without_key_authorizations(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    server = world.start()
    get(server.port, CHALLENGE + TOKEN)
    get(server.port, CHALLENGE + TOKEN, method="HEAD")
    get(server.port, CHALLENGE + "A" * 1000)
    get(server.port, "/healthz", headers={"X-Forwarded-For": "192.0.2.7", "User-Agent": "v" * 500})

    lines = world.access_log(server)

    assert [(e["method"], e["status"], e["cache"]) for e in lines] == [
        ("GET", 200, "miss"),
        ("HEAD", 200, "hit"),
        ("GET", 404, None),
        ("GET", 200, None),
    ]
    assert lines[0]["path"] == CHALLENGE + TOKEN
    assert lines[0]["bytes"] == len(KEY_AUTHORIZATION)
    assert lines[1]["bytes"] == 0
    assert lines[0]["remote"] == "127.0.0.1"
    assert lines[0]["host"] == "www.example.com"
    assert all(isinstance(e["duration_ms"], float) for e in lines)
    assert len(lines[2]["path"]) <= 123  # bounded lines, whatever the client sends
    assert lines[3]["forwarded_for"] == "192.0.2.7"
    assert len(lines[3]["user_agent"]) <= 99
    secret_part = KEY_AUTHORIZATION.split(".", 1)[1]
    assert all(secret_part not in str(e) for e in lines)


def test_storage_failures_are_logged_without_key_authorizations(
    world: World, caplog: pytest.LogCaptureFixture
):
    world.put(TOKEN, KEY_AUTHORIZATION)
    world.fault(operation="GetObject", status=500, times=1)
    server = world.start()
    with caplog.at_level("INFO"):
        assert get(server.port, CHALLENGE + TOKEN).status == 502
        assert get(server.port, CHALLENGE + TOKEN).status == 200
        server.stop()

    messages = [r.getMessage() for r in caplog.records if r.name.startswith("tokenserver")]
    assert any("500 InternalServerError" in m and "opc-request-id" in m for m in messages)
    assert all(KEY_AUTHORIZATION.split(".", 1)[1] not in m for m in messages)


def test_pipelined_requests_are_answered_in_order_across_a_storage_read(world: World):
    world.put(TOKEN, KEY_AUTHORIZATION)
    world.fault(operation="GetObject", latency=0.2, times=1)
    server = world.start()
    request = "GET {} HTTP/1.1\r\nHost: a.example\r\n\r\n"

    answer = raw(
        server.port,
        (
            request.format(CHALLENGE + TOKEN)
            + request.format("/healthz")
            + request.format("/nope")
            + "GET /healthz HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n"
        ).encode(),
    )

    assert statuses(answer) == [200, 200, 404, 200]
    assert answer.index(KEY_AUTHORIZATION.encode()) < answer.index(b"ok\n")


def poll_until(condition, *, attempts: int = 200, interval: float = 0.05) -> bool:
    """Re-check ``condition`` until it holds (True) or ``attempts`` run out (False)."""
    import time  # noqa: PLC0415

    for _ in range(attempts):
        if condition():
            return True
        time.sleep(interval)
    return False


def test_a_server_can_be_given_its_socket_and_an_sdk_client(world: World):
    # The sandbox's order: bind first (the LB fixture needs the port), then build the reader.
    world.put(TOKEN, KEY_AUTHORIZATION)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    client = oci.object_storage.ObjectStorageClient(
        {},
        signer=oci.auth.signers.get_resource_principals_signer(),
        service_endpoint=world.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    reader = ObjectStorageTokens(client, bucket=BUCKET)  # namespace looked up on first use
    log = io.StringIO()

    with TokenServer(world.settings(), reader=reader.get, sock=sock, access_log=log) as server:
        assert server.port == port
        assert get(port, CHALLENGE + TOKEN).body == KEY_AUTHORIZATION.encode()

    assert sock.fileno() == -1  # closed with the server
    assert json.loads(log.getvalue().splitlines()[0])["status"] == 200
