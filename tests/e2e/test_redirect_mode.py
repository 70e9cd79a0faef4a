"""Redirect mode end to end: no token backend on the challenge path, Pebble reads the key
authorization from Object Storage through a pre-authenticated request.

The world (``challenge_mode="redirect"``) has a read-only bucket PAR on the challenge bucket and
a rule set on the LB's HTTP :80 listener redirecting ``/.well-known/acme-challenge/*`` into it;
the listener's routing policy to the token backend is gone. The renewer is the real one
(``wiring.build_service``): it writes tokens to the bucket exactly as in token-server mode, its
self-check follows the redirect the way the CA does, and Pebble validates through the emulated
load balancer, the redirect and the emulator's unsigned PAR read. The sandbox's only departure
from a tenancy (docs/oci-emulator.md, "Redirect mode in the sandbox"): the redirect names
Object Storage's host on the emulator's port over HTTP instead of HTTPS on 443.
"""

from __future__ import annotations

import http.client
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import oci
import pytest

from renewer import pki
from renewer.report import Outcome
from sandbox.oci_emulator import object_storage
from sandbox.oci_emulator.load_balancer import LoadBalancer
from sandbox.world import (
    CHALLENGE_BUCKET,
    CHALLENGE_PATH,
    LB_ID,
    NAMESPACE,
    RedirectMode,
    SandboxWorld,
)

pytestmark = [pytest.mark.e2e, pytest.mark.world(challenge_mode="redirect")]

BUDGET = 120.0
NAME = "shop.example.com"
VALIDATION = "Attempting to validate w/ HTTP"  # Pebble's VA, once per http-01 fetch
ANSWER = "POST /chalZ/"  # a challenge answered: the CA is asked to validate


def redirect_mode(world: SandboxWorld) -> RedirectMode:
    assert world.redirect is not None
    return world.redirect


def lb_get(world: SandboxWorld, path: str, method: str = "GET") -> tuple[int, str | None]:
    """``(status, Location)`` of a request to the LB's :80 listener for ``NAME``."""
    conn = http.client.HTTPConnection("127.0.0.1", world.lb_port(80), timeout=5)
    try:
        conn.request(method, path, headers={"Host": NAME})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    finally:
        conn.close()


def par_reads(world: SandboxWorld, since: int = 0) -> list[str]:
    """Decoded paths of the unsigned reads through a PAR logged after entry ``since``."""
    return [
        unquote(entry["path"])
        for entry in world.emulator.requests[since:]
        if entry["operation"] == "PreauthenticatedGetObject"
    ]


def load_balancer(world: SandboxWorld) -> dict[str, Any]:
    service = world.emulator.services["loadbalancer"]
    assert isinstance(service, LoadBalancer)
    config = service.current(LB_ID)
    assert config is not None
    return config


def serial_served(world: SandboxWorld) -> str:
    return pki.normalize_serial(pki.serial_hex(world.served_certificate(NAME)))


# -------------------------------------------------------------------------------------- tests


def test_first_issuance_is_validated_through_the_redirect_and_the_par(world: SandboxWorld):
    mode = redirect_mode(world)
    assert mode.par is not None
    seed = world.served_certificate(NAME)
    assert seed.issuer == seed.subject  # the expiring self-signed certificate
    listener = load_balancer(world)["listeners"]["http"]
    assert (listener["ruleSetNames"], listener["routingPolicyName"]) == (["acme-redirect"], None)

    report = world.service().run(budget_s=BUDGET)

    assert not report.failed, report.to_json()
    (certificate,) = report.certificates
    assert certificate.outcome is Outcome.RENEWED, report.to_json()
    assert serial_served(world) == certificate.serial  # the :443 listener serves the new one
    assert world.served_certificate(NAME).issuer != seed.subject
    log = world.pebble_log()
    assert log.count(ANSWER) == 1
    assert log.count(VALIDATION) >= 1
    # Every read of the key authorization (self-check and Pebble's VA) went through the PAR...
    token_reads = par_reads(world)
    par_path = f"{mode.par.access_uri}{CHALLENGE_PATH.lstrip('/')}"
    assert len(token_reads) >= 2  # the self-check, then at least one validation
    assert all(path.startswith(par_path) for path in token_reads), token_reads
    assert len(set(token_reads)) == 1  # one name, one token
    # ...and none through the token backend, whose principal never read the bucket.
    token_server = world.tenancy.principals["token-server"].id
    assert not [e for e in world.emulator.requests if e.get("principal") == token_server]


