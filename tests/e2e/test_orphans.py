"""A certificate that leaves the configuration, end to end: the real fdk server, the real
emulator through the real SDK, a real Pebble.

The story: certificate ``old`` is issued twice for the world's listener (two bundles of ours);
an operator puts the older bundle on a second listener (``legacy``) and adds two bundles of
their own, one of them named like ours. The configuration then names ``shop`` instead of
``old`` (the same listener: a rename). A run notices ``old`` and deletes nothing; past the grace
period (the orphan record's time moved back, as an operator clock would) a run schedules the
deletion of its Vault secret, deletes its unused bundle, and leaves the bundle in use and both
foreign bundles alone. The plan says each of these read-only first, and the journal records it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer import naming
from sandbox.fn_server import FnResponse, FnServer
from sandbox.world import (
    COMPARTMENT,
    LB_ID,
    NAMESPACE,
    STATE_BUCKET,
    VAULT_ID,
    SandboxWorld,
    self_signed,
)

pytestmark = pytest.mark.e2e

OLD, NEW = "old", "shop"
LEGACY = "legacy"
THEIRS = "their-own-certificate"
LOOKALIKE = "acme-old-0123456789abcdef"  # our name pattern, a certificate we never stored
FORCED = json.dumps({"action": "renew", "force": True})


def configured(world: SandboxWorld, name: str, **renewal: object) -> dict[str, Any]:
    document = world.config_document()
    document["certificates"][0]["name"] = name
    document["renewal"].update(renewal)
    return document


def serve(world: SandboxWorld, tmp_path: Path, document: dict[str, Any], label: str) -> FnServer:
    server = FnServer(tmp_path / label, world.function_environment(document))
    server.workdir.mkdir()
    return server


def answer(response: FnResponse) -> dict[str, Any]:
    assert response.status == 200, response.text
    return json.loads(response.body)


def lb_client(world: SandboxWorld) -> oci.load_balancer.LoadBalancerClient:
    return oci.load_balancer.LoadBalancerClient(
        world.operator_config(),
        service_endpoint=world.emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )


def storage(world: SandboxWorld) -> oci.object_storage.ObjectStorageClient:
    return oci.object_storage.ObjectStorageClient(
        world.operator_config(), service_endpoint=world.emulator.endpoint
    )


def settle(client: oci.load_balancer.LoadBalancerClient, response: Any) -> None:
    work_request = response.headers["opc-work-request-id"]
    until = time.monotonic() + 30
    while client.get_work_request(work_request).data.lifecycle_state != "SUCCEEDED":
        assert time.monotonic() < until, "work request did not finish"
        time.sleep(0.05)


def bundles(world: SandboxWorld) -> set[str]:
    config = world.emulator.services["loadbalancer"].current(LB_ID)  # type: ignore[attr-defined]
    return set(config["certificates"])


def listener_bundle(world: SandboxWorld, listener: str) -> str:
    config = world.emulator.services["loadbalancer"].current(LB_ID)  # type: ignore[attr-defined]
    return str(config["listeners"][listener]["sslConfiguration"]["certificateName"])


def secret_state(world: SandboxWorld, name: str) -> str | None:
    vaults = oci.vault.VaultsClient(
        world.operator_config(), service_endpoint=world.emulator.endpoint
    )
    found = vaults.list_secrets(COMPARTMENT, vault_id=VAULT_ID, name=f"acme-{name}").data
    return found[0].lifecycle_state if found else None


def objects(world: SandboxWorld, prefix: str) -> set[str]:
    listed = storage(world).list_objects(NAMESPACE, STATE_BUCKET, prefix=prefix).data.objects
    return {o.name for o in listed}


def mutations(world: SandboxWorld, since: int) -> list[str]:
    return [
        f"{e['operation']} {e['path']}"
        for e in world.emulator.requests[since:]
        if e["method"] not in ("GET", "HEAD")
    ]


def only_orphan(document: dict[str, Any]) -> dict[str, Any]:
    (orphan,) = document["orphans"]
    assert orphan["name"] == OLD
    return orphan


@pytest.fixture
def left_behind(world: SandboxWorld, tmp_path: Path) -> dict[str, str]:
    """``old`` issued twice, its older bundle on ``legacy``; two foreign bundles added."""
    with serve(world, tmp_path, configured(world, OLD), "old") as fn:
        first = answer(fn.invoke(b""))["certificates"][0]
        second = answer(fn.invoke(FORCED))
    second = second["certificates"][0]
    assert (first["outcome"], second["outcome"]) == ("renewed", "renewed")
    older = naming.bundle_name(OLD, first["serial"])
    newer = naming.bundle_name(OLD, second["serial"])
    assert {older, newer} <= bundles(world)  # keepPreviousBundles=1 kept the older one

    client = lb_client(world)
    settle(
        client,
        client.create_listener(
            oci.load_balancer.models.CreateListenerDetails(
                name=LEGACY,
                default_backend_set_name="app",
                port=8444,
                protocol="HTTP",
                ssl_configuration=oci.load_balancer.models.SSLConfigurationDetails(
                    certificate_name=older
                ),
            ),
            LB_ID,
        ),
    )
    person = self_signed(world.names, days_left=300)
    for bundle in (THEIRS, LOOKALIKE):
        settle(
            client,
            client.create_certificate(
                oci.load_balancer.models.CreateCertificateDetails(
                    certificate_name=bundle,
                    public_certificate=person.certificate_pem,
                    private_key=person.private_key_pem,
                ),
                LB_ID,
            ),
        )
    return {"older": older, "newer": newer}


def test_a_removed_certificate_is_noticed_then_retired_after_the_grace(  # noqa: PLR0915 - one story
    world: SandboxWorld, tmp_path: Path, left_behind: dict[str, str]
):
    older, newer = left_behind["older"], left_behind["newer"]

    with serve(world, tmp_path, configured(world, NEW), "new") as fn:
        # 1. The rename's first run (forced: the listener serves a valid certificate for the
        # names, which would otherwise be adopted): shop takes the listener; old is noticed.
        first = answer(fn.invoke(FORCED))
        assert first["certificates"][0]["outcome"] == "renewed"
        noticed = only_orphan(first)
        assert noticed["outcome"] == "noticed"
        assert noticed["load_balancers"] == [LB_ID]  # from old's deployment records
        assert listener_bundle(world, "https").startswith("acme-shop-")
        assert {older, newer, THEIRS, LOOKALIKE} <= bundles(world)  # nothing deleted
        assert secret_state(world, OLD) == "ACTIVE"
        assert f"orphans/{OLD}.json" in objects(world, "orphans/")
        journal = json.loads(
            storage(world).get_object(NAMESPACE, STATE_BUCKET, first["journal"]).data.content
        )
        assert [o["outcome"] for o in journal["orphans"]] == ["noticed"]

        # 2. Inside the grace: a plan and a run wait, and change nothing of old's.
        mark = len(world.emulator.requests)
        waiting = only_orphan(answer(fn.invoke(json.dumps({"action": "plan"}))))
        assert (waiting["outcome"], waiting["planned"]) == ("waiting", True)
        assert mutations(world, mark) == []
        assert only_orphan(answer(fn.invoke(b"")))["outcome"] == "waiting"
        assert {older, newer, THEIRS, LOOKALIKE} <= bundles(world)

        # 3. Past the grace (the record's time moved back 31 days).
        record_name = f"orphans/{OLD}.json"
        record = json.loads(
            storage(world).get_object(NAMESPACE, STATE_BUCKET, record_name).data.content
        )
        then = datetime.now(UTC) - timedelta(days=31)
        record["noticed_at"] = then.isoformat(timespec="seconds").replace("+00:00", "Z")
        storage(world).put_object(NAMESPACE, STATE_BUCKET, record_name, json.dumps(record))

        # The plan says what a run would do, read-only.
        mark = len(world.emulator.requests)
        due = only_orphan(answer(fn.invoke(json.dumps({"action": "plan"}))))
        assert due["outcome"] == "due"
        assert [b["bundle"] for b in due["deleted_bundles"]] == [newer]
        assert [b["bundle"] for b in due["in_use_bundles"]] == [older]
        assert [b["bundle"] for b in due["not_proven_bundles"]] == [LOOKALIKE]
        assert mutations(world, mark) == []
        assert secret_state(world, OLD) == "ACTIVE"

        # The run retires it.
        retired_run = answer(fn.invoke(b""))
        retired = only_orphan(retired_run)

    assert retired["outcome"] == "retired", retired["message"]
    assert retired["vault"] == "scheduled"
    assert [b["bundle"] for b in retired["deleted_bundles"]] == [newer]
    assert [b["bundle"] for b in retired["in_use_bundles"]] == [older]
    assert "in use" in retired["in_use_bundles"][0]["note"]
    left = bundles(world)
    assert newer not in left
    assert {older, THEIRS, LOOKALIKE} <= left  # in use, foreign, lookalike: untouched
    assert listener_bundle(world, LEGACY) == older
    assert listener_bundle(world, "https").startswith("acme-shop-")  # shop untouched
    assert secret_state(world, OLD) == "PENDING_DELETION"
    assert secret_state(world, NEW) == "ACTIVE"
    assert f"state/{OLD}.json" not in objects(world, "state/")
    assert f"state/{NEW}.json" in objects(world, "state/")
    assert objects(world, "orphans/") == set()
    journal = json.loads(
        storage(world).get_object(NAMESPACE, STATE_BUCKET, retired_run["journal"]).data.content
    )
    assert journal["orphans"][0]["outcome"] == "retired"
    assert journal["orphans"][0]["deleted_bundles"][0]["bundle"] == newer


def test_a_certificate_configured_again_within_the_grace_loses_its_record(
    world: SandboxWorld, tmp_path: Path
):
    with serve(world, tmp_path, configured(world, OLD), "old") as fn:
        issued = answer(fn.invoke(b""))["certificates"][0]
    bundle = naming.bundle_name(OLD, issued["serial"])
    with serve(world, tmp_path, configured(world, NEW), "new") as fn:
        assert only_orphan(answer(fn.invoke(FORCED)))["outcome"] == "noticed"
    assert f"orphans/{OLD}.json" in objects(world, "orphans/")

    with serve(world, tmp_path, configured(world, OLD), "again") as fn:
        back = answer(fn.invoke(b""))

    # old is configured again: its record is gone (a later removal waits a whole grace again),
    # its listener is back on its certificate, and nothing of it was deleted; shop, now the
    # one no longer configured, is noticed.
    assert [(o["name"], o["outcome"]) for o in back["orphans"]] == [(NEW, "noticed")]
    assert objects(world, "orphans/") == {f"orphans/{NEW}.json"}
    assert listener_bundle(world, "https") == bundle
    assert secret_state(world, OLD) == "ACTIVE"
