"""Cross-check of tests/terraform/hcl_eval.py against Terraform itself (skipped without it).

CI has no terraform binary; a developer machine may. Where one exists, Terraform evaluates
documents.tf and variables.tf for every example and must produce exactly what the evaluator
produced, and must reject what the evaluator's validation tests reject.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.terraform.stack import EXAMPLE_BOUND, EXAMPLES, ROOT, evaluate_root, example_inputs

pytestmark = pytest.mark.integration

TERRAFORM = shutil.which("terraform")


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on PATH (CI has none)")
@pytest.mark.parametrize("example", EXAMPLES)
def test_terraform_computes_the_same_documents(example: str, tmp_path: Path) -> None:
    """Cross-check of the evaluator: Terraform evaluates documents.tf with the same inputs.

    variables.tf and documents.tf are copied into a module with no resources (so no provider
    is needed), the resource-derived locals are set to the values the evaluator was given,
    and ``terraform apply`` computes the outputs. Terraform also runs every validation.
    """
    inputs = example_inputs(example)
    ours = evaluate_root(inputs)
    for name in ("variables.tf", "documents.tf"):
        shutil.copy(ROOT / name, tmp_path / name)
    bound = "".join(f"  {k} = {json.dumps(v)}\n" for k, v in EXAMPLE_BOUND.items())
    (tmp_path / "bound.tf").write_text(
        "locals {\n" + bound + "}\n"
        'output "config" { value = jsonencode(local.renewer_config) }\n'
        'output "statements" {\n'
        "  value = [local.renewer_statements, local.token_server_statements,"
        " local.service_statements]\n}\n"
    )
    (tmp_path / "inputs.tfvars.json").write_text(json.dumps(inputs))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": "/dev/null"}
    apply = [TERRAFORM, "apply", "-auto-approve", "-input=false", "-no-color"]
    subprocess.run(  # noqa: S603 - our own arguments
        [*apply, "-var-file=inputs.tfvars.json"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    output = subprocess.run(  # noqa: S603 - our own arguments
        [TERRAFORM, "output", "-json"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    theirs = json.loads(output.stdout)
    assert json.loads(theirs["config"]["value"]) == ours.config
    assert theirs["statements"]["value"] == [
        ours.renewer_statements,
        ours.token_server_statements,
        ours.service_statements,
    ]


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on PATH (CI has none)")
def test_terraform_rejects_what_the_evaluator_rejects(tmp_path: Path) -> None:
    inputs = {**example_inputs("basic"), "renewal_schedule": "every day"}
    shutil.copy(ROOT / "variables.tf", tmp_path / "variables.tf")
    (tmp_path / "inputs.tfvars.json").write_text(json.dumps(inputs))
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "TF_CLI_CONFIG_FILE": "/dev/null"}
    result = subprocess.run(  # noqa: S603 - our own arguments
        [TERRAFORM, "plan", "-input=false", "-no-color", "-var-file=inputs.tfvars.json"],
        cwd=tmp_path,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "5-field cron expression" in " ".join(result.stderr.split())
