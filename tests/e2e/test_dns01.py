"""dns-01 through OCI DNS end to end: wildcard certificates, a private load balancer, clean-up.

The renewer writes ``_acme-challenge`` TXT records into the emulated OCI DNS zone through the
real SDK (PatchDomainRecords, as its resource principal, under the least-privilege policy
``use dns-records ... where target.dns-zone.id``); the sandbox mirrors the zone's TXT records
into pebble-challtestsrv, the DNS server real Pebble validates against — so Pebble sees exactly
what the emulated zone holds. The certificate is stored in Vault and deployed to the emulated
LB; a TLS handshake shows it.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509

from renewer import pki
from renewer.report import Outcome
from sandbox.world import (
    CHALLENGE_BUCKET,
    DNS_ZONE_ID,
    OTHER_DNS_ZONE_ID,
    SandboxWorld,
)

pytestmark = pytest.mark.e2e

BUDGET = 120.0
WILDCARD = ("shop.example.com", "*.shop.example.com")
DNS_MUTATIONS = {"PatchDomainRecords", "PatchZoneRecords", "UpdateDomainRecords"}


def _dns(world: SandboxWorld) -> Any:
    return world.emulator.services["dns"]


def _challenge_records(world: SandboxWorld, zone_id: str = DNS_ZONE_ID) -> list[dict[str, Any]]:
    return [r for r in _dns(world).records(zone_id) if r["domain"].startswith("_acme-challenge.")]


def _dns_writes(world: SandboxWorld) -> list[dict[str, Any]]:
    return [e for e in world.emulator.requests if e["operation"] in DNS_MUTATIONS]


def _sans(certificate: x509.Certificate) -> set[str]:
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(extension.value.get_values_for_type(x509.DNSName))


@pytest.mark.world(certificates=WILDCARD, challenge="dns-01")
def test_wildcard_issues_and_deploys_and_the_records_are_removed(world: SandboxWorld) -> None:
    other_zone_before = _dns(world).records(OTHER_DNS_ZONE_ID)
    report = world.service().run(budget_s=BUDGET)
    (renewed,) = report.certificates
    assert renewed.outcome is Outcome.RENEWED, report.to_json()
    served = world.served_certificate("www.shop.example.com")
    assert pki.normalize_serial(pki.serial_hex(served)) == pki.normalize_serial(renewed.serial)
    assert _sans(served) == set(WILDCARD)

    # Both names validate at _acme-challenge.shop.example.com (RFC 8555 §8.4): two values were
    # added there, in the configured zone only, and are gone again.
    writes = _dns_writes(world)
    assert writes, "the renewer wrote no DNS record"
    assert {(e["operation"], e["principal"]) for e in writes} == {
        ("PatchDomainRecords", world.tenancy.principals["renewer"].id)
    }
    assert all(
        e["path"] == f"/20180115/zones/{DNS_ZONE_ID}/records/_acme-challenge.shop.example.com"
        for e in writes
    ), writes
    assert _challenge_records(world) == []
    assert _dns(world).records(OTHER_DNS_ZONE_ID) == other_zone_before
    # Nothing went through http-01's path.
    assert not [
        e for e in world.emulator.requests if e["method"] == "PUT" and CHALLENGE_BUCKET in e["path"]
    ]


@pytest.mark.world(certificates=WILDCARD, challenge="dns-01")
def test_the_records_are_removed_after_a_failed_validation(world: SandboxWorld) -> None:
    # What Pebble's DNS serves is replaced by a wrong value as soon as the zone changes (a
    # stale or hijacked answer): the CA refuses the challenge, and the order fails.
    dns = _dns(world)
    seen: list[list[str]] = []

    def sabotage(_zone: str, domain: str, values: list[str]) -> None:
        seen.append(values)
        world.pebble.replace_txt(domain, ["not-the-key-authorization-digest"] if values else [])

    dns.add_listener(sabotage)
    report = world.service().run(budget_s=BUDGET)
    (failed,) = report.certificates
    assert failed.outcome is Outcome.FAILED, report.to_json()
    assert failed.error_type == "ChallengeFailed", report.to_json()
    assert any(len(values) == 2 for values in seen), seen  # both values were in the zone
    assert _challenge_records(world) == []  # and the clean-up removed them


@pytest.mark.world(
    certificates=("internal.shop.example.com", "*.internal.shop.example.com"),
    challenge="dns-01",
    private_lb=True,
)
def test_a_private_load_balancer_renews_through_dns01(world: SandboxWorld) -> None:
    with pytest.raises(LookupError):
        world.lb_port(80)  # no port-80 listener: http-01 has no path at all
    first = world.service().run(budget_s=BUDGET)
    assert first.certificates[0].outcome is Outcome.RENEWED, first.to_json()
    second = world.service().run(budget_s=BUDGET, force=True)
    (renewed,) = second.certificates
    assert renewed.outcome is Outcome.RENEWED, second.to_json()
    assert renewed.serial != first.certificates[0].serial
    served = world.served_certificate("internal.shop.example.com")
    assert pki.normalize_serial(pki.serial_hex(served)) == pki.normalize_serial(renewed.serial)
    assert _challenge_records(world) == []


@pytest.mark.world(certificates=("shop.example.com", "api.example.net"), challenge="dns-01")
def test_a_name_outside_the_zone_is_refused_and_nothing_is_left(world: SandboxWorld) -> None:
    # api.example.net is not in the configured zone (example.com): its record is refused, the
    # order fails with a configuration error, and neither zone keeps a challenge record — the
    # renewer's policy does not even let it write example.net's zone.
    other_zone_before = _dns(world).records(OTHER_DNS_ZONE_ID)
    report = world.service().run(budget_s=BUDGET)
    (failed,) = report.certificates
    assert failed.outcome is Outcome.FAILED, report.to_json()
    assert failed.error_type == "ConfigError", report.to_json()
    assert "_acme-challenge.api.example.net" in str(failed.error)
    assert _challenge_records(world) == []
    assert _dns(world).records(OTHER_DNS_ZONE_ID) == other_zone_before
    assert all(DNS_ZONE_ID in e["path"] for e in _dns_writes(world))