def test_the_redirect_leaves_other_paths_of_the_listener_alone(world: SandboxWorld):
    mode = redirect_mode(world)
    assert mode.par is not None

    status, location = lb_get(world, f"{CHALLENGE_PATH}some-token?x=1")
    assert status == 302
    assert location == (
        f"http://{mode.host}:{mode.port}{mode.par.access_uri}{CHALLENGE_PATH.lstrip('/')}some-token"
    )
    assert lb_get(world, f"{CHALLENGE_PATH}some-token", method="HEAD")[0] == 302
    for path in ("/", "/index.html", "/.well-known/acme-challenge", "/.well-known/security.txt"):
        # Forwarded to the default backend set "app", where nothing listens: 502, no redirect.
        assert lb_get(world, path) == (502, None), path


def test_the_par_reads_only_challenge_objects(world: SandboxWorld):
    """The PAR is scoped to the challenge prefix and denies listing: nothing else leaks."""
    mode = redirect_mode(world)
    assert mode.par is not None
    storage = oci.object_storage.ObjectStorageClient(
        world.operator_config(),
        service_endpoint=world.emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )
    challenge = f"{CHALLENGE_PATH.lstrip('/')}planted-token"
    for name in (challenge, "not-a-challenge.txt", ".well-known/other"):
        storage.put_object(NAMESPACE, CHALLENGE_BUCKET, name, b"body", content_type="text/plain")
    _, location = lb_get(world, f"{CHALLENGE_PATH}planted-token")
    assert location is not None
    target = urlsplit(location)
    assert (target.hostname, target.port) == (mode.host, mode.port)
    expected = {
        target.path: 200,  # the control: a challenge object is readable
        f"{mode.par.access_uri}not-a-challenge.txt": 404,
        f"{mode.par.access_uri}.well-known/other": 404,
        f"{mode.par.access_uri}{CHALLENGE_PATH.lstrip('/')}absent": 404,
        mode.par.access_uri: 404,  # bucket listing denied
    }

    answered = {}
    for path in expected:
        conn = http.client.HTTPConnection("127.0.0.1", mode.port, timeout=5)
        try:
            conn.request("GET", path, headers={"Host": target.netloc})  # unsigned, as the CA
            response = conn.getresponse()
            response.read()
            answered[path] = response.status
        finally:
            conn.close()

    assert answered == expected


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_a_dead_par_fails_the_self_check_before_the_ca_is_asked(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch, how: str
):
    mode = redirect_mode(world)
    par = mode.par
    assert par is not None
    if how == "deleted":
        mode.delete_par(par)
    else:
        # The emulator's clock moves past the PAR's expiry (it runs in this process).
        later = par.time_expires.timestamp() + 1
        assert later > datetime.now(UTC).timestamp()
        monkeypatch.setattr(object_storage, "now", lambda: later)
    seed_serial = serial_served(world)

    report = world.service().run(budget_s=BUDGET)

    (certificate,) = report.certificates
    assert certificate.outcome is Outcome.FAILED, report.to_json()
    assert certificate.error_type == "SelfCheckFailed"
    assert certificate.error is not None
    first_hop = f"http://{NAME}:{world.lb_port(80)}{CHALLENGE_PATH}"
    object_url = f"http://{mode.host}:{mode.port}{par.access_uri}"
    assert first_hop in certificate.error  # the URL the CA would fetch
    assert f"HTTP 404 from {object_url}" in certificate.error  # where it broke
    log = world.pebble_log()
    assert ANSWER not in log  # no challenge answered...
    assert VALIDATION not in log  # ...so Pebble never tried to validate
    assert serial_served(world) == seed_serial  # nothing deployed
    assert len(par_reads(world)) >= 1  # the self-check did read through the (dead) PAR


def test_a_new_par_put_in_the_rule_set_restores_issuance(world: SandboxWorld):
    mode = redirect_mode(world)
    old = mode.par
    assert old is not None
    replacement = mode.create_par(name="acme-challenges-read-2")
    mode.point_at(replacement)
    mode.delete_par(old)

    report = world.service().run(budget_s=BUDGET)

    assert not report.failed, report.to_json()
    reads = par_reads(world)
    assert reads
    assert all(path.startswith(replacement.access_uri) for path in reads)
