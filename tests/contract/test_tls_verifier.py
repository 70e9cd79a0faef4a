"""Live TLS verification against the emulator's real listener sockets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from renewer import pki
from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_tls_verifier import ListenerTlsVerifier
from renewer.errors import ConfigError, DeploymentError, TransientError
from renewer.model import CertificateServiceTarget, ListenerTarget
from sandbox.net import free_port
from sandbox.oci_emulator.credentials import resource_principal_env
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, RunningEmulator
from tests.contract.lb_fixture import https_listener, load_balancer
from tests.contract.test_load_balancer import Bundle, issue

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.verifierlb"


@pytest.fixture
def bundles() -> dict[str, Bundle]:
    return {"old": issue("shop.example.com"), "new": issue("shop.example.com")}


@pytest.fixture
def fixture_data(bundles: dict[str, Bundle]) -> dict[str, Any]:
    listeners = {
        "https": https_listener(443, "new"),
        "https-alt": https_listener(8443, "new"),
        "https-stale": https_listener(9443, "old"),
    }
    certificates = {
        name: {"publicCertificate": b.certificate, "caCertificate": b.ca}
        for name, b in bundles.items()
    }
    keys = {name: b.private_key for name, b in bundles.items()}
    lb = load_balancer(
        LB_ID,
        COMPARTMENT,
        name="verifier-lb",
        listeners=listeners,
        certificates=certificates,
        private_keys=keys,
    )
    return {**BASE_FIXTURE, "load_balancers": [lb]}


def serial_of(bundle: Bundle) -> str:
    return pki.serial_hex(x509.load_pem_x509_certificate(bundle.certificate.encode()))


@pytest.fixture
def verifier(emulator: RunningEmulator, tmp_path: Path, monkeypatch) -> ListenerTlsVerifier:
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clients = OciClients(OciSettings(endpoints=dict.fromkeys(SERVICES, emulator.endpoint)))
    ports = emulator.emulator.services["loadbalancer"]

    def data_plane(lb_id: str, port: int) -> tuple[str, int] | None:
        local = ports.port_map().get(lb_id, {}).get(port)
        return ("127.0.0.1", local) if local else None

    return ListenerTlsVerifier(clients, address_override=data_plane)


def test_reports_the_serial_every_listener_serves(verifier, bundles):
    target = ListenerTarget(LB_ID, ("https", "https-alt"))
    assert verifier.serial_served(target, "shop.example.com", timeout=2) == serial_of(
        bundles["new"]
    )


def test_listeners_that_disagree_are_a_deployment_error(verifier, bundles):
    target = ListenerTarget(LB_ID, ("https", "https-stale"))
    with pytest.raises(DeploymentError, match="disagree") as info:
        verifier.serial_served(target, "shop.example.com", timeout=2)
    assert serial_of(bundles["old"]) in str(info.value)
    assert serial_of(bundles["new"]) in str(info.value)


def test_unknown_listener_and_wrong_target_kind_are_config_errors(verifier):
    with pytest.raises(ConfigError, match="no listener 'nope'"):
        verifier.serial_served(ListenerTarget(LB_ID, ("nope",)), "shop.example.com", timeout=2)
    with pytest.raises(ConfigError, match="listener targets only"):
        verifier.serial_served(CertificateServiceTarget("ocid1.certificate.oc1..x"), "x", timeout=2)


def test_an_unreachable_listener_is_transient(emulator, tmp_path, monkeypatch):
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clients = OciClients(OciSettings(endpoints=dict.fromkeys(SERVICES, emulator.endpoint)))
    closed = free_port()
    verifier = ListenerTlsVerifier(
        clients, address_override=lambda _lb, _port: ("127.0.0.1", closed)
    )
    with pytest.raises(TransientError, match=r"TLS handshake with 127\.0\.0\.1"):
        verifier.serial_served(ListenerTarget(LB_ID, ("https",)), "shop.example.com", timeout=1)
