"""The dns-01 sweep in the crash-recovery path of ``RenewalService`` (issue 16).

A run killed after its pending-order record (so after newOrder, before STORE) leaves its
TXT values; the next run — the one that resumes the order — hands the recorded order to the
sweeper before STORE closes the record. A sweep that fails is logged and never fails the run:
the marker stays, so a later run tries again. A run with nothing inherited never sweeps.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

from renewer.dns_sweep import DnsSweep
from renewer.errors import TransientError
from renewer.model import PendingOrder
from renewer.renewal import RenewalService
from renewer.report import Outcome
from renewer.settings import parse_config
from tests.unit.test_crash_recovery import (
    BUDGET,
    LB,
    LEASE_TTL,
    NAMES,
    NEXT_RUN,
    Http01Issuer,
    Killed,
    KillSwitch,
    World,
)
from tests.unit.test_renewal import config_document

pytestmark = pytest.mark.unit

ZONE = "ocid1.dns-zone.oc1..aaaasweep"


class RecordingSweeper:
    """Records each sweep it is asked for; raises ``error`` when set."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, str, bool, frozenset[str]]] = []

    def sweep(
        self,
        order: PendingOrder,
        zone_id: str,
        *,
        abandoned: bool,
        shared_names: Collection[str] = (),
        deadline: float,
    ) -> DnsSweep:
        del deadline
        self.calls.append((order.order_url, zone_id, abandoned, frozenset(shared_names)))
        if self.error is not None:
            raise self.error
        return DnsSweep(removed=(("_acme-challenge.shop.example.com", "v"),))


def dns01_world(*others: dict[str, Any]) -> World:
    world = World()
    document = config_document(
        {
            "name": "shop",
            "dnsNames": list(NAMES),
            "targets": [{"loadBalancerId": LB, "listeners": ["https-shop"]}],
            "challenge": {"type": "dns-01", "zoneId": ZONE},
        },
        *others,
    )
    document["renewal"] = {"retention": 2, "keepPreviousBundles": 1, "verifyTls": False}
    world.config = parse_config(document)
    return world


def run(world: World, sweeper: RecordingSweeper, switch: KillSwitch | None = None, **kw: Any):
    switch = switch or KillSwitch()
    service = RenewalService(
        config=world.config,
        issuer=switch.wrap(Http01Issuer(world.issuer, world.bucket), "issuer"),
        certificates=switch.wrap(world.store, "store"),
        leases=switch.wrap(world.lease, "lease"),
        state=switch.wrap(world.state, "state"),
        deployer_for=lambda _target: world.deployer,
        verifier=None,
        clock=world.clock,
        holder=f"run-{next(world.runs)}",
        lease_ttl=LEASE_TTL,
        max_workers=1,
        dns_sweeper=sweeper,  # type: ignore[arg-type] - a recording stand-in
    )
    return service.run(budget_s=BUDGET, **kw)


def killed_after_the_pending_record(world: World) -> str:
    """A first run killed right after newOrder recorded its order; the order's URL."""
    reference = dns01_world()
    switch = KillSwitch()
    run(reference, RecordingSweeper(), switch)
    kill_at = switch.calls.index("store.save_pending") + 1
    with pytest.raises(Killed):
        run(world, RecordingSweeper(), KillSwitch(kill_at=kill_at))
    pending = world.store.load_pending("shop")
    assert pending is not None
    world.clock.sleep(NEXT_RUN.total_seconds())
    return pending.order_url


def test_the_run_after_a_kill_sweeps_the_recorded_order_before_store_closes_it():
    world = dns01_world()
    order_url = killed_after_the_pending_record(world)
    sweeper = RecordingSweeper()

    [report] = run(world, sweeper).certificates

    assert report.outcome is Outcome.RENEWED, report.to_dict()
    assert report.order_url == order_url  # resumed, not ordered again
    assert sweeper.calls == [(order_url, ZONE, False, frozenset())]
    assert world.store.load_pending("shop") is None
    assert world.state_doc().get("unfinished") is None


def test_another_certificate_at_the_same_name_keeps_its_pending_values():
    other = {
        "name": "other",
        "dnsNames": ["*.shop.example.com"],
        "targets": [{"loadBalancerId": LB, "listeners": ["https-other"]}],
        "challenge": {"type": "dns-01", "zoneId": ZONE},
    }
    world = dns01_world(other)
    order_url = killed_after_the_pending_record(world)
    sweeper = RecordingSweeper()

    run(world, sweeper, names=["shop"])

    assert sweeper.calls == [
        (order_url, ZONE, False, frozenset({"_acme-challenge.shop.example.com"}))
    ]


def test_a_failed_sweep_is_logged_never_fails_the_run_and_keeps_the_marker(
    caplog: pytest.LogCaptureFixture,
):
    world = dns01_world()
    killed_after_the_pending_record(world)
    sweeper = RecordingSweeper(TransientError("DNS answered 503"))

    with caplog.at_level("WARNING"):
        report = run(world, sweeper)

    [only] = report.certificates
    assert only.outcome is Outcome.RENEWED, only.to_dict()
    assert not report.failed
    assert len(sweeper.calls) == 1
    assert "dns01_sweep failed" in caplog.text
    assert world.state_doc().get("unfinished") is not None  # a later run is owed the rest


def test_a_run_with_nothing_inherited_never_sweeps():
    world = dns01_world()
    sweeper = RecordingSweeper()

    [report] = run(world, sweeper).certificates

    assert report.outcome is Outcome.RENEWED
    assert sweeper.calls == []
