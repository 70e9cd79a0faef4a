"""The emulator process: one HTTP server for every OCI service we use, plus an admin API.

Every request goes through the same pipeline: route (by method and raw path) -> fault rules ->
signature (401 NotAuthenticated) -> handler (which asks :meth:`Emulator.authorize` once it knows
the target's compartment: 404 NotAuthorizedOrNotFound, as OCI answers for both) -> request log ->
persist the state if the operation changed it. Every answer carries ``opc-request-id`` and exactly
one ``Content-Length``.

The admin API lives under ``/_emulator/`` — a prefix no OCI SDK path uses — and needs no
signature: ``GET state``, ``GET|DELETE requests``, ``GET|POST|DELETE faults``,
``GET operations``, ``POST authorization`` (``{"enabled": true}``), and credentials for the
fixture's principals — ``POST credentials/api-key`` (``{"principal", "publicKeyPem"}``: register
a user's public key) and ``POST credentials/resource-principal`` (``{"principal",
"sessionPublicKeyPem"}`` -> ``{"rpst"}``). Private keys never travel: callers keep them.
"""

from __future__ import annotations

import http.server
import json
import logging
import secrets
import threading
import time
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.oci_emulator import timing
from sandbox.oci_emulator.auth import Authenticator
from sandbox.oci_emulator.core import (
    OciError,
    Principal,
    Reply,
    Request,
    Route,
    Router,
    StateStore,
    not_found,
)
from sandbox.oci_emulator.faults import FaultInjector, FaultRule

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/_emulator/"
MAX_LOG = 10_000


class Service(Protocol):
    """An emulated OCI service. ``seed`` reads its own keys of a fixture (unknown keys ignored)."""

    name: str

    def routes(self) -> list[Route]:
        """Every operation the service answers."""
        ...

    def seed(self, fixture: dict[str, Any]) -> None:
        """Create the fixture's resources of this service."""
        ...


class Authorizer(Protocol):
    """Decides whether a principal may run an operation on a target (IAM policies)."""

    def allows(
        self, principal: Principal, operation: str, compartment_id: str, target: dict[str, str]
    ) -> bool:
        """True when some policy statement grants ``operation`` on ``target``."""
        ...


