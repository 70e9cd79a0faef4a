"""``status`` tells the truth, ``history`` lists what ``rollback`` takes, ``validate`` is offline.

Issue 13 §5, end to end in the sandbox, through the operator CLI (a separate process) and the
function (the real fdk server running ``func.py``): real TLS handshakes with the emulated
listeners, the real SDK against the emulated Vault. On today's main ``status`` said "no
certificate held yet" and ``"targets": []`` while the listener served a self-signed
certificate with 5 days left; ``rollback`` to an unknown version failed the run (exit 1) instead
of being a usage error; there was no history view and no ``validate``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer import pki
from sandbox.fn_server import FnServer
from sandbox.world import HTTPS_LISTENER, LB_ID, SEED_BUNDLE, SandboxWorld
from tests.e2e.test_cli import VALID_DOCUMENT, cli, run_cli

pytestmark = pytest.mark.e2e

NAME = "shop"


def invoke(fn: FnServer, body: dict[str, Any] | bytes) -> dict[str, Any]:
    response = fn.invoke(body if isinstance(body, bytes) else json.dumps(body))
    assert response.status == 200, response.text
    return json.loads(response.body)


def only(document: dict[str, Any]) -> dict[str, Any]:
    (certificate,) = document["certificates"]
    return certificate


def served_serial(world: SandboxWorld) -> str:
    return pki.serial_hex(world.served_certificate(world.names[0]))


def switch_by_hand(world: SandboxWorld, listener: str, bundle: str) -> None:
    """An operator's UpdateListener (the whole listener read back, only the bundle changed)."""
    models = oci.load_balancer.models
    client = oci.load_balancer.LoadBalancerClient(
        world.operator_config(), service_endpoint=world.emulator.endpoint
    )
    current = client.get_load_balancer(LB_ID).data.listeners[listener]
    fields = {n: getattr(current, n) for n in models.UpdateListenerDetails().swagger_types}
    ssl = current.ssl_configuration
    fields["ssl_configuration"] = models.SSLConfigurationDetails(
        **{n: getattr(ssl, n) for n in models.SSLConfigurationDetails().swagger_types}
    )
    fields["ssl_configuration"].certificate_name = bundle
    response = client.update_listener(models.UpdateListenerDetails(**fields), LB_ID, listener)
    work_request = response.headers["opc-work-request-id"]
    for _ in range(600):  # a bounded wait for the work request, not a timing assertion
        state = client.get_work_request(work_request).data.lifecycle_state
        if state in ("SUCCEEDED", "FAILED"):
            break
        time.sleep(0.05)
    assert state == "SUCCEEDED"


def mutations(world: SandboxWorld, since: int) -> list[str]:
    return [
        f"{e['method']} {e['path']}"
        for e in world.emulator.requests[since:]
        if e["method"] not in ("GET", "HEAD")
    ]


def test_status_shows_the_self_signed_certificate_served_before_anything_is_held(
    world: SandboxWorld,
):
    mark = len(world.emulator.requests)
    status = cli(world, "--json", "--quiet", "status")

    assert status.returncode == 0, status.stderr
    certificate = only(json.loads(status.stdout))
    assert certificate["held"] is None
    (target,) = certificate["targets"]
    assert (target["kind"], target["id"], target["listener"], target["port"]) == (
        "listener",
        LB_ID,
        HTTPS_LISTENER,
        443,
    )
    served = target["served"]
    assert served["serial"] == pki.serial_hex(world.seed.certificate)
    assert served["issuer"] == served["subject"] == world.names[0]  # self-signed
    assert 4.5 < served["days_left"] <= 5.0
    assert served["key_type"] is not None
    assert (target["drift"], certificate["drift"]) == (True, True)
    assert "none held yet" in target["note"]
    assert mutations(world, mark) == []

    table = cli(world, "--quiet", "status")
    assert table.returncode == 0, table.stderr
    assert f"{NAME}: Vault holds nothing yet" in table.stdout
    assert f"serves serial {served['serial']}" in table.stdout
    assert "DRIFT: serves a certificate the renewer has not stored" in table.stdout


