r"""Load Balancer data plane: real loopback sockets that behave like the emulated listeners.

The control plane (:mod:`sandbox.oci_emulator.load_balancer`) decides what each load balancer
looks like; this service makes it answer traffic.

Sockets
-------
Every listener port of every load balancer gets one listening socket on ``127.0.0.1`` at a free
port (backlog 512: ACME validators open ~30 connections at once). The mapping is published with
``LoadBalancer.publish_port`` so ``port_map()`` answers ``{lb_id: {listener_port: local_port}}``.
Listeners of one load balancer that share a port share the socket and are told apart by the
``Host`` header (HTTP) and by SNI (TLS), as virtual hosts.

One background thread (``oci-dataplane``) accepts connections and, every ``reconcile_interval``
(50 ms), calls ``settle_all()`` and, for each load balancer whose ``config_version`` changed,
opens sockets for new listener ports and closes those no listener uses any more. A port that
keeps a listener keeps its socket and local port. Each accepted connection is served by its own
short-lived thread. :meth:`DataPlane.stop` closes the listening sockets (unpublishing them),
shuts down every open client and backend connection and joins every thread.

Each connection reads the load balancer's settled configuration when it needs it (a handshake,
a request), so a work request's effect is visible as soon as the work request has SUCCEEDED,
without waiting for the next reconcile pass.

Protocols
---------
* ``HTTP`` and ``HTTP2`` listeners: HTTP/1.1 with keep-alive (``HTTP2`` is served as HTTP/1.1;
  no ALPN is offered). The listener is chosen by the ``Host`` header among the listeners of the
  port, then the request goes through, in order:

  1. ``CONTROL_ACCESS_USING_HTTP_METHODS`` rules of its rule sets (``statusCode``, default 405);
  2. ``REDIRECT`` rules: ``responseCode`` (default 302) and a ``Location`` built from
     ``redirectUri`` (tokens ``{protocol}`` ``{host}`` ``{port}`` ``{path}`` ``{query}``, ``\``
     escapes; a null field keeps the request's value, ``""`` path or query drops it);
  3. the routing policy: rules in order, the first whose condition holds forwards to its
     ``FORWARD_TO_BACKENDSET`` backend set;
  4. the path route set;
  5. ``defaultBackendSetName``.

  Forwarding tries the backend set's backends in order and uses the first that accepts a TCP
  connection within ``connect_timeout``; ``offline`` and ``drain`` backends are skipped and
  ``backup`` backends are tried only after every other one. The request goes out as HTTP/1.1
  with ``Connection: close``, hop-by-hop headers removed and the OCI forwarding headers set
  (``X-Forwarded-For`` appended, ``X-Forwarded-Host``, ``X-Forwarded-Port`` = the listener's
  port, ``X-Forwarded-Proto``, ``X-Real-IP``); the response is streamed back (length-delimited,
  re-chunked, or until close). No usable backend, or a backend that fails before answering:
  **502 Bad Gateway**, as OCI answers when a backend set has no healthy backend. There is no
  404 of the load balancer's own: every request has a route, since ``defaultBackendSetName`` is
  required and the control plane keeps references valid. A request that arrives while its
  listener is being removed gets 503 and the connection is closed.
  ``ADD``/``EXTEND``/``REMOVE`` request and response header rules are applied (they cannot touch
  the forwarding headers or ``Host``).
* TLS (a listener with ``sslConfiguration``): terminated here. The certificate is chosen per
  handshake by SNI among the port's listeners (no SNI, or no match: the port's default listener)
  and read with ``listener_certificate`` at that moment (the chain sent is exactly the bundle's
  ``publicCertificate``, never its ``caCertificate``); an ``ssl.SSLContext`` per certificate
  (keyed by the SHA-256 of chain and key) is cached, so a new certificate is served from the
  first handshake after its work request SUCCEEDED. A listener whose certificate cannot be
  resolved fails the handshake (``handshake_failure`` alert). The decrypted traffic is then
  handled exactly like plain traffic.
* Protocols and cipher suites (:mod:`sandbox.oci_emulator.cipher_suites`, sources there and in
  docs/oci-emulator.md): a port speaks exactly its SSL listeners' ``protocols`` (the control
  plane keeps them equal per port; none named: TLSv1.2 only). The SNI-chosen listener's cipher
  suite (``cipherSuiteName``; none: ``oci-default-ssl-cipher-suite-v1``; custom suites from the
  load balancer's ``sslCipherSuites``) is the OpenSSL cipher list of its certificate's context,
  so a certificate whose key no enabled cipher can use fails the handshake
  (``no shared cipher``), as OCI's does: an ECDSA certificate behind the default suite serves
  no TLS 1.2 client. TLS 1.3 is offered only when the protocols name it and every SSL listener
  of the port has a suite with a TLS 1.3 cipher; its ciphersuites are OpenSSL's defaults
  (Python cannot set them), and they serve any key type. OpenSSL selects the cipher list of the
  context the SNI callback installs, and the version from the context the handshake began with
  (checked by tests/contract/test_cipher_suites.py).
* ``TCP`` listeners: bytes are relayed both ways to the first reachable backend of the default
  backend set (TLS terminated first when the listener has an ``sslConfiguration``).
* ``GRPC`` listeners get no socket.

Routing policy conditions (``conditionLanguageVersion`` V1)
-----------------------------------------------------------
``all(c, ...)``, ``any(c, ...)``, and comparisons ``<attribute> [not] <op> <value>`` with ``op``
one of ``eq`` / ``=``, ``sw`` (starts with), ``ew`` (ends with); ``value`` is ``'text'`` or
``(i 'text')`` (case-insensitive). Attributes: ``http.request.url.path``,
``http.request.headers[<key>]`` (optionally followed by ``[<index>]``),
``http.request.url.query[<key>]``, ``http.request.cookies[<key>]``. Existence:
``<key> [not] in (http.request.headers | http.request.url.query | http.request.cookies)``.

Assumptions (not documented OCI facts)
--------------------------------------
* Virtual-host choice follows the documented hostname priority (exact, then the longest
  ``*``-prefixed wildcard, then the longest ``*``-suffixed one); the ``Host`` header or SNI is
  compared without its port, case-insensitively. With no match the port's default listener is the
  first one without hostnames, else the first one configured.
* After TLS, requests are routed by ``Host`` among all listeners of the port, like plain HTTP
  (the SNI only picks the certificate).
* ``REDIRECT`` rules and path routes are chosen with the path-route priority: an
  ``EXACT_MATCH``, else the longest ``FORCE_LONGEST_PREFIX_MATCH``, else the first matching
  ``PREFIX_MATCH`` / ``SUFFIX_MATCH`` in configuration order. A redirect rule with several
  conditions matches when all do and ranks by its first. Paths are compared percent-decoded.
* ``{host}`` is the ``Host`` header without its port (the local address when absent); ``{port}``
  is the ``Host`` header's port, else the listener's port. The ``Location`` omits the port when
  it is the scheme's default.
* Routing-policy comparisons hold when any value of the attribute matches; ``not`` negates the
  whole comparison, so ``not eq`` holds when the header/parameter is absent. Header names are
  always case-insensitive; the ``Host`` header is compared as sent (with its port, if any).
  A condition that does not parse never matches (logged).
* A backend is "healthy" when it accepts a TCP connection now; health checkers, load-balancing
  policies, weights, session persistence, ``maxConnections``, session resumption and peer
  verification are not emulated (nor cipher suites towards backends). Backend sets with an
  ``sslConfiguration`` are reached over TLS without certificate verification.
* Response header rules apply to every response of the listener (forwarded, redirects, errors).
  ``ADD_*_HEADER`` replaces a header of that name; ``EXTEND_*_HEADER_VALUE`` changes only a
  header that is present. ``ALLOW``, ``HTTP_HEADER`` and ``IP_BASED_MAX_CONNECTIONS`` rules are
  ignored.
* ``Host`` is forwarded as the client sent it (the backend's address when absent); idle
  connections (client or backend) are closed after the listener's
  ``connectionConfiguration.idleTimeout``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import http.server
import logging
import re
import selectors
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.oci_emulator import cipher_suites
from sandbox.oci_emulator.core import Route
from sandbox.oci_emulator.load_balancer import LoadBalancer
from sandbox.oci_emulator.server import Emulator

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
T = TypeVar("T")

SERVED_PROTOCOLS = ("HTTP", "HTTP2", "TCP")  # GRPC listeners get no socket
TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
# Not copied from one side to the other: hop-by-hop fields (RFC 9110 section 7.6.1), and the
# framing and expectation fields this proxy sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
# Set by the load balancer; rule sets cannot change them [DOC Balance/Reference/httpheaders.htm].
FORWARDING_HEADERS = frozenset(
    {
        "host",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
EXACT, LONGEST_PREFIX, PREFIX, SUFFIX = (
    "EXACT_MATCH",
    "FORCE_LONGEST_PREFIX_MATCH",
    "PREFIX_MATCH",
    "SUFFIX_MATCH",
)
CHUNK = 64 * 1024
MAX_CONTEXTS = 64


# ---------------------------------------------------------------------------------------------
# Virtual hosts.


def host_name(host: str) -> str:
    """``Host`` header or SNI value -> lower-case name without port or trailing dot."""
    host = host.strip()
    if host.startswith("["):  # [IPv6]:port
        end = host.find("]")
        name = host[1:end] if end != -1 else host
    elif host.count(":") == 1:
        name = host.split(":", 1)[0]
    else:
        name = host
    return name.rstrip(".").lower()


def host_port(host: str) -> int | None:
    """The port of a ``Host`` header value, or None."""
    tail = host.rsplit("]", 1)[-1] if host.startswith("[") else host
    if tail.count(":") != 1:
        return None
    port = tail.rsplit(":", 1)[1]
    return int(port) if port.isdigit() else None


def hostname_rank(pattern: str, name: str) -> tuple[int, int] | None:
    """How well a virtual hostname matches ``name`` (lower is better), or None.

    Exact names first, then the longest ``*``-prefixed wildcard, then the longest ``*``-suffixed.
    """
    pattern = pattern.lower()
    if "*" not in pattern:
        return (0, 0) if pattern == name else None
    if pattern.startswith("*"):
        suffix = pattern[1:]
        if name.endswith(suffix) and len(name) > len(suffix):
            return (1, -len(pattern))
        return None
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        if name.startswith(prefix) and len(name) > len(prefix):
            return (2, -len(pattern))
    return None


def choose_listener(listeners: Sequence[JSON], hostnames: JSON, name: str) -> JSON:
    """The listener (of one port) serving ``name``; see the module docstring for the rules."""
    best: JSON | None = None
    best_rank: tuple[int, int] | None = None
    for listener in listeners:
        for hostname_name in listener["hostnameNames"]:
            pattern = (hostnames.get(hostname_name) or {}).get("hostname")
            rank = hostname_rank(pattern, name) if pattern and name else None
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = listener, rank
    if best is not None:
        return best
    return next((item for item in listeners if not item["hostnameNames"]), listeners[0])


def listeners_on(config: JSON | None, port: int) -> list[JSON]:
    """The served listeners of ``port``, in configuration order."""
    if config is None:
        return []
    return [
        listener
        for listener in config["listeners"].values()
        if listener["port"] == port and listener["protocol"] in SERVED_PROTOCOLS
    ]


# ---------------------------------------------------------------------------------------------
# Requests as rules see them.


@dataclass(frozen=True, slots=True)
class RequestView:
    """One HTTP request, as conditions, rules and redirects read it."""

    method: str
    raw_path: str  # as sent, without the query
    query: str  # as sent, without "?"
    headers: tuple[tuple[str, str], ...]
    scheme: str  # "http" | "https"
    listener_port: int
    client_ip: str
    local_ip: str = "127.0.0.1"

    @classmethod
    def parse(
        cls,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        *,
        scheme: str,
        listener_port: int,
        client_ip: str,
        local_ip: str = "127.0.0.1",
    ) -> RequestView:
        """Split a request target (origin or absolute form) into path and query."""
        parts = urlsplit(target) if "://" in target.split("?", 1)[0] else None
        if parts is not None:
            raw_path, query = parts.path or "/", parts.query
        else:
            raw_path, _, query = target.partition("?")
        return cls(
            method, raw_path, query, tuple(headers), scheme, listener_port, client_ip, local_ip
        )

    @property
    def path(self) -> str:
        """The percent-decoded path."""
        return unquote(self.raw_path)

    def header_values(self, name: str) -> list[str]:
        """Every value of a header (names are case-insensitive)."""
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    @property
    def host(self) -> str:
        """The ``Host`` header as sent ("" when absent)."""
        values = self.header_values("host")
        return values[0].strip() if values else ""

    @property
    def host_name(self) -> str:
        """The ``Host`` header without its port, lower-case."""
        return host_name(self.host)

    @property
    def request_port(self) -> int:
        """The port of the request URI: the ``Host`` header's, else the listener's."""
        return host_port(self.host) or self.listener_port

    def query_pairs(self) -> list[tuple[str, str]]:
        """Decoded query parameters, in order."""
        return parse_qsl(self.query, keep_blank_values=True)

    def cookie_pairs(self) -> list[tuple[str, str]]:
        """Cookies of every ``Cookie`` header, in order."""
        pairs = []
        for header in self.header_values("cookie"):
            for item in header.split(";"):
                name, sep, value = item.strip().partition("=")
                if sep and name:
                    pairs.append((name, value))
        return pairs


# ---------------------------------------------------------------------------------------------
# Routing-policy conditions (V1): parsed once into predicates.

Predicate = Callable[[RequestView], bool]


class ConditionError(ValueError):
    """A routing-policy condition this emulator cannot parse."""


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<number>\d+)"
    r"|(?P<word>[A-Za-z_][\w.\-]*)|(?P<punct>[()\[\],=]))"
)
_MAPS = ("http.request.headers", "http.request.url.query", "http.request.cookies")
_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "eq": str.__eq__,
    "=": str.__eq__,
    "sw": str.startswith,
    "ew": str.endswith,
}


@dataclass(frozen=True, slots=True)
class _Literal:
    text: str
    insensitive: bool

    def fold(self, value: str) -> str:
        return value.lower() if self.insensitive else value

    @property
    def folded(self) -> str:
        return self.fold(self.text)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    text = text.rstrip()
    position = 0
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None or found.lastgroup is None:
            raise ConditionError(f"unexpected text at {position}: {text[position:][:20]!r}")
        kind = found.lastgroup
        value = found.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        position = found.end()
    tokens.append(("end", ""))
    return tokens


def _pairs_of(source: str, view: RequestView) -> list[tuple[str, str]]:
    if source == "http.request.headers":
        return list(view.headers)
    if source == "http.request.url.query":
        return view.query_pairs()
    return view.cookie_pairs()


def _lookup(source: str, key: _Literal, view: RequestView) -> list[str]:
    # Header names are case-insensitive whatever the condition says.
    fold = str.lower if source == "http.request.headers" or key.insensitive else (lambda s: s)
    wanted = fold(key.text)
    return [value for name, value in _pairs_of(source, view) if fold(name) == wanted]


class _Parser:
    """Recursive descent over the tokens of one condition."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.position + ahead, len(self.tokens) - 1)]

    def take(self, kind: str, value: str | None = None) -> str:
        token_kind, token_value = self.peek()
        if token_kind != kind or (value is not None and token_value.lower() != value):
            expected = value or kind
            raise ConditionError(f"expected {expected!r}, found {token_value or token_kind!r}")
        self.position += 1
        return token_value

    def accept(self, kind: str, value: str) -> bool:
        token_kind, token_value = self.peek()
        if token_kind == kind and token_value.lower() == value:
            self.position += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.expression()
        self.take("end")
        return predicate

    def expression(self) -> Predicate:
        kind, value = self.peek()
        if kind == "word" and value.lower() in ("any", "all") and self.peek(1) == ("punct", "("):
            self.position += 2
            parts = [self.expression()]
            while self.accept("punct", ","):
                parts.append(self.expression())
            self.take("punct", ")")
            if value.lower() == "any":
                return lambda view: any(part(view) for part in parts)
            return lambda view: all(part(view) for part in parts)
        return self.comparison()

    def literal(self) -> _Literal:
        if self.accept("punct", "("):
            self.take("word", "i")
            text = self.take("string")
            self.take("punct", ")")
            return _Literal(text, insensitive=True)
        return _Literal(self.take("string"), insensitive=False)

    def comparison(self) -> Predicate:
        kind, _ = self.peek()
        if kind == "string" or (kind == "punct" and self.peek() == ("punct", "(")):
            return self.existence()
        values = self.attribute()
        negate = self.accept("word", "not")
        operator_kind, operator = self.peek()
        test = _OPERATORS.get(operator.lower()) if operator_kind in ("word", "punct") else None
        if test is None:
            raise ConditionError(f"unknown operator {operator!r}")
        self.position += 1
        literal = self.literal()

        def compare(view: RequestView) -> bool:
            hit = any(test(literal.fold(value), literal.folded) for value in values(view))
            return hit != negate

        return compare

    def existence(self) -> Predicate:
        key = self.literal()
        negate = self.accept("word", "not")
        self.take("word", "in")
        self.take("punct", "(")
        source = self.take("word")
        if source not in _MAPS:
            raise ConditionError(f"{source!r} is not a map attribute")
        self.take("punct", ")")
        return lambda view: bool(_lookup(source, key, view)) != negate

    def attribute(self) -> Callable[[RequestView], list[str]]:
        name = self.take("word")
        if name == "http.request.url.path":
            return lambda view: [view.path]
        if name not in _MAPS:
            raise ConditionError(f"unknown attribute {name!r}")
        self.take("punct", "[")
        key = self.literal()
        self.take("punct", "]")
        index: int | None = None
        if self.accept("punct", "["):
            index = int(self.take("number"))
            self.take("punct", "]")

        def values(view: RequestView) -> list[str]:
            found = _lookup(name, key, view)
            if index is None:
                return found
            return found[index : index + 1]

        return values


