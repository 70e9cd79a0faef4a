"""The challenge route on the port-80 listeners people run (issue 13 §1), end to end.

Each test starts a world whose load balancer has one shape of port-80 listener and no challenge
route; the configuration names the token backend set (``oci.challengeBackendSet``, what
Terraform writes). The real renewer brings the route into place before its order and Pebble
validates through the emulated load balancer, the token server and Object Storage:

a. ``forward``: everything goes to the application; our routing policy is attached;
b. ``redirect``: a rule set redirects everything to HTTPS; the CA follows it (Pebble's VA, like
   Let's Encrypt's, follows redirects and does not check the HTTPS certificate) and meets the
   route on the HTTPS listener; the user's rule set is untouched;
c. ``own-policy``: the listener's own routing policy gets our rule first, theirs after it;
d. ``none``: a port-80 listener answering only the challenge path is created.

A private load balancer is refused before any order. ``plan`` reports what a run would change
and changes nothing.
"""

from __future__ import annotations

import http.client
from typing import Any

import pytest

from renewer import pki
from renewer.adapters.oci_challenge_route import CONDITION
from renewer.report import Outcome
from sandbox.oci_emulator.load_balancer import LoadBalancer
from sandbox.world import (
    HTTPS_LISTENER,
    HTTPS_REDIRECT_RULE_SET,
    LB_ID,
    OWN_POLICY,
    TOKEN_BACKEND_SET,
    SandboxWorld,
    own_rules,
)

pytestmark = pytest.mark.e2e

BUDGET = 120.0
NAME = "shop.example.com"
OUR_POLICY = "acme_challenge"
OUR_RULE = {
    "name": "acme_http01",
    "condition": CONDITION,
    "actions": [{"name": "FORWARD_TO_BACKENDSET", "backendSetName": TOKEN_BACKEND_SET}],
}
VALIDATION = "Attempting to validate w/ HTTP"  # Pebble's VA, once per http-01 fetch


def load_balancer(world: SandboxWorld) -> dict[str, Any]:
    service = world.emulator.services["loadbalancer"]
    assert isinstance(service, LoadBalancer)
    config = service.current(LB_ID)
    assert config is not None
    return config


def lb_get(world: SandboxWorld, path: str) -> tuple[int, str | None]:
    """``(status, Location)`` of a plain request to the LB's :80 listener for ``NAME``."""
    conn = http.client.HTTPConnection("127.0.0.1", world.local_ports[80], timeout=5)
    try:
        conn.request("GET", path, headers={"Host": NAME})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    finally:
        conn.close()


def renew(world: SandboxWorld) -> Any:
    report = world.service().run(budget_s=BUDGET)
    (certificate,) = report.certificates
    assert certificate.outcome == Outcome.RENEWED, certificate.message
    served = pki.normalize_serial(pki.serial_hex(world.served_certificate(NAME)))
    assert served == certificate.serial
    assert VALIDATION in world.pebble_log()
    return certificate


def without(listener: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in listener.items() if k != key}


@pytest.mark.world(port80="forward")
def test_a_forward_everything_gets_our_policy_attached(world: SandboxWorld) -> None:
    before = load_balancer(world)
    certificate = renew(world)

    after = load_balancer(world)
    assert after["routingPolicies"][OUR_POLICY]["rules"] == [OUR_RULE]
    assert after["listeners"]["http"]["routingPolicyName"] == OUR_POLICY
    # Nothing else of the listener changed; the HTTPS listener only changed its certificate.
    assert without(after["listeners"]["http"], "routingPolicyName") == without(
        before["listeners"]["http"], "routingPolicyName"
    )
    assert after["ruleSets"] == before["ruleSets"]
    assert "attach routing policy acme_challenge to listener http" in certificate.message
    # Other paths still reach the application's backend set (nothing listens: 502).
    assert lb_get(world, "/index.html")[0] == 502


