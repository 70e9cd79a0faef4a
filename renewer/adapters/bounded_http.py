"""One HTTP(S) GET with the standard library, ended by a deadline in total time.

For the requests that need neither the ``acme`` library nor ``requests``: the http-01
self-check and the ACME Renewal Information question a not-due run asks (importing the ACME
stack for two GETs would cost a cold start ~0.1 s). A socket timeout bounds one ``recv``; the
:class:`~renewer.deadline.SocketCutoff` given by the caller shuts the socket down when the
deadline passes, so an answer that trickles in a byte at a time ends there too. A cut answer is
never returned as complete: the caller checks ``cutoff.fired``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from renewer.deadline import SocketCutoff
from renewer.hostnames import is_ip_literal

DEFAULT_PORTS = {"http": 80, "https": 443}

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server sent: status, headers and at most ``max_body`` bytes of body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        """One header's value (case-insensitive), or None."""
        return self.headers.get(name)


def get(
    url: str,
    *,
    until: float,
    cutoff: SocketCutoff,
    monotonic: Callable[[], float],
    context: ssl.SSLContext | None = None,
    address: Address | None = None,
    headers: Mapping[str, str] | None = None,
    max_body: int = 65536,
) -> Answer:
    """GET ``url``; connect, TLS handshake and answer all end by ``until`` (monotonic).

    ``context``: the TLS context for an ``https`` URL (default: the system's trust store, host
    names checked). ``address``: connect there instead of resolving the URL's host (the Host
    header and SNI still name the URL's host). Redirects are not followed.

    Raises:
        OSError / http.client.HTTPException: no complete answer (refused, reset, cut at the
            deadline — then ``cutoff.fired`` is true).
        ValueError: the URL is neither ``http`` nor ``https``.

    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        msg = f"not an http(s) URL: {parts.scheme or 'no scheme'}"
        raise ValueError(msg)
    host = parts.hostname
    port = parts.port or DEFAULT_PORTS[parts.scheme]

    def left() -> float:
        return max(0.001, until - monotonic())

    # The timeout bounds the connect and then the TLS handshake (each one call); the cutoff
    # bounds everything after, however slowly the answer trickles in.
    raw = socket.create_connection(address or (host, port), left())
    cutoff.watch(raw)
    connection = http.client.HTTPConnection(host, port, timeout=left())
    try:
        if parts.scheme == "https":
            tls = context or ssl.create_default_context()
            raw.settimeout(left())
            sni = None if is_ip_literal(host) else host
            connection.sock = tls.wrap_socket(raw, server_hostname=sni)
            cutoff.watch(connection.sock)
        else:
            connection.sock = raw
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        # The Host header as the URL names it (user-info dropped), like any HTTP client.
        connection.request(
            "GET",
            path or "/",
            headers={"Host": parts.netloc.rpartition("@")[2], **(headers or {})},
        )
        response = connection.getresponse()
        body = response.read(max_body)
        return Answer(status=response.status, headers=response.headers, body=body)
    finally:
        connection.close()
        raw.close()