def test_status_through_the_function_agrees_after_a_renewal_then_sees_a_hand_made_switch(
    world: SandboxWorld, fn: FnServer
):
    issued = only(invoke(fn, b""))
    status = only(invoke(fn, {"action": "status"}))

    held = status["held"]
    assert (held["version"], held["serial"]) == (issued["version"], issued["serial"])
    assert held["not_after"] == issued["not_after"]
    assert held["issuer"].startswith("Pebble Intermediate")
    (target,) = status["targets"]
    assert target["served"]["serial"] == held["serial"] == served_serial(world)
    assert held["serial"][:8] in (target["bundle"] or "")
    assert (target["drift"], status["drift"]) == (False, False)

    # Someone points the listener back at the seed bundle by hand: status must say so.
    switch_by_hand(world, HTTPS_LISTENER, SEED_BUNDLE)
    drifted = only(invoke(fn, {"action": "status"}))

    (target,) = drifted["targets"]
    assert target["served"]["serial"] == pki.serial_hex(world.seed.certificate)
    assert (target["drift"], drifted["drift"]) == (True, True)
    assert f"not the held version {held['version']}" in target["note"]


def test_history_lists_the_versions_rollback_takes_and_an_unknown_one_is_exit_2(
    world: SandboxWorld, fn: FnServer
):
    first = only(invoke(fn, b""))
    second = only(invoke(fn, {"action": "renew", "force": True}))

    history = cli(world, "--json", "--quiet", "history", NAME)
    assert history.returncode == 0, history.stderr
    versions = only(json.loads(history.stdout))["versions"]
    assert [v["version"] for v in versions] == [second["version"], first["version"]]
    assert [v["serial"] for v in versions] == [second["serial"], first["serial"]]
    assert versions[0]["deployed_at"] == [f"{LB_ID}/{HTTPS_LISTENER}"]
    assert versions[1]["deployed_at"] == []
    assert all(v["rollback"] for v in versions)

    table = cli(world, "--quiet", "history", NAME)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[1].split()[:2] == ["VERSION", "SERIAL"]
    assert f"rollback {NAME} --version VERSION" in table.stdout

    mark = len(world.emulator.requests)
    unknown = cli(world, "rollback", NAME, "--version", "999")
    assert unknown.returncode == 2, unknown.stderr
    assert "version 999 is not a stored certificate version" in unknown.stderr
    assert f"stored: {first['version']}, {second['version']}" in unknown.stderr
    assert mutations(world, mark) == []  # no lease, no write

    refused = fn.invoke(json.dumps({"action": "rollback", "certificates": [NAME], "version": 999}))
    assert refused.status == 502
    assert "version 999 is not a stored certificate version" in refused.text

    # The number history shows is the number rollback takes.
    rolled = cli(world, "--json", "--quiet", "rollback", NAME, "--version", str(first["version"]))
    assert rolled.returncode == 0, rolled.stderr
    assert only(json.loads(rolled.stdout))["serial"] == first["serial"]
    assert served_serial(world) == pki.normalize_serial(first["serial"])

    after = only(invoke(fn, {"action": "history", "certificates": [NAME]}))["versions"]
    assert after[0]["serial"] == first["serial"]  # restored as the newest version
    assert after[0]["deployed_at"] == [f"{LB_ID}/{HTTPS_LISTENER}"]


def test_rollback_help_says_one_certificate_and_two_are_a_usage_error(world: SandboxWorld):
    helped = cli(world, "rollback", "--help")
    assert helped.returncode == 0
    assert "ONE certificate" in helped.stdout
    assert "NAME" in helped.stdout
    two = cli(world, "rollback", NAME, "other", "--version", "1")
    assert two.returncode == 2
    assert "unrecognized arguments: other" in two.stderr


def test_validate_is_offline_exit_0_or_2(tmp_path: Path):
    # No OCI configuration, no credentials, no emulator: validate reads the document only.
    good = tmp_path / "good.json"
    good.write_text(json.dumps(VALID_DOCUMENT))
    ok = run_cli("validate", str(good), home=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "valid: 1 certificate(s)" in ok.stdout
    assert "shop: shop.example.com" in ok.stdout

    bad_document = json.loads(json.dumps(VALID_DOCUMENT))
    bad_document["certificates"][0]["dnsNames"] = ["*.example.com"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_document))
    refused = run_cli("--config", str(bad), "validate", home=tmp_path)
    assert refused.returncode == 2
    assert "certificates[0].dnsNames[0]" in refused.stderr
    assert refused.stdout == ""

    remote = run_cli("--config-object", "acme-state/config.json", "validate", home=tmp_path)
    assert remote.returncode == 2
    assert "validate is offline" in remote.stderr
    nothing = run_cli("validate", home=tmp_path)
    assert nothing.returncode == 2
    assert "validate needs a document" in nothing.stderr


def test_validate_through_the_function_makes_no_oci_call(world: SandboxWorld, fn: FnServer):
    mark = len(world.emulator.requests)
    validated = invoke(fn, {"action": "validate"})

    assert (validated["action"], validated["valid"]) == ("validate", True)
    assert [c["name"] for c in validated["certificates"]] == [NAME]
    assert world.emulator.requests[mark:] == []
