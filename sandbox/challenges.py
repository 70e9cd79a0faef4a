"""An in-memory http-01 challenge store and the HTTP server that serves it on loopback.

This is the sandbox stand-in for "Object Storage bucket + token server behind the LB's port 80":
the engine ``present``s key authorizations into an :class:`InMemoryChallengeStore`, and the CA's
validator fetches them from a :class:`ChallengeHTTPServer`. The production token server and the
Object Storage store come later; their contract is the same ``ChallengeStore`` port.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections import Counter
from types import TracebackType
from typing import Self

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # fullmatch(): "$" accepts a trailing newline


class InMemoryChallengeStore:
    """``ChallengeStore`` in a dict, thread-safe. Records what happened for assertions.

    ``present`` is idempotent; ``clean_up`` of a missing token is a no-op (the port's contract).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, str] = {}
        self.presented: list[str] = []
        self.cleaned: list[str] = []
        self.fetches: Counter[str] = Counter()

    def present(self, token: str, key_authorization: str) -> None:
        """Publish (idempotent)."""
        with self._lock:
            self._items[token] = key_authorization
            self.presented.append(token)

    def clean_up(self, token: str) -> None:
        """Remove (no-op when absent)."""
        with self._lock:
            self._items.pop(token, None)
            self.cleaned.append(token)

    def get(self, token: str) -> str | None:
        """The key authorization for ``token``, counting the fetch."""
        with self._lock:
            self.fetches[token] += 1
            return self._items.get(token)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve(with_body=True)

    def do_HEAD(self) -> None:
        self._serve(with_body=False)

    def _serve(self, *, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        body = None
        if path.startswith(CHALLENGE_PREFIX):
            if self.server.delay:
                time.sleep(self.server.delay)  # a slow frontend: validation outlasts a poll
            token = path[len(CHALLENGE_PREFIX) :]
            if _TOKEN.fullmatch(token):
                body = self.server.store.get(token)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = body.encode("ascii")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silence the per-request stderr line."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Pebble's validator fetches every token from 3 perspectives at once: 10 names are ~30
    # simultaneous connections. The stdlib default backlog of 5 overflows and stalls validation.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], store: InMemoryChallengeStore) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.delay = 0.0


class ChallengeHTTPServer:
    """Serve an :class:`InMemoryChallengeStore` over HTTP on ``host:port`` (0 = pick a free port).

    Context manager; ``port`` is the bound port once entered. ``delay`` (seconds, default 0)
    holds every token answer back, for tests that need validation to outlast a poll.
    """

    def __init__(
        self, store: InMemoryChallengeStore, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.store = store
        self._server = _Server((host, port), store)
        self.port: int = self._server.server_address[1]
        # serve_forever() notices shutdown() only between polls: 0.5 s by default, which would
        # be most of a one-name issuance's wall time.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def delay(self) -> float:
        """Seconds each token answer is held back."""
        return self._server.delay

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._server.delay = seconds

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