@pytest.mark.world(port80="redirect")
def test_b_redirect_to_https_is_followed_and_left_as_it_is(world: SandboxWorld) -> None:
    before = load_balancer(world)
    status, location = lb_get(world, "/.well-known/acme-challenge/x")
    assert status == 301
    assert location is not None
    assert location.startswith("https://")
    renew(world)

    after = load_balancer(world)
    # The user's redirect rule set is exactly as it was, and still catches everything on :80.
    assert after["ruleSets"] == before["ruleSets"]
    assert after["listeners"]["http"]["ruleSetNames"] == [HTTPS_REDIRECT_RULE_SET]
    assert lb_get(world, "/anything")[0] == 301
    # The route answers where the redirect lands: the HTTPS listener.
    assert after["listeners"][HTTPS_LISTENER]["routingPolicyName"] == OUR_POLICY
    assert after["routingPolicies"][OUR_POLICY]["rules"] == [OUR_RULE]
    https_before, https_after = (
        without(x["listeners"][HTTPS_LISTENER], "routingPolicyName") for x in (before, after)
    )
    assert without(https_after, "sslConfiguration") == without(https_before, "sslConfiguration")


@pytest.mark.world(port80="own-policy")
def test_c_own_policy_gets_our_rule_first_and_keeps_theirs(world: SandboxWorld) -> None:
    before = load_balancer(world)
    renew(world)

    after = load_balancer(world)
    assert after["listeners"]["http"] == before["listeners"]["http"]  # still on their policy
    assert after["routingPolicies"][OWN_POLICY]["rules"] == [OUR_RULE, *own_rules()]
    assert OUR_POLICY not in after["routingPolicies"]


@pytest.mark.world(port80="none")
def test_d_no_port_80_listener_gets_one_for_the_challenge_path(world: SandboxWorld) -> None:
    assert not any(lst["port"] == 80 for lst in load_balancer(world)["listeners"].values())
    certificate = renew(world)

    listener = load_balancer(world)["listeners"]["acme-http01"]
    assert (listener["port"], listener["defaultBackendSetName"]) == (80, TOKEN_BACKEND_SET)
    assert "create port-80 listener acme-http01" in certificate.message
    # It answers nothing but challenges: the token server's 404 elsewhere.
    assert lb_get(world, "/index.html")[0] == 404


@pytest.mark.world(port80="forward")
def test_a_second_run_finds_the_route_in_place(world: SandboxWorld) -> None:
    renew(world)
    config = load_balancer(world)
    report = world.service().run(budget_s=BUDGET, force=True)
    assert report.certificates[0].outcome == Outcome.RENEWED
    assert "challenge route" not in report.certificates[0].message
    assert load_balancer(world)["routingPolicies"] == config["routingPolicies"]


@pytest.mark.world(port80="forward")
def test_plan_reports_the_route_and_changes_nothing(world: SandboxWorld) -> None:
    before = load_balancer(world)
    report = world.service().plan()
    (certificate,) = report.certificates
    assert certificate.due
    assert "would first: create routing policy acme_challenge" in certificate.message
    assert "attach routing policy acme_challenge to listener http" in certificate.message
    assert load_balancer(world) == before
    assert not [e for e in world.emulator.requests if e["method"] != "GET"]


@pytest.mark.world(port80="forward", private=True)
def test_private_load_balancer_is_refused_before_any_order(world: SandboxWorld) -> None:
    before = load_balancer(world)
    report = world.service().run(budget_s=BUDGET)
    (certificate,) = report.certificates
    assert certificate.outcome == Outcome.FAILED
    assert certificate.failed_step == "check"
    assert "is private (isPrivate)" in (certificate.error or "")
    assert "DNS challenge" in (certificate.error or "")
    assert "new-order" not in world.pebble_log().lower()
    assert load_balancer(world)["listeners"] == before["listeners"]
    assert load_balancer(world)["routingPolicies"] == before["routingPolicies"]
