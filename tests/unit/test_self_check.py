"""``HttpSelfCheck`` against real HTTP servers on loopback, with a :class:`FakeClock` (no waiting).

The token server is the sandbox's :class:`ChallengeHTTPServer`; redirects come from a small
``ThreadingHTTPServer`` defined here. Every server binds port 0 and is closed by its fixture.
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from renewer.adapters.http_self_check import HttpSelfCheck, SelfCheckPolicy
from renewer.errors import SelfCheckFailed
from sandbox.challenges import ChallengeHTTPServer, InMemoryChallengeStore
from sandbox.tls import write_server_tls
from tests.support.fakes import FakeClock

pytestmark = pytest.mark.unit

NAME = "www.example.com"
# RFC 8555 section 8.3 example token and key authorization.
TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"  # noqa: S105 - RFC example, not a secret
KEY_AUTHORIZATION = f"{TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
PATH = f"/.well-known/acme-challenge/{TOKEN}"
POLICY = SelfCheckPolicy(tries=5, interval=0.5, max_interval=1.5, timeout=2.0)
ONE_TRY = SelfCheckPolicy(tries=1, interval=0.5, max_interval=1.5, timeout=2.0)


def checker(port: int, clock: FakeClock, policy: SelfCheckPolicy = POLICY) -> HttpSelfCheck:
    return HttpSelfCheck(port=port, connect_host="127.0.0.1", policy=policy, clock=clock)


class LateStore(InMemoryChallengeStore):
    """A store whose objects become readable only after ``hidden_fetches`` reads (eventual
    consistency between the engine's write and the frontend's read)."""

    def __init__(self, hidden_fetches: int) -> None:
        super().__init__()
        self._hidden = hidden_fetches

    def get(self, token: str) -> str | None:
        value = super().get(token)
        return value if self.fetches[token] > self._hidden else None


class Redirector(http.server.ThreadingHTTPServer):
    """Answers ``redirects`` GETs with 302 to ``location`` (None: all of them), then ``status``
    (200 with ``body`` by default).

    Records (Host header, path) of every request.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RedirectHandler)
        self.port: int = self.server_address[1]
        self.location = "/"
        self.redirects: int | None = None
        self.body = b""
        self.status = 200
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def record(self, host: str, path: str) -> int:
        with self._lock:
            self.requests.append((host, path))
            return len(self.requests)


class RedirectHandler(http.server.BaseHTTPRequestHandler):
    server: Redirector

    def do_GET(self) -> None:
        count = self.server.record(self.headers.get("Host", ""), self.path)
        body = b""
        if self.server.redirects is None or count <= self.server.redirects:
            self.send_response(302)
            self.send_header("Location", self.server.location)
        else:
            self.send_response(self.server.status)
            body = self.server.body if self.server.status == 200 else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr line."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> InMemoryChallengeStore:
    return InMemoryChallengeStore()


@pytest.fixture
def server(store: InMemoryChallengeStore) -> Iterator[ChallengeHTTPServer]:
    with ChallengeHTTPServer(store) as running:
        yield running


@pytest.fixture
def redirector() -> Iterator[Redirector]:
    yield from serve(Redirector())


