"""DEPLOY admission (issue 15): a deploy starts only if its lane's work requests fit the run.

The book itself (renewer.deploy_admission) over a FakeClock, and the renewal over in-memory
fakes: a certificate whose deploy does not fit is deferred (stored, reported, not failed) and the
next run deploys it without a new order; one that fits deploys.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from renewer.deploy_admission import DeployAdmission
from renewer.report import Outcome
from tests.support.fakes import FakeClock
from tests.unit.test_renewal import LB, bundle_of, by_name, cert_doc, latest, listener, new_world

pytestmark = pytest.mark.unit

OTHER_LB = "ocid1.loadbalancer.oc1.phx.aaaaother"


def _book(clock: FakeClock, budget: float, default: float = 60.0) -> DeployAdmission:
    return DeployAdmission(clock.monotonic, clock.monotonic() + budget, default)


def test_a_deploy_behind_the_lanes_queued_work_that_does_not_fit_is_refused():
    clock = FakeClock()
    book = _book(clock, budget=320.0)
    seen = book.admit(LB, 2)  # the run's first deploy there: 60 s per work request observed
    assert seen.ticket is not None
    clock.sleep(120.0)
    book.finish(seen.ticket, 2)
    first = book.admit(LB, 2)  # 120 s of the 200 s left
    assert first.admitted
    clock.sleep(30.0)  # 90 s of it still queued; 170 s left

    second = book.admit(LB, 2)

    assert not second.admitted
    assert (second.queued_s, second.own_s, second.remaining_s) == (90.0, 120.0, 170.0)
    assert book.admit(OTHER_LB, 2).admitted  # another load balancer's lane is empty
    assert "still queued" in second.explain(LB, 2)


def test_before_any_work_request_is_observed_the_default_never_refuses():
    # The default is a guess (a step budget per work request): refusing on it would defer every
    # first deploy of a short run; the step deadline protects such a deploy instead.
    clock = FakeClock()
    book = _book(clock, budget=100.0)
    first = book.admit(LB, 2)
    second = book.admit(LB, 2)  # 120 s queued + 120 s own, 100 s left, all of it a guess

    assert first.admitted
    assert second.admitted
    assert not second.observed


def test_a_deploy_whose_lane_work_fits_is_admitted_and_counted_until_it_finishes():
    clock = FakeClock()
    book = _book(clock, budget=400.0)
    first = book.admit(LB, 2)
    second = book.admit(LB, 2)  # 120 s queued + 120 s own <= 400 s
    assert first.admitted
    assert second.admitted
    assert second.queued_s == 120.0
    assert first.ticket is not None
    assert second.ticket is not None
    book.finish(first.ticket, 2)
    book.finish(second.ticket, 2)

    assert book.admit(LB, 2).queued_s == 0.0  # nothing in flight any more


def test_the_estimate_is_the_mean_observed_on_that_load_balancer_else_the_default():
    clock = FakeClock()
    book = _book(clock, budget=3600.0)
    assert book.estimate(LB) == (60.0, False)
    for seconds in (20.0, 40.0):
        admitted = book.admit(LB, 2)
        assert admitted.ticket is not None
        clock.sleep(2 * seconds)
        book.finish(admitted.ticket, 2)

    assert book.estimate(LB) == (30.0, True)
    assert book.estimate(OTHER_LB) == (60.0, False)


def test_a_deploy_that_waited_behind_another_does_not_teach_the_estimate():
    clock = FakeClock()
    book = _book(clock, budget=3600.0)
    first, second = book.admit(LB, 2), book.admit(LB, 2)
    assert first.ticket is not None
    assert second.ticket is not None
    clock.sleep(80.0)
    book.finish(first.ticket, 2)  # alone when it started: 40 s per work request
    clock.sleep(80.0)
    book.finish(second.ticket, 2)  # its 160 s include the wait for the first

    assert book.estimate(LB) == (40.0, True)


def test_the_default_must_be_positive():
    with pytest.raises(ValueError, match="default_s"):
        DeployAdmission(FakeClock().monotonic, 100.0, 0.0)


class _TimedDeployer:
    """The recording fake, but a switch costs two work requests of ``seconds`` each."""

    def __init__(self, inner: Any, clock: FakeClock, seconds: float) -> None:
        self.inner, self.clock, self.seconds = inner, clock, seconds

    def deploy(self, *args: Any, **kwargs: Any) -> Any:
        result = self.inner.deploy(*args, **kwargs)
        if not result.changed:
            return result
        self.clock.sleep(2 * self.seconds)
        return replace(result, work_requests=(*result.work_requests, "fake-wr-switch"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize(("budget", "b_deploys"), [(300.0, False), (400.0, True)])
def test_a_certificate_whose_deploy_does_not_fit_the_lanes_pace_is_deferred_not_failed(
    budget, b_deploys
):
    # a's two work requests take 100 s each: b, on the same load balancer, needs 200 s. With
    # 300 s, b starts with 100 s left: a step (60 s) would fit, its work requests do not.
    world = new_world(cert_doc("a"), cert_doc("b"))
    deployer = _TimedDeployer(world.deployer, world.clock, 100.0)
    service = world.service(step_budget=60.0, deployer_for=lambda _t: deployer)

    first = by_name(service.run(budget_s=budget))

    assert first["a"].outcome == Outcome.RENEWED
    assert world.deployer.serving(listener("a")) == bundle_of(latest(world, "a"), "a")
    if b_deploys:
        assert first["b"].outcome == Outcome.RENEWED
        return
    assert (first["b"].outcome, first["b"].reason) == (Outcome.DEFERRED, "TimeBudget")
    assert "100 s" in first["b"].message  # the observed pace, not the default
    assert "next run deploys it" in first["b"].message
    assert first["b"].serial == latest(world, "b").serial_hex
    assert world.deployer.serving(listener("b")) is None  # never started
    assert world.lease.current("b") is None

    second = by_name(service.run(budget_s=budget))

    assert second["b"].outcome == Outcome.DEPLOYED
    assert len(world.issuer.orders) == 2  # no new order for b
