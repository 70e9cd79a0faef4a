"""dns-01's IAM statement, as Terraform writes it, is exactly what a dns-01 renewal needs.

The basic example with its certificate switched to dns-01 (a wildcard, in the world's DNS
zone) is evaluated, its renewer and token-server statements become the emulator's only
policies, and the renewal runs with the configuration Terraform generates. It passes; without
the ``use dns-records ... where target.dns-zone.id`` statement the TXT write is refused with
404 NotAuthorizedOrNotFound and the certificate fails; and the statement grants nothing in
another zone or on the zone itself. (test_policies_e2e.py proves every other statement.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from renewer.report import Outcome, RenewalReport
from renewer.settings import parse_config
from sandbox.oci_emulator.policies import parse_statement
from sandbox.pebble import PebbleBinaries, PebbleOptions
from sandbox.world import COMPARTMENT, DNS_ZONE_ID, KEY_ID, LB_ID, TOPIC_ID, VAULT_ID, SandboxWorld
from tests.terraform.stack import StackDocuments, evaluate_root, example_inputs
from tests.terraform.test_policies_e2e import as_policies, emulated, statements

pytestmark = pytest.mark.e2e

BUDGET = 120.0
NAMES = ["shop.example.com", "*.shop.example.com"]
OTHER_ZONE = "ocid1.dns-zone.oc1..notoursatall"


def dns01_stack(**overrides: Any) -> StackDocuments:
    inputs = example_inputs("basic", {"compartment_ocid": COMPARTMENT, "load_balancer_id": LB_ID})
    for certificate in inputs["certificates"]:
        certificate.update(dns_names=NAMES, challenge="dns-01", dns_zone_id=DNS_ZONE_ID)
    inputs.update(overrides)
    return evaluate_root(inputs, {"vault_id": VAULT_ID, "key_id": KEY_ID, "topic_id": TOPIC_ID})


def dns_statements(stack: StackDocuments) -> list[str]:
    return [s for s in stack.renewer_statements if "dns-records" in s]


def renew(
    tmp_path: Path, stack: StackDocuments, chosen: list[tuple[str, str]]
) -> tuple[RenewalReport, SandboxWorld]:
    world = SandboxWorld(
        tmp_path,
        certificates=NAMES,
        certificate_name=stack.config["certificates"][0]["name"],
        challenge="dns-01",
        pebble_options=PebbleOptions(retry_after_authz=0, retry_after_order=0),
        policies=as_policies(chosen),
    )
    with world:
        document = {
            **stack.config,
            "acme": {**stack.config["acme"], "directoryUrl": world.pebble.directory_url},
        }
        return world.service(config=parse_config(document)).run(budget_s=BUDGET), world


def test_one_statement_per_zone_inside_its_compartment() -> None:
    stack = dns01_stack()
    (statement,) = dns_statements(stack)
    parsed = parse_statement(statement)
    assert str(parsed.action) == "use dns-records"
    assert parsed.location.kind != "tenancy"
    assert COMPARTMENT in statement
    assert f"target.dns-zone.id = '{DNS_ZONE_ID}'" in statement
    assert emulated(statement)  # the emulator judges it
    # No dns-01 certificate: no DNS permission at all.
    assert (
        dns_statements(
            evaluate_root(
                example_inputs(
                    "basic", {"compartment_ocid": COMPARTMENT, "load_balancer_id": LB_ID}
                ),
                {"vault_id": VAULT_ID, "key_id": KEY_ID, "topic_id": TOPIC_ID},
            )
        )
        == []
    )
    # Zones in another compartment: dns_zone_compartment_ocid says where.
    elsewhere = "ocid1.compartment.oc1..dnszones"
    (moved,) = dns_statements(dns01_stack(dns_zone_compartment_ocid=elsewhere))
    assert f"compartment id {elsewhere} " in moved


def test_a_dns01_wildcard_renews_with_exactly_terraforms_statements(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    del pebble_binaries
    stack = dns01_stack()
    chosen = statements(stack)
    assert all(emulated(text) for _, text in chosen), chosen
    report, _ = renew(tmp_path, stack, chosen)
    assert [c.outcome for c in report.certificates] == [Outcome.RENEWED], report.to_json()


def test_without_the_dns_statement_the_record_write_is_refused(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    del pebble_binaries
    stack = dns01_stack()
    chosen = [(name, text) for name, text in statements(stack) if "dns-records" not in text]
    report, world = renew(tmp_path, stack, chosen)
    (failed,) = report.certificates
    assert failed.outcome is Outcome.FAILED, report.to_json()
    assert failed.error_type == "ConfigError"
    assert "404 NotAuthorizedOrNotFound" in str(failed.error)
    assert ("PatchDomainRecords", 404) in {
        (e["operation"], e["status"]) for e in world.emulator.requests
    }


def test_the_statement_for_another_zone_grants_nothing_here(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    del pebble_binaries
    stack = dns01_stack()
    chosen = [(name, text.replace(DNS_ZONE_ID, OTHER_ZONE)) for name, text in statements(stack)]
    report, _ = renew(tmp_path, stack, chosen)
    (failed,) = report.certificates
    assert failed.outcome is Outcome.FAILED, report.to_json()
    assert "404 NotAuthorizedOrNotFound" in str(failed.error)