class Emulator:
    """A running emulator. Use as a context manager, or ``start()``/``stop()``.

    Args:
        state_path: a JSON file the state is saved to after every change and loaded from at
            start, so a killed emulator can be restarted where it was.
        host, port: where to listen (port 0: a free port).
        authorizer: IAM policy engine; consulted only while ``authorization_enabled``.

    """

    def __init__(
        self,
        *,
        state_path: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.state = StateStore(state_path)
        self.router = Router()
        self.authenticator = Authenticator(self.state)
        self.principals: dict[str, Principal] = {}  # by fixture name, for issuing credentials
        self.faults = FaultInjector()
        self.authorizer = authorizer
        self.authorization_enabled = False
        self.services: dict[str, Service] = {}
        self.requests: list[dict[str, Any]] = []
        self._log_lock = threading.Lock()
        self._server = _HttpServer((host, port), self)
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: give it to every SDK client as ``service_endpoint``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ lifecycle

    def register(self, service: Service) -> None:
        """Add a service and its routes."""
        self.services[service.name] = service
        for route in service.routes():
            self.router.add(route)

    def seed(self, fixture: dict[str, Any]) -> None:
        """Create a fixture's resources in every service (skipped when state was loaded).

        The fixture's ``"timing"`` profile (:mod:`sandbox.oci_emulator.timing`) is stored first,
        so every service reads its durations from the state.
        """
        timing.seed(self.state, fixture)
        for service in self.services.values():
            service.seed(fixture)
        self.state.save()

    def start(self) -> Self:
        """Serve in a background thread (loading saved state first, unless already loaded).

        Then every service that has a ``start()`` is started, as ``stop()`` stops them.
        """
        if not self.state.loaded:
            self.state.load()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oci-emulator",
            daemon=True,
        )
        self._thread.start()
        for service in self.services.values():
            start = getattr(service, "start", None)
            if callable(start):
                start()
        return self

    def stop(self) -> None:
        """Stop serving, release hanging requests and the port; safe to call twice."""
        self.faults.stopping.set()
        for service in self.services.values():
            stop = getattr(service, "stop", None)
            if callable(stop):
                stop()
        if self._thread is not None and self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ used by handlers

    def authorize(self, request: Request, *, compartment_id: str, **target: str) -> None:
        """Raise 404 NotAuthorizedOrNotFound unless policies allow the request's operation.

        Handlers call this once they know the target's compartment (and, for buckets and
        objects, ``bucket_name=...``), so "not allowed" and "not there" look alike, as in OCI.
        A service whose "not there" is another error (Object Storage: BucketNotFound) catches
        this and answers its own.
        """
        if not self.authorization_enabled or self.authorizer is None:
            return
        principal = request.principal
        if principal is None or not self.authorizer.allows(
            principal, request.operation, compartment_id, dict(target)
        ):
            raise not_found()

    # ------------------------------------------------------------------ the pipeline

    def handle(self, request: Request) -> Reply:
        """Answer one request (the HTTP layer calls this; tests may too)."""
        if request.raw_path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        found = self.router.match(request.method, request.raw_path)
        if found is None:
            return _error_reply(not_found("resource"))
        route, params = found
        request.params = params
        request.operation = route.operation
        reply = self._dispatch(route, request)
        self._log(request, reply)
        return reply

    def _dispatch(self, route: Route, request: Request) -> Reply:
        action = self.faults.pick(route.operation, request.method, request.raw_path)
        if action is not None:
            if action.latency:
                time.sleep(action.latency)
            if action.hang:
                self.faults.stopping.wait()
                return _error_reply(OciError(503, "ServiceUnavailable", "Emulator stopping"))
            if action.error is not None:
                return _error_reply(action.error)
        try:
            if route.signed:
                request.principal = self.authenticator.authenticate(request)
            with self.state.lock:
                reply = route.handler(request)
                if route.changes_state and reply.status < 400:
                    self.state.save()
        except OciError as exc:
            return _error_reply(exc)
        return reply

    def _log(self, request: Request, reply: Reply) -> None:
        entry = {
            "time": time.time(),
            "request_id": request.request_id,
            "operation": request.operation,
            "method": request.method,
            "path": request.raw_path,
            "query": request.query_string,
            "status": reply.status,
            "principal": request.principal.id if request.principal else None,
            "retry_token": request.header("opc-retry-token"),
        }
        with self._log_lock:
            self.requests.append(entry)
            del self.requests[:-MAX_LOG]

    def operations_called(self, *, mutating_only: bool = False) -> list[str]:
        """Operations in the request log, in order (for "no mutating call was made" tests)."""
        with self._log_lock:
            entries = list(self.requests)
        return [
            e["operation"]
            for e in entries
            if not mutating_only or e["method"] not in ("GET", "HEAD")
        ]

    # ------------------------------------------------------------------ admin API

    def _admin(self, request: Request) -> Reply:
        what = request.raw_path[len(ADMIN_PREFIX) :].strip("/")
        handler = {
            ("GET", "state"): self._admin_state,
            ("GET", "requests"): self._admin_requests,
            ("DELETE", "requests"): self._admin_clear_requests,
            ("GET", "faults"): lambda _: Reply(body=self.faults.rules()),
            ("POST", "faults"): self._admin_add_fault,
            ("DELETE", "faults"): self._admin_clear_faults,
            ("GET", "operations"): lambda _: Reply(body=self.router.operations()),
            ("POST", "authorization"): self._admin_authorization,
            ("POST", "credentials/api-key"): self._admin_api_key,
            ("POST", "credentials/resource-principal"): self._admin_resource_principal,
        }.get((request.method, what))
        if handler is None:
            return _error_reply(not_found("admin resource"))
        try:
            return handler(request)
        except (ValueError, TypeError) as exc:
            return _error_reply(OciError(400, "InvalidParameter", str(exc)))

    def _admin_state(self, _: Request) -> Reply:
        with self.state.lock:
            return Reply(body=json.loads(json.dumps(self.state.data)))

    def _admin_requests(self, _: Request) -> Reply:
        with self._log_lock:
            return Reply(body=list(self.requests))

    def _admin_clear_requests(self, _: Request) -> Reply:
        with self._log_lock:
            self.requests.clear()
        return Reply(status=204)

    def _admin_add_fault(self, request: Request) -> Reply:
        self.faults.add(FaultRule.from_json(request.json_object()))
        return Reply(status=201, body=self.faults.rules())

    def _admin_clear_faults(self, _: Request) -> Reply:
        self.faults.clear()
        return Reply(status=204)

    def _admin_principal(self, body: dict[str, Any]) -> Principal:
        name = str(body.get("principal"))
        if name not in self.principals:
            known = ", ".join(sorted(self.principals)) or "none"
            msg = f"unknown principal {name!r}; the fixture declares: {known}"
            raise ValueError(msg)
        return self.principals[name]

    def _admin_api_key(self, request: Request) -> Reply:
        """Register a public key for a fixture user: ``{"principal", "publicKeyPem"}``."""
        body = request.json_object()
        principal = self._admin_principal(body)
        key_id = self.authenticator.register_api_key(principal, str(body["publicKeyPem"]))
        return Reply(body={"keyId": key_id, "user": principal.id, "tenancy": principal.tenancy})

    def _admin_resource_principal(self, request: Request) -> Reply:
        """Issue an RPST: ``{"principal", "sessionPublicKeyPem", "ttl"?}`` -> ``{"rpst"}``."""
        body = request.json_object()
        principal = self._admin_principal(body)
        key = serialization.load_pem_public_key(str(body["sessionPublicKeyPem"]).encode())
        if not isinstance(key, rsa.RSAPublicKey):
            msg = "sessionPublicKeyPem must be an RSA public key"
            raise TypeError(msg)
        ttl = float(body.get("ttl", 3600))
        return Reply(body={"rpst": self.authenticator.issue_rpst(principal, key, ttl=ttl)})

    def _admin_authorization(self, request: Request) -> Reply:
        self.authorization_enabled = bool(request.json_object().get("enabled"))
        return Reply(body={"enabled": self.authorization_enabled})


