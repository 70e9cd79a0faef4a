"""Crashes leave nothing behind, end to end (issue 12, items 10 and 11).

The next run after a ``kill -9`` — even one with nothing due — must leave the tenancy as a clean
run would: no lease, no challenge object, superseded bundles retired, old Vault versions
pruned, the state's "unfinished" marker cleared; and the run after it must be read-only again,
so what a healthy not-due run costs stays bounded (measured here, in OCI requests). A live run
whose pending-order record Vault refuses finishes its order instead of abandoning it.

Kills are staged as in ``test_faults.py`` (whose helpers this reuses): the renewer runs in a
subprocess, an emulator fault rule hangs the request that starts the chosen step, and the test
``kill -9``s the process while it is provably between two steps.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import oci
import pytest

from renewer import naming
from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import ObjectStorageChallengeStore
from renewer.ports import ChallengeSweep
from renewer.report import Outcome
from renewer.settings import parse_config
from sandbox.world import CHALLENGE_BUCKET, NAMESPACE, STATE_BUCKET, VAULT_ID, SandboxWorld
from tests.e2e.test_faults import (
    BUDGET,
    CERT,
    OWNED_PREFIX,
    RERUN_LATER,
    LaterClock,
    add_fault,
    kill_9,
    load_balancer,
    objects,
    only,
    operator_client,
    orders,
    runner,
    served_serial,
    state_document,
    vault_serial,
    wait_until_hung,
)

pytestmark = pytest.mark.e2e

LB_BUNDLE_DELETE = {"operation": "DeleteCertificate", "path": "^/20170115/"}
# What a healthy not-due run asks OCI for one certificate on one listener: its state, the
# secret's OCID and CURRENT version, and the load balancer once (PLAN reads the listener's
# cipher suite and protocols for the key-type choice; the read-only check judges what it serves
# from that same answer, renewer/adapters/oci_lb_snapshots.py). Nothing is written. (Building
# the service adds one GetNamespace per invocation, when the configuration names no namespace.)
HEALTHY_NOT_DUE = Counter(
    {"GetObject": 1, "ListSecrets": 1, "GetSecretBundle": 1, "GetLoadBalancer": 1}
) + Counter(  # the full run's look for certificates no longer configured (renewer.orphans)
    {"ListSecrets": 1, "ListObjects": 2}
)


def retention_two(world: SandboxWorld) -> dict[str, Any]:
    """The world's configuration keeping 2 certificate versions: the third prunes the first."""
    document = world.config_document()
    document["renewal"]["retention"] = 2
    return document


def owned_bundles(world: SandboxWorld) -> set[str]:
    return {b for b in load_balancer(world)["certificates"] if b.startswith(OWNED_PREFIX)}


def unpruned_versions(world: SandboxWorld) -> list[int]:
    """DEPRECATED versions of the certificate's secret not scheduled for deletion."""
    vaults = operator_client(world, oci.vault.VaultsClient)
    secrets = vaults.list_secrets(
        world.config_document()["oci"]["compartmentId"],
        name=naming.secret_name(CERT),
        vault_id=VAULT_ID,
    ).data
    [secret] = secrets
    return [
        v.version_number
        for v in vaults.list_secret_versions(secret.id).data
        if v.stages == ["DEPRECATED"] and v.time_of_deletion is None
    ]


def requests_of(world: SandboxWorld, mark: int) -> list[dict[str, Any]]:
    """The renewer's OCI requests since ``mark`` (the token server's reads left out)."""
    token_server = world.tenancy.principals["token-server"].id
    return [e for e in world.emulator.requests[mark:] if e["principal"] != token_server]


def cost(entries: list[dict[str, Any]]) -> str:
    counted = Counter(e["operation"] for e in entries)
    writes = sum(1 for e in entries if e["method"] not in ("GET", "HEAD"))
    detail = ", ".join(f"{op} {n}" for op, n in sorted(counted.items()))
    return f"{len(entries)} OCI requests ({writes} writes): {detail}"


def test_a_kill_between_the_switch_and_retire_is_finished_by_a_not_due_run(
    world: SandboxWorld, tmp_path: Path, measurements: Any
):
    document = retention_two(world)
    config = parse_config(document)
    assert only(world.service(config=config).run(budget_s=BUDGET)).outcome is Outcome.RENEWED
    forced = world.service(config=config).run(budget_s=BUDGET, force=True)
    assert only(forced).outcome is Outcome.RENEWED
    hang = add_fault(world, **LB_BUNDLE_DELETE, times=1, hang=True)

    with runner(world, tmp_path / "runner", document=document, force=True) as run:
        wait_until_hung(world, hang, run)
        kill_9(run)
    world.emulator.faults.clear()

    # Switched to the third certificate, then killed: the first bundle and the first Vault
    # version are still there, and so are the lease and the marker.
    assert served_serial(world) == vault_serial(world)
    assert len(owned_bundles(world)) == 3
    assert unpruned_versions(world)
    assert objects(world, STATE_BUCKET, "leases/") == [naming.lease_object(CERT)]
    assert state_document(world)["unfinished"] is not None
    later = LaterClock(RERUN_LATER)
    service = world.service(config=config, clock=later)
    orders_before, mark = orders(world), len(world.emulator.requests)

    rerun = only(service.run(budget_s=BUDGET))

    after_crash = requests_of(world, mark)
    assert (rerun.outcome, rerun.reason) == (Outcome.SKIPPED, "NotDue"), rerun.to_dict()
    assert orders(world) == orders_before
    assert len(owned_bundles(world)) == 2  # serving + keepPreviousBundles
    assert unpruned_versions(world) == []
    assert objects(world, STATE_BUCKET, "leases/") == []
    assert state_document(world)["unfinished"] is None
    assert served_serial(world) == vault_serial(world)

    # Bounded cost: with the marker cleared, the next not-due run is read-only again.
    service = world.service(config=config, clock=later)
    mark = len(world.emulator.requests)
    healthy = only(service.run(budget_s=BUDGET))
    steady = requests_of(world, mark)
    assert (healthy.outcome, healthy.reason) == (Outcome.SKIPPED, "NotDue")
    assert Counter(e["operation"] for e in steady) == HEALTHY_NOT_DUE, cost(steady)
    measurements(
        "a not-due run, 1 certificate x 1 listener",
        f"healthy: {cost(steady)}\nafter a kill between the switch and RETIRE: {cost(after_crash)}",
    )


