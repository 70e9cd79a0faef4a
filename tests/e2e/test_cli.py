"""The operator CLI (``python -m renewer``) end to end: a separate process against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.world import SandboxWorld

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def cli(
    world: SandboxWorld, *args: str, document: dict | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **world.function_environment(document), "PYTHONPATH": str(ROOT)}
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "renewer", "--resource-principal", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_renew_prints_a_table_with_expiry_and_next_renewal_then_plan_says_not_due(
    world: SandboxWorld,
):
    renewed = cli(world, "renew")

    assert renewed.returncode == 0, renewed.stderr
    header, row = renewed.stdout.splitlines()[:2]
    assert header.split() == [
        "CERTIFICATE",
        "OUTCOME",
        "REASON",
        "SERIAL",
        "EXPIRES",
        "(UTC)",
        "DAYS",
        "NEXT",
    ]
    assert row.split()[:3] == ["shop", "renewed", "Missing"]
    assert "renew 20" in row  # the planned renewal date
    assert "renew: 1 renewed" in renewed.stdout
    assert "issued cert=shop" in renewed.stderr  # progress while it runs

    planned = cli(world, "--json", "--quiet", "plan", "shop")

    assert planned.returncode == 0, planned.stderr
    document = json.loads(planned.stdout)
    (certificate,) = document["certificates"]
    assert (document["action"], document["trigger"]) == ("plan", "cli")
    assert (certificate["reason"], certificate["due"]) == ("NotDue", False)
    assert planned.stderr == ""

    status = cli(world, "--quiet", "status")

    assert status.returncode == 0, status.stderr
    assert "Last runs (newest first):" in status.stdout
    last_run = status.stdout.split("Last runs (newest first):")[1].splitlines()[1]
    assert "cli/renew" in last_run
    assert "1 renewed" in last_run


def test_a_failure_exits_1_and_a_bad_configuration_exits_2_naming_the_field(
    world: SandboxWorld, tmp_path: Path
):
    document = world.config_document()
    document["certificates"][0]["dnsNames"] = ["*.example.com"]
    bad = cli(world, "plan", document=document)

    assert bad.returncode == 2
    assert "certificates[0].dnsNames[0]" in bad.stderr
    assert bad.stdout == ""

    document = world.config_document()
    document["oci"]["challengeBucket"] = "no-such-bucket"
    failed = cli(world, "renew", document=document)

    assert failed.returncode == 1
    assert "failed" in failed.stdout.splitlines()[1]
    assert "oci.challengeBucket" in failed.stdout

    config = tmp_path / "config.json"
    config.write_text(json.dumps(world.config_document()))
    usage = cli(world, "--config", str(config), "rollback", "shop")
    assert usage.returncode == 2
    assert "--version" in usage.stderr