def parse_condition(text: str) -> Predicate:
    """Compile a V1 routing-policy condition; ConditionError when unsupported or malformed."""
    return _Parser(text).parse()


@lru_cache(maxsize=512)
def _compiled(text: str) -> Predicate | None:
    try:
        return parse_condition(text)
    except ConditionError as exc:
        logger.warning("data plane: routing condition %r never matches: %s", text, exc)
        return None


# ---------------------------------------------------------------------------------------------
# Path matching, redirects and the routing decision.


def path_matches(operator: str, value: str, path: str) -> bool:
    """One PATH condition / path route against a (decoded) request path."""
    if operator == EXACT:
        return path == value
    if operator in (LONGEST_PREFIX, PREFIX):
        return path.startswith(value)
    if operator == SUFFIX:
        return path.endswith(value)
    return False


def best_path_match(matches: Sequence[tuple[str, str, T]]) -> T | None:
    """Among matching ``(operator, value, item)``: exact, longest forced prefix, else the first."""
    for operator, _, item in matches:
        if operator == EXACT:
            return item
    longest: tuple[int, T] | None = None
    for operator, value, item in matches:
        if operator == LONGEST_PREFIX and (longest is None or len(value) > longest[0]):
            longest = (len(value), item)
    if longest is not None:
        return longest[1]
    return matches[0][2] if matches else None


