"""http-01 self-check: fetch the token URL through the public path before asking the CA.

A failed validation at the CA counts against the account (Let's Encrypt: 5 failures per
identifier per hour, and a pause after many in a row); a failed self-check costs nothing. So we
fetch ``http://<name>/.well-known/acme-challenge/<token>`` exactly as the CA would (port 80,
redirects followed up to 10 deep, only to ``http:``/``https:`` on ports 80/443 and never to an
IP address, certificates not validated after a redirect to HTTPS) and only answer the challenge
once it serves the key authorization. Redirect mode relies on this: the load balancer's port-80
listener redirects the challenge path to a pre-authenticated request on the challenge bucket,
and the check follows that redirect to Object Storage as the CA will.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from renewer.adapters import bounded_http
from renewer.clock import Clock, SystemClock
from renewer.deadline import SocketCutoff, cut_at
from renewer.errors import SelfCheckFailed
from renewer.hostnames import is_ip_literal

logger = logging.getLogger(__name__)

CHALLENGE_PATH = "/.well-known/acme-challenge/"
_MAX_REDIRECTS = 10  # Let's Encrypt follows at most 10 redirects
_REDIRECT_PORTS = (80, 443)
_REDIRECT_CODES = (301, 302, 303, 307, 308)
_MAX_BODY = 8192  # a key authorization is ~90 bytes; never read an unbounded body

Address = tuple[str, int]
"""``(host, port)``."""


@dataclass(frozen=True, slots=True)
class SelfCheckPolicy:
    """How hard to try: ``tries`` fetches, waiting ``interval``, doubling up to ``max_interval``.

    ``timeout`` bounds one fetch in total (every hop, connect, TLS and every byte of the answer),
    and no fetch outlasts the caller's deadline. Defaults mirror cert-manager (a handful of
    passes, seconds apart) while staying well inside one function invocation.
    """

    tries: int = 5
    interval: float = 0.5
    max_interval: float = 2.0
    timeout: float = 5.0


class HttpSelfCheck:
    """``ChallengeSelfCheck`` over plain HTTP, as the CA's validator sees it.

    Production needs only the defaults: real DNS, port 80, redirects to ports 80/443. The other
    arguments exist because in the sandbox names and ports are not where they are on the
    Internet.

    Args:
        port: the port the CA connects to (80 in production; the sandbox's LB port in tests).
        connect_host: connect the first hop here instead of resolving the name (the sandbox
            routes every name to loopback); the ``Host`` header still carries the name.
        resolve: ``(host, port)`` as a URL names it (host lower-cased, port explicit or the
            scheme's default) -> the address to connect to instead, for any hop. An address in
            this map is also followed whatever its port: the map lists the sandbox's stand-ins
            for public endpoints (e.g. Object Storage on the emulator's port, where the
            sandbox's CA, Pebble, does follow redirects). ``Host`` and SNI keep the URL's name.
        policy: retry bounds.
        clock: for waiting between tries.

    """

    def __init__(
        self,
        *,
        port: int = 80,
        connect_host: str | None = None,
        resolve: Mapping[Address, Address] | None = None,
        policy: SelfCheckPolicy | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._port = port
        self._connect_host = connect_host
        self._resolve = {(host.lower(), p): target for (host, p), target in (resolve or {}).items()}
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
            now = self._clock.monotonic()
            if now >= deadline:
                break
            observed = self._fetch_once(
                url, key_authorization, until=min(deadline, now + self._policy.timeout)
            )
            if not observed:
                logger.debug("self-check ok url=%s attempt=%d", url, attempt)
                return
            logger.info("self-check retry url=%s attempt=%d observed=%s", url, attempt, observed)
            if attempt < self._policy.tries:
                self._clock.sleep(min(wait, max(0.0, deadline - self._clock.monotonic())))
                wait = min(wait * 2, self._policy.max_interval)
        raise SelfCheckFailed(url, observed)

    def _fetch_once(self, url: str, expected: str, *, until: float) -> str:
        """One fetch with redirects, ended at ``until``; '' on success, else what was observed.

        After a redirect, what was observed names the URL that answered it. Those URLs are the
        ones the load balancer hands to anyone who asks (a redirect mode PAR URL is public by
        construction and reads only key authorizations), so naming them discloses nothing.
        """
        with cut_at(until, monotonic=self._clock.monotonic) as cutoff:
            return self._follow(url, expected, until=until, cutoff=cutoff)

    def _follow(self, url: str, expected: str, *, until: float, cutoff: SocketCutoff) -> str:
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            failure = ""
            if until <= self._clock.monotonic():
                failure = "no time left"
            else:
                try:
                    status, location, body = self._get(
                        current, first_hop=current == url, until=until, cutoff=cutoff
                    )
                except TimeoutError:
                    # The socket timeout is the time left: it ends at the deadline as the cutoff.
                    failure = "no time left"
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    failure = type(exc).__name__
            if cutoff.fired or failure:  # a cut answer may look complete: never trust it
                return (
                    f"no complete answer from {current} within the time allowed"
                    if cutoff.fired or failure == "no time left"
                    else f"{failure} fetching {current}"
                )
            where = "" if current == url else f" from {current}"
            if status in _REDIRECT_CODES and location:
                current = urllib.parse.urljoin(current, location)
                refusal = self._refusal(current)
                if refusal:
                    return f"redirect to {current}, which the CA will not follow ({refusal})"
                continue
            if status != 200:  # noqa: PLR2004
                return f"HTTP {status}{where}"
            # RFC 8555 section 8.3: trailing whitespace in the body is ignored by the CA.
            text = body.decode("utf-8", "replace").rstrip()
            if text != expected:
                return (
                    "HTTP 200 with a body that is not the key authorization"
                    f" ({len(body)} bytes){where}"
                )
            return ""
        return f"more than {_MAX_REDIRECTS} redirects"

    def _refusal(self, url: str) -> str:
        """Why the CA would not follow a redirect to ``url`` ('' when it would).

        Let's Encrypt's http-01 rules: "It only accepts redirects to 'http:' or 'https:', and
        only to ports 80 or 443. It does not accept redirects to IP addresses."
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in bounded_http.DEFAULT_PORTS:
            return "80/443 only"
        host = (parts.hostname or "").lower()
        if is_ip_literal(host):
            return "no IP addresses"
        try:
            port = parts.port or bounded_http.DEFAULT_PORTS[parts.scheme]
        except ValueError:  # a port that is not a number or out of range
            return "80/443 only"
        if port not in _REDIRECT_PORTS and (host, port) not in self._resolve:
            return "80/443 only"
        return ""

    def _address(self, host: str, port: int, *, first_hop: bool) -> Address:
        """Where to connect for ``host``:``port``: the overrides, else the name itself (DNS)."""
        if first_hop and self._connect_host is not None:
            return self._connect_host, port
        return self._resolve.get((host.lower(), port), (host, port))

    def _left(self, until: float) -> float:
        return max(0.001, until - self._clock.monotonic())

    def _get(
        self, url: str, *, first_hop: bool, until: float, cutoff: SocketCutoff
    ) -> tuple[int, str | None, bytes]:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or bounded_http.DEFAULT_PORTS.get(parts.scheme, self._port)
        answer = bounded_http.get(
            url,
            until=until,
            cutoff=cutoff,
            monotonic=self._clock.monotonic,
            context=_unverified_tls(),
            address=self._address(host, port, first_hop=first_hop),
            max_body=_MAX_BODY,
        )
        return answer.status, answer.header("Location"), answer.body


def _unverified_tls() -> ssl.SSLContext:
    """TLS as the CA does it when it follows a redirect to HTTPS: no certificate validation.

    Let's Encrypt's http-01 rules; so the self-check predicts the CA's result. Nothing secret
    is sent, and the body is compared to a value we hold.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
