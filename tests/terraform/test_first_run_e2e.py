"""The first run after ``terraform apply`` issues with no human step (issue 13 §2, "Done when").

What the stack leaves behind, in the sandbox: the configuration document Terraform generates
(the basic example evaluated from the HCL with the world's identities; only the ACME directory
is Pebble's) written as the object ``<prefix>-state/config/renewer.json`` the way
``oci_objectstorage_object`` writes it, the function's ``RENEWER_CONFIG_OBJECT`` as
``functions.tf`` sets it, Terraform's IAM statements as the emulator's only policies, and the
user's load balancer as it was before: port 80 forwarding everything to the application (the
stack names ``challengeBackendSet``, so the renewer routes the challenge path itself). Then the
real fdk server running ``func.py`` is invoked the two ways the stack invokes it first:

* by the Events rule on the configuration object (a CloudEvents ``createobject`` delivery for
  the bucket and object the rule's condition names), and
* by Resource Scheduler with the body ``schedule.tf`` writes.

Either way the first run issues through Pebble, the HTTPS listener serves the new certificate
(a TLS handshake), and the run is journaled with its trigger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer import pki
from sandbox.fn_server import FnServer
from sandbox.pebble import PebbleBinaries, PebbleOptions
from sandbox.world import KEY_ID, NAMESPACE, TOPIC_ID, VAULT_ID, SandboxWorld
from tests.terraform.hcl_eval import Evaluation, Module
from tests.terraform.stack import EXAMPLE_BOUND, ROOT
from tests.terraform.test_policies_e2e import as_policies, documents, statements
from tests.terraform.test_schedule_body import schedule_body

pytestmark = pytest.mark.e2e

ADMINS = {"name": "admins", "statements": ["Allow group Admins to manage all-resources in tenancy"]}


def stack_locals(*names: str) -> list[Any]:
    """Locals of the root module for the basic example in the world's tenancy."""
    stack = documents(certificates_service=False)
    evaluation = Evaluation(
        Module.load(ROOT),
        stack.inputs,
        {**EXAMPLE_BOUND, "vault_id": VAULT_ID, "key_id": KEY_ID, "topic_id": TOPIC_ID},
    )
    return [evaluation.local(name) for name in names]


def functions_config_object() -> str:
    """``RENEWER_CONFIG_OBJECT`` exactly as functions.tf builds it."""
    bucket, name = stack_locals("state_bucket_name", "config_object_name")
    text = (ROOT / "functions.tf").read_text(encoding="utf-8")
    assert (
        'RENEWER_CONFIG_OBJECT = "${local.state_bucket_name}/${local.config_object_name}"' in text
    )
    return f"{bucket}/{name}"


def config_event(location: str) -> bytes:
    """What the Events rule of schedule.tf delivers when apply creates the configuration object."""
    text = (ROOT / "schedule.tf").read_text(encoding="utf-8")
    assert '"com.oraclecloud.objectstorage.createobject"' in text
    assert "resourceName      = local.config_object_name" in text
    bucket, name = location.split("/", 1)
    return json.dumps(
        {
            "eventType": "com.oraclecloud.objectstorage.createobject",
            "cloudEventsVersion": "0.1",
            "eventTypeVersion": "2.0",
            "source": "ObjectStorage",
            "eventID": "first-apply",
            "eventTime": "2026-12-07T00:00:00Z",
            "contentType": "application/json",
            "data": {
                "compartmentId": documents(certificates_service=False).config["oci"][
                    "compartmentId"
                ],
                "resourceName": name,
                "additionalDetails": {"bucketName": bucket, "namespace": NAMESPACE},
            },
        }
    ).encode()


def first_run(tmp_path: Path, body: bytes) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """Apply's aftermath, then one invocation with ``body``: (answer, journal, served, issued)."""
    stack = documents(certificates_service=False)
    certificate = stack.config["certificates"][0]
    location = functions_config_object()
    with SandboxWorld(
        tmp_path / "world",
        certificates=certificate["dnsNames"],
        certificate_name=certificate["name"],
        pebble_options=PebbleOptions(retry_after_authz=0, retry_after_order=0),
        # Terraform's statements, and the person running apply (who writes the object).
        policies=[*as_policies(statements(stack)), ADMINS],
        port80="forward",  # the user's port 80 before apply: everything to the application
    ) as world:
        document = {
            **stack.config,
            "acme": {**stack.config["acme"], "directoryUrl": world.pebble.directory_url},
        }
        operator = oci.object_storage.ObjectStorageClient(
            world.operator_config(), service_endpoint=world.emulator.endpoint
        )
        bucket, name = location.split("/", 1)
        operator.put_object(NAMESPACE, bucket, name, json.dumps(document))
        environment = world.function_environment()
        del environment["RENEWER_CONFIG"]
        environment["RENEWER_CONFIG_OBJECT"] = location
        server = FnServer(tmp_path / "fn", environment)
        server.workdir.mkdir()
        with server:
            response = server.invoke(body)
        assert response.status == 200, response.text
        answer = json.loads(response.body)
        journal = json.loads(operator.get_object(NAMESPACE, bucket, answer["journal"]).data.content)
        served = pki.normalize_serial(pki.serial_hex(world.served_certificate(world.names[0])))
    (issued,) = answer["certificates"]
    return answer, journal, served, pki.normalize_serial(issued["serial"] or "")


def test_the_events_delivery_for_the_configuration_object_issues_with_no_human_step(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    del pebble_binaries  # the fixture makes sure Pebble is installed
    answer, journal, served, issued = first_run(tmp_path, config_event(functions_config_object()))

    assert (answer["action"], answer["trigger"]) == ("renew", "event")
    (certificate,) = answer["certificates"]
    assert certificate["outcome"] == "renewed", certificate
    assert served == issued  # the listener serves it: a TLS handshake says so
    assert "route" in certificate["message"]  # the renewer brought the challenge route itself
    assert journal["trigger"] == "event"
    assert not answer["failed"]


def test_the_terraform_schedule_body_issues_the_first_certificate(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    del pebble_binaries
    answer, journal, served, issued = first_run(tmp_path, schedule_body().encode())

    assert (answer["action"], answer["trigger"]) == ("renew", "schedule")
    (certificate,) = answer["certificates"]
    assert certificate["outcome"] == "renewed", certificate
    assert served == issued
    assert journal["trigger"] == "schedule"
    assert [c["outcome"] for c in journal["certificates"]] == ["renewed"]
