"""Fidelity of the data plane's protocols and cipher suites, through the real SDK and real TLS.

Sources (docs/oci-emulator.md "Cipher suites and protocols"): the SDK docstrings of
``SSLCipherSuite`` (the predefined suites and their ciphers, which ciphers are TLS 1.3 ones) and
``SSLConfigurationDetails`` (no ``cipherSuiteName``: ``oci-default-ssl-cipher-suite-v1``; no
``protocols``: TLSv1.2; "RSA-based ciphers require RSA certificates and ECDSA-based ciphers
require ECDSA certificates"). Each listener below is reached with a client that offers exactly
what the test names (versions and ciphers), as that listener's clients would.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from oci.load_balancer import models

from sandbox.oci_emulator import cipher_suites
from sandbox.oci_emulator.load_balancer import PREDEFINED_CIPHER_SUITES, LoadBalancer
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, Clients, RunningEmulator
from tests.contract.lb_fixture import https_listener, load_balancer
from tests.contract.test_load_balancer import work_request_id

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.suiteslb"
NAME = "shop.example.com"
TIMEOUT = 5.0
DEFAULT_SUITE = cipher_suites.PREDEFINED["oci-default-ssl-cipher-suite-v1"]
TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _self_signed(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> dict[str, str]:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return {"certificate": pem, "key": _key_pem(key)}


RSA = _self_signed(rsa.generate_private_key(public_exponent=65537, key_size=2048))
ECDSA = _self_signed(ec.generate_private_key(ec.SECP256R1()))


def _listener(port: int, bundle: str, **ssl_fields: Any) -> dict[str, Any]:
    listener = https_listener(port, bundle, cipher_suite=None)
    listener["sslConfiguration"].update(ssl_fields)
    return listener


LISTENERS = {
    "default-rsa": _listener(1443, "rsa"),
    "default-ecdsa": _listener(2443, "ecdsa"),
    "modern-ecdsa": _listener(3443, "ecdsa", cipherSuiteName="oci-modern-ssl-cipher-suite-v1"),
    "custom-rsa": _listener(4443, "rsa", cipherSuiteName="only-aes256"),
    "tls13-ecdsa": _listener(
        5443,
        "ecdsa",
        protocols=["TLSv1.3"],
        cipherSuiteName="oci-tls-13-recommended-ssl-cipher-suite-v1",
    ),
    "tls12-13-default-rsa": _listener(6443, "rsa", protocols=["TLSv1.2", "TLSv1.3"]),
    "tls11-rsa": _listener(
        7443,
        "rsa",
        protocols=["TLSv1.1", "TLSv1.2"],
        cipherSuiteName="oci-compatible-ssl-cipher-suite-v1",
    ),
    "tls13-default-ecdsa": _listener(8443, "ecdsa", protocols=["TLSv1.3"]),
}


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    lb = load_balancer(
        LB_ID,
        COMPARTMENT,
        name="suites-lb",
        listeners=LISTENERS,
        certificates={
            "rsa": {"publicCertificate": RSA["certificate"]},
            "ecdsa": {"publicCertificate": ECDSA["certificate"]},
        },
        private_keys={"rsa": RSA["key"], "ecdsa": ECDSA["key"]},
    )
    lb["sslCipherSuites"] = {"only-aes256": {"ciphers": ["ECDHE-RSA-AES256-GCM-SHA384"]}}
    return {**BASE_FIXTURE, "load_balancers": [lb]}


@dataclass(frozen=True)
class Handshake:
    version: str
    cipher: str
    certificate: str  # PEM of the leaf served


def _port(running: RunningEmulator, listener_port: int) -> int:
    lb = running.emulator.services["loadbalancer"]
    assert isinstance(lb, LoadBalancer)
    return lb.port_map()[LB_ID][listener_port]


def handshake(
    port: int,
    *,
    versions: tuple[ssl.TLSVersion, ssl.TLSVersion] = (TLS12, TLS12),
    ciphers: Sequence[str] | None = None,
) -> Handshake:
    """A client handshake offering exactly ``versions`` and (TLS <= 1.2) ``ciphers``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version, context.maximum_version = versions
    legacy = versions[0] < TLS12
    if ciphers is not None or legacy:
        offered = ":".join(c for c in ciphers or ["ALL"] if c not in cipher_suites.TLS13_CIPHERS)
        context.set_ciphers(f"{offered}:@SECLEVEL=0" if legacy else offered)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        cipher = tls.cipher()
        assert cipher is not None
        pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
        return Handshake(str(tls.version()), cipher[0], pem.decode())


