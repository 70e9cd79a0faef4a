"""Issue 11 §2 and §6 end to end: real Pebble, the real SDK, the emulator's TLS data plane.

§2: after a renewal the listener serves the full chain as stored (leaf, then Pebble's
intermediate), from the bundle's publicCertificate, so a TLS 1.2 client that trusts Pebble's root
alone and checks the chain and the name accepts it; VERIFY's chain check passes with that root.
§6: a bundle a person named like ours (``acme-shop-2024``) survives RETIRE, and the log says why.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
import urllib.request
from pathlib import Path

import oci
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from renewer import naming, pki
from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_tls_verifier import ListenerTlsVerifier
from renewer.model import ListenerTarget
from renewer.report import CertificateReport, Outcome, RenewalReport
from sandbox.world import HTTPS_LISTENER, LB_ID, SandboxWorld, self_signed
from tests.contract.test_chain_served import served_chain

pytestmark = pytest.mark.e2e

BUDGET = 120.0
NAME = "shop.example.com"
FOREIGN = "acme-shop-2024"  # what a person might call their bundle: it fits our name pattern


def single(report: RenewalReport) -> CertificateReport:
    assert len(report.certificates) == 1, report.to_json()
    return report.certificates[0]


def pebble_root(world: SandboxWorld, tmp_path: Path) -> Path:
    path = tmp_path / "pebble-root.pem"
    path.write_text(world.pebble.root_pems()[0])
    return path


def tls12_handshake(world: SandboxWorld, root: Path) -> None:
    """A TLS 1.2 client that checks the chain and the name against ``root`` alone."""
    context = ssl.create_default_context(cafile=str(root))
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", world.lb_port(443)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=NAME) as tls,
    ):
        assert tls.version() == "TLSv1.2"


def pebble_intermediate(world: SandboxWorld) -> x509.Certificate:
    url = f"{world.pebble.management_url}/intermediates/0"
    with urllib.request.urlopen(url, context=world.pebble.ssl_context(), timeout=10) as resp:  # noqa: S310 - loopback
        return x509.load_pem_x509_certificate(resp.read())


def ders(pem: str) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in pki.split_chain(pem)]


def operator_lb(world: SandboxWorld) -> oci.load_balancer.LoadBalancerClient:
    return oci.load_balancer.LoadBalancerClient(
        world.operator_config(),
        service_endpoint=world.emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )


def bundles(world: SandboxWorld) -> dict[str, dict[str, str | None]]:
    config = world.emulator.services["loadbalancer"].current(LB_ID)  # type: ignore[attr-defined]
    return dict(config["certificates"])


# ------------------------------------------------------------------------------------- tests


def test_a_tls12_client_trusting_pebbles_root_accepts_the_renewed_listener(
    world: SandboxWorld, tmp_path: Path
) -> None:
    report = single(world.service().run(budget_s=BUDGET))
    assert report.outcome == Outcome.RENEWED
    root = pebble_root(world, tmp_path)

    tls12_handshake(world, root)  # raises SSLCertVerificationError without the intermediate

    leaf = world.served_certificate(NAME)
    expected = [
        c.public_bytes(serialization.Encoding.DER) for c in (leaf, pebble_intermediate(world))
    ]
    bundle = bundles(world)[naming.bundle_name("shop", report.serial or "")]
    assert ders(bundle["publicCertificate"] or "") == expected  # the full chain, leaf first
    assert bundle["caCertificate"] is None
    assert served_chain("127.0.0.1", world.lb_port(443), NAME) == expected
    # VERIFY's chain check, given Pebble's root (what RENEWER_ACME_CA_BUNDLE must hold here).
    verifier = ListenerTlsVerifier(
        OciClients(world.oci_settings()),
        address_override=lambda _lb, port: ("127.0.0.1", world.lb_port(port)),
        verify_chain=True,
        ca_bundle=str(root),
    )
    served = verifier.serial_served(ListenerTarget(LB_ID, (HTTPS_LISTENER,)), NAME, timeout=5)
    assert pki.normalize_serial(served) == pki.normalize_serial(report.serial or "")


def test_a_bundle_named_like_ours_survives_retire(
    world: SandboxWorld, caplog: pytest.LogCaptureFixture
) -> None:
    person = self_signed([NAME], days_left=300)
    client = operator_lb(world)
    response = client.create_certificate(
        oci.load_balancer.models.CreateCertificateDetails(
            certificate_name=FOREIGN,
            public_certificate=person.certificate_pem,
            private_key=person.private_key_pem,
        ),
        LB_ID,
    )
    work_request = response.headers["opc-work-request-id"]
    until = time.monotonic() + 10
    while client.get_work_request(work_request).data.lifecycle_state != "SUCCEEDED":
        assert time.monotonic() < until
        time.sleep(0.05)

    first = single(world.service().run(budget_s=BUDGET))
    with caplog.at_level(logging.INFO, logger="renewer"):
        single(world.service().run(budget_s=BUDGET, force=True))
        third = single(world.service().run(budget_s=BUDGET, force=True))

    assert third.outcome == Outcome.RENEWED
    left = bundles(world)
    assert naming.bundle_name("shop", first.serial or "") not in left  # ours: retired
    assert FOREIGN in left  # named like ours, not a stored certificate: left alone
    assert f"retire left_alone lb={LB_ID} bundle={FOREIGN} reason=not_stored" in caplog.text
    assert "is not a stored certificate" in caplog.text
