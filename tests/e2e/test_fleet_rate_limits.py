"""The CA's limits across a fleet, end to end (issue 15): first issuances beyond the configured
limits are held back — ``deferred`` / ``RateLimited`` with the instant they fit — and counted in
the state bucket's issuance log; renewals naming what they replace (ARI ``replaces``) are exempt.

Real Pebble, the emulator and the renewer's wiring; the limits are configured small
(``renewal.rateLimits``) so a four-certificate fleet reaches them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.report import Outcome, RunReason
from renewer.settings import parse_config
from sandbox.fleet import FleetWorld
from sandbox.pebble import PebbleBinaries, PebbleOptions, replaces_accepted
from sandbox.world import NAMESPACE, STATE_BUCKET

pytestmark = pytest.mark.e2e

BUDGET = 120.0


@pytest.fixture
def fleet(tmp_path: Path, pebble_binaries: PebbleBinaries) -> Iterator[FleetWorld]:
    """Four certificates over two load balancers (3 + 1), all due, work requests of 0.05 s."""
    options: dict[str, Any] = {
        "pebble_options": PebbleOptions(retry_after_authz=0, retry_after_order=0),
        "work_request_seconds": 0.05,
    }
    with FleetWorld(tmp_path / "world", layout=[3, 1], **options) as world:
        yield world


def limited(world: FleetWorld, limits: dict[str, int]) -> Any:
    document = world.config_document()
    document.setdefault("renewal", {})["rateLimits"] = limits
    return world.service(config=parse_config(document), max_workers=1)


def orders(world: FleetWorld) -> int:
    return world.pebble_log().count("POST /order-plz")


def issuance_log(world: FleetWorld) -> dict[str, Any]:
    client = oci.object_storage.ObjectStorageClient(
        world.operator_config(), service_endpoint=world.emulator.endpoint
    )
    listed = client.list_objects(NAMESPACE, STATE_BUCKET, prefix="issuances/").data.objects
    assert len(listed) == 1, [o.name for o in listed]
    body = client.get_object(NAMESPACE, STATE_BUCKET, listed[0].name).data.content
    return json.loads(body)


def test_first_issuances_beyond_the_limit_are_held_back_and_said_when_they_fit(
    fleet: FleetWorld,
) -> None:
    service = limited(fleet, {"certificatesPerDomain": 2, "domainWindowDays": 7})
    report = service.run(budget_s=BUDGET)
    outcomes = Counter((c.outcome, c.reason) for c in report.certificates)
    assert outcomes == {
        (Outcome.RENEWED, "Missing"): 2,
        (Outcome.DEFERRED, RunReason.RATE_LIMITED): 2,
    }, report.to_json()
    assert not report.failed
    assert orders(fleet) == 2  # nothing beyond the limit reached the CA
    held = [c for c in report.certificates if c.outcome is Outcome.DEFERRED]
    for certificate in held:
        assert "2 new certificates per registered domain per 7 days" in certificate.message
        fits = certificate.message.split("it fits from ")[1].split(" ")[0]
        assert datetime.fromisoformat(fits) > report.started_at
    recorded = issuance_log(fleet)["issuances"]
    assert [entry["domains"] for entry in recorded] == [["example.com"], ["example.com"]]

    # The next run still holds them back, and orders nothing.
    again = limited(fleet, {"certificatesPerDomain": 2, "domainWindowDays": 7}).run(budget_s=BUDGET)
    reasons = Counter(c.reason for c in again.certificates)
    assert reasons[RunReason.RATE_LIMITED] == 2, again.to_json()
    assert orders(fleet) == 2
    assert len(issuance_log(fleet)["issuances"]) == 2


def test_renewals_naming_what_they_replace_are_exempt(fleet: FleetWorld) -> None:
    service = limited(fleet, {"ordersPerAccount": 1, "orderWindowMinutes": 180})
    first = service.run(budget_s=BUDGET)
    renewed = [c for c in first.certificates if c.outcome is Outcome.RENEWED]
    assert len(renewed) == 1, first.to_json()
    name, serial = renewed[0].name, renewed[0].serial
    assert serial is not None
    if not replaces_accepted(serial):
        pytest.skip("Pebble cannot match replaces for this serial (sandbox.pebble)")
    # The account's one order is used up; a forced renewal of the issued certificate carries
    # ARI replaces, so it is not counted and goes ahead.
    before = orders(fleet)
    forced = limited(fleet, {"ordersPerAccount": 1, "orderWindowMinutes": 180}).run(
        budget_s=BUDGET, names=[name], force=True
    )
    assert forced.certificates[0].outcome is Outcome.RENEWED, forced.to_json()
    assert orders(fleet) == before + 1
    assert len(issuance_log(fleet)["issuances"]) == 1  # the renewal was not counted
