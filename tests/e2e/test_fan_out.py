"""Fan-out end to end (issue 15): a scheduled run too short for its fleet invokes the function
in detached mode once per load balancer, and the parts renew the fleet.

Real parts throughout: the scheduled invocation goes through the real SDK to the emulator's
InvokeFunction, which runs the real fdk server with ``func.py``; the function reads itself
(GetFunction) and invokes itself detached under its resource principal and the least-privilege
policies (``read fn-function``, ``use fn-invocation``); each part is a fresh fdk server; Pebble
issues. The sync timeout is short (30 s: a 15-s budget, far less than three certificates on one
load balancer need at OCI's timings), so the run fans out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.report import Outcome
from sandbox.fleet import FUNCTION_ID, FleetWorld
from sandbox.pebble import PebbleBinaries, PebbleOptions
from sandbox.world import NAMESPACE, STATE_BUCKET

pytestmark = pytest.mark.e2e

PARTS_TIMEOUT = 300.0


@pytest.fixture
def fleet(tmp_path: Path, pebble_binaries: PebbleBinaries) -> Iterator[FleetWorld]:
    """Five certificates over two load balancers (3 + 2), the renewer as a function."""
    with FleetWorld(
        tmp_path / "world",
        layout=[3, 2],
        function={"timeoutInSeconds": 30, "detachedModeTimeoutInSeconds": 600},
        pebble_options=PebbleOptions(retry_after_authz=0, retry_after_order=0),
        work_request_seconds=0.05,
    ) as world:
        world.attach_function()
        yield world


def scheduled(world: FleetWorld) -> tuple[int, dict[str, Any]]:
    """What Resource Scheduler does: a sync invocation with an empty body."""
    client = oci.functions.FunctionsInvokeClient(
        world.operator_config(), service_endpoint=world.emulator.endpoint
    )
    answer = client.invoke_function(FUNCTION_ID, invoke_function_body="", fn_invoke_type="sync")
    return answer.status, json.loads(answer.data.content)


def functions(world: FleetWorld) -> Any:
    return world.emulator.services["functions"]


def lane_leases(world: FleetWorld) -> list[str]:
    client = oci.object_storage.ObjectStorageClient(
        world.operator_config(), service_endpoint=world.emulator.endpoint
    )
    listed = client.list_objects(NAMESPACE, STATE_BUCKET, prefix="leases/lane-").data.objects
    return [o.name for o in listed]


def test_a_scheduled_run_too_short_for_its_fleet_fans_out_per_load_balancer(
    fleet: FleetWorld,
) -> None:
    status, document = scheduled(fleet)

    assert status == 200, document
    parts = document["fanOut"]
    assert [len(p["certificates"]) for p in parts] == [3, 2]  # busiest load balancer first
    assert all(p.get("invoked") for p in parts), parts
    assert {c["name"] for p in parts for c in [{"name": n} for n in p["certificates"]]} == {
        c["name"] for c in document["certificates"]
    }
    assert functions(fleet).wait_idle(timeout=PARTS_TIMEOUT)
    detached = functions(fleet).invocations(type="detached")
    assert len(detached) == 2
    assert [r["status"] for r in detached] == [200, 200], [r.get("log") for r in detached]
    for record in detached:
        body = json.loads(record["body"])
        assert body["action"] == "renew"
        assert record["principal"] == FUNCTION_ID  # the function invoked itself
    # Every certificate renewed, exactly one order each, and the lane leases are in place.
    assert fleet.pebble_log().count("POST /order-plz") == 5
    plan = fleet.service().plan()
    assert {c.outcome for c in plan.certificates} == {Outcome.SKIPPED}
    assert not any(c.due for c in plan.certificates), plan.to_json()
    assert len(lane_leases(fleet)) == 2

    # The next schedule has nothing due: it plans, finds no part to fan out, and runs itself.
    status, again = scheduled(fleet)
    assert status == 200, again
    assert "fanOut" not in again
    assert functions(fleet).invocations(type="detached") == detached


def test_a_lane_whose_part_is_still_running_is_not_fanned_out_twice(fleet: FleetWorld) -> None:
    # The first schedule's parts hold their lane leases (until the detached timeout passes),
    # so a second schedule while they run, or after a part died, dispatches nothing new.
    status, first = scheduled(fleet)
    assert status == 200, first
    status, second = scheduled(fleet)
    assert status == 200, second
    assert functions(fleet).wait_idle(timeout=PARTS_TIMEOUT)
    if "fanOut" in second:  # the parts had not finished yet: the lanes were still leased
        assert all("still running" in p["skipped"] for p in second["fanOut"]), second
    assert len(functions(fleet).invocations(type="detached")) == 2
    assert fleet.pebble_log().count("POST /order-plz") == 5


def test_a_function_that_may_not_invoke_itself_renews_what_it_can_itself(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    # Terraform's fan_out = false: no read fn-function / use fn-invocation. The scheduled run
    # cannot fan out, and must not be stuck: it renews in its own budget, as before fan-out.
    with FleetWorld(
        tmp_path / "world",
        layout=[3, 2],
        function={"timeoutInSeconds": 60},
        grant_fan_out=False,
        pebble_options=PebbleOptions(retry_after_authz=0, retry_after_order=0),
        work_request_seconds=0.05,
    ) as world:
        world.attach_function()
        status, document = scheduled(world)

        assert status == 200, document
        # Nothing was fanned out (a continuation of deferred ones, if any, is refused too).
        assert not any(p.get("invoked") for p in document.get("fanOut", [])), document
        assert functions(world).invocations(type="detached") == []
        outcomes = {c["outcome"] for c in document["certificates"]}
        assert "renewed" in outcomes, document
        assert outcomes <= {"renewed", "deferred"}, document
        (record,) = functions(world).invocations(type="sync")
        assert "fan_out_unavailable" in Path(record["log"]).read_text()
