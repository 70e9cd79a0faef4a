"""``HttpSelfCheck`` against real HTTP servers on loopback, with a :class:`FakeClock` (no waiting).

The token server is the sandbox's :class:`ChallengeHTTPServer`; redirects come from a small
``ThreadingHTTPServer`` defined here. Every server binds port 0 and is closed by its fixture.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from renewer.adapters.http_self_check import HttpSelfCheck, SelfCheckPolicy
from renewer.errors import SelfCheckFailed
from sandbox.challenges import ChallengeHTTPServer, InMemoryChallengeStore
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
    """Answers ``redirects`` GETs with 302 to ``location`` (None: all of them), then 200 ``body``.

    Records (Host header, path) of every request.
    """

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RedirectHandler)
        self.port: int = self.server_address[1]
        self.location = "/"
        self.redirects: int | None = None
        self.body = b""
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
            self.send_response(200)
            body = self.server.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr line."""


class EveryNameOnLoopback(HttpSelfCheck):
    """Connects *every* hop to ``connect_host``:``port``, as if DNS sent every name there.

    ``HttpSelfCheck`` sends only the first hop to ``connect_host``; later hops go to the real
    port 80/443 of the target, which a test cannot serve without privileges. Routing each hop
    here keeps the redirect-following logic (ports, schemes, hop count) under test.
    """

    def _get(self, url: str, *, first_hop: bool) -> tuple[int, str | None, bytes]:
        del first_hop
        return super()._get(url, first_hop=True)


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
    running = Redirector()
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


def free_port() -> int:
    """A port nothing listens on (bound, read back, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    check = EveryNameOnLoopback(
        port=redirector.port, connect_host="127.0.0.1", policy=ONE_TRY, clock=clock
    )

    verify(check, clock)

    assert redirector.requests == [(f"{NAME}:{redirector.port}", PATH)] + [(NAME, PATH)] * 10


@pytest.mark.parametrize("redirects", [11, None], ids=["eleven", "endless"])
def test_more_than_ten_redirects_are_reported(redirector, clock, redirects):
    redirector.location = f"http://{NAME}{PATH}"
    redirector.redirects = redirects
    redirector.body = KEY_AUTHORIZATION.encode()
    check = EveryNameOnLoopback(
        port=redirector.port, connect_host="127.0.0.1", policy=ONE_TRY, clock=clock
    )

    error = fail(check, clock)

    assert error.observed == "more than 10 redirects"
    assert len(redirector.requests) == 11


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
