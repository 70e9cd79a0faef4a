"""Contract tests of the Load Balancer data plane: real loopback sockets driven by the emulated
control plane, changed through the real ``oci`` SDK.

The load balancer under test has an HTTP :80 listener whose routing policy sends ACME challenges
to a "tokens" backend set (a dead backend, then a live one), an HTTP :8080 listener whose rule set
redirects challenges to an Object Storage PAR, two HTTPS listeners sharing :443 (certificate A by
default, certificate B for ``b.example.com`` by SNI), an HTTPS :8443 listener whose bundle has no
key, a TCP :7000 listener and an HTTPS :9443 listener on a Certificates-service certificate.
Backends are small servers on free loopback ports; certificates are generated per run. The last
tests check the routing rules as pure functions.
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from oci.certificates_management import models as cert_models
from oci.load_balancer import models

from sandbox.oci_emulator import dataplane as dp
from sandbox.oci_emulator.dataplane import DataPlane, RequestView
from sandbox.oci_emulator.load_balancer import LoadBalancer
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    Clients,
    RunningEmulator,
    make_clients,
)
from tests.contract.test_load_balancer import (
    ACME_CONDITION,
    ACME_PREFIX,
    REDIRECT_RULE,
    Bundle,
    issue,
    listener,
    state_of,
    with_certificate,
    work_request_id,
)

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.dataplanelb"
SERVICE_CERTIFICATE_ID = "ocid1.certificate.oc1.phx.dataplanecert"
WR_SECONDS = 0.05
TOKEN = f"{ACME_PREFIX}tok-123"
PAR_LOCATION = (
    "https://objectstorage.us-phoenix-1.oraclecloud.com"
    f"/p/PARTOKEN/n/contractns/b/challenges/o{TOKEN}"
)
TIMEOUT = 2.0


# ------------------------------------------------------------------------------------ backends


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers every request with JSON naming the server and describing the request."""

    server: EchoServer
    protocol_version = "HTTP/1.1"

    def _echo(self) -> None:
        if self.path.startswith("/chunked"):
            self._chunked(b"one,", b"two,", b"three")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps(
            {
                "name": self.server.name,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _chunked(self, *parts: bytes) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in parts:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_HEAD = _echo  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.name = name
        self.port = int(self.server_address[1])
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class _Truncating(socketserver.BaseRequestHandler):
    """Promises 100 bytes, sends 3 and hangs up."""

    def handle(self) -> None:
        self.request.recv(65536)
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")


class TruncatingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Truncating)
        self.port = int(self.server_address[1])
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


@dataclass
class Backends:
    challenge: EchoServer
    app: EchoServer
    truncating: TruncatingServer
    dead_port: int  # bound, never listening: connections are refused


@pytest.fixture
def backends() -> Iterator[Backends]:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    servers = Backends(
        EchoServer("challenge"), EchoServer("app"), TruncatingServer(), dead.getsockname()[1]
    )
    yield servers
    servers.challenge.close()
    servers.app.close()
    servers.truncating.close()
    dead.close()


# ------------------------------------------------------------------------------------- fixture


@dataclass(frozen=True)
class Certificates:
    a: Bundle
    b: Bundle
    c: Bundle  # seeded but unused: the listener update switches to it


@pytest.fixture
def certs() -> Certificates:
    return Certificates(issue("a.example.com"), issue("b.example.com"), issue("a.example.com"))


def _forward(backend_set: str) -> list[dict[str, str]]:
    return [{"name": "FORWARD_TO_BACKENDSET", "backendSetName": backend_set}]


# The test certificates are ECDSA: the suite must have ECDSA ciphers (OCI's default has none,
# tests/contract/test_cipher_suites.py) and TLS 1.3 ciphers for the TLSv1.3 tests.
ECDSA_SUITE = "oci-tls-12-13-wider-ssl-cipher-suite-v1"


def _ssl(certificate: str) -> dict[str, Any]:
    return {
        "certificateName": certificate,
        "protocols": ["TLSv1.2", "TLSv1.3"],
        "cipherSuiteName": ECDSA_SUITE,
    }


def dataplane_load_balancer(backends: Backends, certs: Certificates) -> dict[str, Any]:
    def backend(port: int) -> dict[str, Any]:
        return {"ipAddress": "127.0.0.1", "port": port}

    bundles = {"cert-a": certs.a, "cert-b": certs.b, "cert-c": certs.c}
    return {
        "id": LB_ID,
        "compartmentId": COMPARTMENT,
        "workRequestSeconds": WR_SECONDS,
        "listeners": {
            "http": {
                "port": 80,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "routingPolicyName": "acme-routing",
            },
            "redirect": {
                "port": 8080,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "ruleSetNames": ["acme-redirect"],
            },
            "https-a": {
                "port": 443,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "ruleSetNames": ["security-headers"],
                "sslConfiguration": _ssl("cert-a"),
            },
            "https-b": {
                "port": 443,
                "protocol": "HTTP",
                "defaultBackendSetName": "tokens",
                "hostnameNames": ["b"],
                "sslConfiguration": _ssl("cert-b"),
            },
            "keyless": {
                "port": 8443,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "sslConfiguration": _ssl("ca-only"),
            },
            "tcp": {"port": 7000, "protocol": "TCP", "defaultBackendSetName": "app"},
            "https-service-certificate": {
                "port": 9443,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "sslConfiguration": {
                    "certificateIds": [SERVICE_CERTIFICATE_ID],
                    "protocols": ["TLSv1.2", "TLSv1.3"],
                    "cipherSuiteName": ECDSA_SUITE,
                },
            },
        },
        "certificates": {
            **{
                name: {"publicCertificate": bundle.certificate, "caCertificate": bundle.ca}
                for name, bundle in bundles.items()
            },
            "ca-only": {"caCertificate": certs.a.ca},
        },
        "privateKeys": {name: bundle.private_key for name, bundle in bundles.items()},
        "backendSets": {
            "app": {"backends": [backend(backends.app.port)]},
            "tokens": {"backends": [backend(backends.dead_port), backend(backends.challenge.port)]},
            "nowhere": {"backends": [backend(backends.dead_port)]},
            "truncating": {"backends": [backend(backends.truncating.port)]},
        },
        "hostnames": {"b": {"hostname": "b.example.com"}},
        "ruleSets": {
            "acme-redirect": {"items": [REDIRECT_RULE]},
            "security-headers": {
                "items": [
                    {
                        "action": "ADD_HTTP_RESPONSE_HEADER",
                        "header": "Strict-Transport-Security",
                        "value": "max-age=31536000",
                    }
                ]
            },
        },
        "routingPolicies": {
            "acme-routing": {
                "conditionLanguageVersion": "V1",
                "rules": [
                    {"name": "acme", "condition": ACME_CONDITION, "actions": _forward("tokens")},
                    {
                        "name": "broken",
                        "condition": "http.request.url.path eq '/broken'",
                        "actions": _forward("nowhere"),
                    },
                    {
                        "name": "truncated",
                        "condition": "http.request.url.path eq '/truncated'",
                        "actions": _forward("truncating"),
                    },
                ],
            }
        },
    }


@pytest.fixture
def fixture_data(backends: Backends, certs: Certificates) -> dict[str, Any]:
    service_certificate = {
        "id": SERVICE_CERTIFICATE_ID,
        "name": "dataplane-cert",
        "compartment": COMPARTMENT,
        "certificatePem": certs.a.certificate,
        "certChainPem": certs.a.ca,
        "privateKeyPem": certs.a.private_key,
    }
    return {
        **BASE_FIXTURE,
        "load_balancers": [dataplane_load_balancer(backends, certs)],
        "certificates": [service_certificate],
    }


@pytest.fixture
def operator(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Clients:
    return make_clients(emulator, "api_key", tmp_path, monkeypatch)


# ------------------------------------------------------------------------------------- helpers


def control_plane(running: RunningEmulator) -> LoadBalancer:
    lb = running.emulator.services["loadbalancer"]
    assert isinstance(lb, LoadBalancer)
    return lb


def data_plane(running: RunningEmulator) -> DataPlane:
    plane = running.emulator.services["dataplane"]
    assert isinstance(plane, DataPlane)
    return plane


def local_port(running: RunningEmulator, listener_port: int) -> int:
    return control_plane(running).port_map()[LB_ID][listener_port]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


def _exchange(conn: http.client.HTTPConnection, method: str, path: str, **kwargs: Any) -> Answer:
    try:
        conn.request(method, path, **kwargs)
        response = conn.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def get(
    port: int, path: str, host: str = "shop.example.com", method: str = "GET", body: bytes = b""
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    return _exchange(conn, method, path, body=body or None, headers={"Host": host})


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_connect(port: int, sni: str | None) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        return client_context().wrap_socket(raw, server_hostname=sni)
    except BaseException:
        raw.close()
        raise


def served_serial(port: int, sni: str | None) -> int:
    """The serial number of the certificate the listener presents for ``sni``."""
    with tls_connect(port, sni) as sock:
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def serial(bundle: Bundle) -> int:
    return x509.load_pem_x509_certificate(bundle.certificate.encode()).serial_number


def https_get(port: int, path: str, sni: str | None, host: str) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.sock = tls_connect(port, sni)
    return _exchange(conn, "GET", path, headers={"Host": host})


def wait_until(check: Any, what: str, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(0.01)


def succeeded(clients: Clients, response: Any) -> None:
    """Wait (on the real clock) for the work request of ``response`` to SUCCEED."""
    wr_id = work_request_id(response)
    wait_until(lambda: state_of(clients, wr_id) in ("SUCCEEDED", "FAILED"), f"{wr_id} ends")
    assert state_of(clients, wr_id) == "SUCCEEDED"


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


# ----------------------------------------------------------------------------------- sockets


def test_every_served_listener_port_is_published_and_listening(emulator: RunningEmulator) -> None:
    ports = control_plane(emulator).port_map()
    assert set(ports) == {LB_ID}
    assert set(ports[LB_ID]) == {80, 8080, 443, 8443, 7000, 9443}  # https-a, https-b share 443
    assert len(set(ports[LB_ID].values())) == 6
    for port in ports[LB_ID].values():
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


# ------------------------------------------------------------------------------- HTTP routing


def test_routing_policy_sends_challenges_past_a_dead_backend(emulator: RunningEmulator) -> None:
    answer = get(local_port(emulator, 80), TOKEN)
    assert answer.status == 200
    seen = answer.json()
    assert (seen["name"], seen["path"]) == ("challenge", TOKEN)  # the dead backend was skipped
    headers = seen["headers"]
    assert headers["host"] == "shop.example.com"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-real-ip"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == "80"  # the listener's port, not the loopback one
    assert headers["x-forwarded-host"] == "shop.example.com"
    # (i '...'): the condition is case-insensitive.
    assert get(local_port(emulator, 80), TOKEN.upper()).json()["name"] == "challenge"


def test_other_requests_reach_the_default_backend(emulator: RunningEmulator) -> None:
    port = local_port(emulator, 80)
    seen = get(port, "/index.html?x=1").json()
    assert (seen["name"], seen["path"]) == ("app", "/index.html?x=1")
    posted = get(port, "/orders", method="POST", body=b'{"n": 1}').json()
    assert (posted["name"], posted["method"], posted["body"]) == ("app", "POST", '{"n": 1}')
    head = get(port, "/", method="HEAD")
    assert (head.status, head.body) == (200, b"")
    assert int(head.headers["content-length"]) > 0


def test_keep_alive_serves_several_requests_on_one_connection(emulator: RunningEmulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", local_port(emulator, 80), timeout=TIMEOUT)
    try:
        for path in (TOKEN, "/a", TOKEN):
            conn.request("GET", path, headers={"Host": "shop.example.com"})
            response = conn.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["path"] == path
    finally:
        conn.close()


def test_chunked_bodies_are_streamed_both_ways(emulator: RunningEmulator) -> None:
    port = local_port(emulator, 80)
    streamed = get(port, "/chunked")
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert streamed.body == b"one,two,three"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    parts = iter([b'{"n": ', b"1}"])
    posted = _exchange(conn, "POST", "/orders", body=parts, encode_chunked=True)
    assert posted.json()["body"] == '{"n": 1}'  # decoded, sent with a Content-Length


def test_an_http_1_0_client_reads_the_body_until_close(emulator: RunningEmulator) -> None:
    with socket.create_connection(("127.0.0.1", local_port(emulator, 80)), timeout=2) as sock:
        sock.sendall(b"GET /chunked HTTP/1.0\r\nHost: shop.example.com\r\n\r\n")
        received = b""
        while data := sock.recv(65536):
            received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"one,two,three"


def test_x_forwarded_for_is_appended(emulator: RunningEmulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", local_port(emulator, 80), timeout=TIMEOUT)
    answer = _exchange(conn, "GET", "/", headers={"X-Forwarded-For": "203.0.113.7"})
    assert answer.json()["headers"]["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"


def test_no_reachable_backend_is_502(emulator: RunningEmulator) -> None:
    answer = get(local_port(emulator, 80), "/broken")
    assert answer.status == 502
    assert b"502 Bad Gateway" in answer.body


def test_a_backend_that_hangs_up_mid_body_ends_the_client_connection(
    emulator: RunningEmulator,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", local_port(emulator, 80), timeout=TIMEOUT)
    try:
        conn.request("GET", "/truncated")
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()


def test_a_burst_of_validator_connections_is_served(emulator: RunningEmulator) -> None:
    port = local_port(emulator, 80)
    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(lambda i: get(port, f"{TOKEN}-{i}"), range(30)))
    assert {a.status for a in answers} == {200}
    assert {a.json()["name"] for a in answers} == {"challenge"}


# ---------------------------------------------------------------------------------- redirects


def test_redirect_rule_sends_challenges_to_the_par(emulator: RunningEmulator) -> None:
    port = local_port(emulator, 8080)
    answer = get(port, f"{TOKEN}?ignored=1")
    assert answer.status == 302
    assert answer.headers["location"] == PAR_LOCATION  # query "" drops the incoming query
    assert answer.headers["content-length"] == "0"
    assert get(port, "/not-a-challenge").json()["name"] == "app"


# ------------------------------------------------------------------------------------- TLS


def test_sni_chooses_the_certificate_among_listeners_sharing_a_port(
    emulator: RunningEmulator, certs: Certificates
) -> None:
    port = local_port(emulator, 443)
    assert served_serial(port, "b.example.com") == serial(certs.b)
    assert served_serial(port, "B.Example.COM") == serial(certs.b)
    assert served_serial(port, "a.example.com") == serial(certs.a)  # no match: the default
    assert served_serial(port, None) == serial(certs.a)  # no SNI: the default


def test_https_requests_are_routed_by_host_after_tls(emulator: RunningEmulator) -> None:
    port = local_port(emulator, 443)
    on_a = https_get(port, "/", "a.example.com", "a.example.com")
    assert on_a.json()["name"] == "app"
    assert on_a.json()["headers"]["x-forwarded-proto"] == "https"
    assert on_a.json()["headers"]["x-forwarded-port"] == "443"
    assert on_a.headers["strict-transport-security"] == "max-age=31536000"  # https-a's rule set
    on_b = https_get(port, "/", "b.example.com", "b.example.com")
    assert on_b.json()["name"] == "challenge"  # https-b's default backend set
    assert "strict-transport-security" not in on_b.headers


def test_a_listener_without_a_usable_certificate_fails_the_handshake(
    emulator: RunningEmulator,
) -> None:
    with pytest.raises(ssl.SSLError, match=r"HANDSHAKE_FAILURE|handshake failure"):
        tls_connect(local_port(emulator, 8443), "a.example.com").close()


def test_update_listener_switches_the_served_certificate(
    emulator: RunningEmulator, operator: Clients, certs: Certificates
) -> None:
    port = local_port(emulator, 443)
    assert served_serial(port, None) == serial(certs.a)
    details = with_certificate(listener(operator, "https-a", LB_ID), "cert-c")
    succeeded(operator, operator.load_balancer.update_listener(details, LB_ID, "https-a"))
    assert served_serial(port, None) == serial(certs.c)  # the very next handshake
    assert served_serial(port, "b.example.com") == serial(certs.b)
    assert local_port(emulator, 443) == port  # same socket


def test_a_certificates_service_certificate_is_served_at_its_current_version(
    emulator: RunningEmulator, operator: Clients, certs: Certificates
) -> None:
    port = local_port(emulator, 9443)
    assert served_serial(port, None) == serial(certs.a)
    new_version = cert_models.UpdateCertificateByImportingConfigDetails(
        config_type="IMPORTED",
        certificate_pem=certs.c.certificate,
        cert_chain_pem=certs.c.ca,
        private_key_pem=certs.c.private_key,
    )
    operator.certificates_management.update_certificate(
        SERVICE_CERTIFICATE_ID,
        cert_models.UpdateCertificateDetails(certificate_config=new_version),
    )
    assert served_serial(port, None) == serial(certs.c)  # no load balancer work request needed


# ------------------------------------------------------------------------------- TCP


def test_tcp_listener_relays_bytes(emulator: RunningEmulator) -> None:
    with socket.create_connection(("127.0.0.1", local_port(emulator, 7000)), timeout=2) as sock:
        sock.sendall(b"GET /raw HTTP/1.1\r\nHost: tcp.example.com\r\nConnection: close\r\n\r\n")
        received = b""
        while data := sock.recv(65536):
            received += data
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.")
    seen = json.loads(body)
    assert (seen["name"], seen["path"]) == ("app", "/raw")
    assert "x-forwarded-for" not in seen["headers"]  # bytes, not HTTP, are relayed


# ---------------------------------------------------------------- control plane drives sockets


def test_listeners_added_and_deleted_through_the_api_open_and_close_sockets(
    emulator: RunningEmulator, operator: Clients
) -> None:
    lb = control_plane(emulator)
    before = dict(lb.port_map()[LB_ID])
    create = models.CreateListenerDetails(
        name="extra", default_backend_set_name="app", port=9090, protocol="HTTP"
    )
    succeeded(operator, operator.load_balancer.create_listener(create, LB_ID))
    wait_until(lambda: 9090 in lb.port_map()[LB_ID], "port 9090 is published")
    port = lb.port_map()[LB_ID][9090]
    assert get(port, "/extra").json()["name"] == "app"
    assert {k: v for k, v in lb.port_map()[LB_ID].items() if k != 9090} == before  # stable

    succeeded(operator, operator.load_balancer.delete_listener(LB_ID, "extra"))
    wait_until(lambda: 9090 not in lb.port_map()[LB_ID], "port 9090 is withdrawn")
    assert refused(port)


def test_a_virtual_host_may_join_a_port_but_a_second_default_may_not(
    emulator: RunningEmulator, operator: Clients
) -> None:
    client = operator.load_balancer
    hostname = models.CreateHostnameDetails(name="www", hostname="*.example.org")
    succeeded(operator, client.create_hostname(hostname, LB_ID))
    virtual = models.CreateListenerDetails(
        name="www", default_backend_set_name="tokens", port=80, protocol="HTTP",
        hostname_names=["www"],
    )  # fmt: skip
    succeeded(operator, client.create_listener(virtual, LB_ID))
    port = local_port(emulator, 80)
    assert get(port, "/", host="shop.www.example.org").json()["name"] == "challenge"
    assert get(port, "/", host="shop.example.com").json()["name"] == "app"

    second_default = models.CreateListenerDetails(
        name="clash", default_backend_set_name="app", port=80, protocol="HTTP"
    )
    wr_id = work_request_id(client.create_listener(second_default, LB_ID))
    wait_until(lambda: state_of(operator, wr_id) != "IN_PROGRESS", "the clash is settled")
    failed = client.get_work_request(wr_id).data
    assert failed.lifecycle_state == "FAILED"
    assert "port 80" in failed.error_details[0].message


# ------------------------------------------------------------------------------- stop


def test_stop_releases_every_socket_and_thread(emulator: RunningEmulator) -> None:
    plane, lb = data_plane(emulator), control_plane(emulator)
    ports = list(lb.port_map()[LB_ID].values())
    with socket.create_connection(("127.0.0.1", local_port(emulator, 80)), timeout=2) as idle:
        wait_until(
            lambda: any(t.name.startswith("oci-dataplane-") for t in threading.enumerate()),
            "a worker serves the idle connection",
        )
        plane.stop()
        assert idle.recv(1) == b""  # the idle keep-alive connection was closed
    assert lb.port_map() == {}
    assert all(refused(port) for port in ports)
    assert not [t for t in threading.enumerate() if t.name.startswith("oci-dataplane")]
    plane.stop()  # twice is fine


# --------------------------------------------------------------------- rules, as pure functions


def view(path: str = "/", headers: tuple[tuple[str, str], ...] = (), **kw: Any) -> RequestView:
    fields: dict[str, Any] = {"scheme": "http", "listener_port": 80, "client_ip": "192.0.2.1"}
    return RequestView.parse(kw.pop("method", "GET"), path, headers, **{**fields, **kw})


@pytest.mark.parametrize(
    ("condition", "request_view", "expected"),
    [
        (ACME_CONDITION, view(TOKEN), True),
        (ACME_CONDITION, view("/.Well-Known/ACME-challenge/x"), True),
        (ACME_CONDITION, view("/index.html"), False),
        ("http.request.url.path eq '/x'", view("/x"), True),
        ("http.request.url.path eq '/x'", view("/X"), False),
        ("http.request.url.path = (i '/X')", view("/x"), True),
        (
            "any(http.request.url.path sw '/a', http.request.url.path ew '.png')",
            view("/b.png"),
            True,
        ),
        (
            "all(http.request.url.path sw '/a', http.request.url.path ew '.png')",
            view("/b.png"),
            False,
        ),
        (
            "http.request.headers[(i 'host')] eq 'h.example'",
            view(headers=(("Host", "h.example"),)),
            True,
        ),
        (
            "http.request.headers[(i 'Host')] eq (i 'H.EXAMPLE')",
            view(headers=(("host", "h.example"),)),
            True,
        ),
        (
            "http.request.headers[(i 'host')][0] ew '.example'",
            view(headers=(("Host", "h.example"),)),
            True,
        ),
        ("http.request.url.query['department'] eq 'HR'", view("/?department=HR"), True),
        ("http.request.url.query['department'] not eq 'HR'", view("/"), True),
        ("http.request.cookies['c'] eq 'v'", view(headers=(("Cookie", "a=b; c=v"),)), True),
        ("'x-debug' in (http.request.headers)", view(headers=(("X-Debug", "1"),)), True),
        ("'x-debug' not in (http.request.headers)", view(), True),
        (
            "all(any(http.request.url.path sw '/a'), http.request.url.path ew 'z')",
            view("/a/z"),
            True,
        ),
    ],
)
def test_routing_conditions(condition: str, request_view: RequestView, expected: bool) -> None:
    assert dp.parse_condition(condition)(request_view) is expected


@pytest.mark.parametrize(
    "condition", ["", "any(", "http.request.url.path like '/x'", "http.request.body eq 'x'"]
)
def test_unsupported_conditions_are_errors(condition: str) -> None:
    with pytest.raises(dp.ConditionError):
        dp.parse_condition(condition)


def test_hostname_priority_exact_then_leading_then_trailing_wildcard() -> None:
    hostnames = {
        "exact": {"hostname": "app.example.com"},
        "lead": {"hostname": "*.example.com"},
        "longer-lead": {"hostname": "*.app.example.com"},
        "trail": {"hostname": "app.example.*"},
    }
    listeners = [
        {"name": name, "hostnameNames": [name]}
        for name in ("trail", "lead", "longer-lead", "exact")
    ] + [{"name": "default", "hostnameNames": []}]

    def chosen(host: str) -> str:
        return str(dp.choose_listener(listeners, hostnames, dp.host_name(host))["name"])

    assert chosen("app.example.com:8080") == "exact"
    assert chosen("x.app.example.com") == "longer-lead"
    assert chosen("x.example.com") == "lead"
    assert chosen("app.example.org") == "trail"
    assert chosen("other.test") == "default"
    assert chosen("") == "default"
    without_default = listeners[:-1]
    assert dp.choose_listener(without_default, hostnames, "other.test")["name"] == "trail"


@pytest.mark.parametrize(
    ("uri", "request_view", "location"),
    [
        (REDIRECT_RULE["redirectUri"], view(f"{TOKEN}?a=1"), PAR_LOCATION),
        (
            {"protocol": "HTTPS"},
            view("/p?q=1", (("Host", "h.example:8080"),)),
            "https://h.example:8080/p?q=1",
        ),
        (
            {"protocol": "HTTPS", "port": 443},
            view("/p", (("Host", "h.example"),)),
            "https://h.example/p",
        ),
        (
            {"host": "in{host}", "path": "/x{path}", "query": "?lang=en&{query}"},
            view("/v?k=1", (("Host", "h"),)),
            "http://inh/x/v?lang=en&k=1",
        ),
        ({"query": "?lang=en&{query}"}, view("/v", (("Host", "h"),)), "http://h/v?lang=en"),
        (
            {"path": "/e{path}\\{path\\}", "query": ""},
            view("/v?k=1", (("Host", "h"),)),
            "http://h/e/v{path}",
        ),
        (
            {"path": "", "port": 8443, "protocol": "{protocol}"},
            view("/v", (("Host", "h"),), scheme="https"),
            "https://h:8443",
        ),
        (None, view("/v"), "http://127.0.0.1/v"),
    ],
)
def test_redirect_locations(
    uri: dict[str, Any] | None, request_view: RequestView, location: str
) -> None:
    assert dp.redirect_location(uri, request_view) == location


def test_path_match_priority() -> None:
    matches = [
        ("PREFIX_MATCH", "/a", "first-prefix"),
        ("FORCE_LONGEST_PREFIX_MATCH", "/a", "short-forced"),
        ("FORCE_LONGEST_PREFIX_MATCH", "/a/b", "long-forced"),
        ("SUFFIX_MATCH", ".png", "suffix"),
    ]
    assert dp.best_path_match(matches) == "long-forced"
    assert dp.best_path_match([*matches, ("EXACT_MATCH", "/a/b.png", "exact")]) == "exact"
    assert dp.best_path_match([matches[3], matches[0]]) == "suffix"
    assert dp.best_path_match([]) is None


def test_backend_flags() -> None:
    backends = [
        {"name": "backup", "backup": True},
        {"name": "drained", "drain": True},
        {"name": "offline", "offline": True},
        {"name": "primary"},
    ]
    assert [b["name"] for b in dp.backend_candidates({"backends": backends})] == [
        "primary",
        "backup",
    ]
