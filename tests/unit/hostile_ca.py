"""A small real ACME CA on loopback whose every answer a test can replace.

By default it is a well-behaved RFC 8555 server for one account and one order at a time, whose
authorizations are already valid (so no challenge is needed): directory, newNonce, newAccount,
newOrder, authorization, finalize (it really signs the CSR with its own CA key), order,
certificate download and renewalInfo. A test changes what one route answers by putting an
:class:`Answer` (or a function returning one) into :attr:`HostileCA.answers`; an Answer can also
``hang`` (accept and never answer) or ``trickle`` (send a byte every ``trickle`` seconds).
JWS signatures are not checked: the client is under test, not the CA.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.fakes import InMemoryAccountStore


@dataclass
class Answer:
    """What one request gets: status, headers, body; or a peer that hangs or trickles."""

    status: int = 200
    body: bytes | str | object = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    trickle: float | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Route = Callable[[dict[str, Any]], Answer]
"""The decoded JWS payload (or {}) -> the answer."""


class HostileCA:
    """Context manager: ``with HostileCA() as ca: ca.directory_url``."""

    def __init__(self) -> None:
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hostile Test CA")])
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.answers: dict[str, Answer | Route] = {}
        self.requests: list[str] = []
        # How the default finalize signs: a test may swap key, names or validity.
        self.sign_key: Any = None  # None: the CSR's key
        self.sign_names: tuple[str, ...] | None = None  # None: the CSR's names
        self.validity: tuple[timedelta, timedelta] = (timedelta(hours=-1), timedelta(days=90))
        self._cert_pem = ""
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def directory_url(self) -> str:
        return f"{self.base}/dir"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # hanging and trickling handlers end
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- default answers ---

    def default(self, route: str, payload: dict[str, Any]) -> Answer:  # noqa: PLR0911 - one per route
        b = self.base
        json_type = {"Content-Type": "application/json"}
        match route:
            case "dir":
                return Answer(
                    body={
                        "newNonce": f"{b}/nonce",
                        "newAccount": f"{b}/acct",
                        "newOrder": f"{b}/new-order",
                        "renewalInfo": f"{b}/ari/",
                    },
                    headers=json_type,
                )
            case "nonce":
                return Answer(status=204)
            case "acct":
                return Answer(201, {"status": "valid"}, {"Location": f"{b}/acct/1", **json_type})
            case "new-order":
                names = [i["value"] for i in payload.get("identifiers", [])]
                self._names = names
                return Answer(201, self.order("ready"), {"Location": f"{b}/order/1", **json_type})
            case "authz":
                return Answer(
                    body={
                        "identifier": {"type": "dns", "value": self._names[0]},
                        "status": "valid",
                        "challenges": [],
                    },
                    headers=json_type,
                )
            case "finalize":
                csr = x509.load_der_x509_csr(_b64decode(payload["csr"]))
                self._cert_pem = self._sign(csr)
                return Answer(body=self.order("valid"), headers=json_type)
            case "order":
                return Answer(body=self.order("valid"), headers=json_type)
            case "cert":
                return Answer(
                    body=self._cert_pem,
                    headers={"Content-Type": "application/pem-certificate-chain"},
                )
            case "ari":
                now = datetime.now(UTC)
                return Answer(
                    body={
                        "suggestedWindow": {
                            "start": (now + timedelta(days=30)).isoformat(),
                            "end": (now + timedelta(days=31)).isoformat(),
                        }
                    },
                    headers=json_type,
                )
        return Answer(404)

    def order(self, status: str) -> dict[str, Any]:
        b = self.base
        document: dict[str, Any] = {
            "status": status,
            "identifiers": [{"type": "dns", "value": n} for n in getattr(self, "_names", [])],
            "authorizations": [f"{b}/authz/1"],
            "finalize": f"{b}/finalize/1",
        }
        if status == "valid":
            document["certificate"] = f"{b}/cert/1"
        return document

    def _sign(self, csr: x509.CertificateSigningRequest) -> str:
        now = datetime.now(UTC)
        names = self.sign_names
        if names is None:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = tuple(san.value.get_values_for_type(x509.DNSName))
        key = self.sign_key.public_key() if self.sign_key is not None else csr.public_key()
        start, end = self.validity
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + start)
            .not_valid_after(now + end)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(  # RFC 9773's CertID needs it
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
            .sign(self._ca_key, hashes.SHA256())
        )
        return "".join(
            c.public_bytes(serialization.Encoding.PEM).decode() for c in (cert, self.ca_cert)
        )

    # --- HTTP ---

    def _answer(self, route: str, payload: dict[str, Any]) -> Answer:
        self.requests.append(route)
        custom = self.answers.get(route)
        if custom is None:
            return self.default(route, payload)
        return custom(payload) if callable(custom) else custom

    def _handler(self) -> type[BaseHTTPRequestHandler]:  # noqa: C901 - one small server
        ca = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve({})

            def do_HEAD(self) -> None:
                self._serve({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                payload: dict[str, Any] = {}
                try:
                    jws = json.loads(raw)
                    if jws.get("payload"):
                        payload = json.loads(_b64decode(jws["payload"]))
                except (ValueError, AttributeError):
                    pass
                self._serve(payload if isinstance(payload, dict) else {})

            def _serve(self, payload: dict[str, Any]) -> None:
                route = self.path.strip("/").split("/")[0] or "dir"
                answer = ca._answer(route, payload)
                if answer.hang:
                    ca._stop.wait(120)
                    return
                body = answer.payload()
                self.send_response(answer.status)
                headers = {"Replay-Nonce": _nonce(), **answer.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                if answer.trickle is None:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                # No Content-Length: a cut answer would look complete to a careless client.
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for byte in body or b" " * 10_000:
                    if ca._stop.wait(answer.trickle):
                        return
                    try:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    except OSError:
                        return

        return Handler


_counter = iter(range(10**9))


def _nonce() -> str:
    return base64.urlsafe_b64encode(f"nonce-{next(_counter)}-{time.time_ns()}".encode()).decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def accounts() -> InMemoryAccountStore:
    return InMemoryAccountStore()
