"""``make sandbox`` and ``python -m sandbox.oci_emulator --seed``: the CLI against the sandbox.

``sandbox.cli_sandbox`` runs as ``make sandbox`` runs it (its own process); the ``export`` lines
it prints are all the CLI gets — an operator's API-key profile, the emulator's endpoint, Pebble's
roots and the loopback map — and with them ``status`` shows the self-signed certificate the
example listener serves, ``renew`` issues through Pebble and the emulated load balancer, and
``status`` then agrees. SIGTERM stops everything it started.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import oci
import pytest

from sandbox.oci_emulator.credentials import api_key_config_remote
from sandbox.pebble import PebbleBinaries
from sandbox.world import LB_ID

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
READY = "Ctrl-C stops the sandbox."


def started(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, *argv],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], last: str) -> list[str]:
    lines = []
    assert process.stdout is not None
    for line in process.stdout:  # the process ends (and the loop) if it fails to start
        lines.append(line.rstrip("\n"))
        if line.strip() == last:
            return lines
    pytest.fail("\n".join(["the sandbox stopped before it was ready:", *lines]))


@pytest.fixture
def sandbox(tmp_path: Path, pebble_binaries: PebbleBinaries) -> Iterator[list[str]]:
    del pebble_binaries  # the fixture makes sure Pebble is installed
    process = started("-m", "sandbox.cli_sandbox", "--dir", str(tmp_path / "sandbox"))
    try:
        yield read_until(process, READY)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def test_the_printed_exports_are_all_the_cli_needs(sandbox: list[str], tmp_path: Path):
    exported = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1)
        for line in sandbox
        if line.startswith("export ")
    )
    assert set(exported) == {
        "OCI_CONFIG_FILE",
        "RENEWER_OCI_ENDPOINT",
        "RENEWER_ACME_CA_BUNDLE",
        "RENEWER_LOOPBACK",
    }
    config = tmp_path / "sandbox" / "config.json"
    assert f".venv/bin/python -m renewer --config {config} status" in sandbox
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RENEWER_", "OCI_"))}
    environment = {**clean, **exported, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "renewer", "--config", str(config), "--quiet", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    before = cli("--json", "status")
    assert before.returncode == 0, before.stderr
    (certificate,) = json.loads(before.stdout)["certificates"]
    assert certificate["held"] is None
    assert certificate["targets"][0]["served"]["issuer"] == "shop.example.com"

    renewed = cli("renew")
    assert renewed.returncode == 0, renewed.stderr
    assert "renew: 1 renewed" in renewed.stdout

    after = cli("--json", "status")
    (certificate,) = json.loads(after.stdout)["certificates"]
    assert certificate["drift"] is False
    assert certificate["targets"][0]["served"]["serial"] == certificate["held"]["serial"]


def test_the_emulator_seeds_the_example_tenancy_without_a_fixture_file(tmp_path: Path):
    process = started("-m", "sandbox.oci_emulator", "--state", str(tmp_path / "s.json"), "--seed")
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        endpoint = announced["endpoint"]
        assert set(announced["dataplane"][LB_ID]) == {"80", "443"}
        config = api_key_config_remote(endpoint, "operator", tmp_path)
        client = oci.load_balancer.LoadBalancerClient(config, service_endpoint=endpoint)
        lb = client.get_load_balancer(LB_ID).data
        assert lb.listeners["https"].ssl_configuration.certificate_name in lb.certificates
        assert lb.routing_policies["acme-routing"].rules[0].actions[0].backend_set_name == (
            "acme-tokens"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
