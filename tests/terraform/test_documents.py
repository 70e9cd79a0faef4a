"""The documents the Terraform stack writes, for every example.

The renewer's configuration is accepted by the renewer's own validator; the policy statements
parse in the emulator's policy engine (OCI's grammar) and grant nothing tenancy-wide; the
variable validations reject what they promise to, with their message
(test_terraform_binary.py compares the evaluator with Terraform where a binary exists).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from renewer.settings import parse_config
from sandbox.oci_emulator.policies import FAMILIES, RESOURCE_TYPES, parse_statement
from tests.terraform.hcl_eval import EvalError, ValidationFailed
from tests.terraform.stack import EXAMPLE_BOUND, EXAMPLES, evaluate, evaluate_root, example_inputs

pytestmark = pytest.mark.unit

# Oracle's Functions policy page: the Functions service pulls images from OCIR with this
# statement, created in the root compartment (issue 13 §8).
FAAS_REPOS = "Allow service faas to read repos in tenancy"


@pytest.mark.parametrize("example", EXAMPLES)
def test_generated_configuration_passes_the_renewers_validator(example: str) -> None:
    documents = evaluate(example)
    # What the object holds is jsonencode(...) of this value: validate the JSON round trip.
    config = parse_config(json.loads(json.dumps(documents.config)))
    names = [c["name"] for c in example_inputs(example)["certificates"]]
    assert [m.spec.name for m in config.certificates] == names
    assert config.oci.challenge_bucket != config.oci.state_bucket
    assert config.oci.vault_id == EXAMPLE_BOUND["vault_id"]


def test_basic_example_defaults_to_lets_encrypt_staging() -> None:
    config = parse_config(evaluate("basic").config)
    assert config.acme.directory_url == "https://acme-staging-v02.api.letsencrypt.org/directory"


def test_multi_example_targets_load_balancers_and_a_certificates_service_certificate() -> None:
    config = parse_config(evaluate("multi").config)
    api = config.certificate("api")
    kinds = sorted(type(t).__name__ for t in api.targets)
    assert kinds == ["CertificateServiceTarget", "ListenerTarget"]
    assert config.acme.directory_url == "https://acme-v02.api.letsencrypt.org/directory"


@pytest.mark.parametrize("example", EXAMPLES)
def test_policy_statements_parse_and_stay_inside_compartments(example: str) -> None:
    documents = evaluate(example)
    statements = [
        *documents.renewer_statements,
        *documents.token_server_statements,
        *documents.service_statements,
    ]
    for text in statements:
        statement = parse_statement(text)  # raises on anything OCI's grammar rejects
        if text == FAAS_REPOS:
            continue  # documented tenancy-wide (root compartment); grants reading images only
        assert statement.location.kind != "tenancy", text
        assert "all-resources" not in text, text
    for text in documents.renewer_statements:
        assert f"dynamic-group {documents.renewer_dynamic_group} " in text


def test_service_statements_pull_the_image_and_let_lifecycle_rules_delete_in_two_buckets() -> None:
    documents = evaluate("basic")
    assert FAAS_REPOS in documents.service_statements
    (lifecycle,) = [s for s in documents.service_statements if "object-family" in s]
    assert lifecycle.startswith("Allow service objectstorage-")
    names = re.findall(r"target\.bucket\.name = '([^']+)'", lifecycle)
    config = documents.config["oci"]
    assert sorted(names) == sorted([config["stateBucket"], config["challengeBucket"]])


def test_token_server_statements_only_in_token_backend_mode() -> None:
    assert evaluate("basic").token_server_statements
    assert evaluate("multi").token_server_statements == []


def test_certificates_service_statement_only_when_a_target_needs_it() -> None:
    basic = evaluate("basic")
    assert not any("leaf-certificate-family" in s for s in basic.renewer_statements)
    assert any("leaf-certificate-family" in s for s in evaluate("multi").renewer_statements)


def test_metrics_statement_follows_metrics_namespace() -> None:
    inputs = {**example_inputs("basic"), "metrics_namespace": None}
    assert not any("use metrics" in s for s in evaluate_root(inputs).renewer_statements)


def test_emulated_resource_types_are_known_to_the_policy_engine() -> None:
    # Every statement about a resource type the emulator serves names it exactly.
    documents = evaluate("multi")
    for text in documents.renewer_statements:
        action = str(parse_statement(text).action)
        assert action.split()[-1] in {*RESOURCE_TYPES, *FAMILIES} or any(
            other in action for other in ("metrics", "ons-topics")
        ), text


# --------------------------------------------------------------------------- validations

INVALID: list[tuple[str, Any, str]] = [
    ("compartment_ocid", "ocid1.vcn.oc1..aaaa", "must be a compartment OCID"),
    ("name_prefix", "Acme", "1-15 lower-case letters"),
    ("acme_directory_url", "http://acme.example/dir", "https:// ACME directory URL"),
    ("acme_contact_emails", ["mailto:ops@example.com"], "plain e-mail address"),
    ("challenge_mode", "dns", '"token_backend" or "redirect"'),
    ("renewal_schedule", "every day", "5-field cron expression"),
    ("function_memory_in_mbs", 300, "128, 256, 512"),
    ("function_timeout_in_seconds", 900, "between 30 and 300"),
    ("freeform_tags", {"managed-by": "me"}, 'must not set "managed-by"'),
    ("metrics_namespace", "oci_faas", "must not start with oci_"),
    ("challenge_par_expires", "next year", "RFC 3339 timestamp"),
    ("renewal", {"retention": 28}, "from 2 to 27"),
    ("acme_eab", {"key_id": "k", "hmac_key_secret_id": "c2VjcmV0"}, "never put the key"),
    (
        "existing_vault",
        {"vault_id": "ocid1.vault.oc1..a", "key_id": "ocid1.vault.oc1..b"},
        "an AES key in it",
    ),
]


@pytest.mark.parametrize(("variable", "value", "message"), INVALID, ids=[v[0] for v in INVALID])
def test_validation_rejects_with_an_actionable_message(
    variable: str, value: Any, message: str
) -> None:
    inputs = {**example_inputs("basic"), variable: value}
    with pytest.raises(ValidationFailed, match=f"var.{variable}: .*{_escape(message)}"):
        evaluate_root(inputs)


def _certificates(**changes: Any) -> list[dict[str, Any]]:
    certificate = {
        "name": "shop",
        "dns_names": ["shop.example.com"],
        "targets": [{"load_balancer": "web", "listeners": ["https"]}],
    }
    return [{**certificate, **changes}]


BAD_CERTIFICATES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("wildcard", _certificates(dns_names=["*.example.com"]), "cannot validate wildcards"),
    ("ip", _certificates(dns_names=["192.0.2.1"]), "IP addresses are not supported"),
    ("name", _certificates(name="Shop_1"), "lower-case letters, digits and hyphens"),
    ("key-type", _certificates(key_type="ed25519"), "ecdsa-p256, ecdsa-p384"),
    ("no-target", _certificates(targets=[]), "at least one target"),
    (
        "both-kinds",
        _certificates(
            targets=[
                {
                    "load_balancer": "web",
                    "listeners": ["https"],
                    "certificate_id": "ocid1.certificate.oc1..a",
                }
            ]
        ),
        "never both",
    ),
    ("no-listener", _certificates(targets=[{"load_balancer": "web"}]), "at least one HTTPS"),
    ("duplicate", _certificates() * 2, "must be unique"),
]


@pytest.mark.parametrize(
    ("certificates", "message"),
    [(c, m) for _, c, m in BAD_CERTIFICATES],
    ids=[i for i, _, _ in BAD_CERTIFICATES],
)
def test_certificate_validation(certificates: list[dict[str, Any]], message: str) -> None:
    inputs = {**example_inputs("basic"), "certificates": certificates}
    with pytest.raises(ValidationFailed, match=_escape(message)):
        evaluate_root(inputs)


def test_a_target_naming_an_unknown_load_balancer_fails_evaluation() -> None:
    # main.tf's precondition says which key; the document itself cannot be built either.
    inputs = {
        **example_inputs("basic"),
        "certificates": _certificates(targets=[{"load_balancer": "nope", "listeners": ["a"]}]),
    }
    with pytest.raises(EvalError, match="'nope'"):
        evaluate_root(inputs)


def _escape(text: str) -> str:
    return re.escape(text)