def refused(call: Callable[[], Handshake]) -> str:
    """The alert or error a handshake ends with (fails the test when it succeeds)."""
    with pytest.raises(ssl.SSLError) as caught:
        call()
    return str(caught.value)


# ------------------------------------------------------------------------------ the suite table


def _sdk_suites() -> dict[str, list[str]]:
    """The predefined suites as the SDK's SSLCipherSuite docstring lists them."""
    doc = models.SSLCipherSuite.__doc__ or ""
    suites: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in doc.splitlines():
        header = re.fullmatch(r"\s*\*\s+__(oci-[a-z0-9-]+)__\s*", line)
        if header:
            current = suites.setdefault(header.group(1), [])
            continue
        cipher = re.fullmatch(r'\s*\\?"([A-Za-z0-9_-]+)\\?"\s*', line)
        if cipher and current is not None:
            current.append(cipher.group(1))
        elif line.strip().startswith("__ http"):
            current = None
    return suites


def test_every_predefined_suite_is_the_sdk_docstrings_list() -> None:
    documented = _sdk_suites()
    assert len(documented) == 10
    assert {k: list(v) for k, v in cipher_suites.PREDEFINED.items()} == documented
    assert set(cipher_suites.PREDEFINED) == set(PREDEFINED_CIPHER_SUITES)


def test_the_default_suite_has_only_rsa_authenticated_ciphers() -> None:
    # The fact the renewer's keyType "auto" rests on (renewer/tls_suites.py has its own copy).
    assert all("-RSA-" in cipher for cipher in DEFAULT_SUITE)
    assert not cipher_suites.speaks_tls13(DEFAULT_SUITE)


def test_the_sdk_documents_the_defaults_the_data_plane_applies() -> None:
    details = models.SSLConfigurationDetails
    protocols_doc = details.protocols.__doc__ or ""
    suite_doc = details.cipher_suite_name.__doc__ or ""
    assert "If this field is not specified, TLSv1.2 is the default." in protocols_doc
    assert "the default is `oci-default-ssl-cipher-suite-v1`" in suite_doc
    assert "ECDSA-based ciphers require ECDSA" in suite_doc
    assert cipher_suites.protocols_of({}) == ("TLSv1.2",)
    assert cipher_suites.protocols_of({"protocols": []}) == ("TLSv1.2",)


# ------------------------------------------------------------------------------ handshakes


