"""The chain a listener serves is exactly its bundle's ``publicCertificate`` (issue 11 §2).

Fidelity tests through the real ``oci`` SDK and the emulator's TLS data plane: a bundle created
with the full chain (leaf first) as ``publicCertificate`` is served as it is, leaf and
intermediate, and a TLS 1.2 client that verifies against the root alone accepts it; the
``caCertificate`` field is never sent to clients (it is the trust anchor for verify-peer), so a
bundle that carries its intermediate there — what the renewer sent before — serves the leaf
alone, and the same client refuses it. docs/oci-emulator.md, "The chain", gives the sources.

``Pki`` (a root, an intermediate, leaves with the extensions a WebPKI verifier requires) is
shared with the verifier's chain tests.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from oci.load_balancer import models
from OpenSSL import SSL

from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, Clients, RunningEmulator
from tests.contract.lb_fixture import https_listener, load_balancer
from tests.contract.test_load_balancer import update_details_from, work_request_id

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.chainlb"
NAME = "shop.example.com"


# ------------------------------------------------------------------------------------------ PKI


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


@dataclass(frozen=True)
class Leaf:
    certificate: x509.Certificate
    key_pem: str
    intermediate: x509.Certificate
    root: x509.Certificate

    @property
    def leaf_pem(self) -> str:
        return _pem(self.certificate)

    @property
    def intermediate_pem(self) -> str:
        return _pem(self.intermediate)

    @property
    def root_pem(self) -> str:
        return _pem(self.root)

    @property
    def full_chain(self) -> str:
        """Leaf first, then the intermediate: what an ACME CA answers (no root)."""
        return self.leaf_pem + self.intermediate_pem

    def ders(self, *certificates: x509.Certificate) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in certificates]


class Pki:
    """A root and an intermediate CA (P-256) that issue leaves a WebPKI verifier accepts."""

    def __init__(self, label: str = "Chain Test") -> None:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        self._start = now
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca(f"{label} Root", self.root_key, None, None, path_length=1)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._ca(
            f"{label} Intermediate", self.intermediate_key, self.root, self.root_key, path_length=0
        )

    def _ca(
        self,
        name: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate | None,
        issuer_key: ec.EllipticCurvePrivateKey | None,
        *,
        path_length: int,
    ) -> x509.Certificate:
        signer = issuer_key or key
        builder = (
            x509.CertificateBuilder()
            .subject_name(_cn(name))
            .issuer_name(issuer.subject if issuer else _cn(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._start)
            .not_valid_after(self._start + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        return builder.sign(signer, hashes.SHA256())

    def issue(self, *names: str) -> Leaf:
        names = names or (NAME,)
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_cn(names[0]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._start)
            .not_valid_after(self._start + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                False,
            )
            .sign(self.intermediate_key, hashes.SHA256())
        )
        return Leaf(certificate, _key_pem(key), self.intermediate, self.root)


# ----------------------------------------------------------------------------- TLS clients


def served_chain(host: str, port: int, server_name: str = NAME) -> list[bytes]:
    """The DER chain ``host:port`` sends for SNI ``server_name``, as sent (no verification)."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE, lambda *_: True)

    with socket.create_connection((host, port), timeout=5) as raw:
        # pyOpenSSL wants a blocking socket; the kernel's receive timeout bounds each read.
        raw.settimeout(None)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 5, 0))
        connection = SSL.Connection(context, raw)
        connection.set_tlsext_host_name(server_name.encode())
        connection.set_connect_state()
        connection.do_handshake()
        chain = connection.get_peer_cert_chain(as_cryptography=True) or []
    return [c.public_bytes(serialization.Encoding.DER) for c in chain]


def tls12_verified(host: str, port: int, root_file: Path, server_name: str = NAME) -> None:
    """A TLS 1.2 handshake that builds and checks the path to ``root_file``'s root (or raises)."""
    context = ssl.create_default_context(cafile=str(root_file))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2

    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name),
    ):
        pass


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def seed(pki: Pki) -> Leaf:
    return pki.issue()