def _error_reply(error: OciError) -> Reply:
    return Reply(status=error.status, body={"code": error.code, "message": error.message})


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's session expects
    # Headers and body go out in separate writes; with Nagle on, the second waits for the
    # client's delayed ACK: ~40 ms on every request over a kept-alive connection.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(
            method=self.command,
            raw_path=parts.path,
            query_string=parts.query,
            headers=headers,
            body=self._read_body(headers),
            request_id=headers.get("opc-request-id") or secrets.token_hex(16).upper(),
        )
        try:
            reply = self.server.emulator.handle(request)
        except Exception:  # the emulator must answer, whatever a handler did
            logger.exception("emulator handler crashed for %s %s", self.command, self.path)
            reply = _error_reply(OciError(500, "InternalServerError", "Emulator error"))
        self._write(request, reply)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _write(self, request: Request, reply: Reply) -> None:
        body = reply.encoded()
        self.send_response(reply.status)
        names = {k.lower() for k in reply.headers}
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("opc-request-id", request.request_id)
        if "content-type" not in names and (body or reply.status >= 400):
            self.send_header("Content-Type", reply.content_type)
        # Exactly one Content-Length: urllib3 2.x rejects a duplicate (wire facts 0.4); none on
        # 204/304, which RFC 9110 forbids from carrying one.
        if "content-length" not in names and reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if request.method != "HEAD" and body:
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _serve  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Requests are in the emulator's own request log."""


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # Pebble's validator and load tests open many connections at once

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator
