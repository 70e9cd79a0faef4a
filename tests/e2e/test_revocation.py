"""The revoke action end to end: the real fdk server, the real emulator, a real Pebble.

Pebble's management API tells whether (and why) it revoked a serial
(``GET /cert-status-by-serial/<hex>``); a TLS handshake with the emulated listener tells what is
served. The rule under test: the listener never serves a revoked certificate — a served
version is replaced (a fresh key for keyCompromise) and deployed before it is revoked, and the
plan says so before anything happens.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from renewer import pki
from sandbox.fn_server import FnResponse, FnServer
from sandbox.world import SandboxWorld

pytestmark = pytest.mark.e2e

NAME = "shop"
ROOT = Path(__file__).resolve().parents[2]


def report(response: FnResponse) -> dict[str, Any]:
    assert response.status == 200, response.text
    return json.loads(response.body)


def only(document: dict[str, Any]) -> dict[str, Any]:
    (certificate,) = document["certificates"]
    return certificate


def revoke(fn: FnServer, version: int, reason: str, **extra: object) -> FnResponse:
    body = {"action": "revoke", "certificates": [NAME], "version": version, "reason": reason}
    return fn.invoke(json.dumps({**body, **extra}))


def served(world: SandboxWorld) -> tuple[str, bytes]:
    """The serial and the public key the HTTPS listener presents now."""
    certificate = world.served_certificate(world.names[0])
    key = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pki.normalize_serial(pki.serial_hex(certificate)), key


def ca_status(world: SandboxWorld, serial: str) -> dict[str, Any]:
    """Pebble's record of ``serial``: ``Status`` Valid/Revoked (and ``Reason`` when revoked)."""
    url = f"{world.pebble.management_url}/cert-status-by-serial/{pki.normalize_serial(serial)}"
    return dict(world.pebble.get_json(url))


def orders(world: SandboxWorld) -> int:
    return world.pebble_log().count("POST /order-plz")


def mutations(world: SandboxWorld, since: int) -> list[str]:
    return [
        f"{e['operation']} {e['path']}"
        for e in world.emulator.requests[since:]
        if e["method"] not in ("GET", "HEAD")
    ]


def test_key_compromise_plans_first_then_replaces_with_a_fresh_key_then_revokes(
    world: SandboxWorld, fn: FnServer
):
    first = only(report(fn.invoke(b"")))
    first_serial, first_key = served(world)
    assert first_serial == pki.normalize_serial(first["serial"])

    # The plan: said before anything happens, and a dry run changes nothing at all.
    mark, orders_before = len(world.emulator.requests), orders(world)
    planned = only(report(revoke(fn, first["version"], "keyCompromise", dryRun=True)))

    assert (planned["outcome"], planned["reason"]) == ("skipped", "RevocationPlanned")
    steps = planned["revocation"]["steps"]
    assert "replacement" in steps[0]
    assert "fresh key" in steps[0]
    assert "revoke serial" in steps[-1]
    assert "keyCompromise (1)" in steps[-1]
    assert planned["revocation"]["revoked"] is False
    assert mutations(world, mark) == []
    assert orders(world) == orders_before
    assert ca_status(world, first["serial"])["Status"] == "Valid"

    revoked = report(revoke(fn, first["version"], "keyCompromise"))
    entry = only(revoked)

    assert revoked["action"] == "revoke"
    assert (entry["outcome"], entry["reason"]) == ("renewed", "Revoked")
    assert entry["revocation"]["revoked"] is True
    assert entry["revocation"]["replace"] is True
    assert entry["revocation"]["freshKey"] is True
    assert entry["revocation"]["signer"].startswith("https://")  # the account URL
    # The listener serves the replacement, with another key, and never the revoked certificate.
    now_serial, now_key = served(world)
    assert now_serial == pki.normalize_serial(entry["serial"]) != first_serial
    assert now_key != first_key
    status = ca_status(world, first["serial"])
    assert status["Status"] == "Revoked"
    assert status.get("Reason", 1) == 1
    assert ca_status(world, entry["serial"])["Status"] == "Valid"
    # The journal recorded it: status shows it in the certificate's history.
    history = only(report(fn.invoke(json.dumps({"action": "status"}))))["history"]
    assert any(
        h.get("action") == "revoke" and (h.get("revocation") or {}).get("revoked") for h in history
    )

    # Again: typed, and nothing is replaced a second time.
    orders_before = orders(world)
    again = revoke(fn, first["version"], "keyCompromise")
    assert again.status == 502
    assert "AlreadyRevoked" in again.text
    assert orders(world) == orders_before
    assert served(world)[0] == now_serial


def test_an_older_version_is_revoked_without_an_order_by_account_or_by_its_own_key(
    world: SandboxWorld, fn: FnServer
):
    first = only(report(fn.invoke(b"")))
    second = only(report(fn.invoke(b'{"force": true}')))
    third = only(report(fn.invoke(b'{"force": true}')))
    orders_before, serving = orders(world), served(world)[0]

    superseded = only(report(revoke(fn, first["version"], "superseded")))

    assert (superseded["outcome"], superseded["reason"]) == ("skipped", "Revoked")
    assert superseded["revocation"]["replace"] is False
    assert superseded["serial"] == third["serial"]
    assert ca_status(world, first["serial"])["Status"] == "Revoked"
    assert ca_status(world, first["serial"]).get("Reason", 4) == 4

    by_key = only(
        report(revoke(fn, second["version"], "cessationOfOperation", signWith="certificateKey"))
    )

    assert by_key["revocation"]["signer"] == "certificate key"
    assert ca_status(world, second["serial"])["Status"] == "Revoked"
    assert orders(world) == orders_before  # neither needed a replacement
    assert served(world)[0] == serving
    assert ca_status(world, third["serial"])["Status"] == "Valid"


def test_revoking_the_served_version_for_another_reason_replaces_it_first(
    world: SandboxWorld, fn: FnServer
):
    first = only(report(fn.invoke(b"")))

    entry = only(report(revoke(fn, first["version"], "superseded")))

    assert (entry["outcome"], entry["reason"]) == ("renewed", "Revoked")
    assert entry["revocation"]["freshKey"] is False
    assert served(world)[0] == pki.normalize_serial(entry["serial"]) != first["serial"]
    assert ca_status(world, first["serial"])["Status"] == "Revoked"


def test_an_unknown_version_is_a_typed_error_and_nothing_changes(world: SandboxWorld, fn: FnServer):
    report(fn.invoke(b""))
    mark, orders_before = len(world.emulator.requests), orders(world)

    refused = revoke(fn, 999, "keyCompromise")

    assert refused.status == 502
    assert "UnknownCertificateVersion" in refused.text
    assert orders(world) == orders_before
    tenancy = [m for m in mutations(world, mark) if "journal%2F" not in m]
    assert tenancy == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"version": 1}, 'revoke needs "reason"'),
        ({"version": 1, "reason": "cACompromise"}, "only the CA says so"),
        ({"version": 1, "reason": "keyCompromise", "signWith": "x"}, "signWith"),
        ({"reason": "superseded"}, 'revoke needs "version"'),
        ({"version": 1, "reason": "superseded", "force": True}, '"force" is for renew only'),
    ],
    ids=["no-reason", "ca-reason", "bad-signer", "no-version", "force"],
)
def test_a_malformed_revoke_payload_is_refused_before_anything(
    world: SandboxWorld, fn: FnServer, body: dict[str, object], expected: str
):
    refused = fn.invoke(json.dumps({"action": "revoke", "certificates": [NAME], **body}))

    assert refused.status == 502
    assert expected in refused.text
    assert orders(world) == 0


def test_the_cli_revokes_with_a_plan_first(world: SandboxWorld):
    environment = {**os.environ, **world.function_environment(), "PYTHONPATH": str(ROOT)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "renewer", "--resource-principal", "--json", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    issued = only(json.loads(cli("renew").stdout))
    version = str(issued["version"])
    plan = cli("revoke", NAME, "--version", version, "--reason", "keyCompromise", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert only(json.loads(plan.stdout))["reason"] == "RevocationPlanned"

    done = cli(
        "revoke", NAME, "--version", version, "--reason", "keyCompromise",
        "--sign-with", "certificateKey",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert only(json.loads(done.stdout))["revocation"]["signer"] == "certificate key"
    assert ca_status(world, issued["serial"])["Status"] == "Revoked"

    usage = cli("revoke", NAME, "--version", version, "--reason", "certificateHold")
    assert usage.returncode == 2  # argparse's choices: a usage error


def test_pebble_reports_an_unknown_serial_as_missing(world: SandboxWorld):
    # The fidelity of the check the tests above rely on: an unknown serial is a 404.
    with pytest.raises(urllib.error.HTTPError) as missing:
        ca_status(world, "0abc")
    assert missing.value.code == 404
