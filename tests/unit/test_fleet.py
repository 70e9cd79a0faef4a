"""Lane scheduling (renewer.fleet): busiest load balancer first, at most ``depth`` per lane."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renewer import fleet
from renewer.model import CertificateServiceTarget, CertificateSpec, ListenerTarget
from renewer.settings import ManagedCertificate


def _managed(name: str, *targets: object) -> ManagedCertificate:
    return ManagedCertificate(CertificateSpec(name, (f"{name}.example.com",)), tuple(targets))  # type: ignore[arg-type]


def test_a_certificate_runs_in_the_lane_of_its_first_listener_target():
    shared = _managed(
        "a",
        CertificateServiceTarget("ocid1.certificate.oc1..x"),
        ListenerTarget("ocid1.loadbalancer.oc1..one", ("https",)),
        ListenerTarget("ocid1.loadbalancer.oc1..two", ("https",)),
    )
    service_only = _managed("b", CertificateServiceTarget("ocid1.certificate.oc1..y"))

    assert fleet.lane_of(shared) == "ocid1.loadbalancer.oc1..one"
    assert fleet.lane_of(service_only) == "certificate:b"


def test_the_busiest_lane_starts_first_and_lanes_interleave():
    items = ["s1", "b1", "b2", "b3", "m1", "m2"]  # lane = first letter; b is the busiest
    scheduler = fleet.LaneScheduler(items, lane=lambda item: item[0], depth=1)

    first = [scheduler.take() for _ in range(3)]

    assert first == [(1, "b1"), (4, "m1"), (0, "s1")]  # one per lane, busiest lane first


def test_no_more_than_depth_items_of_a_lane_run_at_once():
    scheduler = fleet.LaneScheduler(["a1", "a2", "a3"], lane=lambda item: item[0], depth=2)
    assert scheduler.take() == (0, "a1")
    assert scheduler.take() == (1, "a2")
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(scheduler.take()))
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive()  # blocked: lane a is at its depth
    scheduler.done(0)
    waiter.join(timeout=10)
    assert got == [(2, "a3")]
    assert scheduler.take() is None  # nothing left to start


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        fleet.LaneScheduler(["a"], lane=str, depth=0)


@settings(max_examples=60, deadline=None)
@given(
    lanes=st.lists(st.integers(min_value=0, max_value=5), min_size=0, max_size=40),
    workers=st.integers(min_value=1, max_value=8),
    depth=st.integers(min_value=1, max_value=3),
)
def test_every_item_runs_once_results_keep_order_and_depth_holds(lanes, workers, depth):
    items = list(enumerate(lanes))
    running: dict[int, int] = {}
    peak: dict[int, int] = {}
    guard = threading.Lock()

    def work(item: tuple[int, int]) -> int:
        index, lane = item
        with guard:
            running[lane] = running.get(lane, 0) + 1
            peak[lane] = max(peak.get(lane, 0), running[lane])
        with guard:
            running[lane] -= 1
        return index * 10

    results = fleet.run_in_lanes(
        items, work, lane=lambda item: item[1], workers=workers, depth=depth
    )

    assert results == [index * 10 for index, _ in items]
    assert all(value <= depth for value in peak.values())


def test_an_error_in_work_is_raised_after_every_item_ran():
    ran: list[int] = []

    def work(item: int) -> int:
        ran.append(item)
        if item == 1:
            raise RuntimeError("boom")
        return item

    with pytest.raises(RuntimeError, match="boom"):
        fleet.run_in_lanes([0, 1, 2], work, lane=lambda _: "x", workers=2)
    assert sorted(ran) == [0, 1, 2]