@pytest.fixture
def fixture_data(seed: Leaf) -> dict[str, Any]:
    lb = load_balancer(
        LB_ID,
        COMPARTMENT,
        name="chain-lb",
        listeners={"https": https_listener(443, "seed")},
        certificates={"seed": {"publicCertificate": seed.full_chain}},
        private_keys={"seed": seed.key_pem},
    )
    return {**BASE_FIXTURE, "load_balancers": [lb]}


@pytest.fixture
def root_file(pki: Pki, tmp_path: Path) -> Path:
    path = tmp_path / "root.pem"
    path.write_text(_pem(pki.root))
    return path


def _wait(clients: Clients, response: Any) -> None:
    wr_id = work_request_id(response)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = clients.load_balancer.get_work_request(wr_id).data.lifecycle_state
        if state in ("SUCCEEDED", "FAILED"):
            assert state == "SUCCEEDED"
            return
        time.sleep(0.02)
    pytest.fail(f"work request {wr_id} did not finish")


def _deploy_bundle(clients: Clients, name: str, **fields: str) -> None:
    """Create bundle ``name`` through the SDK and switch the ``https`` listener to it."""
    _wait(
        clients,
        clients.load_balancer.create_certificate(
            models.CreateCertificateDetails(certificate_name=name, **fields), LB_ID
        ),
    )
    current = clients.load_balancer.get_load_balancer(LB_ID).data.listeners["https"]
    details = update_details_from(current)
    details.ssl_configuration.certificate_name = name
    _wait(clients, clients.load_balancer.update_listener(details, LB_ID, "https"))


def _address(emulator: RunningEmulator) -> tuple[str, int]:
    local = emulator.emulator.services["loadbalancer"].port_map()[LB_ID][443]
    return "127.0.0.1", int(local)


# ------------------------------------------------------------------------------------- tests


def test_public_certificate_is_served_as_it_is_and_ca_certificate_never(
    clients: Clients, emulator: RunningEmulator, pki: Pki, root_file: Path
) -> None:
    fresh = pki.issue()
    _deploy_bundle(
        clients,
        "full",
        public_certificate=fresh.full_chain,
        private_key=fresh.key_pem,
        ca_certificate=fresh.root_pem,  # a verify-peer trust anchor: must not reach clients
    )
    stored = clients.load_balancer.list_certificates(LB_ID).data
    assert {c.certificate_name: c.public_certificate for c in stored}["full"] == fresh.full_chain
    host, port = _address(emulator)
    assert served_chain(host, port) == fresh.ders(fresh.certificate, fresh.intermediate)
    tls12_verified(host, port, root_file)  # the path to the root is complete


def test_an_intermediate_in_ca_certificate_is_not_served(
    clients: Clients, emulator: RunningEmulator, pki: Pki, root_file: Path
) -> None:
    split = pki.issue()
    _deploy_bundle(
        clients,
        "split",
        public_certificate=split.leaf_pem,
        private_key=split.key_pem,
        ca_certificate=split.intermediate_pem,
    )
    host, port = _address(emulator)
    assert served_chain(host, port) == split.ders(split.certificate)
    with pytest.raises(ssl.SSLCertVerificationError):
        tls12_verified(host, port, root_file)


def test_the_served_order_is_the_uploaded_order(
    clients: Clients, emulator: RunningEmulator, pki: Pki
) -> None:
    """Nothing is reordered, dropped or added: the data plane sends what was uploaded."""
    fresh = pki.issue()
    uploaded = fresh.leaf_pem + fresh.intermediate_pem + fresh.root_pem
    other_root = _pem(Pki("Other").root)
    _deploy_bundle(
        clients,
        "with-root",
        public_certificate=uploaded,
        private_key=fresh.key_pem,
        ca_certificate=other_root,
    )
    host, port = _address(emulator)
    assert served_chain(host, port) == fresh.ders(fresh.certificate, fresh.intermediate, fresh.root)
