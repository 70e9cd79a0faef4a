"""The function end to end: the real fdk server running ``func.py``, invoked as ``fn invoke`` does.

Real Pebble validating through the emulated LB, the real OCI SDK with the renewer's resource
principal against the emulator, the real FDK over its unix socket. What the handler promises
(``func.py``): the JSON report with 200; 502 with a secret-free summary when a certificate
fails or nothing can run; JSON log lines carrying the call id; no secret anywhere.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer import pki
from sandbox.fn_server import FnResponse, FnServer
from sandbox.pebble import replaces_accepted
from sandbox.world import HTTPS_LISTENER, LB_ID, NAMESPACE, STATE_BUCKET, SandboxWorld

pytestmark = pytest.mark.e2e

NAME = "shop"


def report(response: FnResponse) -> dict[str, Any]:
    assert response.status == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document = json.loads(response.body)
    assert document["call_id"] == response.call_id
    return document


def only(document: dict[str, Any]) -> dict[str, Any]:
    (certificate,) = document["certificates"]
    return certificate


def served_serial(world: SandboxWorld) -> str:
    return pki.normalize_serial(pki.serial_hex(world.served_certificate(world.names[0])))


def orders(world: SandboxWorld) -> int:
    return world.pebble_log().count("POST /order-plz")


def mutations(world: SandboxWorld, since: int) -> list[str]:
    return [
        f"{e['operation']} {e['path']}"
        for e in world.emulator.requests[since:]
        if e["method"] not in ("GET", "HEAD")
    ]


def log_lines(fn: FnServer) -> list[dict[str, Any]]:
    """The function's own JSON log lines (the FDK's plain lines are skipped)."""
    return [json.loads(line) for line in fn.log().splitlines() if line.startswith("{")]


def private_key_lines(world: SandboxWorld) -> list[str]:
    """The base64 lines of every private key stored in the emulated Vault (must never leak)."""
    lines: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, str) and "PRIVATE KEY" in value:
            lines.extend(line for line in value.splitlines() if line and "-----" not in line)

    with world.emulator.state.lock:
        secrets = list(world.emulator.state.data["vault"]["secrets"].values())
        for secret in secrets:
            for version in secret["versions"]:
                walk(json.loads(base64.b64decode(version["content"])))
    return lines


def test_scheduled_run_issues_then_skips_then_a_forced_run_replaces(
    world: SandboxWorld, fn: FnServer
):
    first = only(report(fn.invoke(b"")))  # an empty body: the scheduled renewal

    assert (first["outcome"], first["reason"]) == ("renewed", "Missing")
    assert served_serial(world) == pki.normalize_serial(first["serial"])
    assert first["targets"][0]["id"] == LB_ID
    assert first["targets"][0]["listeners"] == [HTTPS_LISTENER]
    assert first["order_url"].startswith("https://")
    assert set(first["timings"]) >= {"plan", "issue", "store", "deploy", "verify"}

    mark, orders_before = len(world.emulator.requests), orders(world)
    second = report(fn.invoke(b'{"action": "renew"}'))

    assert (only(second)["outcome"], only(second)["reason"]) == ("skipped", "NotDue")
    assert second["trigger"] == "manual"
    # Nothing changed in the tenancy; the private state bucket got the run's journal record
    # and, at most, the CA's first ARI answer for the new certificate.
    private = f"/b/{STATE_BUCKET}/o/"
    assert [m for m in mutations(world, mark) if private not in m] == []
    assert any("/o/journal%2F" in m for m in mutations(world, mark))
    # The namespace is looked up once per invocation, shared by the service and the sinks.
    lookups = [e for e in world.emulator.requests[mark:] if e["operation"] == "GetNamespace"]
    assert len(lookups) == 1
    assert orders(world) == orders_before

    forced = only(report(fn.invoke(json.dumps({"action": "renew", "force": True}))))

    assert (forced["outcome"], forced["reason"]) == ("renewed", "Forced")
    assert forced["serial"] != first["serial"]
    assert served_serial(world) == pki.normalize_serial(forced["serial"])
    if world.pebble.features.ari:
        expected = int(replaces_accepted(first["serial"]))  # Pebble's CertID bug otherwise
        assert world.pebble_log().count("is a replacement of") == expected


def test_plan_and_status_report_without_changing_anything(world: SandboxWorld, fn: FnServer):
    mark = len(world.emulator.requests)
    plan = report(fn.invoke(json.dumps({"action": "plan", "certificates": [NAME]})))

    assert plan["action"] == "plan"
    assert (only(plan)["due"], only(plan)["reason"]) == (True, "Missing")
    assert mutations(world, mark) == []
    assert orders(world) == 0

    issued = only(report(fn.invoke(b"")))
    mark = len(world.emulator.requests)
    status = report(fn.invoke(b'{"action": "status"}'))

    assert status["action"] == "status"
    assert only(status)["serial"] == issued["serial"]
    assert only(status)["not_after"] == issued["not_after"]
    assert only(status)["due"] is False
    assert only(status)["next_renewal"] is not None
    assert mutations(world, mark) == []
    # The run journal: the issuing run, newest first, and the certificate's history.
    assert status["runs"][0]["action"] == "renew"
    assert "certificates" not in status["runs"][0]
    history = only(status)["history"]
    assert history[0]["outcome"] == "renewed"
    assert history[0]["serial"] == issued["serial"]

    dry = report(fn.invoke(b'{"dryRun": true}'))
    assert (dry["action"], only(dry)["due"]) == ("plan", False)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "the payload is not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"action": "renw"}', "action 'renw' is unknown: use one of renew, plan"),
        (b'{"action": "plan", "force": "yes"}', "force must be true or false"),
        (b'{"certificate": ["shop"]}', "unknown field(s) 'certificate'"),
        (b'{"certificates": ["nope"]}', "no certificate named 'nope' is configured"),
        (b'{"action": "rollback", "certificates": ["shop"]}', 'rollback needs "version"'),
        (b'{"action": "plan", "version": 2}', '"version" is for rollback and revoke only'),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "unknown-action",
        "wrong-type",
        "unknown-field",
        "unknown-certificate",
        "rollback-without-version",
        "version-without-rollback",
    ],
)
def test_a_malformed_payload_is_a_502_naming_the_fix_and_nothing_happens(
    world: SandboxWorld, fn: FnServer, body: bytes, expected: str
):
    mark = len(world.emulator.requests)

    response = fn.invoke(body)

    assert response.status == 502, response.text
    assert expected in response.text
    assert mutations(world, mark) == []
    assert orders(world) == 0


def test_a_failing_certificate_is_a_502_with_names_and_reasons_only(
    world: SandboxWorld, tmp_path: Path
):
    document = world.config_document()
    document["certificates"][0]["targets"] = [
        {"loadBalancerId": LB_ID, "listeners": ["no-such-listener"]}
    ]
    server = FnServer(tmp_path / "fn-bad", world.function_environment(document))
    server.workdir.mkdir()
    with server:
        response = server.invoke(b"")
        log = server.log()

    assert response.status == 502
    assert response.text.count("\n") <= 2
    assert "shop: failed at check (ConfigError)" in response.text
    assert "no-such-listener" not in response.text  # the body never quotes an error message
    assert "no-such-listener" in log  # the log has the whole report
    assert orders(world) == 0


def test_log_lines_are_json_with_the_call_id_and_never_carry_secrets(
    world: SandboxWorld, fn: FnServer
):
    response = fn.invoke(b"", call_id="01TESTCALLID")
    assert response.status == 200, response.text
    fn.invoke(b'{"action": "status"}', call_id="01SECONDCALL")

    lines = log_lines(fn)
    ours = [line for line in lines if line["logger"].startswith("renewer")]
    assert ours, fn.log()
    assert {line["call_id"] for line in ours} == {"01TESTCALLID", "01SECONDCALL"}
    assert any(line["message"].startswith("report ") for line in ours)
    # The SDKs are quiet: no per-client INFO lines from oci.
    assert not [
        line for line in lines if line["logger"].startswith("oci") and line["level"] == "INFO"
    ]
    text = fn.log() + response.text
    assert "PRIVATE KEY" not in text
    key_lines = private_key_lines(world)
    assert key_lines  # the certificate key and the ACME account key
    assert not [line for line in key_lines if line in text]


def test_an_events_delivery_for_another_object_is_acknowledged_and_ignored(
    world: SandboxWorld, fn: FnServer
):
    event = {
        "eventType": "com.oraclecloud.objectstorage.updateobject",
        "cloudEventsVersion": "0.1",
        "eventTypeVersion": "2.0",
        "source": "ObjectStorage",
        "eventID": "e-1",
        "eventTime": "2026-11-27T00:00:00Z",
        "contentType": "application/json",
        "data": {"resourceName": "leases/shop", "additionalDetails": {"bucketName": "x"}},
    }
    mark = len(world.emulator.requests)

    response = fn.invoke(json.dumps(event))

    assert response.status == 200, response.text
    assert "is not the configuration object" in json.loads(response.body)["ignored"]
    assert world.emulator.requests[mark:] == []


def test_the_configuration_object_and_its_events_delivery(world: SandboxWorld, tmp_path: Path):
    """What Terraform sets up: the document as an object, and an Events rule on it."""
    operator = oci.object_storage.ObjectStorageClient(
        world.operator_config(),
        service_endpoint=world.emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    location = f"{STATE_BUCKET}/config/renewer.json"
    operator.put_object(
        NAMESPACE, STATE_BUCKET, "config/renewer.json", json.dumps(world.config_document())
    )
    environment = world.function_environment()
    del environment["RENEWER_CONFIG"]
    environment["RENEWER_CONFIG_OBJECT"] = location
    event = {
        "eventType": "com.oraclecloud.objectstorage.updateobject",
        "cloudEventsVersion": "0.1",
        "eventTypeVersion": "2.0",
        "source": "ObjectStorage",
        "eventID": "e-2",
        "eventTime": "2026-11-27T00:00:00Z",
        "contentType": "application/json",
        "data": {
            "resourceName": "config/renewer.json",
            "additionalDetails": {"bucketName": STATE_BUCKET, "namespace": NAMESPACE},
        },
    }
    server = FnServer(tmp_path / "fn-object", environment)
    server.workdir.mkdir()
    with server:
        issued = report(server.invoke(json.dumps(event)))

        assert issued["trigger"] == "event"
        assert (only(issued)["outcome"], only(issued)["reason"]) == ("renewed", "Missing")
        assert served_serial(world) == pki.normalize_serial(only(issued)["serial"])

        # A broken document in the object: a 502 naming the variable and the field.
        broken = world.config_document()
        broken["certificates"][0]["keyType"] = "ed25519"
        operator.put_object(NAMESPACE, STATE_BUCKET, "config/renewer.json", json.dumps(broken))
        refused = server.invoke(json.dumps(event))

    assert refused.status == 502
    assert f"RENEWER_CONFIG_OBJECT {location}" in refused.text
    assert "certificates[0].keyType" in refused.text


def test_rollback_through_the_function_serves_the_earlier_version_again(
    world: SandboxWorld, fn: FnServer
):
    first = only(report(fn.invoke(b"")))
    second = only(report(fn.invoke(b'{"force": true}')))
    assert served_serial(world) == pki.normalize_serial(second["serial"])

    body = {"action": "rollback", "certificates": ["shop"], "version": first["version"]}
    rolled = report(fn.invoke(json.dumps(body)))

    assert (rolled["action"], only(rolled)["reason"]) == ("rollback", "Rollback")
    assert only(rolled)["serial"] == first["serial"]
    assert served_serial(world) == pki.normalize_serial(first["serial"])
    assert orders(world) == 2  # no order for a rollback

    refused = fn.invoke(json.dumps({**body, "version": 999}))
    assert refused.status == 502
    # A usage error before any lease or write (issue 13 §5), not a failed run.
    assert "version 999 is not a stored certificate version" in refused.text
