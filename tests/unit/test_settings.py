"""The configuration document: a good one parses into values; every bad one is refused with the
JSON path of the field and the fix — all problems at once."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from renewer.errors import ConfigError
from renewer.model import CertificateServiceTarget, KeyType, ListenerTarget
from renewer.settings import load_config, parse_config

LB = "ocid1.loadbalancer.oc1.phx.aaaalb"
GOOD: dict[str, Any] = {
    "acme": {
        "directoryUrl": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "contact": ["ops@example.com"],
        "eab": {"keyId": "kid-1", "hmacKeySecretId": "ocid1.vaultsecret.oc1.phx.aaaaeab"},
    },
    "oci": {
        "compartmentId": "ocid1.compartment.oc1..aaaaapps",
        "vaultId": "ocid1.vault.oc1.phx.aaaavault",
        "keyId": "ocid1.key.oc1.phx.aaaakey",
        "challengeBucket": "acme-challenges",
        "stateBucket": "acme-state",
    },
    "renewal": {"retention": 5},
    "certificates": [
        {
            "name": "shop",
            "dnsNames": ["Shop.Example.com.", "www.shop.example.com"],
            "keyType": "rsa-3072",
            "profile": "tlsserver",
            "targets": [
                {"loadBalancerId": LB, "listeners": ["https", "https-alt"]},
                {"certificateId": "ocid1.certificate.oc1.phx.aaaacert"},
            ],
        },
        {
            "name": "blog",
            "dnsNames": ["blog.example.com"],
            "targets": [{"loadBalancerId": LB, "listeners": ["blog"]}],
        },
    ],
}


def test_a_good_document_parses_into_values():
    config = load_config(json.dumps(GOOD))
    shop = config.certificate("shop")
    assert shop.spec.dns_names == ("shop.example.com", "www.shop.example.com")  # normalized
    assert shop.spec.key_type is KeyType.RSA_3072
    assert shop.spec.profile == "tlsserver"
    assert shop.targets == (
        ListenerTarget(LB, ("https", "https-alt")),
        CertificateServiceTarget("ocid1.certificate.oc1.phx.aaaacert"),
    )
    blog = config.certificate("blog")
    assert blog.spec.key_type is None  # the default: "auto", chosen per run (key_choice)
    assert config.acme.terms_of_service_agreed is True
    assert config.acme.self_check is True
    assert config.acme.eab is not None
    assert config.acme.eab.hmac_key_secret_id.startswith("ocid1.vaultsecret.")
    assert config.oci.name_prefix == "acme"
    assert config.renewal.retention == 5
    assert config.renewal.keep_previous_bundles == 1
    with pytest.raises(ConfigError, match="configured: shop, blog"):
        config.certificate("nope")


def changed(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the value at a dotted path (list indexes as numbers) replaced or deleted."""
    document = copy.deepcopy(GOOD)
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return document


