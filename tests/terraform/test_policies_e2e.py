"""The IAM statements Terraform writes are exactly the ones a renewal needs.

The basic example is evaluated with the sandbox world's identities substituted (its
compartment, vault, key and load balancer; the dynamic groups Terraform names
``acme-renewer-dg`` and ``acme-token-server-dg`` are the world's ``renewer-dg`` and
``token-server-dg``), its statements become the emulator's only policies, and the renewal runs
with the configuration document Terraform generates (only the ACME directory is Pebble's).
It passes with exactly those statements, and removing any one statement the emulator can
judge makes a call fail with NotAuthorizedOrNotFound: the renewal fails, or (metrics and
notifications are best effort) the emulator refuses the call. The operations that the handler
runs after each renewal (metrics, notices with ``notify_on_success``, the journal) run too.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from renewer.operations.run import RunInfo
from renewer.operations_wiring import build_operations
from renewer.report import Outcome, RenewalReport
from renewer.settings import parse_config
from sandbox.oci_emulator.policies import OTHER_RESOURCE_TYPES, parse_statement
from sandbox.pebble import PebbleBinaries, PebbleOptions
from sandbox.world import (
    COMPARTMENT,
    KEY_ID,
    LB_ID,
    SERVICE_CERTIFICATE_ID,
    TOPIC_ID,
    VAULT_ID,
    SandboxWorld,
)
from tests.terraform.stack import StackDocuments, evaluate_root, example_inputs

pytestmark = pytest.mark.e2e

BUDGET = 120.0
WORLD_GROUPS = {"renewer": "renewer-dg", "token-server": "token-server-dg"}


def documents(*, certificates_service: bool) -> StackDocuments:
    """The basic example in the world's tenancy (optionally with a Certificates target).

    ``notify_on_success`` is switched on so that a successful renewal publishes to the topic
    and the ons-topics statement is exercised (failures are announced without it).
    """
    inputs = example_inputs("basic", {"compartment_ocid": COMPARTMENT, "load_balancer_id": LB_ID})
    inputs["notify_on_success"] = True
    if certificates_service:
        for certificate in inputs["certificates"]:
            certificate["targets"] = [
                *certificate["targets"],
                {"certificate_id": SERVICE_CERTIFICATE_ID},
            ]
    return evaluate_root(inputs, {"vault_id": VAULT_ID, "key_id": KEY_ID, "topic_id": TOPIC_ID})


def as_world_statement(text: str, stack: StackDocuments) -> str:
    """``text`` with Terraform's dynamic-group names replaced by the world's."""
    return text.replace(
        f"dynamic-group {stack.renewer_dynamic_group} ",
        f"dynamic-group {WORLD_GROUPS['renewer']} ",
    ).replace(
        f"dynamic-group {stack.token_server_dynamic_group} ",
        f"dynamic-group {WORLD_GROUPS['token-server']} ",
    )


def emulated(text: str) -> bool:
    """Whether the emulator serves the statement's resource type (so it can judge it)."""
    resource_type = str(parse_statement(text).action).split()[-1]
    return resource_type not in OTHER_RESOURCE_TYPES


def statements(stack: StackDocuments) -> list[tuple[str, str]]:
    """(policy name, statement in world terms) of every renewer and token-server statement."""
    return [
        *(("renewer", as_world_statement(s, stack)) for s in stack.renewer_statements),
        *(("token-server", as_world_statement(s, stack)) for s in stack.token_server_statements),
    ]