def expand(template: str, tokens: dict[str, str]) -> str:
    """Replace ``{token}``s; a backslash makes the next character literal."""
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char == "\\" and i + 1 < len(template):
            out.append(template[i + 1])
            i += 2
            continue
        if char == "{":
            end = template.find("}", i)
            if end != -1 and template[i + 1 : end] in tokens:
                out.append(tokens[template[i + 1 : end]])
                i = end + 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


def redirect_location(uri: JSON | None, view: RequestView) -> str:
    """The ``Location`` of a REDIRECT rule's ``redirectUri`` for this request."""
    uri = uri or {}
    tokens = {
        "protocol": view.scheme,
        "host": view.host_name or view.local_ip,
        "port": str(view.request_port),
        "path": view.raw_path,
        "query": view.query,
    }
    protocol = uri.get("protocol")
    scheme = (expand(protocol, tokens) if protocol else view.scheme).lower()
    host = expand(uri["host"], tokens) if uri.get("host") is not None else tokens["host"]
    port = uri["port"] if uri.get("port") is not None else view.request_port
    path = expand(uri["path"], tokens) if uri.get("path") is not None else view.raw_path
    if uri.get("query") is None:
        query = f"?{view.query}" if view.query else ""
    else:
        parts = [p for p in expand(uri["query"], tokens).lstrip("?").split("&") if p]
        query = "?" + "&".join(parts) if parts else ""
    default_port = {"http": 80, "https": 443}.get(scheme)
    netloc = host if port == default_port else f"{host}:{port}"
    return f"{scheme}://{netloc}{path}{query}"


