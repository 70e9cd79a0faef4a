"""The Terraform stack's documents, evaluated for an example: shared by the tests here.

``evaluate(example, overrides, bound)`` evaluates ``terraform/examples/<example>`` (its
``terraform.tfvars.example`` and its ``module "acme_renewer"`` call), then the root module's
``documents.tf`` with those inputs, and returns the renewer configuration and the policy
statements exactly as Terraform would write them (tests/terraform/hcl_eval.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.terraform.hcl_eval import Evaluation, Module, read_tfvars

ROOT = Path(__file__).resolve().parents[2] / "terraform"
EXAMPLES = ("basic", "multi")
# What main.tf derives from resources, as Terraform would know it after apply.
EXAMPLE_BOUND = {
    "vault_id": "ocid1.vault.oc1.phx.aaaaaaaaexamplecreatedvault",
    "key_id": "ocid1.key.oc1.phx.aaaaaaaaexamplecreatedkey",
    "schedule_id": "ocid1.resourceschedule.oc1.phx.aaaaaaaaexampleschedule",
    "topic_id": "ocid1.onstopic.oc1.phx.aaaaaaaaexampletopic",
}


@dataclass(frozen=True)
class StackDocuments:
    """What the stack writes for one set of inputs."""

    inputs: dict[str, Any]
    config: dict[str, Any]
    renewer_statements: list[str]
    token_server_statements: list[str]
    service_statements: list[str]
    renewer_dynamic_group: str
    token_server_dynamic_group: str


def example_inputs(example: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The root module's inputs in ``example`` (its tfvars, with ``overrides`` on top)."""
    directory = ROOT / "examples" / example
    tfvars = {**read_tfvars(directory / "terraform.tfvars.example"), **(overrides or {})}
    return Evaluation(Module.load(directory), tfvars, {}).module_inputs("acme_renewer")


def evaluate_root(
    inputs: Mapping[str, Any], bound: Mapping[str, Any] | None = None
) -> StackDocuments:
    """Evaluate the root module's documents for ``inputs`` (every validation block runs)."""
    evaluation = Evaluation(Module.load(ROOT), inputs, {**EXAMPLE_BOUND, **(bound or {})})
    evaluation.validate_all()
    return StackDocuments(
        inputs=dict(inputs),
        config=evaluation.local("renewer_config"),
        renewer_statements=evaluation.local("renewer_statements"),
        token_server_statements=evaluation.local("token_server_statements"),
        service_statements=evaluation.local("service_statements"),
        renewer_dynamic_group=evaluation.local("renewer_dynamic_group"),
        token_server_dynamic_group=evaluation.local("token_server_dynamic_group"),
    )


def evaluate(
    example: str,
    overrides: Mapping[str, Any] | None = None,
    bound: Mapping[str, Any] | None = None,
) -> StackDocuments:
    """The documents of ``example`` (tfvars ``overrides`` and resource-derived ``bound``)."""
    return evaluate_root(example_inputs(example, overrides), bound)
