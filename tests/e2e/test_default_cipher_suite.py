"""A new user's first renewal with the HTTPS listener at OCI's defaults (issue 11, section 1).

The listener names no cipher suite (so ``oci-default-ssl-cipher-suite-v1``: RSA ciphers only)
and no protocols (so TLSv1.2 only), as a listener created in the console or by Terraform without
those fields is. The configuration is the default one (``keyType`` left out: ``auto``). After
the renewal a TLS 1.2 client offering exactly that suite's ciphers must get the new
certificate — on main the renewer ordered an ECDSA key, "succeeded", and that client got a
handshake failure. An explicit ``ecdsa-p256`` is refused before any order and nothing in the
tenancy changes.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import unquote

import pytest
from cryptography import x509

from renewer import pki
from renewer.model import KeyType
from renewer.report import Outcome
from renewer.settings import parse_config
from sandbox.oci_emulator.cipher_suites import PREDEFINED
from sandbox.world import HTTPS_LISTENER, LB_ID, STATE_BUCKET, SandboxWorld

pytestmark = pytest.mark.e2e

BUDGET = 120.0
NAME = "shop.example.com"
DEFAULT_SUITE = PREDEFINED["oci-default-ssl-cipher-suite-v1"]


def tls12_client_handshake(world: SandboxWorld) -> tuple[x509.Certificate, str]:
    """What a TLS 1.2 client offering only the default suite's ciphers is served."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(":".join(DEFAULT_SUITE))
    with (
        socket.create_connection(("127.0.0.1", world.lb_port(443)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        cipher = tls.cipher()
    assert der is not None
    assert cipher is not None
    return x509.load_der_x509_certificate(der), cipher[0]


def listener_ssl(world: SandboxWorld) -> dict[str, object]:
    lb = world.emulator.services["loadbalancer"]
    config = lb.current(LB_ID)  # type: ignore[attr-defined]
    return dict(config["listeners"][HTTPS_LISTENER]["sslConfiguration"])


@pytest.mark.world(https_at_oci_defaults=True)
def test_a_renewal_at_oci_defaults_is_served_to_tls12_clients_of_the_default_suite(
    world: SandboxWorld,
) -> None:
    ssl_configuration = listener_ssl(world)
    assert ssl_configuration["cipherSuiteName"] == "oci-default-ssl-cipher-suite-v1"
    assert ssl_configuration["protocols"] == ["TLSv1.2"]
    assert "keyType" not in world.config_document()["certificates"][0]

    report = world.service().run(budget_s=BUDGET)

    (certificate,) = report.certificates
    assert certificate.outcome is Outcome.RENEWED, report.to_json()
    assert certificate.key_type == KeyType.RSA_2048
    assert "oci-default-ssl-cipher-suite-v1" in (certificate.key_type_reason or "")
    served, cipher = tls12_client_handshake(world)
    assert pki.normalize_serial(pki.serial_hex(served)) == pki.normalize_serial(
        certificate.serial or ""
    )
    assert served.issuer != served.subject  # Pebble's, not the seed
    assert cipher in DEFAULT_SUITE


@pytest.mark.world(https_at_oci_defaults=True)
def test_plan_at_oci_defaults_says_rsa_2048_and_why(world: SandboxWorld) -> None:
    (planned,) = world.service().plan().certificates
    assert planned.due
    assert planned.key_type == KeyType.RSA_2048
    assert "key type rsa-2048" in planned.message
    assert world.emulator.operations_called(mutating_only=True) == []


@pytest.mark.world(https_at_oci_defaults=True)
def test_explicit_ecdsa_behind_the_default_suite_is_refused_before_any_order(
    world: SandboxWorld,
) -> None:
    document = world.config_document()
    document["certificates"][0]["keyType"] = "ecdsa-p256"
    before_orders = world.pebble_log().count("POST /order-plz")
    seed_serial = pki.serial_hex(world.served_certificate(NAME))

    report = world.service(config=parse_config(document)).run(budget_s=BUDGET)

    (certificate,) = report.certificates
    assert certificate.outcome is Outcome.FAILED
    assert certificate.error_type == "ConfigError"
    error = certificate.error or ""
    assert HTTPS_LISTENER in error
    assert "oci-default-ssl-cipher-suite-v1" in error
    assert "'auto'" in error
    assert world.pebble_log().count("POST /order-plz") == before_orders
    # Nothing in the tenancy changed: no Vault version, no bundle, no listener update, no
    # challenge object; the one write is the renewer's own state object recording the failure.
    mutating = [
        (e["operation"], e["path"]) for e in world.emulator.requests if e["method"] != "GET"
    ]
    assert [op for op, _ in mutating] == ["PutObject"], mutating
    assert unquote(mutating[0][1]).endswith(f"/b/{STATE_BUCKET}/o/state/shop.json")
    assert pki.serial_hex(world.served_certificate(NAME)) == seed_serial