DELETE = object()
BAD = [
    ("unknown top-level key", changed("extra", 1), "$.extra: unknown key"),
    ("missing acme", changed("acme", DELETE), "$.acme: is required"),
    ("unknown nested key (typo)", changed("acme.selfChek", False), "acme.selfChek: unknown key"),
    (
        "http directory",
        changed("acme.directoryUrl", "http://ca.example/dir"),
        "must be an https://",
    ),
    (
        "contact not a list",
        changed("acme.contact", "ops@example.com"),
        "acme.contact: must be a list",
    ),
    ("bad contact", changed("acme.contact", ["mailto:ops"]), "acme.contact[0]"),
    (
        "tos as string",
        changed("acme.termsOfServiceAgreed", "yes"),
        "must be true or false, not a string",
    ),
    ("EAB key inline", changed("acme.eab.hmacKey", "c2VjcmV0"), "never put the key here"),
    (
        "EAB secret not a secret OCID",
        changed("acme.eab.hmacKeySecretId", "ocid1.vault.oc1..x"),
        "is not a vaultsecret OCID",
    ),
    ("compartment not an OCID", changed("oci.compartmentId", "apps"), "oci.compartmentId"),
    (
        "vault OCID of the wrong type",
        changed("oci.vaultId", "ocid1.key.oc1.phx.aaaa"),
        "is not a vault OCID",
    ),
    ("missing key", changed("oci.keyId", DELETE), "oci.keyId: is required"),
    ("bad bucket name", changed("oci.challengeBucket", "acme challenges"), "bucket names use"),
    (
        "same bucket twice",
        changed("oci.stateBucket", "acme-challenges"),
        "must differ from challengeBucket",
    ),
    ("bad prefix", changed("oci.namePrefix", "Acme!"), "name prefix"),
    ("retention too high", changed("renewal.retention", 28), "between 2 and 27"),
    ("retention as bool", changed("renewal.retention", True), "must be an integer, not a boolean"),
    ("no certificates", changed("certificates", []), "must hold at least 1 item"),
    ("invalid certificate name", changed("certificates.0.name", "Shop_Site"), "lower-case letters"),
    (
        "duplicate certificate name",
        changed("certificates.1.name", "shop"),
        "already used by certificates[0]",
    ),
    (
        "wildcard name",
        changed("certificates.0.dnsNames.0", "*.example.com"),
        "http-01 cannot validate wildcards",
    ),
    ("IP address", changed("certificates.0.dnsNames.0", "192.0.2.1"), "is an IP address"),
    (
        "invalid DNS name",
        changed("certificates.0.dnsNames.0", "bad_name.example.com"),
        "is not a valid DNS name",
    ),
    ("single label", changed("certificates.0.dnsNames.0", "localhost"), "is not a valid DNS name"),
    (
        "duplicate DNS names",
        changed("certificates.0.dnsNames.1", "SHOP.example.com"),
        "more than once",
    ),
    (
        "too many names",
        changed("certificates.0.dnsNames", [f"h{i}.example.com" for i in range(101)]),
        "at most 100",
    ),
    (
        "unknown key type",
        changed("certificates.0.keyType", "ed25519"),
        "is not one of: auto, ecdsa-p256",
    ),
    ("bad profile", changed("certificates.0.profile", "Short Lived"), "an ACME profile name"),
    ("no targets", changed("certificates.0.targets", []), "must hold at least 1 item"),
    (
        "LB OCID of the wrong type",
        changed("certificates.0.targets.0.loadBalancerId", "ocid1.networkloadbalancer.oc1..x"),
        "is not a loadbalancer OCID",
    ),
    (
        "no listeners",
        changed("certificates.0.targets.0.listeners", []),
        "listeners: must hold at least 1",
    ),
    (
        "duplicate listener",
        changed("certificates.0.targets.0.listeners", ["https", "https"]),
        "more than once",
    ),
    (
        "unknown target key",
        changed("certificates.0.targets.0.port", 443),
        "targets[0].port: unknown key",
    ),
    (
        "certificate target of the wrong type",
        changed("certificates.0.targets.1.certificateId", LB),
        "is not a certificate OCID",
    ),
    (
        "same listener twice",
        changed("certificates.0.targets.1", {"loadBalancerId": LB, "listeners": ["https"]}),
        "same listener or certificate twice",
    ),
    ("reuseKey as string", changed("certificates.0.reuseKey", "false"), "must be true or false"),
    ("document not an object", [], "$: must be an object, not a list"),
]


@pytest.mark.parametrize(("case", "document", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_configuration_names_the_field(case, document, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    assert expected in str(info.value), f"{case}: {info.value}"


def test_every_problem_is_reported_at_once():
    document = changed("renewal.retention", 99)
    document["acme"]["directoryUrl"] = "ftp://x"
    document["certificates"][0]["dnsNames"] = ["*.example.com"]
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    message = str(info.value)
    assert message.startswith("the configuration has 3 problems:")
    for path in ("acme.directoryUrl", "renewal.retention", "certificates[0].dnsNames[0]"):
        assert path in message


def test_invalid_json_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config("{'acme': 1}")


def test_the_example_in_the_module_docstring_is_a_valid_document():
    import renewer.settings as module  # noqa: PLC0415

    example = module.__doc__.split("Example (every optional key shown with its default)::", 1)[1]
    text = "\n".join(line.split("#", 1)[0] for line in example.splitlines())
    text = text.replace("ocid1.compartment.oc1..", "ocid1.compartment.oc1..a")
    for kind in ("vault", "key", "loadbalancer", "certificate"):
        text = text.replace(f'"ocid1.{kind}.oc1.."', f'"ocid1.{kind}.oc1..a"')
    config = load_config(text)
    assert config.certificate("shop").spec.dns_names == ("shop.example.com", "www.shop.example.com")
