"""The Terraform stack's DNS challenge inputs: the rendered ``challenge`` and the
dns-persist-01 records (``local.dns_persist_records``, what ``oci_dns_rrset.dns_persist``
writes), evaluated from the real ``.tf`` files and checked against the renewer's own builder
(renewer.dns_names) and validator.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from renewer.dns_names import ChallengeType, persist_records
from renewer.settings import parse_config
from tests.terraform.hcl_eval import Evaluation, Module, ValidationFailed
from tests.terraform.stack import EXAMPLE_BOUND, ROOT, evaluate_root, example_inputs

ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/1234567890"
ZONE = "ocid1.dns-zone.oc1..aaaaexamplezone"
TARGETS = [{"load_balancer": "web", "listeners": ["https"]}]


def _inputs(certificates: list[dict[str, Any]], **variables: Any) -> dict[str, Any]:
    return {**example_inputs("basic"), "certificates": certificates, **variables}


def _records(inputs: dict[str, Any]) -> dict[str, Any]:
    evaluation = Evaluation(Module.load(ROOT), inputs, dict(EXAMPLE_BOUND))
    evaluation.validate_all()
    return dict(evaluation.local("dns_persist_records"))


def test_the_configuration_carries_each_challenge_and_passes_the_renewers_validator():
    certificates = [
        {"name": "plain", "dns_names": ["shop.example.com"], "targets": TARGETS},
        {
            "name": "wild",
            "dns_names": ["example.com", "*.example.com"],
            "challenge": "dns-persist-01",
            "targets": [{"load_balancer": "web", "listeners": ["https-wild"]}],
        },
        {
            "name": "dns",
            "dns_names": ["*.example.org"],
            "challenge": "dns-01",
            "dns_zone_id": ZONE,
            "targets": [{"load_balancer": "web", "listeners": ["https-dns"]}],
        },
    ]
    config = parse_config(evaluate_root(_inputs(certificates)).config)
    specs = {c.spec.name: c.spec for c in config.certificates}
    assert specs["plain"].challenge is ChallengeType.HTTP_01
    assert specs["wild"].challenge is ChallengeType.DNS_PERSIST_01
    assert (specs["dns"].challenge, specs["dns"].dns_zone_id) == (ChallengeType.DNS_01, ZONE)


def test_persist_records_match_the_renewers_plan_once_the_account_is_known():
    certificates = [
        {
            "name": "wild",
            "dns_names": ["example.com", "*.example.com", "api.example.net"],
            "challenge": "dns-persist-01",
            "dns_zone_id": ZONE,
            "targets": TARGETS,
        }
    ]
    assert _records(_inputs(certificates)) == {}  # no account URL yet: nothing to bind
    records = _records(_inputs(certificates, acme_account_uri=ACCOUNT))
    expected = persist_records(certificates[0]["dns_names"], "letsencrypt.org", ACCOUNT)
    assert {name: r["value"] for name, r in records.items()} == {r.name: r.value for r in expected}
    assert {r["zone_id"] for r in records.values()} == {ZONE}


@pytest.mark.parametrize(
    ("certificate", "message"),
    [
        ({"dns_names": ["*.example.com"]}, "set that certificate's challenge to dns-persist-01"),
        ({"challenge": "tls-alpn-01"}, "http-01, dns-persist-01, dns-01"),
        ({"challenge": "dns-01"}, "needs dns_zone_id"),
        ({"dns_zone_id": ZONE}, "for DNS challenges only"),
    ],
)
def test_dns_challenge_validation(certificate: dict[str, Any], message: str):
    inputs = _inputs(
        [{"name": "shop", "dns_names": ["shop.example.com"], "targets": TARGETS, **certificate}]
    )
    with pytest.raises(ValidationFailed, match=re.escape(message)):
        evaluate_root(inputs)


def test_an_account_uri_that_cannot_go_into_a_record_is_refused():
    with pytest.raises(ValidationFailed, match="acme_account_uri"):
        evaluate_root({**example_inputs("basic"), "acme_account_uri": "https://ca/acct; x"})
