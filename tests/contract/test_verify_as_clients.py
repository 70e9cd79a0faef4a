"""VERIFY handshakes as each listener's clients will: every enabled protocol, the suite's ciphers.

Against the emulator's data plane, which enforces protocols and cipher suites
(tests/contract/test_cipher_suites.py). The certificates are ECDSA; the listeners differ in
what their clients can negotiate with such a key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_listener_tls import ListenerTlsReader
from renewer.adapters.oci_tls_verifier import ListenerTlsVerifier
from renewer.errors import DeploymentError, TransientError
from renewer.model import ListenerTarget
from sandbox.oci_emulator.credentials import resource_principal_env
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, RunningEmulator
from tests.contract.lb_fixture import https_listener, load_balancer
from tests.contract.test_load_balancer import issue

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.verifyclientslb"
NAME = "shop.example.com"
ECDSA = issue(NAME)


def _listener(port: int, suite: str | None, protocols: list[str] | None) -> dict[str, Any]:
    listener = https_listener(port, "ecdsa", cipher_suite=suite)
    if protocols is not None:
        listener["sslConfiguration"]["protocols"] = protocols
    return listener


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    both = ["TLSv1.2", "TLSv1.3"]
    lb = load_balancer(
        LB_ID,
        COMPARTMENT,
        name="verify-clients-lb",
        listeners={
            "modern": _listener(443, "oci-tls-12-13-wider-ssl-cipher-suite-v1", both),
            # TLS 1.3 serves the ECDSA key; the TLS 1.2 ciphers are RSA-only.
            "rsa-tls12": _listener(1443, "tls13-or-rsa", both),
            "defaults": _listener(2443, None, None),
        },
        certificates={"ecdsa": {"publicCertificate": ECDSA.certificate}},
        private_keys={"ecdsa": ECDSA.private_key},
    )
    lb["sslCipherSuites"] = {
        "tls13-or-rsa": {"ciphers": ["TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]}
    }
    return {**BASE_FIXTURE, "load_balancers": [lb]}


@pytest.fixture
def clients(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return OciClients(OciSettings(endpoints=dict.fromkeys(SERVICES, emulator.endpoint)))


@pytest.fixture
def verifier(emulator: RunningEmulator, clients: OciClients) -> ListenerTlsVerifier:
    ports = emulator.emulator.services["loadbalancer"]

    def data_plane(lb_id: str, port: int) -> tuple[str, int] | None:
        local = ports.port_map().get(lb_id, {}).get(port)
        return ("127.0.0.1", local) if local else None

    return ListenerTlsVerifier(clients, address_override=data_plane)


def test_every_protocol_of_a_suite_that_serves_the_key_verifies(
    verifier: ListenerTlsVerifier,
) -> None:
    serial = verifier.serial_served(ListenerTarget(LB_ID, ("modern",)), NAME, timeout=2)
    assert serial


def test_a_protocol_whose_clients_cannot_connect_is_a_deployment_error(
    verifier: ListenerTlsVerifier,
) -> None:
    # A client's default handshake (TLS 1.3) succeeds here: only a TLS 1.2 client with the
    # suite's ciphers finds that the key does not suit them.
    with pytest.raises(DeploymentError) as caught:
        verifier.serial_served(ListenerTarget(LB_ID, ("rsa-tls12",)), NAME, timeout=2)
    message = str(caught.value)
    assert "TLSv1.2" in message
    assert "'tls13-or-rsa'" in message


def test_an_ecdsa_key_behind_oci_defaults_serves_nobody_and_says_so(
    verifier: ListenerTlsVerifier,
) -> None:
    with pytest.raises(TransientError) as caught:
        verifier.serial_served(ListenerTarget(LB_ID, ("defaults",)), NAME, timeout=2)
    assert "oci-default-ssl-cipher-suite-v1" in str(caught.value)


def test_the_reader_reports_each_listener_as_oci_applies_it(clients: OciClients) -> None:
    reader = ListenerTlsReader(clients)
    settings = reader.settings(ListenerTarget(LB_ID, ("defaults", "rsa-tls12", "missing")))
    by_name = {tls.listener: tls for tls in settings}
    assert set(by_name) == {"defaults", "rsa-tls12"}
    assert by_name["defaults"].suite == "oci-default-ssl-cipher-suite-v1"
    assert by_name["defaults"].protocols == ("TLSv1.2",)
    assert by_name["rsa-tls12"].ciphers == (
        "TLS_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
    )
