"""The DNS challenges' record names and values (renewer.dns_names) and the ``challenge`` setting.

Record shapes: RFC 8555 §8.4 (dns-01) and draft-ietf-acme-dns-persist (dns-persist-01: the
issuer domain, ``accounturi=``, ``policy=wildcard``), as Pebble 2.10 validates them (the e2e
tests in tests/e2e/test_dns_persist.py prove the value against Pebble itself).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from renewer.cli import render
from renewer.dns_names import (
    ChallengeType,
    DnsRecord,
    dns01_record_name,
    persist_record_name,
    persist_record_value,
    persist_records,
)
from renewer.errors import ConfigError
from renewer.hostnames import check_dns_name
from renewer.report import CertificateReport, Outcome, RenewalReport
from renewer.runner import Result
from renewer.settings import parse_config
from tests.unit.test_settings import GOOD

ACCOUNT = "https://acme-v02.api.letsencrypt.org/acme/acct/1234567890"
ZONE = "ocid1.dns-zone.oc1..aaaazone"


def test_record_names_drop_the_wildcard_label():
    assert dns01_record_name("*.Example.COM.") == "_acme-challenge.example.com"
    assert dns01_record_name("www.example.com") == "_acme-challenge.www.example.com"
    assert persist_record_name("*.example.com") == "_validation-persist.example.com"


def test_the_persist_value_names_the_ca_and_the_account():
    assert persist_record_value("letsencrypt.org", ACCOUNT, wildcard=False) == (
        f"letsencrypt.org; accounturi={ACCOUNT}"
    )
    assert persist_record_value("LetsEncrypt.org", ACCOUNT, wildcard=True) == (
        f"letsencrypt.org; accounturi={ACCOUNT}; policy=wildcard"
    )


@pytest.mark.parametrize("bad", ["", "a;b", "a b", 'a"b', "é"])
def test_a_value_the_record_syntax_cannot_carry_is_refused(bad: str):
    with pytest.raises(ValueError, match="cannot be written"):
        persist_record_value("letsencrypt.org", bad, wildcard=False)
    with pytest.raises(ValueError, match="cannot be written"):
        persist_record_value(bad, ACCOUNT, wildcard=False)


def test_a_name_and_its_wildcard_share_one_record_with_the_wildcard_policy():
    records = persist_records(
        ["shop.example.com", "*.shop.example.com", "api.example.org"], "ca.example", ACCOUNT
    )
    assert records == (
        DnsRecord(
            "_validation-persist.api.example.org", "TXT", f"ca.example; accounturi={ACCOUNT}"
        ),
        DnsRecord(
            "_validation-persist.shop.example.com",
            "TXT",
            f"ca.example; accounturi={ACCOUNT}; policy=wildcard",
        ),
    )


def test_wildcards_pass_the_name_rules_only_when_allowed():
    assert check_dns_name("*.Example.com", allow_wildcard=True) == "*.example.com"
    with pytest.raises(ConfigError, match="dns-persist-01 or dns-01"):
        check_dns_name("*.example.com")
    for bad in ("*.*.example.com", "*.com", "a.*.example.com", "*.127.0.0.1"):
        with pytest.raises(ConfigError):
            check_dns_name(bad, allow_wildcard=True)


def _with(certificate: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    document["certificates"][0].update(certificate)
    return document


def _error(document: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return str(caught.value)


def test_the_challenge_defaults_to_http_01():
    spec = parse_config(copy.deepcopy(GOOD)).certificates[0].spec
    assert spec.challenge is ChallengeType.HTTP_01
    assert spec.dns_zone_id is None


def test_dns_challenges_accept_wildcards():
    names = ["example.com", "*.example.com"]
    persist = parse_config(_with({"dnsNames": names, "challenge": "dns-persist-01"}))
    assert persist.certificates[0].spec.challenge is ChallengeType.DNS_PERSIST_01
    assert persist.certificates[0].spec.dns_names == ("example.com", "*.example.com")
    dns01 = (
        parse_config(_with({"dnsNames": names, "challenge": {"type": "dns-01", "zoneId": ZONE}}))
        .certificates[0]
        .spec
    )
    assert (dns01.challenge, dns01.dns_zone_id) == (ChallengeType.DNS_01, ZONE)


def test_a_wildcard_with_http_01_names_the_field_and_the_challenges_to_use():
    message = _error(_with({"dnsNames": ["*.example.com"]}))
    assert "certificates[0].dnsNames[0]" in message
    assert "dns-persist-01 or dns-01" in message


@pytest.mark.parametrize(
    ("challenge", "field", "fix"),
    [
        ("tls-alpn-01", "certificates[0].challenge", "http-01, dns-persist-01, dns-01"),
        ("dns-01", "certificates[0].challenge", '"zoneId"'),
        ({"type": "dns-01"}, "certificates[0].challenge", '"zoneId"'),
        ({"type": "dns-01", "zoneId": "ocid1.vault.oc1..x"}, "challenge.zoneId", "dns-zone"),
        ({"type": "dns-persist-01", "zoneId": ZONE}, "challenge.zoneId", "dns-01 only"),
        ({"type": "dns-01", "zone": ZONE}, "certificates[0].challenge", "zone"),
        (7, "certificates[0].challenge", "a string"),
    ],
)
def test_a_bad_challenge_names_the_field_and_the_fix(challenge: object, field: str, fix: str):
    message = _error(_with({"challenge": challenge}))
    assert field in message
    assert fix in message


def test_the_cli_plan_prints_each_record_to_create():
    record = persist_records(["*.example.com"], "ca.example", ACCOUNT)[0]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    report = RenewalReport(
        now,
        now,
        (
            CertificateReport(
                "wild", Outcome.SKIPPED, "Missing", "would renew", dns_records=(record,)
            ),
        ),
        mode="plan",
    )
    document = json.loads(report.to_json())
    assert document["certificates"][0]["dns_records"] == [record.to_dict()]
    text = render(Result(document), now=now)
    assert (
        f'  create _validation-persist.example.com. TXT "ca.example; accounturi={ACCOUNT};'
        ' policy=wildcard"'
    ) in text.splitlines()
