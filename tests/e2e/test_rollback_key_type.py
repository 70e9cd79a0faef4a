"""A rollback checks the rolled-back version's key type against the targets (issue 11 §1).

Version 1 holds an ECDSA key, version 2 an RSA one; then the operator puts the HTTPS listener at
OCI's default suite (RSA ciphers only). Rolling back to version 1 would leave every TLS 1.2
client of that listener with a handshake failure, so the rollback is refused before any change,
naming the version, its key type, the listener, its suite and the fix.
"""

from __future__ import annotations

import time
from urllib.parse import unquote

import oci
import pytest

from renewer import pki
from renewer.model import KeyType
from renewer.report import Outcome
from renewer.settings import parse_config
from sandbox.world import HTTPS_LISTENER, LB_ID, STATE_BUCKET, SandboxWorld
from tests.e2e.test_pipeline import BUDGET, operator_client, served_serial, single

pytestmark = pytest.mark.e2e

WAIT_BOUND = 30.0  # wall seconds: a bound for the test's own poll of a work request


def _with_key_type(world: SandboxWorld, key_type: str) -> SandboxWorld:
    document = world.config_document()
    document["certificates"][0]["keyType"] = key_type
    return world.service(config=parse_config(document))


def _listener_at_default_suite(world: SandboxWorld) -> None:
    """The operator's UpdateListener: the same listener without cipher suite and protocols."""
    client = operator_client(world, oci.load_balancer.LoadBalancerClient)
    listener = client.get_load_balancer(LB_ID).data.listeners[HTTPS_LISTENER]
    models = oci.load_balancer.models
    details = models.UpdateListenerDetails(
        default_backend_set_name=listener.default_backend_set_name,
        port=listener.port,
        protocol=listener.protocol,
        hostname_names=listener.hostname_names,
        rule_set_names=listener.rule_set_names,
        routing_policy_name=listener.routing_policy_name,
        connection_configuration=listener.connection_configuration,
        ssl_configuration=models.SSLConfigurationDetails(
            certificate_name=listener.ssl_configuration.certificate_name
        ),
    )
    request = client.update_listener(details, LB_ID, HTTPS_LISTENER).headers["opc-work-request-id"]
    bound = time.monotonic() + WAIT_BOUND
    while client.get_work_request(request).data.lifecycle_state != "SUCCEEDED":
        assert time.monotonic() < bound, "the listener update did not finish"
        time.sleep(0.05)


def test_a_rollback_to_a_key_the_listener_suite_cannot_serve_is_refused_before_any_change(
    world: SandboxWorld,
):
    first = single(_with_key_type(world, "ecdsa-p256").run(budget_s=BUDGET))
    second = single(_with_key_type(world, "rsa-2048").run(budget_s=BUDGET))
    assert first.key_type == KeyType.EC_P256.value
    assert second.key_type == KeyType.RSA_2048.value
    _listener_at_default_suite(world)
    served = served_serial(world)
    assert pki.normalize_serial(served) == pki.normalize_serial(second.serial or "")
    since = len(world.emulator.requests)

    report = (
        _with_key_type(world, "rsa-2048")
        .rollback("shop", first.version or 0, budget_s=BUDGET)
        .certificates[0]
    )

    assert report.outcome is Outcome.FAILED
    assert report.error_type == "ConfigError"
    assert report.failed_step == "check"
    error = report.error or ""
    assert f"version {first.version} of certificate 'shop' holds a key of type ecdsa-p256" in error
    assert f"listener {HTTPS_LISTENER!r} of load balancer {LB_ID}" in error
    assert "oci-default-ssl-cipher-suite-v1" in error
    assert "oci-modern-ssl-cipher-suite-v1" in error  # the fix: a suite with ECDSA ciphers
    assert "nothing was changed" in error
    # No bundle, listener or Vault change: only the renewer's own lease and state objects.
    mutating = [
        (entry["operation"], unquote(entry["path"]))
        for entry in world.emulator.requests[since:]
        if entry["method"] != "GET"
    ]
    assert mutating
    assert all(f"/b/{STATE_BUCKET}/o/" in path for _, path in mutating), mutating
    assert served_serial(world) == served