def test_a_dead_runs_challenge_objects_are_removed_though_the_resumed_order_presents_nothing(
    world: SandboxWorld, tmp_path: Path
):
    # The CA has validated the token; the run is killed as it removes it.
    hang = add_fault(
        world,
        operation="DeleteObject",
        path=f"/b/{CHALLENGE_BUCKET}/o/",
        times=1,
        hang=True,
    )
    with runner(world, tmp_path / "runner") as run:
        wait_until_hung(world, hang, run)
        kill_9(run)
    world.emulator.faults.clear()
    left = objects(world, CHALLENGE_BUCKET, ".well-known/")
    assert len(left) == 1

    rerun = only(world.service(clock=LaterClock(RERUN_LATER)).run(budget_s=BUDGET))

    assert rerun.outcome is Outcome.RENEWED, rerun.to_dict()
    assert rerun.order_url is not None
    assert f"finished order {rerun.order_url}" in rerun.message  # resumed: nothing presented
    assert orders(world) == 1
    assert objects(world, STATE_BUCKET, "leases/") == []
    assert objects(world, CHALLENGE_BUCKET, ".well-known/") == []


def test_a_refused_pending_order_record_does_not_cost_a_second_order(world: SandboxWorld):
    # Vault writes of a first issuance: the account's CreateSecret, then the pending order's
    # CreateSecret — refused here — then STORE's CreateSecret.
    add_fault(world, operation="CreateSecret", times=1, latency=0.001)
    refused = add_fault(
        world, operation="CreateSecret", times=1, status=400, code="InvalidParameter"
    )
    mark = len(world.emulator.requests)

    report = only(world.service().run(budget_s=BUDGET))

    assert refused.fired == 1
    assert ("CreateSecret", 400) in [
        (e["operation"], e["status"]) for e in world.emulator.requests[mark:]
    ]
    assert (report.outcome, report.reason) == (Outcome.RENEWED, "Missing"), report.to_dict()
    assert orders(world) == 1
    assert served_serial(world) == vault_serial(world)
    rerun = only(world.service(clock=LaterClock(RERUN_LATER)).run(budget_s=BUDGET))
    assert (rerun.outcome, rerun.reason) == (Outcome.SKIPPED, "NotDue")
    assert orders(world) == 1
    assert objects(world, CHALLENGE_BUCKET, ".well-known/") == []
    changed = [
        (e["operation"], unquote(e["path"]))
        for e in world.emulator.requests[mark:]
        if e["operation"] == "CreateSecret" and e["status"] < 400
    ]
    assert len(changed) == 2  # the account and the certificate: one secret each


def test_the_sweep_removes_only_challenge_objects_older_than_the_cutoff(world: SandboxWorld):
    """``ObjectStorageChallengeStore.sweep`` through the real SDK against the emulator."""
    clients = OciClients(world.oci_settings())
    store = ObjectStorageChallengeStore(clients, namespace=NAMESPACE, bucket=CHALLENGE_BUCKET)
    store.present("dead-run-token", "dead-run-token.thumbprint")
    store.present("other-token", "other-token.thumbprint")
    storage = operator_client(world, oci.object_storage.ObjectStorageClient)
    # Not a token object (a dot is not base64url): not the sweep's to judge.
    storage.put_object(NAMESPACE, CHALLENGE_BUCKET, ".well-known/acme-challenge/odd.name", b"x")
    storage.put_object(NAMESPACE, CHALLENGE_BUCKET, "elsewhere/object", b"x")

    young = store.sweep(created_before=datetime.now(UTC) - timedelta(minutes=10))

    assert young == ChallengeSweep(removed=(), younger=2)
    assert len(objects(world, CHALLENGE_BUCKET)) == 4

    old = store.sweep(created_before=datetime.now(UTC) + timedelta(minutes=1))

    assert sorted(old.removed) == ["dead-run-token", "other-token"]
    assert old.younger == 0
    assert sorted(objects(world, CHALLENGE_BUCKET)) == [
        ".well-known/acme-challenge/odd.name",
        "elsewhere/object",
    ]
    assert store.sweep(created_before=datetime.now(UTC) + timedelta(minutes=1)) == ChallengeSweep()
