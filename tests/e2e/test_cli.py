"""The operator CLI (``python -m renewer``) end to end: a separate process against the sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from renewer.cli import DEFAULT_OCI_CONFIG
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


# --- every problem with a file the operator names: exit 2 naming the file, no traceback --------


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """The CLI with a clean environment: no RENEWER_* variables, HOME (and ~/.oci) in tmp."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RENEWER_", "OCI_"))},
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "renewer", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


VALID_DOCUMENT = {
    "acme": {"directoryUrl": "https://acme.example/directory"},
    "oci": {
        "compartmentId": "ocid1.compartment.oc1..aaaa",
        "vaultId": "ocid1.vault.oc1.phx.aaaa",
        "keyId": "ocid1.key.oc1.phx.aaaa",
        "challengeBucket": "acme-challenges",
        "stateBucket": "acme-state",
    },
    "certificates": [
        {
            "name": "shop",
            "dnsNames": ["shop.example.com"],
            "targets": [{"certificateId": "ocid1.certificate.oc1.phx.aaaa"}],
        }
    ],
}
NOT_A_KEY = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"


def oci_config(directory: Path, *, key: str | bytes, extra: str = "") -> Path:
    key_file = directory / "api_key.pem"
    key_file.write_bytes(key if isinstance(key, bytes) else key.encode())
    config = directory / "oci_config"
    config.write_text(
        "[DEFAULT]\nuser=ocid1.user.oc1..a\nfingerprint=20:3b:97:13:55:1c:5b:0d:d3:37:d8:50:4e:c5"
        f":3a:34\ntenancy=ocid1.tenancy.oc1..a\nregion=us-phoenix-1\nkey_file={key_file}\n{extra}"
    )
    return config


FILE_CASES = {
    # id: (files to write {name: bytes}, argv with @name for a file's path, expected in stderr)
    "config-not-utf8": ({"c.json": b"\xff\xfe{}"}, ["--config", "@c.json"], "not UTF-8"),
    "config-latin1": (
        {"c.json": json.dumps(VALID_DOCUMENT).replace("shop", "sh\xf6p").encode("latin-1")},
        ["--config", "@c.json"],
        "not UTF-8",
    ),
    "config-empty": ({"c.json": b""}, ["--config", "@c.json"], "the file is empty"),
    "config-blank": ({"c.json": b" \n\t\n"}, ["--config", "@c.json"], "the file is empty"),
    "config-missing": ({}, ["--config", "@c.json"], "cannot read it"),
    "config-a-directory": ({"c.json/x": b"{}"}, ["--config", "@c.json"], "cannot read it"),
    "config-not-json": ({"c.json": b"acme: {}"}, ["--config", "@c.json"], "not valid JSON"),
    "config-deep-json": ({"c.json": b"[" * 100_000}, ["--config", "@c.json"], "too deeply"),
    "config-invalid": ({"c.json": b"{}"}, ["--config", "@c.json"], "$.acme: is required"),
    "oci-config-not-ini": (
        {"c.json": json.dumps(VALID_DOCUMENT).encode(), "oci": b"user = me\n"},
        ["--config", "@c.json", "--oci-config-file", "@oci"],
        "is not INI (line 1)",
    ),
    "oci-config-binary": (
        {"c.json": json.dumps(VALID_DOCUMENT).encode(), "oci": b"\x00\x9f\x92\x96"},
        ["--config", "@c.json", "--oci-config-file", "@oci"],
        "not UTF-8",
    ),
    "oci-config-missing": (
        {"c.json": json.dumps(VALID_DOCUMENT).encode()},
        ["--config", "@c.json", "--oci-config-file", "@oci"],
        "cannot read it",
    ),
    "ca-bundle-not-pem": (
        {"c.json": json.dumps(VALID_DOCUMENT).encode(), "ca.pem": b"hello"},
        ["--config", "@c.json", "--resource-principal", "--ca-bundle", "@ca.pem"],
        "holds no PEM certificate",
    ),
}


@pytest.mark.parametrize("case", list(FILE_CASES), ids=list(FILE_CASES))
def test_a_bad_file_is_exit_2_naming_the_file(tmp_path: Path, case: str):
    files, argv, expected = FILE_CASES[case]
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    args = [str(tmp_path / arg[1:]) if arg.startswith("@") else arg for arg in argv]
    named = args[args.index("--config") + 1] if case.startswith("config") else args[-1]

    result = run_cli(*args, "plan", home=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert named in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("key", "extra", "expected"),
    [
        ("hello\n", "", "holds no PEM private key"),
        (NOT_A_KEY, "", "is not a readable PEM private key"),
        (b"\x30\x82\x01\x0a", "", "not UTF-8"),
        ("", "", "the file is empty"),
        (
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "",
            "holds no PEM private key",
        ),
    ],
    ids=["text", "garbage-in-pem-markers", "der-bytes", "empty", "a-certificate"],
)
def test_a_profile_whose_key_file_is_not_a_key_is_exit_2_naming_the_key_file(
    tmp_path: Path, key: str | bytes, extra: str, expected: str
):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(VALID_DOCUMENT))
    oci = oci_config(tmp_path, key=key, extra=extra)

    result = run_cli("--config", str(config), "--oci-config-file", str(oci), "plan", home=tmp_path)

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"key_file {tmp_path / 'api_key.pem'} of profile [DEFAULT] in {oci}" in result.stderr
    assert expected in result.stderr


def test_the_default_oci_config_file_and_a_missing_profile_are_named(tmp_path: Path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(VALID_DOCUMENT))
    (tmp_path / ".oci").mkdir()
    oci = oci_config(tmp_path / ".oci", key=NOT_A_KEY)
    oci.rename(tmp_path / ".oci" / "config")

    result = run_cli("--config", str(config), "--profile", "PROD", "plan", home=tmp_path)

    assert result.returncode == 2
    assert f"OCI config file {DEFAULT_OCI_CONFIG}: there is no profile [PROD]" in result.stderr


def test_config_and_config_object_together_are_refused(tmp_path: Path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(VALID_DOCUMENT))

    result = run_cli("--config", str(config), "--config-object", "b/o", "plan", home=tmp_path)

    assert result.returncode == 2
    assert "--config-object: not allowed with argument --config" in result.stderr