def serve(running: Redirector) -> Iterator[Redirector]:
    thread = threading.Thread(
        target=running.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        thread.join(timeout=5)
        running.server_close()


@pytest.fixture
def target() -> Iterator[Redirector]:
    """A second server, the redirect's destination: answers 200 with ``body`` by default."""
    running = Redirector()
    running.redirects = 0
    running.body = KEY_AUTHORIZATION.encode()
    yield from serve(running)


@pytest.fixture
def tls_target(tmp_path: Path) -> Iterator[tuple[Redirector, list[str | None]]]:
    """``target`` over TLS with a certificate for ``localhost`` only (never for OBJECTS), and
    the SNI of every handshake."""
    files = write_server_tls(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    running = Redirector()
    running.redirects = 0
    running.body = KEY_AUTHORIZATION.encode()
    running.socket = context.wrap_socket(running.socket, server_side=True)
    for served in serve(running):
        yield served, names


def free_port() -> int:
    """A port nothing listens on (bound, read back, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loopback_80(port: int, clock: FakeClock) -> HttpSelfCheck:
    """A check whose first hop and every later ``NAME``:80 hop reach ``port`` on loopback."""
    return HttpSelfCheck(
        port=port,
        connect_host="127.0.0.1",
        resolve={(NAME, 80): ("127.0.0.1", port)},
        policy=ONE_TRY,
        clock=clock,
    )


def verify(check: HttpSelfCheck, clock: FakeClock, *, deadline_in: float = 60.0) -> None:
    check.verify(NAME, TOKEN, KEY_AUTHORIZATION, deadline=clock.monotonic() + deadline_in)


def fail(check: HttpSelfCheck, clock: FakeClock, *, deadline_in: float = 60.0) -> SelfCheckFailed:
    with pytest.raises(SelfCheckFailed) as info:
        verify(check, clock, deadline_in=deadline_in)
    return info.value


# --- success ------------------------------------------------------------------------------------


def test_success_on_the_first_try_does_not_sleep(server, store, clock):
    store.present(TOKEN, KEY_AUTHORIZATION)

    verify(checker(server.port, clock), clock)

    assert store.fetches[TOKEN] == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("trailer", ["\n", "\r\n", " \t\n"], ids=["lf", "crlf", "mixed"])
def test_trailing_whitespace_in_the_body_is_accepted(server, store, clock, trailer):
    store.present(TOKEN, KEY_AUTHORIZATION + trailer)

    verify(checker(server.port, clock), clock)

    assert store.fetches[TOKEN] == 1


def test_a_token_that_appears_late_is_found_on_a_later_try(clock):
    late = LateStore(hidden_fetches=2)
    late.present(TOKEN, KEY_AUTHORIZATION)

    with ChallengeHTTPServer(late) as running:
        verify(checker(running.port, clock), clock)

    assert late.fetches[TOKEN] == 3
    assert clock.sleeps == [0.5, 1.0]


def test_host_header_carries_the_name_not_the_connect_host(redirector, clock):
    redirector.redirects = 0
    redirector.body = KEY_AUTHORIZATION.encode()

    verify(checker(redirector.port, clock, ONE_TRY), clock)

    assert redirector.requests == [(f"{NAME}:{redirector.port}", PATH)]


# --- failures -----------------------------------------------------------------------------------


def test_missing_token_fails_after_every_try_with_doubling_capped_sleeps(server, store, clock):
    error = fail(checker(server.port, clock), clock)

    assert error.url == f"http://{NAME}:{server.port}/.well-known/acme-challenge/{TOKEN}"
    assert error.observed == "HTTP 404"
    assert "HTTP 404" in str(error)
    assert store.fetches[TOKEN] == 5
    assert clock.sleeps == [0.5, 1.0, 1.5, 1.5]


@pytest.mark.parametrize(
    ("policy", "sleeps"),
    [
        (SelfCheckPolicy(tries=1, interval=0.5, max_interval=2.0), []),
        (SelfCheckPolicy(tries=2, interval=0.5, max_interval=2.0), [0.5]),
        (SelfCheckPolicy(tries=4, interval=0.25, max_interval=10.0), [0.25, 0.5, 1.0]),
        (SelfCheckPolicy(tries=4, interval=3.0, max_interval=2.0), [3.0, 2.0, 2.0]),
    ],
    ids=["one-try", "two-tries", "uncapped", "interval-above-cap"],
)
def test_sleeps_follow_the_policy(server, store, clock, policy, sleeps):
    fail(checker(server.port, clock, policy), clock)

    assert store.fetches[TOKEN] == policy.tries
    assert clock.sleeps == sleeps


@pytest.mark.parametrize(
    "served",
    ["something-else", KEY_AUTHORIZATION + "x", " " + KEY_AUTHORIZATION, TOKEN],
    ids=["other", "suffix", "leading-space", "token-only"],
)
def test_wrong_body_is_reported_without_the_expected_value(server, store, clock, served):
    store.present(TOKEN, served)

    error = fail(checker(server.port, clock), clock)

    assert error.observed == (
        f"HTTP 200 with a body that is not the key authorization ({len(served)} bytes)"
    )
    assert "not the key authorization" in str(error)
    assert KEY_AUTHORIZATION not in str(error)
    assert KEY_AUTHORIZATION.split(".")[1] not in str(error)


@pytest.mark.parametrize("deadline_in", [0.0, -1.0], ids=["now", "past"])
def test_deadline_already_passed_fails_without_fetching(server, store, clock, deadline_in):
    store.present(TOKEN, KEY_AUTHORIZATION)

    error = fail(checker(server.port, clock), clock, deadline_in=deadline_in)

    assert error.observed == "not tried before the deadline"
    assert store.fetches[TOKEN] == 0
    assert clock.sleeps == []


def test_deadline_cuts_the_last_sleep_short_and_stops(server, store, clock):
    error = fail(checker(server.port, clock), clock, deadline_in=0.75)

    assert error.observed == "HTTP 404"
    assert store.fetches[TOKEN] == 2
    assert clock.sleeps == pytest.approx([0.5, 0.25])


def test_connection_refused_names_the_exception(clock):
    port = free_port()

    error = fail(checker(port, clock, ONE_TRY), clock)

    url = f"http://{NAME}:{port}{PATH}"
    assert error.url == url
    assert error.observed == f"ConnectionRefusedError fetching {url}"


# --- redirects ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "target"),
    [
        ("http://other.example:8080/elsewhere", "http://other.example:8080/elsewhere"),
        ("https://other.example:8443/elsewhere", "https://other.example:8443/elsewhere"),
        ("ftp://other.example/elsewhere", "ftp://other.example/elsewhere"),
        ("/elsewhere", "http://{name}:{port}/elsewhere"),  # relative: stays on the odd port
    ],
    ids=["http-8080", "https-8443", "ftp", "relative"],
)
def test_redirect_the_ca_will_not_follow_is_reported(redirector, clock, location, target):
    redirector.location = location

    error = fail(checker(redirector.port, clock, ONE_TRY), clock)

    expected = target.format(name=NAME, port=redirector.port)
    assert error.observed == f"redirect to {expected}, which the CA will not follow (80/443 only)"
    assert len(redirector.requests) == 1


def test_ten_redirects_are_followed(redirector, clock):
    redirector.location = f"http://{NAME}{PATH}"  # port 80: one the CA follows
    redirector.redirects = 10
    redirector.body = KEY_AUTHORIZATION.encode()
    check = loopback_80(redirector.port, clock)

    verify(check, clock)

    assert redirector.requests == [(f"{NAME}:{redirector.port}", PATH)] + [(NAME, PATH)] * 10


@pytest.mark.parametrize("redirects", [11, None], ids=["eleven", "endless"])
def test_more_than_ten_redirects_are_reported(redirector, clock, redirects):
    redirector.location = f"http://{NAME}{PATH}"
    redirector.redirects = redirects
    redirector.body = KEY_AUTHORIZATION.encode()
    check = loopback_80(redirector.port, clock)

    error = fail(check, clock)

    assert error.observed == "more than 10 redirects"
    assert len(redirector.requests) == 11


# --- redirect mode: following a redirect to Object Storage ---------------------------------------

OBJECTS = "objectstorage.us-phoenix-1.oraclecloud.com"
PAR_PATH = f"/p/par-token/n/ns/b/acme-challenges/o{PATH}"


def mapped(redirector: Redirector, resolve: dict[tuple[str, int], tuple[str, int]], clock):
    return HttpSelfCheck(
        port=redirector.port,
        connect_host="127.0.0.1",
        resolve=resolve,
        policy=ONE_TRY,
        clock=clock,
    )


def test_a_redirect_to_a_mapped_address_is_followed_on_its_port(redirector, target, clock):
    redirector.location = f"http://{OBJECTS}:9999{PAR_PATH}"

    verify(mapped(redirector, {(OBJECTS, 9999): ("127.0.0.1", target.port)}, clock), clock)

    assert redirector.requests == [(f"{NAME}:{redirector.port}", PATH)]
    assert target.requests == [(f"{OBJECTS}:9999", PAR_PATH)]  # Host keeps the URL's name


def test_mapped_hosts_match_case_insensitively(redirector, target, clock):
    redirector.location = f"http://ObjectStorage.US-Phoenix-1.OracleCloud.com:9999{PAR_PATH}"

    verify(mapped(redirector, {(OBJECTS.upper(), 9999): ("127.0.0.1", target.port)}, clock), clock)

    assert len(target.requests) == 1


def test_a_redirect_to_https_is_followed_without_validating_the_certificate(
    redirector, tls_target, clock
):
    server, sni = tls_target
    redirector.location = f"https://{OBJECTS}{PAR_PATH}"  # port 443, a certificate for localhost

    verify(mapped(redirector, {(OBJECTS, 443): ("127.0.0.1", server.port)}, clock), clock)

    assert server.requests == [(OBJECTS, PAR_PATH)]
    assert sni == [OBJECTS]


def test_a_mapping_does_not_open_other_ports(redirector, target, clock):
    redirector.location = f"http://{OBJECTS}:9998{PAR_PATH}"

    error = fail(mapped(redirector, {(OBJECTS, 9999): ("127.0.0.1", target.port)}, clock), clock)

    assert error.observed == (
        f"redirect to http://{OBJECTS}:9998{PAR_PATH}, which the CA will not follow (80/443 only)"
    )
    assert target.requests == []


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1/x", "https://[::1]/x", "http://10.0.0.1:80/x"],
    ids=["ipv4", "ipv6", "ipv4-port-80"],
)
def test_a_redirect_to_an_ip_address_is_reported(redirector, clock, location):
    redirector.location = location

    error = fail(checker(redirector.port, clock, ONE_TRY), clock)

    refusal = "which the CA will not follow (no IP addresses)"
    assert error.observed == f"redirect to {location}, {refusal}"


def test_a_redirect_to_an_invalid_port_is_reported(redirector, clock):
    redirector.location = f"http://{OBJECTS}:99999/x"

    error = fail(checker(redirector.port, clock, ONE_TRY), clock)

    assert error.observed.endswith("which the CA will not follow (80/443 only)")


@pytest.mark.parametrize(
    ("served", "observed"),
    [
        (None, "HTTP 404"),
        (b"stale", "HTTP 200 with a body that is not the key authorization (5 bytes)"),
    ],
    ids=["missing", "wrong-body"],
)
def test_a_failure_after_a_redirect_names_the_url_that_answered(
    redirector, target, clock, served, observed
):
    """A deleted or expired PAR answers 404: the report names the Object Storage URL."""
    redirector.location = f"http://{OBJECTS}:9999{PAR_PATH}"
    if served is None:
        target.status = 404
    else:
        target.body = served

    error = fail(mapped(redirector, {(OBJECTS, 9999): ("127.0.0.1", target.port)}, clock), clock)

    assert error.url == f"http://{NAME}:{redirector.port}{PATH}"
    assert error.observed == f"{observed} from http://{OBJECTS}:9999{PAR_PATH}"
    assert error.url in str(error)
    assert f"http://{OBJECTS}:9999{PAR_PATH}" in str(error)


def test_a_dead_redirect_target_names_it(redirector, clock):
    redirector.location = f"http://{OBJECTS}:9999{PAR_PATH}"

    error = fail(mapped(redirector, {(OBJECTS, 9999): ("127.0.0.1", free_port())}, clock), clock)

    assert error.observed == f"ConnectionRefusedError fetching http://{OBJECTS}:9999{PAR_PATH}"


# --- url_for ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("port", "url"),
    [
        (80, f"http://{NAME}/.well-known/acme-challenge/{TOKEN}"),
        (8080, f"http://{NAME}:8080/.well-known/acme-challenge/{TOKEN}"),
        (443, f"http://{NAME}:443/.well-known/acme-challenge/{TOKEN}"),
    ],
)
def test_url_for_omits_only_port_80(port, url):
    assert HttpSelfCheck(port=port).url_for(NAME, TOKEN) == url
