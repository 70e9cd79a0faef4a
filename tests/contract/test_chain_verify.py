"""VERIFY checks the chain a listener serves (issue 11 §2): the stored one, and trusted.

Against the emulator's TLS data plane (real sockets), and, for a server that sends something
other than its bundle, a small real TLS server on loopback. ``verify_chain=True`` is what the
wiring turns on; the default keeps the serial-only check.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from renewer import pki
from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_tls_verifier import ListenerTlsVerifier
from renewer.errors import ConfigError, DeploymentError
from renewer.model import ListenerTarget
from sandbox.oci_emulator.credentials import resource_principal_env
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, RunningEmulator
from tests.contract.lb_fixture import https_listener, load_balancer
from tests.contract.test_chain_served import NAME, Leaf, Pki

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.chainverifylb"
PKI = Pki("Verify")
FULL, SPLIT = PKI.issue(), PKI.issue()


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    certificates = {
        "full": {"publicCertificate": FULL.full_chain},
        # What the renewer sent before: the intermediate as caCertificate.
        "split": {"publicCertificate": SPLIT.leaf_pem, "caCertificate": SPLIT.intermediate_pem},
    }
    lb = load_balancer(
        LB_ID,
        COMPARTMENT,
        name="chain-verify-lb",
        listeners={"full": https_listener(443, "full"), "split": https_listener(8443, "split")},
        certificates=certificates,
        private_keys={"full": FULL.key_pem, "split": SPLIT.key_pem},
    )
    return {**BASE_FIXTURE, "load_balancers": [lb]}


@pytest.fixture
def clients(emulator: RunningEmulator, tmp_path: Path, monkeypatch) -> OciClients:
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return OciClients(OciSettings(endpoints=dict.fromkeys(SERVICES, emulator.endpoint)))


def _roots(tmp_path: Path, *roots: str) -> str:
    path = tmp_path / "roots.pem"
    path.write_text("".join(roots))
    return str(path)


def _verifier(
    emulator: RunningEmulator, clients: OciClients, ca_bundle: str | None, **kwargs: Any
) -> ListenerTlsVerifier:
    ports = emulator.emulator.services["loadbalancer"]

    def data_plane(lb_id: str, port: int) -> tuple[str, int] | None:
        local = ports.port_map().get(lb_id, {}).get(port)
        return ("127.0.0.1", local) if local else None

    options: dict[str, Any] = {"address_override": data_plane, "ca_bundle": ca_bundle}
    options.update(kwargs)
    return ListenerTlsVerifier(clients, verify_chain=True, **options)


def _serial(leaf: Leaf) -> str:
    return pki.serial_hex(leaf.certificate)


@contextmanager
def tls_server(chain_pem: str, key_pem: str, workdir: Path) -> Iterator[tuple[str, int]]:
    """A loopback TLS server sending ``chain_pem``; handshakes until the block ends."""
    (workdir / "chain.pem").write_text(chain_pem)
    (workdir / "key.pem").write_text(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(workdir / "chain.pem", workdir / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# ------------------------------------------------------------------------------------- tests


def test_the_stored_chain_to_a_trusted_root_passes(emulator, clients, tmp_path):
    verifier = _verifier(emulator, clients, _roots(tmp_path, FULL.root_pem))
    served = verifier.serial_served(ListenerTarget(LB_ID, ("full",)), NAME, timeout=3)
    assert served == _serial(FULL)


def test_a_chain_without_its_intermediate_is_a_deployment_error(emulator, clients, tmp_path):
    verifier = _verifier(emulator, clients, _roots(tmp_path, SPLIT.root_pem))
    with pytest.raises(DeploymentError, match="does not verify to a root") as info:
        verifier.serial_served(ListenerTarget(LB_ID, ("split",)), NAME, timeout=3)
    message = str(info.value)
    assert f"[{NAME}]" in message  # what was served: the leaf alone, by subject
    assert "BEGIN CERTIFICATE" not in message


def test_a_chain_to_an_untrusted_root_is_a_deployment_error(emulator, clients, tmp_path):
    other = _roots(tmp_path, Pki("Stranger").issue().root_pem)
    verifier = _verifier(emulator, clients, other)
    with pytest.raises(DeploymentError, match=f"does not verify to a root in {other}"):
        verifier.serial_served(ListenerTarget(LB_ID, ("full",)), NAME, timeout=3)


def test_a_served_chain_other_than_the_bundle_is_a_deployment_error(emulator, clients, tmp_path):
    """The listener's bundle holds leaf + intermediate; the server sends the leaf alone."""
    with tls_server(FULL.leaf_pem, FULL.key_pem, tmp_path) as address:
        verifier = _verifier(
            emulator,
            clients,
            _roots(tmp_path, FULL.root_pem),
            address_override=lambda _lb, _port: address,
        )
        with pytest.raises(DeploymentError, match="does not serve the stored chain") as info:
            verifier.serial_served(ListenerTarget(LB_ID, ("full",)), NAME, timeout=3)
    assert "bundle full holds 2 certificate(s)" in str(info.value)


def test_another_leaf_is_left_to_the_serial_comparison(emulator, clients, tmp_path):
    """A listener that has not followed its bundle yet: the serial says so, not the chain."""
    with tls_server(SPLIT.full_chain, SPLIT.key_pem, tmp_path) as address:
        verifier = _verifier(
            emulator,
            clients,
            _roots(tmp_path, FULL.root_pem),
            address_override=lambda _lb, _port: address,
        )
        served = verifier.serial_served(ListenerTarget(LB_ID, ("full",)), NAME, timeout=3)
    assert served == _serial(SPLIT)


def test_unreadable_or_empty_roots_are_a_config_error(emulator, clients, tmp_path):
    missing = str(tmp_path / "absent.pem")
    with pytest.raises(ConfigError, match="cannot be read"):
        _verifier(emulator, clients, missing).serial_served(
            ListenerTarget(LB_ID, ("full",)), NAME, timeout=3
        )
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificate here\n")
    with pytest.raises(ConfigError, match="RENEWER_ACME_CA_BUNDLE"):
        _verifier(emulator, clients, str(empty)).serial_served(
            ListenerTarget(LB_ID, ("full",)), NAME, timeout=3
        )
