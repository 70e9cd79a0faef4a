"""dns-01 and ``kill -9``: the next run leaves none of the dead run's TXT values (issue 16).

The renewer runs in a subprocess (``sandbox.run_renewer``, as in ``test_faults.py``); an
emulator fault rule hangs one of its DNS requests, and the test ``kill -9``s it there — after
its ``_acme-challenge`` TXT records were written into the emulated OCI DNS zone. Another ACME
client's value sits at the same name. The next run (the dead run's lease expired) must leave
the zone with that foreign value and nothing of ours, without a second order. The zone is read
as the operator, through the real SDK's ``DnsClient``.
"""

from __future__ import annotations

from pathlib import Path

import oci
import pytest

from renewer.adapters.oci_dns import txt_value
from renewer.report import Outcome
from sandbox.world import DNS_ZONE_ID, STATE_BUCKET, SandboxWorld
from tests.e2e.test_faults import (
    BUDGET,
    RERUN_LATER,
    LaterClock,
    add_fault,
    kill_9,
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

WILDCARD = ("shop.example.com", "*.shop.example.com")
RECORD = "_acme-challenge.shop.example.com"
# Another ACME client (another account key) validating the same name: never ours to remove.
FOREIGN = "another-acme-clients-value-aaaaaaaaaaaaaaaaaaaaa"
PATCH = {"operation": "PatchDomainRecords", "path": f"/records/{RECORD}$"}
READ = {"operation": "GetDomainRecords", "path": f"/records/{RECORD}"}


def zone_values(world: SandboxWorld) -> list[str]:
    """The TXT values at RECORD, as the operator's SDK client reads them from the zone."""
    dns = operator_client(world, oci.dns.DnsClient)
    items = dns.get_domain_records(DNS_ZONE_ID, RECORD, rtype="TXT").data.items
    return sorted(txt_value(r.rdata) for r in items)


def add_foreign_value(world: SandboxWorld) -> None:
    dns = operator_client(world, oci.dns.DnsClient)
    operation = oci.dns.models.RecordOperation(
        operation="ADD", domain=RECORD, rtype="TXT", rdata=f'"{FOREIGN}"', ttl=30
    )
    dns.patch_domain_records(
        DNS_ZONE_ID, RECORD, oci.dns.models.PatchDomainRecordsDetails(items=[operation])
    )


# Where the run dies. "validated": the CA has validated both values and the run hangs on the
# PATCH removing them, so the order the next run resumes is ``ready`` and presents nothing (the
# values can only go by the sweep). "written": the records are in the zone and the run hangs
# waiting for the zone to list them; the authorizations are still pending, so the resumed
# order presents the same values again and removes them itself.
KILLS = {
    "validated": ({**PATCH, "times": 1, "latency": 0.001}, {**PATCH, "times": 1, "hang": True}),
    "written": ({**READ, "times": 1, "hang": True},),
}


@pytest.mark.parametrize("kill_at", sorted(KILLS))
@pytest.mark.world(certificates=WILDCARD, challenge="dns-01")
def test_a_dead_runs_txt_values_are_removed_and_a_foreign_one_stays(
    world: SandboxWorld, tmp_path: Path, kill_at: str
) -> None:
    add_foreign_value(world)
    rules = [add_fault(world, **rule) for rule in KILLS[kill_at]]

    with runner(world, tmp_path / "runner") as run:
        wait_until_hung(world, rules[-1], run)
        kill_9(run)
    world.emulator.faults.clear()

    # Both of the dead run's values (one per authorization: the name and its wildcard) are in
    # the zone next to the foreign one, and so are its lease and its marker.
    left = zone_values(world)
    assert FOREIGN in left
    assert len(left) == 3, left
    assert objects(world, STATE_BUCKET, "leases/")
    assert state_document(world)["unfinished"] is not None

    rerun = only(world.service(clock=LaterClock(RERUN_LATER)).run(budget_s=BUDGET))

    assert rerun.outcome is Outcome.RENEWED, rerun.to_dict()
    assert rerun.order_url is not None
    assert f"finished order {rerun.order_url}" in rerun.message  # the dead run's order
    assert orders(world) == 1
    assert zone_values(world) == [FOREIGN]
    assert objects(world, STATE_BUCKET, "leases/") == []
    assert state_document(world)["unfinished"] is None
    assert served_serial(world) == vault_serial(world)
