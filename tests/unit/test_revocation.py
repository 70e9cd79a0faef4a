"""The revoke action's logic: the payload, the plan, the order of REPLACE and REVOKE, refusals.

The renewal pipeline is the real :class:`~renewer.renewal.RenewalService` over the in-memory
fakes of ``test_renewal``; the revoker is a recording fake (the real one runs against Pebble in
``tests/e2e/test_revocation.py``). The class of failure these guard: a target serving a
certificate that was revoked.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from renewer import pki
from renewer.adapters.acme_revocation import _refusal
from renewer.errors import (
    AcmeProtocolError,
    AlreadyRevoked,
    CertificateUnknownToCa,
    ConfigError,
    RevocationUnauthorized,
)
from renewer.invocation import Action, InvalidRequest, parse_payload
from renewer.report import Outcome
from renewer.revocation import RevocationReason, SignWith, parse_reason, plan_revocation
from renewer.revoker import RevocationRequest, RevocationService
from renewer.settings import Config
from tests.support.fakes_deploy import DeployCall
from tests.unit.test_renewal import BUDGET, World, cert_doc, new_world, only


class RecordingRevoker:
    directory_url = "https://ca.test/dir"

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: list[tuple[str, int, bool, str | None]] = []
        self.error: Exception | None = None

    def revoke(
        self,
        fullchain_pem: str,
        reason_code: int,
        *,
        certificate_key_pem: str | None,
        deadline: float,  # noqa: ARG002 - the port's signature
    ) -> str:
        # What the target was last switched to when the revocation is sent (the rule under test).
        served = last_deployed_serial(self.world)
        serial = pki.describe(fullchain_pem).serial_hex
        self.calls.append((serial, reason_code, certificate_key_pem is not None, served))
        if self.error is not None:
            raise self.error
        return "certificate key" if certificate_key_pem else "https://ca.test/acct/1"


def service(world: World, revoker: RecordingRevoker) -> RevocationService:
    def renewals_for(config: Config) -> Any:
        return world.service(config=config)

    return RevocationService(
        config=world.config,
        certificates=world.store,
        revoker=lambda _directory: revoker,
        renewals_for=renewals_for,
        clock=world.clock,
    )


def request(version: int, reason: str = "keyCompromise", **more: Any) -> RevocationRequest:
    return RevocationRequest(name="shop", version=version, reason=RevocationReason(reason), **more)


def last_deployed_serial(world: World) -> str | None:
    deploys = [c for c in world.deployer.calls if isinstance(c, DeployCall)]
    return deploys[-1].serial_hex if deploys else None


def test_key_compromise_of_the_served_version_replaces_with_a_fresh_key_before_revoking():
    world = new_world(cert_doc("shop", reuseKey=True))
    first = only(world.run())
    old = world.store.get("shop", first.version or 0)
    revoker = RecordingRevoker(world)

    entry = only(service(world, revoker).revoke(request(old.version), budget_s=BUDGET))

    assert (entry.outcome, entry.reason) == (Outcome.RENEWED, "Revoked")
    (serial, code, by_key, served) = revoker.calls[0]
    assert (serial, code, by_key) == (old.serial_hex, 1, False)
    new = world.store.latest("shop")
    assert new is not None
    assert new.serial_hex != old.serial_hex
    assert served == new.serial_hex  # deployed before the revocation was sent
    # reuseKey is ignored for a compromised key.
    assert pki.leaf_public_key_der(new.fullchain_pem) != pki.leaf_public_key_der(old.fullchain_pem)
    assert entry.revocation is not None
    assert entry.revocation["freshKey"] is True


def test_a_failed_replacement_revokes_nothing():
    world = new_world()
    first = only(world.run())
    world.issuer.fail_next(1, AcmeProtocolError("boom", problem_type="serverInternal"))
    revoker = RecordingRevoker(world)

    entry = only(service(world, revoker).revoke(request(first.version or 0), budget_s=BUDGET))

    assert entry.outcome is Outcome.FAILED
    assert entry.failed_step == "replace"
    assert "not revoked" in (entry.error or "")
    assert revoker.calls == []
    assert last_deployed_serial(world) == first.serial


def test_an_older_version_sharing_the_compromised_key_is_replaced_too():
    world = new_world(cert_doc("shop", reuseKey=True))
    first = only(world.run())
    only(world.run(force=True))  # same key (reuseKey), new serial
    revoker = RecordingRevoker(world)
    orders = len(world.issuer.orders)

    entry = only(service(world, revoker).revoke(request(first.version or 0), budget_s=BUDGET))

    assert entry.outcome is Outcome.RENEWED
    assert len(world.issuer.orders) == orders + 1
    assert revoker.calls[0][0] == first.serial
    assert revoker.calls[0][3] != first.serial


def test_superseded_of_an_older_version_orders_nothing_and_can_sign_with_the_certificate_key():
    world = new_world()
    first = only(world.run())
    only(world.run(force=True))
    revoker = RecordingRevoker(world)
    orders = len(world.issuer.orders)

    entry = only(
        service(world, revoker).revoke(
            request(first.version or 0, "superseded", sign_with=SignWith.CERTIFICATE_KEY),
            budget_s=BUDGET,
        )
    )

    assert (entry.outcome, entry.reason) == (Outcome.SKIPPED, "Revoked")
    assert len(world.issuer.orders) == orders
    assert revoker.calls[0][1:3] == (4, True)


def test_a_dry_run_plans_and_touches_nothing():
    world = new_world()
    first = only(world.run())
    revoker = RecordingRevoker(world)
    deploys, orders = len(world.deployer.calls), len(world.issuer.orders)

    entry = only(
        service(world, revoker).revoke(request(first.version or 0, dry_run=True), budget_s=BUDGET)
    )

    assert (entry.outcome, entry.reason) == (Outcome.SKIPPED, "RevocationPlanned")
    assert (len(world.deployer.calls), len(world.issuer.orders), revoker.calls) == (
        deploys,
        orders,
        [],
    )


def test_an_unknown_version_is_typed_and_the_ca_refusal_is_reported():
    world = new_world()
    first = only(world.run())
    revoker = RecordingRevoker(world)

    unknown = only(service(world, revoker).revoke(request(42), budget_s=BUDGET))
    assert (unknown.outcome, unknown.error_type) == (Outcome.FAILED, "UnknownCertificateVersion")

    only(world.run(force=True))
    revoker.error = AlreadyRevoked("x", problem_type="alreadyRevoked")
    refused = only(
        service(world, revoker).revoke(request(first.version or 0, "superseded"), budget_s=BUDGET)
    )
    assert (refused.outcome, refused.error_type, refused.failed_step) == (
        Outcome.FAILED,
        "AlreadyRevoked",
        "revoke",
    )
    assert refused.revocation is not None
    assert refused.revocation["revoked"] is False


def test_a_version_from_another_ca_is_refused_before_anything():
    world = new_world()
    first = only(world.run())
    stored = world.store.get("shop", first.version or 0)
    only(world.run(force=True))  # so that the put below is a new version, not the current one
    world.store.put("shop", dataclasses.replace(stored, account_url="https://other.test/acct/9"))
    latest = world.store.latest("shop")
    assert latest is not None
    revoker = RecordingRevoker(world)

    entry = only(service(world, revoker).revoke(request(latest.version), budget_s=BUDGET))

    assert (entry.outcome, entry.error_type, entry.failed_step) == (
        Outcome.FAILED,
        "ConfigError",
        "plan",
    )
    assert revoker.calls == []


# --- the plan and the payload (pure) -------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "latest_serial", "shares", "replace", "fresh"),
    [
        ("keyCompromise", "AA", True, True, True),  # the served one
        ("keyCompromise", "BB", True, True, True),  # older, key reused by the newest
        ("keyCompromise", "BB", False, False, False),  # older, another key
        ("superseded", "AA", True, True, False),  # the served one: replaced, key policy
        ("superseded", "BB", True, False, False),  # older: nothing to replace
    ],
)
def test_the_plan_replaces_exactly_when_a_target_would_serve_what_is_revoked(
    reason: str, latest_serial: str, *, shares: bool, replace: bool, fresh: bool
):
    plan = plan_revocation(
        name="shop",
        version=1,
        serial="AA",
        latest_version=2,
        latest_serial=latest_serial,
        shares_key_with_latest=shares,
        reason=RevocationReason(reason),
        sign_with=SignWith.ACCOUNT,
        ca="https://ca.test/dir",
    )
    assert (plan.replace, plan.fresh_key) == (replace, fresh)
    assert plan.steps[-1].startswith("revoke serial AA (version 1)")


def test_reasons_are_rfc_5280_codes_and_the_cas_own_are_refused():
    assert {r.value: r.code for r in RevocationReason} == {
        "unspecified": 0,
        "keyCompromise": 1,
        "affiliationChanged": 3,
        "superseded": 4,
        "cessationOfOperation": 5,
    }
    assert "only the CA says so" in (parse_reason("cACompromise")[1] or "")
    assert "unknown" in (parse_reason("nope")[1] or "")
    assert "unknown" in (parse_reason(7)[1] or "")


def test_the_revoke_payload_parses_and_its_fields_belong_to_it():
    body = {"action": "revoke", "certificates": ["shop"], "version": 3, "reason": "superseded"}
    parsed = parse_payload(json.dumps({**body, "signWith": "certificateKey"}).encode())
    assert (parsed.action, parsed.version, parsed.reason, parsed.sign_with) == (
        Action.REVOKE,
        3,
        RevocationReason.SUPERSEDED,
        SignWith.CERTIFICATE_KEY,
    )
    assert parse_payload(json.dumps(body).encode()).sign_with is SignWith.ACCOUNT
    with pytest.raises(InvalidRequest, match='"reason" is for revoke only'):
        parse_payload(b'{"action": "plan", "reason": "superseded"}')
    with pytest.raises(InvalidRequest, match="exactly one certificate"):
        parse_payload(json.dumps({**body, "certificates": []}).encode())
    assert issubclass(InvalidRequest, ConfigError)


# --- the CA's refusals (the adapter's mapping) ----------------------------------------------


def problem(kind: str, detail: str, status: int) -> AcmeProtocolError:
    return AcmeProtocolError(
        f"ACME revokeCert failed: {kind}: {detail}", problem_type=kind, detail=detail, status=status
    )


@pytest.mark.parametrize(
    ("kind", "detail", "status", "expected"),
    [
        ("alreadyRevoked", "Certificate has already been revoked.", 400, AlreadyRevoked),
        ("unauthorized", "not associated with account", 403, RevocationUnauthorized),
        ("accountDoesNotExist", "no account", 400, RevocationUnauthorized),
        ("malformed", "Unable to find specified certificate.", 400, CertificateUnknownToCa),
        ("malformed", "Certificate not found", 404, CertificateUnknownToCa),
        ("badRevocationReason", "Invalid revocation reason: 6", 400, AcmeProtocolError),
    ],
)
def test_the_cas_refusals_are_typed(kind: str, detail: str, status: int, expected: type):
    refused = _refusal(problem(kind, detail, status), "https://ca.test/acct/1")
    assert type(refused) is expected
    assert detail in str(refused)
