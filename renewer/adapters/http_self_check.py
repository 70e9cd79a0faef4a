"""http-01 self-check: fetch the token URL through the public path before asking the CA.

A failed validation at the CA counts against the account (Let's Encrypt: 5 failures per
identifier per hour, and a pause after many in a row); a failed self-check costs nothing. So we
fetch ``http://<name>/.well-known/acme-challenge/<token>`` exactly as the CA would (port 80,
redirects followed up to 10 deep to ports 80/443) and only answer the challenge once it serves
the key authorization.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import urllib.parse
from dataclasses import dataclass

from renewer.clock import Clock, SystemClock
from renewer.errors import SelfCheckFailed

logger = logging.getLogger(__name__)

CHALLENGE_PATH = "/.well-known/acme-challenge/"
_MAX_REDIRECTS = 10  # Let's Encrypt follows at most 10 redirects
_SCHEMES = ("http", "https")
_REDIRECT_PORTS = (None, 80, 443)  # None: the scheme's default port
_MAX_BODY = 8192  # a key authorization is ~90 bytes; never read an unbounded body


@dataclass(frozen=True, slots=True)
class SelfCheckPolicy:
    """How hard to try: ``tries`` fetches, waiting ``interval``, doubling up to ``max_interval``.

    Defaults mirror cert-manager (a handful of passes, seconds apart) while staying well inside
    one function invocation.
    """

    tries: int = 5
    interval: float = 0.5
    max_interval: float = 2.0
    timeout: float = 5.0


class HttpSelfCheck:
    """``ChallengeSelfCheck`` over plain HTTP, as the CA's validator sees it.

    Args:
        port: the port the CA connects to (80 in production; the sandbox's LB port in tests).
        connect_host: connect here instead of resolving the name (the sandbox routes every name
            to loopback); the ``Host`` header still carries the name.
        policy: retry bounds.
        clock: for waiting between tries.

    """

    def __init__(
        self,
        *,
        port: int = 80,
        connect_host: str | None = None,
        policy: SelfCheckPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._port = port
        self._connect_host = connect_host
        self._policy = policy or SelfCheckPolicy()
        self._clock = clock or SystemClock()

    def url_for(self, dns_name: str, token: str) -> str:
        """The URL the CA will fetch for ``token``."""
        netloc = dns_name if self._port == 80 else f"{dns_name}:{self._port}"  # noqa: PLR2004
        return f"http://{netloc}{CHALLENGE_PATH}{token}"

    def verify(self, dns_name: str, token: str, key_authorization: str, *, deadline: float) -> None:
        """See :class:`renewer.ports.ChallengeSelfCheck`."""
        url = self.url_for(dns_name, token)
        wait = self._policy.interval
        observed = "not tried before the deadline"
        for attempt in range(1, self._policy.tries + 1):
            if self._clock.monotonic() >= deadline:
                break
            observed = self._fetch_once(url, key_authorization)
            if not observed:
                logger.debug("self-check ok url=%s attempt=%d", url, attempt)
                return
            logger.info("self-check retry url=%s attempt=%d observed=%s", url, attempt, observed)
            if attempt < self._policy.tries:
                self._clock.sleep(min(wait, max(0.0, deadline - self._clock.monotonic())))
                wait = min(wait * 2, self._policy.max_interval)
        raise SelfCheckFailed(url, observed)

    def _fetch_once(self, url: str, expected: str) -> str:
        """One fetch with redirects; '' on success, otherwise what was observed."""
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                status, location, body = self._get(current, first_hop=current == url)
            except (OSError, http.client.HTTPException) as exc:
                return f"{type(exc).__name__} fetching {current}"
            if status in (301, 302, 303, 307, 308) and location:
                current = urllib.parse.urljoin(current, location)
                target = urllib.parse.urlsplit(current)
                if target.scheme not in _SCHEMES or target.port not in _REDIRECT_PORTS:
                    return f"redirect to {current}, which the CA will not follow (80/443 only)"
                continue
            if status != 200:  # noqa: PLR2004
                return f"HTTP {status}"
            # RFC 8555 section 8.3: trailing whitespace in the body is ignored by the CA.
            text = body.decode("utf-8", "replace").rstrip()
            if text != expected:
                return f"HTTP 200 with a body that is not the key authorization ({len(body)} bytes)"
            return ""
        return f"more than {_MAX_REDIRECTS} redirects"

    def _get(self, url: str, *, first_hop: bool) -> tuple[int, str | None, bytes]:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        timeout = self._policy.timeout
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            # The CA does not validate certificates when it follows a redirect to HTTPS
            # (Let's Encrypt's http-01 rules); neither do we, so the self-check predicts the
            # CA's result. Nothing secret is sent; the body is compared to a value we hold.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            connection = http.client.HTTPSConnection(
                host, parts.port or 443, timeout=timeout, context=context
            )
        else:
            connection = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
        if first_hop and self._connect_host is not None:
            connection.sock = socket.create_connection(
                (self._connect_host, parts.port or self._port), timeout=timeout
            )
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request("GET", path or "/", headers={"Host": parts.netloc})
            response = connection.getresponse()
            body = response.read(_MAX_BODY)
            return response.status, response.getheader("Location"), body
        finally:
            connection.close()