@dataclass(frozen=True, slots=True)
class Answer:
    """The load balancer answers itself (redirect, access control)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Forward:
    """Proxy the request to a backend set."""

    backend_set: str


def rules_of(config: JSON, listener: JSON) -> list[JSON]:
    """Every rule of the listener's rule sets, in order."""
    rule_sets = config["ruleSets"]
    return [
        item
        for name in listener["ruleSetNames"]
        for item in rule_sets.get(name, {}).get("items", [])
    ]


def decide(config: JSON, listener: JSON, view: RequestView) -> Answer | Forward:
    """What the listener does with a request (order in the module docstring)."""
    rules = rules_of(config, listener)
    for rule in rules:
        if rule["action"] == "CONTROL_ACCESS_USING_HTTP_METHODS":
            allowed = rule.get("allowedMethods") or []
            if view.method not in allowed:
                return Answer(rule.get("statusCode") or 405, (("Allow", ", ".join(allowed)),))
    redirects = [
        (rule["conditions"][0]["operator"], rule["conditions"][0]["attributeValue"], rule)
        for rule in rules
        if rule["action"] == "REDIRECT"
        and rule["conditions"]
        and all(
            path_matches(c.get("operator", ""), c["attributeValue"], view.path)
            for c in rule["conditions"]
        )
    ]
    redirect = best_path_match(redirects)
    if redirect is not None:
        location = redirect_location(redirect.get("redirectUri"), view)
        return Answer(redirect.get("responseCode") or 302, (("Location", location),))
    policy = config["routingPolicies"].get(listener.get("routingPolicyName") or "")
    for rule in (policy or {}).get("rules", []):
        predicate = _compiled(rule["condition"])
        if predicate is not None and predicate(view):
            for action in rule["actions"]:
                if action["name"] == "FORWARD_TO_BACKENDSET":
                    return Forward(action["backendSetName"])
    route_set = config["pathRouteSets"].get(listener.get("pathRouteSetName") or "")
    routes = [
        (route["pathMatchType"]["matchType"], route["path"], route["backendSetName"])
        for route in (route_set or {}).get("pathRoutes", [])
    ]
    matched = [entry for entry in routes if path_matches(entry[0], entry[1], view.path)]
    backend_set = best_path_match(matched)
    return Forward(backend_set or listener["defaultBackendSetName"])


