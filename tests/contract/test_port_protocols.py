"""Fidelity (issue 11 §7): "All SSL listeners created on a given port must use the same set of
SSL protocols" (SDK docstring of ``SSLConfigurationDetails.protocols``), through the real SDK.

The renewer relies on it: VERIFY dials each listener *port* once per protocol, and the key
choice judges each listener's protocols, so listeners sharing a port must agree on them.
"""

from __future__ import annotations

import time

import pytest
from oci.load_balancer import models

from tests.contract.conftest import Clients
from tests.contract.test_cipher_suites import LB_ID, fixture_data  # noqa: F401 - the fixture
from tests.contract.test_load_balancer import work_request_id

pytestmark = pytest.mark.integration

SHARED_PORT = 6443  # "tls12-13-default-rsa": TLSv1.2 + TLSv1.3, no hostnames
BOUND = 10.0  # wall seconds: a bound for polling a work request, not a timing assertion


def _finished(clients: Clients, response: object) -> str:
    wr_id = work_request_id(response)
    deadline = time.monotonic() + BOUND
    while True:
        state = clients.load_balancer.get_work_request(wr_id).data.lifecycle_state
        if state in ("SUCCEEDED", "FAILED"):
            return str(state)
        assert time.monotonic() < deadline, "the work request did not finish"
        time.sleep(0.02)


def _virtual_host(protocols: list[str], name: str) -> models.CreateListenerDetails:
    return models.CreateListenerDetails(
        name=name,
        default_backend_set_name="app",
        port=SHARED_PORT,
        protocol="HTTP",
        hostname_names=["api"],
        ssl_configuration=models.SSLConfigurationDetails(
            certificate_name="rsa", protocols=protocols
        ),
    )


def test_ssl_listeners_sharing_a_port_must_name_the_same_protocols(clients: Clients) -> None:
    hostname = models.CreateHostnameDetails(name="api", hostname="api.example.com")
    assert _finished(clients, clients.load_balancer.create_hostname(hostname, LB_ID)) == (
        "SUCCEEDED"
    )

    other = clients.load_balancer.create_listener(_virtual_host(["TLSv1.3"], "api-13"), LB_ID)
    assert _finished(clients, other) == "FAILED"

    same = clients.load_balancer.create_listener(
        _virtual_host(["TLSv1.3", "TLSv1.2"], "api"), LB_ID
    )
    assert _finished(clients, same) == "SUCCEEDED"
    listeners = clients.load_balancer.get_load_balancer(LB_ID).data.listeners
    assert "api-13" not in listeners
    assert sorted(listeners["api"].ssl_configuration.protocols) == ["TLSv1.2", "TLSv1.3"]