def test_a_listener_at_oci_defaults_serves_rsa_over_tls12_with_the_default_suite(
    emulator: RunningEmulator, clients: Clients
) -> None:
    ssl_configuration = (
        clients.load_balancer.get_load_balancer(LB_ID).data.listeners["default-rsa"]
    ).ssl_configuration
    assert ssl_configuration.cipher_suite_name == "oci-default-ssl-cipher-suite-v1"
    assert ssl_configuration.protocols == ["TLSv1.2"]
    port = _port(emulator, 1443)
    served = handshake(port, ciphers=DEFAULT_SUITE)
    assert (served.version, served.certificate) == ("TLSv1.2", RSA["certificate"])
    assert served.cipher in DEFAULT_SUITE
    # TLSv1.2 only: a TLS 1.3 client and a TLS 1.1 client are refused.
    assert "PROTOCOL_VERSION" in refused(lambda: handshake(port, versions=(TLS13, TLS13)))
    legacy = (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
    assert "PROTOCOL_VERSION" in refused(lambda: handshake(port, versions=legacy))


def test_an_ecdsa_certificate_behind_the_default_suite_completes_no_handshake(
    emulator: RunningEmulator,
) -> None:
    port = _port(emulator, 2443)
    assert "HANDSHAKE_FAILURE" in refused(lambda: handshake(port, ciphers=DEFAULT_SUITE))
    # Whatever the client offers: the server may only choose among its suite's ciphers.
    assert "HANDSHAKE_FAILURE" in refused(lambda: handshake(port))


def test_a_suite_with_ecdsa_ciphers_serves_an_ecdsa_certificate(
    emulator: RunningEmulator,
) -> None:
    modern = cipher_suites.PREDEFINED["oci-modern-ssl-cipher-suite-v1"]
    served = handshake(_port(emulator, 3443), ciphers=modern)
    assert served.certificate == ECDSA["certificate"]
    assert served.cipher.startswith("ECDHE-ECDSA-")


def test_a_custom_suite_from_the_load_balancer_bounds_the_ciphers(
    emulator: RunningEmulator, clients: Clients
) -> None:
    suites = clients.load_balancer.get_load_balancer(LB_ID).data.ssl_cipher_suites
    assert suites["only-aes256"].ciphers == ["ECDHE-RSA-AES256-GCM-SHA384"]
    port = _port(emulator, 4443)
    assert handshake(port).cipher == "ECDHE-RSA-AES256-GCM-SHA384"
    assert "HANDSHAKE_FAILURE" in refused(
        lambda: handshake(port, ciphers=["ECDHE-RSA-AES128-GCM-SHA256"])
    )


def test_tls13_serves_any_key_when_the_suite_has_tls13_ciphers(
    emulator: RunningEmulator,
) -> None:
    port = _port(emulator, 5443)
    served = handshake(port, versions=(TLS13, TLS13))
    assert (served.version, served.certificate) == ("TLSv1.3", ECDSA["certificate"])
    assert "PROTOCOL_VERSION" in refused(lambda: handshake(port))  # TLSv1.3 only


def test_tls13_is_not_offered_by_a_suite_without_tls13_ciphers(
    emulator: RunningEmulator,
) -> None:
    # Assumed (the stricter reading): protocols name TLSv1.3, the default suite has no
    # TLS 1.3 cipher, so TLS 1.2 is what that listener speaks.
    port = _port(emulator, 6443)
    assert handshake(port, versions=(TLS12, TLS13)).version == "TLSv1.2"
    assert "PROTOCOL_VERSION" in refused(lambda: handshake(port, versions=(TLS13, TLS13)))
    # A TLSv1.3-only listener on such a suite serves nobody.
    only13 = _port(emulator, 8443)
    assert "HANDSHAKE_FAILURE" in refused(lambda: handshake(only13, versions=(TLS13, TLS13)))


def test_older_protocols_are_served_when_the_listener_names_them(
    emulator: RunningEmulator,
) -> None:
    port = _port(emulator, 7443)
    legacy = (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1)
    served = handshake(port, versions=legacy, ciphers=["ECDHE-RSA-AES128-SHA"])
    assert (served.version, served.cipher) == ("TLSv1.1", "ECDHE-RSA-AES128-SHA")


def test_a_listener_created_through_the_sdk_without_suite_or_protocols_gets_the_defaults(
    emulator: RunningEmulator, clients: Clients
) -> None:
    details = models.CreateListenerDetails(
        name="fresh",
        default_backend_set_name="app",
        port=9443,
        protocol="HTTP",
        ssl_configuration=models.SSLConfigurationDetails(certificate_name="ecdsa"),
    )
    wr_id = work_request_id(clients.load_balancer.create_listener(details, LB_ID))
    deadline = time.monotonic() + 10
    while clients.load_balancer.get_work_request(wr_id).data.lifecycle_state != "SUCCEEDED":
        assert time.monotonic() < deadline, "the listener was not created"
        time.sleep(0.02)
    lb = emulator.emulator.services["loadbalancer"]
    assert isinstance(lb, LoadBalancer)
    while 9443 not in lb.port_map().get(LB_ID, {}):
        assert time.monotonic() < deadline, "the data plane did not open the port"
        time.sleep(0.02)
    fresh = clients.load_balancer.get_load_balancer(LB_ID).data.listeners["fresh"]
    assert fresh.ssl_configuration.cipher_suite_name == "oci-default-ssl-cipher-suite-v1"
    assert fresh.ssl_configuration.protocols == ["TLSv1.2"]
    port = _port(emulator, 9443)
    assert "HANDSHAKE_FAILURE" in refused(lambda: handshake(port, ciphers=DEFAULT_SUITE))


def test_the_renewers_suite_table_judges_every_suite_as_the_sdks_lists_do() -> None:
    # renewer/key_choice.py keeps its own table (the renewer does not import the sandbox); it
    # must give the same answer as the SDK's verbatim lists for every key type and protocol.
    from renewer import key_choice  # noqa: PLC0415 - product code, imported where compared
    from renewer.model import KeyType, ListenerTls  # noqa: PLC0415

    assert set(key_choice.PREDEFINED) == set(cipher_suites.PREDEFINED)
    for name, documented in cipher_suites.PREDEFINED.items():
        for protocol in cipher_suites.PROTOCOLS:
            ours = ListenerTls(LB_ID, "x", name, (protocol,), key_choice.PREDEFINED[name])
            sdk = ListenerTls(LB_ID, "x", name, (protocol,), documented)
            for key_type in KeyType:
                assert key_choice.unserved_protocols(ours, key_type) == (
                    key_choice.unserved_protocols(sdk, key_type)
                ), (name, protocol, key_type)
            assert bool(key_choice.offers(ours)) == bool(key_choice.offers(sdk)), (name, protocol)