def edit_headers(
    headers: Iterable[tuple[str, str]], rules: Iterable[JSON], kind: str
) -> list[tuple[str, str]]:
    """Apply the ``ADD``/``EXTEND``/``REMOVE`` rules of ``kind`` ("REQUEST" or "RESPONSE")."""
    edited = list(headers)
    for rule in rules:
        action = rule["action"]
        name = str(rule.get("header") or "")
        same = name.lower()
        if action == f"ADD_HTTP_{kind}_HEADER":
            edited = [h for h in edited if h[0].lower() != same] + [(name, rule["value"])]
        elif action == f"EXTEND_HTTP_{kind}_HEADER_VALUE":
            prefix, suffix = rule.get("prefix") or "", rule.get("suffix") or ""
            edited = [(k, f"{prefix}{v}{suffix}" if k.lower() == same else v) for k, v in edited]
        elif action == f"REMOVE_HTTP_{kind}_HEADER":
            edited = [h for h in edited if h[0].lower() != same]
    return edited


def backend_candidates(backend_set: JSON) -> list[JSON]:
    """Backends to try, in order: the usable primaries, then the usable backups."""
    usable = [b for b in backend_set["backends"] if not b.get("offline") and not b.get("drain")]
    return [b for b in usable if not b.get("backup")] + [b for b in usable if b.get("backup")]


# ---------------------------------------------------------------------------------------------
# TLS.


def port_protocols(config: JSON, secure: Sequence[JSON]) -> tuple[str, ...]:
    """The TLS versions a port's handshakes may use (see "Protocols and cipher suites").

    Its SSL listeners' protocols (TLSv1.2 when none are named); TLSv1.3 only when every one
    of those listeners has a suite with a TLS 1.3 cipher. When that leaves nothing, the
    protocols stay as named and the SNI callback refuses the handshake (``serves_anything``).
    """
    named: set[str] = set()
    tls13 = True
    for listener in secure:
        ssl_configuration = listener["sslConfiguration"]
        named.update(cipher_suites.protocols_of(ssl_configuration))
        ciphers = cipher_suites.suite_ciphers(config, ssl_configuration.get("cipherSuiteName"))
        tls13 = tls13 and cipher_suites.speaks_tls13(ciphers)
    usable = {p for p in named if p != "TLSv1.3" or tls13} or named  # else: refused by SNI
    return tuple(p for p in cipher_suites.PROTOCOLS if p in usable)


