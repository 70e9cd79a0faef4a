"""dns-persist-01 end to end: a wildcard certificate, and a private load balancer.

Real Pebble 2.10 validates ``dns-persist-01`` (draft-ietf-acme-dns-persist) by resolving
``_validation-persist.<domain>`` TXT through pebble-challtestsrv; the test creates that record
exactly as ``plan`` prints it (what Terraform's ``dns_persist_records`` writes in a tenancy). The
certificate is stored in the emulated Vault and deployed to the emulated LB through the real
SDK; a TLS handshake shows the new leaf. The renewer writes no DNS record and no challenge object.
"""

from __future__ import annotations

import pytest
from cryptography import x509

from renewer import pki
from renewer.report import Outcome
from sandbox.world import CHALLENGE_BUCKET, SandboxWorld

pytestmark = pytest.mark.e2e

BUDGET = 120.0
WILDCARD = ("shop.example.com", "*.shop.example.com")


def _needs_dns_persist(world: SandboxWorld) -> None:
    if not world.pebble.binaries.at_least(2, 10):
        pytest.skip("dns-persist-01 needs Pebble 2.10 (this machine has an older pebble)")


def _put_records_from_plan(world: SandboxWorld) -> list[dict[str, str]]:
    """Run ``plan``, check it names the records, and create them in Pebble's DNS."""
    planned = world.service().plan().certificates[0].to_dict()
    records = planned["dns_records"]
    assert records, planned
    for record in records:
        world.pebble.set_txt(record["name"], record["value"])
    return records


def _sans(certificate: x509.Certificate) -> set[str]:
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(extension.value.get_values_for_type(x509.DNSName))


@pytest.mark.world(certificates=WILDCARD, challenge="dns-persist-01")
def test_wildcard_issues_and_deploys_through_the_persistent_record(world: SandboxWorld) -> None:
    # No account yet: plan cannot name the account URL and says how the account comes about.
    before = world.service().plan().certificates[0].to_dict()
    assert before["dns_records"] == []
    assert "no ACME account exists yet" in before["message"]

    # The first run registers the account; without the record the CA refuses the names, and
    # the error names the challenge that failed.
    first = world.service().run(budget_s=BUDGET)
    (failed,) = first.certificates
    assert failed.outcome is Outcome.FAILED, first.to_json()
    assert failed.error_type == "ChallengeFailed"

    records = _put_records_from_plan(world)
    account = world.service().plan().certificates[0]
    assert [r.to_dict() for r in account.dns_records] == records
    # One record for shop.example.com and *.shop.example.com, with the wildcard policy.
    (record,) = records
    assert record["name"] == "_validation-persist.shop.example.com"
    assert record["type"] == "TXT"
    assert record["value"].startswith("pebble.letsencrypt.org; accounturi=https://")
    assert record["value"].endswith("; policy=wildcard")

    report = world.service().run(budget_s=BUDGET, force=True)
    (renewed,) = report.certificates
    assert renewed.outcome is Outcome.RENEWED, report.to_json()
    served = world.served_certificate("www.shop.example.com")
    assert pki.normalize_serial(pki.serial_hex(served)) == pki.normalize_serial(renewed.serial)
    assert _sans(served) == set(WILDCARD)
    # Nothing was published for http-01: dns-persist-01 needs no token backend.
    assert not [
        e for e in world.emulator.requests if e["method"] == "PUT" and CHALLENGE_BUCKET in e["path"]
    ]


@pytest.mark.world(
    certificates=("internal.shop.example.com",), challenge="dns-persist-01", private_lb=True
)
def test_private_load_balancer_renews_through_dns_persist(world: SandboxWorld) -> None:
    # The private LB has no port-80 listener: http-01 has no path at all.
    with pytest.raises(LookupError):
        world.lb_port(80)
    world.service().run(budget_s=BUDGET)  # registers the account (fails without the record)
    _put_records_from_plan(world)

    first = world.service().run(budget_s=BUDGET, force=True)
    assert first.certificates[0].outcome is Outcome.RENEWED, first.to_json()
    second = world.service().run(budget_s=BUDGET, force=True)  # a renewal, same record
    (renewed,) = second.certificates
    assert renewed.outcome is Outcome.RENEWED, second.to_json()
    assert renewed.serial != first.certificates[0].serial
    served = world.served_certificate("internal.shop.example.com")
    assert pki.normalize_serial(pki.serial_hex(served)) == pki.normalize_serial(renewed.serial)
