"""A revoked version is never rolled back to; a revocation waits for the certificate's lease.

Through the real fdk server, the real emulator and a real Pebble: the revoke action records the
revocation durably (``revocations/<name>.json`` in the state bucket, not only the run journal,
which expires); ``history`` says so, and ``rollback`` to that version is a usage error (502,
nothing changes) naming the reason. A revocation whose CHECK meets another holder of the
certificate's lease (a rollback or a renewal in progress) revokes nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import oci
import pytest

from renewer import pki
from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import ObjectStorageLease
from renewer.clock import SystemClock
from sandbox.fn_server import FnResponse, FnServer
from sandbox.world import NAMESPACE, STATE_BUCKET, SandboxWorld

pytestmark = pytest.mark.e2e

NAME = "shop"


def report(response: FnResponse) -> dict[str, Any]:
    assert response.status == 200, response.text
    return json.loads(response.body)


def only(document: dict[str, Any]) -> dict[str, Any]:
    (certificate,) = document["certificates"]
    return certificate


def ca_status(world: SandboxWorld, serial: str) -> str:
    url = f"{world.pebble.management_url}/cert-status-by-serial/{pki.normalize_serial(serial)}"
    return str(world.pebble.get_json(url)["Status"])


def mutations(world: SandboxWorld, since: int) -> list[str]:
    return [
        f"{e['operation']} {e['path']}"
        for e in world.emulator.requests[since:]
        if e["method"] not in ("GET", "HEAD")
    ]


def test_a_revoked_version_is_recorded_and_rollback_to_it_is_refused(
    world: SandboxWorld, fn: FnServer
):
    first = only(report(fn.invoke(b"")))
    second = only(report(fn.invoke(b'{"force": true}')))

    revoked = only(
        report(
            fn.invoke(
                json.dumps(
                    {
                        "action": "revoke",
                        "certificates": [NAME],
                        "version": first["version"],
                        "reason": "superseded",
                    }
                )
            )
        )
    )
    assert revoked["revocation"]["revoked"] is True
    assert revoked["revocation"]["recorded"] is True
    assert ca_status(world, first["serial"]) == "Revoked"

    storage = oci.object_storage.ObjectStorageClient(
        world.operator_config(), service_endpoint=world.emulator.endpoint
    )
    record = json.loads(
        storage.get_object(NAMESPACE, STATE_BUCKET, f"revocations/{NAME}.json").data.content
    )
    assert [(r["serial"], r["version"], r["reason"]) for r in record["revoked"]] == [
        (first["serial"].lower(), first["version"], "superseded")
    ]

    history = only(report(fn.invoke(json.dumps({"action": "history", "certificates": [NAME]}))))
    by_version = {v["version"]: v for v in history["versions"]}
    assert by_version[first["version"]]["rollback"] is False
    assert "revoked" in by_version[first["version"]]["note"]
    assert by_version[second["version"]]["rollback"] is True

    mark = len(world.emulator.requests)
    refused = fn.invoke(
        json.dumps({"action": "rollback", "certificates": [NAME], "version": first["version"]})
    )
    assert refused.status == 502
    assert "revoked at the CA (superseded" in refused.text
    assert mutations(world, mark) == []  # no lease, no write
    served = world.served_certificate(world.names[0])
    assert pki.normalize_serial(pki.serial_hex(served)) == pki.normalize_serial(second["serial"])


def test_a_revocation_meeting_another_holder_of_the_lease_revokes_nothing(
    world: SandboxWorld, fn: FnServer
):
    first = only(report(fn.invoke(b"")))
    only(report(fn.invoke(b'{"force": true}')))
    # Another invocation (a rollback, say) holds the certificate's lease from here on: the
    # revoke's DEPLOY run is skipped as Locked, or its CHECK cannot take the lease.
    clients = OciClients(world.oci_settings())
    leases = ObjectStorageLease(
        clients, namespace=NAMESPACE, bucket=STATE_BUCKET, clock=SystemClock()
    )
    held = leases.acquire(NAME, holder="another-invocation", ttl=timedelta(minutes=10))
    assert held is not None

    response = fn.invoke(
        json.dumps(
            {
                "action": "revoke",
                "certificates": [NAME],
                "version": first["version"],
                "reason": "superseded",
            }
        )
    )

    assert response.status == 502
    assert ca_status(world, first["serial"]) == "Valid"
    leases.release(held)
    clients.close()