def _unverified_client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _CertificateContexts:
    """Server contexts by SHA-256 of (chain, key); thread-safe; cleared when it grows large."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contexts: dict[str, ssl.SSLContext] = {}

    def get(self, chain: str, key: str, ciphers: str) -> ssl.SSLContext | None:
        """The context serving this chain with these OpenSSL ``ciphers``; None: PEMs do not load.

        The cipher list is the listener's suite (``cipher_suites.openssl_ciphers``): OpenSSL
        selects the cipher from the context the SNI callback installs.
        """
        digest = hashlib.sha256(f"{chain}\0{key}\0{ciphers}".encode()).hexdigest()
        with self._lock:
            cached = self._contexts.get(digest)
        if cached is not None:
            return cached
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers(ciphers)
        # load_cert_chain reads files only; the directory is private (0700) and removed at once.
        with tempfile.TemporaryDirectory(prefix="oci-dataplane-") as directory:
            chain_path, key_path = Path(directory, "chain.pem"), Path(directory, "key.pem")
            chain_path.write_text(chain)
            key_path.write_text(key)
            try:
                context.load_cert_chain(chain_path, key_path)
            except (ssl.SSLError, ValueError, OSError) as exc:
                logger.warning("data plane: certificate does not load: %s", exc)
                return None
        with self._lock:
            if len(self._contexts) >= MAX_CONTEXTS:
                self._contexts.clear()
            self._contexts[digest] = context
        return context


# ---------------------------------------------------------------------------------------------
# Sockets.

CertificateChooser = Callable[["_Port", str], "ssl.SSLContext | None"]


@dataclass(eq=False)
class _Port:
    """One listening socket: a load balancer's listener port."""

    lb_id: str
    port: int
    sock: socket.socket
    certificate_for: CertificateChooser  # (this port, SNI name) -> context, or None

    def __post_init__(self) -> None:
        self._handshake_contexts: dict[tuple[str, ...], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    @property
    def local_port(self) -> int:
        """Where the socket listens."""
        return int(self.sock.getsockname()[1])

    def handshake_context(self, protocols: tuple[str, ...]) -> ssl.SSLContext:
        """The certificate-less context a handshake starts with; its SNI callback swaps it.

        It fixes the TLS versions (``protocols``, already normalised: OpenSSL negotiates the
        version before the SNI callback runs, from this context). A gap (TLSv1 and TLSv1.2
        without TLSv1.1) is served as the range between them.
        """
        with self._lock:
            context = self._handshake_contexts.get(protocols)
            if context is None:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                versions = sorted(TLS_VERSIONS[p] for p in protocols if p in TLS_VERSIONS)
                if {"TLSv1", "TLSv1.1"}.intersection(protocols):
                    context.set_ciphers("ALL:@SECLEVEL=0")  # OpenSSL 3 refuses them otherwise
                if versions:
                    with contextlib.suppress(ValueError):  # a version this OpenSSL refuses
                        context.minimum_version = versions[0]
                        context.maximum_version = versions[-1]
                context.sni_callback = self._choose_certificate
                self._handshake_contexts[protocols] = context
            return context

    def _choose_certificate(
        self, connection: ssl.SSLObject, server_name: str, _: ssl.SSLContext
    ) -> int | None:
        try:
            context = self.certificate_for(self, server_name or "")  # None: no SNI sent
        except Exception:
            logger.exception("data plane: choosing a certificate failed")
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        if context is None:
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        connection.context = context
        return None


@dataclass(frozen=True, slots=True)
class _Site:
    """What a connection's handler needs: the data plane, its port and the scheme."""

    dataplane: DataPlane
    port: _Port
    scheme: str
    local_ip: str


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _shutdown(sock: socket.socket) -> None:
    """Unblock whoever reads ``sock`` (a raw shutdown: an SSLSocket's state is left alone)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class DataPlane:
    """Serves every emulated load balancer's listeners on loopback (see the module docstring).

    Registered after the load balancer; ``Emulator.start()`` calls :meth:`start` and
    ``Emulator.stop()`` calls :meth:`stop`. The class attributes are the tunables (seconds).
    """

    name = "dataplane"
    backlog = 512
    reconcile_interval = 0.05
    connect_timeout = 1.0
    handshake_timeout = 5.0
    join_timeout = 5.0

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._lock = threading.Lock()  # guards _thread, _open and _workers
        # Owned by whoever reconciles: start() before the thread runs, the thread, stop() after.
        self._ports: dict[tuple[str, int], _Port] = {}
        self._versions: dict[str, int] = {}
        self._selector: selectors.BaseSelector | None = None
        self._waker: tuple[socket.socket, socket.socket] | None = None  # stop() wakes select()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._open: set[socket.socket] = set()  # client and backend connections
        self._workers: set[threading.Thread] = set()
        self._certificates = _CertificateContexts()
        # {(lb_id, listener port): loopback port} from the fixture's "dataPlanePorts".
        self._pinned: dict[tuple[str, int], int] = {}

    # ------------------------------------------------------------------ service protocol

    def routes(self) -> list[Route]:
        """No API: the data plane only listens on its own sockets."""
        return []

    def seed(self, fixture: dict[str, Any]) -> None:
        """Read ``"dataPlanePorts"``: ``{lb_id: {"<listener port>": <loopback port>}}``.

        Listeners come from the load balancers' configuration; this only fixes where a
        listener port will be served, for a listener that does not exist yet (a test's CA
        must be told port 80's address before the renewer creates that listener). Any other
        port binds a free one.
        """
        for lb_id, ports in (fixture.get("dataPlanePorts") or {}).items():
            for port, local in ports.items():
                self._pinned[(str(lb_id), int(port))] = int(local)

    def start(self) -> None:
        """Open every listener's socket now, then keep them in step in the background."""
        with self._lock:
            if self._thread is not None:
                return
            self._stopping.clear()
            self._selector = selectors.DefaultSelector()
            self._waker = socket.socketpair()
            self._selector.register(self._waker[0], selectors.EVENT_READ, None)
            self._reconcile()
            self._thread = threading.Thread(target=self._run, name="oci-dataplane", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Close every socket, unpublish every port and join every thread; safe to call twice."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._stopping.set()
        if self._waker is not None:
            with contextlib.suppress(OSError):
                self._waker[1].send(b"\0")
        thread.join(timeout=self.join_timeout)
        for key in list(self._ports):
            self._close_port(key)
        self._versions.clear()
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._waker is not None:
            for end in self._waker:
                _close(end)
            self._waker = None
        with self._lock:
            connections, workers = list(self._open), list(self._workers)
        for sock in connections:
            _shutdown(sock)
        deadline = time.monotonic() + self.join_timeout
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))

    def control_plane(self) -> LoadBalancer | None:
        """The emulated Load Balancing service, if registered."""
        service = self.emulator.services.get("loadbalancer")
        return service if isinstance(service, LoadBalancer) else None

    # ------------------------------------------------------------------ reconciling

    def _run(self) -> None:
        selector = self._selector
        if selector is None:
            return
        next_pass = time.monotonic() + self.reconcile_interval
        while not self._stopping.is_set():
            for key, _ in selector.select(max(0.0, next_pass - time.monotonic())):
                if key.data is not None:  # else the waker: stop() was called
                    self._accept(cast("_Port", key.data))
            if time.monotonic() >= next_pass:
                try:
                    self._reconcile()
                except Exception:
                    logger.exception("data plane: reconciling failed")
                next_pass = time.monotonic() + self.reconcile_interval

    def _reconcile(self) -> None:
        """Open and close sockets so they match every load balancer's listener ports."""
        lb = self.control_plane()
        if lb is None:
            return
        lb.settle_all()
        ids = set(lb.load_balancer_ids())
        for lb_id in sorted(ids):
            version = lb.config_version(lb_id)
            if self._versions.get(lb_id) == version:
                continue
            wanted = {
                listener["port"]
                for listener in lb.listeners(lb_id).values()
                if listener["protocol"] in SERVED_PROTOCOLS
            }
            if self._sync(lb, lb_id, wanted):
                self._versions[lb_id] = version
        for key in [key for key in self._ports if key[0] not in ids]:
            self._close_port(key)
        for lb_id in set(self._versions) - ids:
            del self._versions[lb_id]

    def _sync(self, lb: LoadBalancer, lb_id: str, wanted: set[int]) -> bool:
        """Make ``lb_id``'s sockets those of ``wanted``; False when one could not be opened."""
        have = {port for owner, port in self._ports if owner == lb_id}
        for port in have - wanted:
            self._close_port((lb_id, port))
        complete = True
        for port in sorted(wanted - have):
            try:
                self._open_port(lb, lb_id, port)
            except OSError:
                logger.exception("data plane: cannot listen for %s port %d", lb_id, port)
                complete = False
        return complete

    def _open_port(self, lb: LoadBalancer, lb_id: str, port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self._pinned.get((lb_id, port), 0)))
            sock.listen(self.backlog)
            sock.settimeout(0.0)  # non-blocking: the selector accepts
        except OSError:
            sock.close()
            raise
        served = _Port(lb_id, port, sock, self._certificate_for)
        self._ports[(lb_id, port)] = served
        if self._selector is not None:
            self._selector.register(sock, selectors.EVENT_READ, served)
        lb.publish_port(lb_id, port, served.local_port)
        logger.debug("data plane: %s port %d is 127.0.0.1:%d", lb_id, port, served.local_port)

    def _close_port(self, key: tuple[str, int]) -> None:
        served = self._ports.pop(key)
        if self._selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(served.sock)
        _close(served.sock)
        lb = self.control_plane()
        if lb is not None:
            lb.publish_port(key[0], key[1], None)

    # ------------------------------------------------------------------ connections

    def _accept(self, served: _Port) -> None:
        while True:
            try:
                conn, address = served.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.warning("data plane: accept failed on port %d: %s", served.port, exc)
                return
            worker = threading.Thread(
                target=self._serve_connection,
                args=(conn, address, served),
                name=f"oci-dataplane-{served.port}",
                daemon=True,
            )
            with self._lock:
                self._open.add(conn)
                self._workers.add(worker)
            worker.start()

    def track(self, sock: socket.socket) -> None:
        """Count ``sock`` among the connections :meth:`stop` shuts down."""
        with self._lock:
            self._open.add(sock)
        if self._stopping.is_set():
            _shutdown(sock)

    def release(self, sock: socket.socket) -> None:
        """Close a tracked connection."""
        with self._lock:
            self._open.discard(sock)
        _close(sock)

    def _serve_connection(
        self, conn: socket.socket, address: tuple[str, int], served: _Port
    ) -> None:
        streams = [conn]  # the TLS socket joins it: wrapping detaches ``conn``
        try:
            conn.settimeout(self.handshake_timeout)
            self._serve(conn, address, served, streams)
        except OSError as exc:  # resets, timeouts, failed handshakes (ssl.SSLError)
            logger.debug("data plane: connection from %s ended: %s", address, exc)
        except Exception:
            logger.exception("data plane: connection from %s failed", address)
        finally:
            for stream in streams:
                self.release(stream)
            with self._lock:
                self._workers.discard(threading.current_thread())

    def _serve(
        self,
        conn: socket.socket,
        address: tuple[str, int],
        served: _Port,
        streams: list[socket.socket],
    ) -> None:
        """Serve one client connection: TLS first when the port's listeners have SSL."""
        lb = self.control_plane()
        config = lb.current(served.lb_id) if lb else None
        listeners = listeners_on(config, served.port)
        if config is None or not listeners:
            return
        default = choose_listener(listeners, config["hostnames"], "")
        local_ip = str(conn.getsockname()[0])
        stream = conn
        secure = [listener for listener in listeners if listener["sslConfiguration"]]
        if secure:
            context = served.handshake_context(port_protocols(config, secure))
            stream = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            streams.append(stream)
            self.track(stream)
            stream.do_handshake()
        stream.settimeout(float(default["connectionConfiguration"]["idleTimeout"]))
        site = _Site(self, served, "https" if secure else "http", local_ip)
        if default["protocol"] == "TCP":
            self._relay(stream, site, default["defaultBackendSetName"])
        else:
            _HttpHandler(stream, address, site)

    def _certificate_for(self, served: _Port, server_name: str) -> ssl.SSLContext | None:
        """The context of the certificate the SNI-chosen listener references right now."""
        lb = self.control_plane()
        config = lb.current(served.lb_id) if lb else None
        secure = [item for item in listeners_on(config, served.port) if item["sslConfiguration"]]
        if lb is None or config is None or not secure:
            return None
        listener = choose_listener(secure, config["hostnames"], host_name(server_name))
        material = lb.listener_certificate(served.lb_id, listener["name"])
        if material is None:
            logger.info("data plane: listener %s has no usable certificate", listener["name"])
            return None
        ssl_configuration = listener["sslConfiguration"]
        ciphers = cipher_suites.suite_ciphers(config, ssl_configuration.get("cipherSuiteName"))
        protocols = cipher_suites.protocols_of(ssl_configuration)
        if not cipher_suites.serves_anything(ciphers, protocols):
            logger.info("data plane: listener %s has no cipher for its protocols", listener["name"])
            return None
        return self._certificates.get(*material, cipher_suites.openssl_ciphers(ciphers, protocols))

    def connect_backend(self, config: JSON, backend_set_name: str) -> socket.socket | None:
        """A tracked connection to the first usable backend that accepts one, or None.

        TLS (unverified) when the backend set has an ``sslConfiguration``.
        """
        backend_set = config["backendSets"].get(backend_set_name)
        if backend_set is None:
            return None
        for backend in backend_candidates(backend_set):
            address = (backend["ipAddress"], int(backend["port"]))
            try:
                sock = socket.create_connection(address, timeout=self.connect_timeout)
            except OSError:
                continue
            self.track(sock)
            if backend_set["sslConfiguration"] is None:
                return sock
            try:
                secure = _unverified_client_context().wrap_socket(sock)
            except OSError:
                self.release(sock)
                continue
            self.track(secure)
            return secure
        return None

    def _relay(self, client: socket.socket, site: _Site, backend_set: str) -> None:
        """TCP listener: pump bytes between the client and a backend until both sides end."""
        lb = self.control_plane()
        config = lb.current(site.port.lb_id) if lb else None
        if config is None:
            return
        backend = self.connect_backend(config, backend_set)
        if backend is None:
            return
        try:
            backend.settimeout(client.gettimeout())
            _pump(client, backend, client.gettimeout())
        finally:
            self.release(backend)