def as_policies(chosen: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Fixture policies attached to the tenancy, as iam.tf attaches them."""
    by_name: dict[str, list[str]] = {}
    for name, text in chosen:
        by_name.setdefault(name, []).append(text)
    return [{"name": name, "statements": texts} for name, texts in by_name.items()]


def run_renewal(
    tmp_path: Path,
    pebble_binaries: PebbleBinaries,
    stack: StackDocuments,
    policies: list[dict[str, Any]],
    *,
    certificates_service: bool,
) -> tuple[RenewalReport | None, str, SandboxWorld]:
    """One renewal in a fresh world with ``policies``: (report, failure text, world)."""
    del pebble_binaries  # the fixture makes sure Pebble is installed
    certificate = stack.config["certificates"][0]
    world = SandboxWorld(
        tmp_path,
        certificates=certificate["dnsNames"],
        certificate_name=certificate["name"],
        service_certificate=certificates_service,
        pebble_options=PebbleOptions(retry_after_authz=0, retry_after_order=0),
        policies=policies,
    )
    with world:
        document = {
            **stack.config,
            "acme": {**stack.config["acme"], "directoryUrl": world.pebble.directory_url},
        }
        try:
            config = parse_config(document)
            report = world.service(config=config).run(budget_s=BUDGET)
            # What the handler does after every run (renewer/runner.py): metrics, notices,
            # the journal, each best effort.
            operations = build_operations(config, oci=world.oci_settings())
            operations.after_run(report, RunInfo("schedule", f"call-{uuid.uuid4().hex}", "renew"))
        except Exception as exc:  # noqa: BLE001 - the failure is what this test inspects
            return None, f"{type(exc).__name__}: {exc}", world
        failures = [
            f"{c.name}: {c.error_type}: {c.error}"
            for c in report.certificates
            if c.outcome is Outcome.FAILED
        ]
        denied = [
            f"{e['operation']} by {e['principal']}"
            for e in world.emulator.requests
            if e["status"] == 404 and e["principal"] is not None
        ]
        text = "\n".join(failures)
        if denied:
            text += "\nemulator answered 404 NotAuthorizedOrNotFound to: " + ", ".join(denied)
        return report, text, world


SCENARIOS = {"load-balancer": False, "certificates-service": True}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_renewal_passes_with_exactly_terraforms_statements(
    scenario: str, tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    service = SCENARIOS[scenario]
    stack = documents(certificates_service=service)
    chosen = statements(stack)
    # Every renewer and token-server statement is about a service the emulator judges.
    assert all(emulated(text) for _, text in chosen), chosen
    report, failure, _ = run_renewal(
        tmp_path, pebble_binaries, stack, as_policies(chosen), certificates_service=service
    )
    assert report is not None, failure
    assert not report.failed, failure
    assert [c.outcome for c in report.certificates] == [Outcome.RENEWED], report.to_json()


def _removal_cases() -> list[Any]:
    cases = []
    for scenario, service in SCENARIOS.items():
        for index, (_, text) in enumerate(statements(documents(certificates_service=service))):
            if emulated(text):
                label = f"{scenario}-{index}-{str(parse_statement(text).action).split()[-1]}"
                cases.append(pytest.param(scenario, index, id=label))
    return cases


_BASELINE: dict[str, set[tuple[str, str]]] = {}


def denied_calls(world: SandboxWorld) -> set[tuple[str, str]]:
    """(operation, principal) of every 404 the emulator gave a signed request."""
    return {
        (str(e["operation"]), str(e["principal"]))
        for e in world.emulator.requests
        if e["status"] == 404 and e["principal"] is not None
    }


def baseline(scenario: str, tmp_path: Path, pebble_binaries: PebbleBinaries) -> set[Any]:
    """The 404s of a run with every statement (legitimate "not there yet" answers)."""
    if scenario not in _BASELINE:
        service = SCENARIOS[scenario]
        stack = documents(certificates_service=service)
        report, failure, world = run_renewal(
            tmp_path / "baseline",
            pebble_binaries,
            stack,
            as_policies(statements(stack)),
            certificates_service=service,
        )
        assert report is not None, failure
        assert not report.failed, failure
        _BASELINE[scenario] = denied_calls(world)
    return _BASELINE[scenario]


@pytest.mark.parametrize(("scenario", "index"), _removal_cases())
def test_removing_any_statement_fails_with_not_authorized(
    scenario: str, index: int, tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    service = SCENARIOS[scenario]
    stack = documents(certificates_service=service)
    chosen = statements(stack)
    removed = chosen[index][1]
    rest = chosen[:index] + chosen[index + 1 :]
    expected = baseline(scenario, tmp_path, pebble_binaries)
    report, failure, world = run_renewal(
        tmp_path / "without",
        pebble_binaries,
        stack,
        as_policies(rest),
        certificates_service=service,
    )
    failed = report is None or report.failed
    new_denials = denied_calls(world) - expected
    # Denied calls answer 404 NotAuthorizedOrNotFound as in OCI (Object Storage words it
    # BucketNotFound: "does not exist ... or you are not authorized"). A statement is needed
    # when leaving it out fails the renewal with such a 404, or, for best-effort calls such as
    # metrics, makes the emulator refuse a call it allowed with every statement.
    assert failed or new_denials, f"nothing was denied without: {removed}\n{failure}"
    if failed:
        assert "404" in failure, failure
        assert "NotAuthorizedOrNotFound" in failure or "not authorized" in failure, failure
