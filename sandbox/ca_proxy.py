"""A small real HTTPS proxy in front of one Pebble that can make the CA fail on its side.

Used by the CA-fallback tests (issue 17): the renewer's directory URL is the proxy's, so every
ACME request goes through it. It forwards each request to Pebble unchanged, Host header
included — Pebble builds every URL it hands out (directory, Location, Link) and checks every
JWS ``url`` from the request's Host, so the whole conversation stays on the proxy without
rewriting anything. On demand it answers ``newOrder`` (Pebble's ``/order-plz``) itself, the
way a CA in trouble does:

- ``"503"``: ``503 Service Unavailable`` with an HTML page (a load balancer in front of a CA
  that is down; no problem document);
- ``"rateLimited"``: ``429`` with an RFC 8555 ``rateLimited`` problem document and
  ``Retry-After`` (Let's Encrypt's answer when a limit is reached);
- ``"serverInternal"``: ``500`` with a ``serverInternal`` problem document.

The problem answers carry a fresh ``Replay-Nonce`` taken from Pebble, as a real CA's do
(RFC 8555 section 6.5). ``new_orders`` counts the newOrder requests that reached the proxy.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from sandbox.pebble import Pebble

NEW_ORDER_PATH = "/order-plz"  # Pebble's newOrder endpoint
NONCE_PATH = "/nonce-plz"  # Pebble's newNonce endpoint
FAULTS = ("503", "rateLimited", "serverInternal")
_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


class CaProxy:
    """An HTTPS proxy on a free loopback port in front of ``pebble``. A context manager.

    Attributes: ``directory_url`` (give it to the renewer instead of Pebble's), ``fault``
    (None, or one of :data:`FAULTS`; settable at any time), ``new_orders`` (newOrder requests
    seen, faulted ones included), ``requests`` (per method and first path segment),
    ``retry_after`` (seconds sent with ``rateLimited``).
    """

    def __init__(self, pebble: Pebble, *, retry_after: int = 60) -> None:
        if pebble.tls is None:
            msg = "start Pebble before its proxy"
            raise RuntimeError(msg)
        self.pebble = pebble
        self.fault: str | None = None
        self.retry_after = retry_after
        self.new_orders = 0
        # "METHOD /first-path-segment" -> count, e.g. "GET /draft-ietf-acme-ari-03" (ARI)
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        upstream = urlsplit(pebble.directory_url)
        self._upstream = (upstream.hostname or "localhost", upstream.port or 443)
        self._client_tls = pebble.ssl_context()
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # Pebble's own listener certificate (localhost, 127.0.0.1): trusted like Pebble's.
        server_tls.load_cert_chain(str(pebble.tls.cert), str(pebble.tls.key))
        self._server = _ProxyServer(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._server.daemon_threads = True
        self._server.socket = server_tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self.directory_url = f"https://localhost:{self.port}{upstream.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ used by the handler

    def upstream(self) -> http.client.HTTPSConnection:
        """A connection to Pebble's listener."""
        host, port = self._upstream
        return http.client.HTTPSConnection(host, port, context=self._client_tls, timeout=30)

    def fresh_nonce(self) -> str:
        """A nonce from Pebble's newNonce, for an answer the proxy makes itself."""
        connection = self.upstream()
        try:
            connection.request("HEAD", NONCE_PATH)
            response = connection.getresponse()
            response.read()
            return response.getheader("Replay-Nonce") or ""
        finally:
            connection.close()

    def count(self, method: str, path: str) -> None:
        """Count one request by method and first path segment."""
        segment = "/" + urlsplit(path).path.lstrip("/").split("/", 1)[0]
        with self._lock:
            self.requests[f"{method} {segment}"] += 1

    def count_new_order(self) -> str | None:
        """Count one newOrder request; the fault to answer it with, if any."""
        with self._lock:
            self.new_orders += 1
            return self.fault


class _ProxyServer(ThreadingHTTPServer):
    proxy: CaProxy


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        del format, args  # quiet: the tests read Pebble's log and the renewer's

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.proxy.count(self.command, self.path)
        if self.command == "POST" and urlsplit(self.path).path == NEW_ORDER_PATH:
            fault = self.server.proxy.count_new_order()
            if fault is not None:
                self._fail(fault)
                return
        connection = self.server.proxy.upstream()
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            connection.close()

    def _fail(self, fault: str) -> None:
        if fault == "503":
            page = b"<html><body><h1>503 Service Unavailable</h1></body></html>"
            self._answer(503, "text/html", page, {})
            return
        kind, status = ("rateLimited", 429) if fault == "rateLimited" else (fault, 500)
        problem = {
            "type": f"urn:ietf:params:acme:error:{kind}",
            "detail": "the sandbox's CA proxy says no (a CA-side failure, on purpose)",
            "status": status,
        }
        extra = {"Replay-Nonce": self.server.proxy.fresh_nonce()}
        if kind == "rateLimited":
            extra["Retry-After"] = str(self.server.proxy.retry_after)
        body = json.dumps(problem).encode()
        self._answer(status, "application/problem+json", body, extra)

    def _answer(self, status: int, content_type: str, body: bytes, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