def _receive(sock: socket.socket) -> bytes:
    data = sock.recv(CHUNK)
    if isinstance(sock, ssl.SSLSocket):  # decrypted bytes select() cannot see
        while data and sock.pending():
            data += sock.recv(sock.pending())
    return data


def _pump(a: socket.socket, b: socket.socket, idle: float | None) -> None:
    """Copy both ways; each EOF is passed on as a half-close; stop when idle for ``idle`` s."""
    peers = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        remaining = 2
        while remaining:
            ready = selector.select(idle)
            if not ready:
                return
            for key, _ in ready:
                source = cast("socket.socket", key.fileobj)
                data = _receive(source)
                if data:
                    peers[source].sendall(data)
                    continue
                selector.unregister(source)
                remaining -= 1
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(peers[source], socket.SHUT_WR)


# ---------------------------------------------------------------------------------------------
# HTTP.


def _read_chunked(stream: BinaryIO) -> bytes:
    """A chunked request body, decoded (trailers dropped); ValueError when malformed."""
    body = bytearray()
    while True:
        size = int(stream.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += stream.read(size)
        stream.readline(65537)


def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while data := response.read1(CHUNK):
        yield data


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 on one client connection (plain or decrypted), request after request."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def __init__(self, stream: socket.socket, address: tuple[str, int], site: _Site) -> None:
        self.site = site
        # BaseHTTPRequestHandler never reads ``server``; the whole connection is served here.
        super().__init__(stream, address, cast("socketserver.BaseServer", None))

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Debug level only."""
        logger.debug("data plane: " + format, *args)  # noqa: G003 - the stdlib's format string

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.send_error(400, "Malformed request body")
            return
        site = self.site
        lb = site.dataplane.control_plane()
        config = lb.current(site.port.lb_id) if lb else None
        listeners = listeners_on(config, site.port.port)
        if config is None or not listeners:  # the listener went away meanwhile
            self.close_connection = True
            self._answer(Answer(503), [])
            return
        view = RequestView.parse(
            self.command,
            self.path,
            [(str(k), str(v)) for k, v in self.headers.items()],
            scheme=site.scheme,
            listener_port=site.port.port,
            client_ip=str(self.client_address[0]),
            local_ip=site.local_ip,
        )
        listener = choose_listener(listeners, config["hostnames"], view.host_name)
        rules = rules_of(config, listener)
        decision = decide(config, listener, view)
        if isinstance(decision, Answer):
            self._answer(decision, rules)
        else:
            self._forward(config, decision.backend_set, view, body, rules)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle  # noqa: N815

    def _read_body(self) -> bytes:
        if "chunked" in str(self.headers.get("Transfer-Encoding", "")).lower():
            return _read_chunked(cast("BinaryIO", self.rfile))
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        size = int(length)
        if size < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(size)

    def _answer(self, answer: Answer, rules: Sequence[JSON]) -> None:
        """A response the load balancer makes itself (redirect, 405, 502, 503)."""
        reason = self.responses.get(answer.status, ("",))[0]
        body = b""
        if answer.status >= 400:
            body = f"<html><body><h1>{answer.status} {reason}</h1></body></html>\n".encode()
        headers = [*answer.headers, ("Date", formatdate(usegmt=True))]
        if body:
            headers.append(("Content-Type", "text/html"))
        headers = edit_headers(headers, rules, "RESPONSE")
        headers.append(("Content-Length", str(len(body))))
        self._send_head(status=answer.status, reason=reason, headers=headers)
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_head(self, *, status: int, reason: str, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _forward(
        self, config: JSON, backend_set: str, view: RequestView, body: bytes, rules: Sequence[JSON]
    ) -> None:
        dataplane = self.site.dataplane
        sock = dataplane.connect_backend(config, backend_set)
        if sock is None:
            self._answer(Answer(502), rules)
            return
        try:
            self._exchange(sock, view, body, rules)
        finally:
            dataplane.release(sock)

    def _exchange(
        self, sock: socket.socket, view: RequestView, body: bytes, rules: Sequence[JSON]
    ) -> None:
        """Send the request on ``sock`` and relay the answer (502 if none comes)."""
        host, port = sock.getpeername()[:2]
        conn = http.client.HTTPConnection(host, port)
        conn.sock = sock
        sock.settimeout(self.connection.gettimeout())
        target = view.raw_path + (f"?{view.query}" if view.query else "")
        try:
            conn.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
            for name, value in forwarded_headers(view, rules, f"{host}:{port}"):
                conn.putheader(name, value)
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Connection", "close")
            conn.endheaders(body or None)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            logger.info("data plane: backend %s:%s failed: %s", host, port, exc)
            self._answer(Answer(502), rules)
            return
        try:
            self._relay_response(response, rules)
        finally:
            response.close()

    def _relay_response(self, response: http.client.HTTPResponse, rules: Sequence[JSON]) -> None:
        """Status and headers, then the body as it arrives (re-chunked, by length or to EOF)."""
        status = response.status
        bodiless = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        chunked = "chunked" in (response.getheader("Transfer-Encoding") or "").lower()
        length = None if chunked else response.getheader("Content-Length")
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        headers = edit_headers(headers, rules, "RESPONSE")
        rechunk = False
        if length is not None:
            headers.append(("Content-Length", length))
        elif bodiless:
            pass
        elif chunked and self.request_version == "HTTP/1.1":
            headers.append(("Transfer-Encoding", "chunked"))
            rechunk = True
        else:
            self.close_connection = True  # the body ends when the connection does
        self._send_head(status=status, reason=response.reason, headers=headers)
        if bodiless:
            return
        expected, sent = response.length, 0  # length: what is left to read per Content-Length
        try:
            for data in _chunks(response):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if rechunk else data)
                sent += len(data)
        except (OSError, http.client.HTTPException):
            self.close_connection = True  # the backend died mid-body: the client sees the end
            return
        if expected is not None and sent < expected:
            self.close_connection = True  # the backend closed early (read1 does not raise)
            return
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")


def forwarded_headers(
    view: RequestView, rules: Sequence[JSON], backend: str
) -> list[tuple[str, str]]:
    """The request headers a backend gets: end-to-end ones, rule edits, forwarding headers."""
    named_in_connection = {
        token.strip().lower()
        for value in view.header_values("connection")
        for token in value.split(",")
    }
    end_to_end = [
        (k, v)
        for k, v in view.headers
        if k.lower() not in HOP_BY_HOP and k.lower() not in named_in_connection
    ]
    headers = [
        (k, v)
        for k, v in edit_headers(end_to_end, rules, "REQUEST")
        if k.lower() not in FORWARDING_HEADERS
    ]
    headers += [
        ("Host", view.host or backend),
        ("X-Forwarded-For", ", ".join([*view.header_values("x-forwarded-for"), view.client_ip])),
        ("X-Forwarded-Proto", view.scheme),
        ("X-Forwarded-Port", str(view.listener_port)),
        ("X-Real-IP", view.client_ip),
    ]
    if view.host:
        headers.append(("X-Forwarded-Host", view.host))
    return headers
