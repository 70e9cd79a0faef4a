"""Crashes leave nothing behind (issue 12, items 10 and 11), with in-memory ports.

A ``kill -9`` is modelled by :class:`KillSwitch`: every port the service is given is wrapped,
the N-th call of the run raises :class:`Killed` (a ``BaseException``, so the service records
nothing) and so does every later call of that run — its ``finally`` blocks (UNLOCK, the
issuer's challenge clean-up) die too, exactly as a killed process leaves them undone. The
property: whatever call a run dies at, the *next* run — even one with nothing due — leaves the
tenancy as a clean run would (no lease, no challenge object, the newest certificate served,
superseded bundles retired, old store versions pruned, the state's marker cleared), without a
second order; and the run after that is read-only again.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renewer import naming
from renewer.errors import ConfigError, DeploymentError, TransientError
from renewer.model import IssuedCertificate, ListenerTarget, OrderRequest, PendingOrder
from renewer.ports import OrderCreated
from renewer.renewal import RenewalService
from renewer.report import CertificateReport, Outcome, RenewalReport
from renewer.settings import Config, parse_config
from tests.support.fakes import FakeClock
from tests.support.fakes_deploy import DeployCall, RecordingDeployer
from tests.support.fakes_issuer import FakeIssuer
from tests.support.fakes_storage import (
    InMemoryChallengeBucket,
    InMemoryLease,
    InMemoryStateRepository,
)
from tests.support.fakes_vault import DEPRECATED, InMemoryCertificateStore
from tests.unit.test_renewal import config_document

pytestmark = pytest.mark.unit

LB = "ocid1.loadbalancer.oc1.phx.aaaacrash"
TARGET = ListenerTarget(LB, ("https-shop",))
DAY = timedelta(days=1)
LEASE_TTL = timedelta(minutes=10)
NEXT_RUN = LEASE_TTL + timedelta(minutes=1)  # the next scheduled run finds the lease expired
BUDGET = 300.0
NAMES = ("shop.example.com", "www.shop.example.com")
HEALTHY_NOT_DUE = ["state.load", "store.latest", "issuer.renewal_info", "deployer.is_serving"]


class Killed(BaseException):
    """The process died: not an ``Exception``, so nothing catches, records or reports it."""


@dataclass
class KillSwitch:
    """Counts the calls made to the wrapped ports; the ``kill_at``-th one and all later die."""

    kill_at: int | None = None
    calls: list[str] = field(default_factory=list)
    dead: bool = False

    def wrap(self, port: Any, label: str) -> Any:
        return _Dying(port, label, self)

    def call(self, label: str) -> None:
        if self.dead:
            raise Killed(label)
        self.calls.append(label)
        if self.kill_at is not None and len(self.calls) > self.kill_at:
            self.dead = True
            raise Killed(label)


class _Dying:
    """A proxy of one port: each method call first asks the switch whether the run is dead."""

    def __init__(self, port: Any, label: str, switch: KillSwitch) -> None:
        self._port, self._label, self._switch = port, label, switch

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._port, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self._switch.call(f"{self._label}.{name}")
            return method(*args, **kwargs)

        return call


class Http01Issuer:
    """The fake issuer, publishing one http-01 token per name through a ``ChallengeStore``
    after newOrder and removing them at the end, whatever happens (as the ACME engine does).

    A resumed order presents nothing: its authorizations were already valid, which is the
    case where a dead run's tokens used to stay forever.
    """

    def __init__(self, inner: FakeIssuer, challenges: Any) -> None:
        self.inner, self.challenges = inner, challenges
        self._tokens = itertools.count(1)

    def issue(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None = None
    ) -> IssuedCertificate:
        presented: list[str] = []

        def created(order_url: str, account_url: str) -> None:
            if on_order is not None:
                on_order(order_url, account_url)
            for _ in request.dns_names:
                token = f"token-{next(self._tokens)}"
                presented.append(token)
                self.challenges.present(token, f"{token}.thumbprint")

        try:
            return self.inner.issue(request, deadline=deadline, on_order=created)
        finally:
            for token in presented:
                self.challenges.clean_up(token)

    def resume(
        self, order_url: str, request: OrderRequest, *, account_url: str, deadline: float
    ) -> IssuedCertificate | None:
        return self.inner.resume(order_url, request, account_url=account_url, deadline=deadline)

    def renewal_info(self, cert_pem: str, *, deadline: float | None = None) -> None:
        del cert_pem, deadline


class RefusingStore(InMemoryCertificateStore):
    """The in-memory store, refusing to record pending orders (Vault throttling, say)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def save_pending(self, name: str, order: PendingOrder) -> None:
        del name, order
        raise self.error


@dataclass
class World:
    clock: FakeClock = field(default_factory=FakeClock)
    store: InMemoryCertificateStore = field(default_factory=InMemoryCertificateStore)
    state: InMemoryStateRepository = field(default_factory=InMemoryStateRepository)
    deployer: RecordingDeployer = field(default_factory=RecordingDeployer)
    lease: InMemoryLease = field(init=False)
    issuer: FakeIssuer = field(init=False)
    bucket: InMemoryChallengeBucket = field(init=False)
    config: Config = field(init=False)
    runs: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.lease = InMemoryLease(self.clock)
        self.issuer = FakeIssuer(clock=self.clock)
        self.bucket = InMemoryChallengeBucket(self.clock)
        document = config_document(
            {
                "name": "shop",
                "dnsNames": list(NAMES),
                "targets": [{"loadBalancerId": LB, "listeners": ["https-shop"]}],
            }
        )
        # Retention 2: the third certificate makes the first one prunable.
        document["renewal"] = {"retention": 2, "keepPreviousBundles": 1, "verifyTls": False}
        self.config = parse_config(document)

    def service(self, switch: KillSwitch | None = None, *, holder: str) -> RenewalService:
        switch = switch or KillSwitch()
        wrap = switch.wrap
        challenges = wrap(self.bucket, "challenges")
        deployer = wrap(self.deployer, "deployer")
        return RenewalService(
            config=self.config,
            issuer=wrap(Http01Issuer(self.issuer, challenges), "issuer"),
            certificates=wrap(self.store, "store"),
            leases=wrap(self.lease, "lease"),
            state=wrap(self.state, "state"),
            deployer_for=lambda _target: deployer,
            verifier=None,
            clock=self.clock,
            holder=holder,
            lease_ttl=LEASE_TTL,
            max_workers=1,
            challenges=challenges,
        )

    def run(self, switch: KillSwitch | None = None, **kwargs: Any) -> CertificateReport:
        holder = kwargs.pop("holder", f"run-{next(self.runs)}")  # one id per run, as in production
        report: RenewalReport = self.service(switch, holder=holder).run(
            budget_s=kwargs.pop("budget_s", BUDGET), **kwargs
        )
        [only] = report.certificates
        return only

    def advance(self, delta: timedelta) -> None:
        self.clock.sleep(delta.total_seconds())

    def orders(self) -> int:
        return len(self.issuer.orders)

    def served_is_newest(self) -> bool:
        stored = self.store.latest("shop")
        assert stored is not None
        return self.deployer.serving(TARGET) == naming.bundle_name("shop", stored.serial_hex)

    def state_doc(self) -> dict[str, Any]:
        document = self.state.load("shop")
        assert document is not None
        return document


def two_certificates() -> World:
    """A certificate issued, renewed by force a day later, and another 40 days on."""
    world = World()
    assert world.run().outcome is Outcome.RENEWED
    world.advance(DAY)
    assert world.run(force=True).outcome is Outcome.RENEWED
    world.advance(40 * DAY)
    return world


def assert_clean(world: World, where: str = "") -> None:
    """What a clean run leaves: the invariants every recovery must reach."""
    assert world.lease.current("shop") is None, where
    assert world.bucket.tokens == []
    assert world.served_is_newest()
    assert len(world.deployer.bundles(TARGET)) <= 2  # serving + keepPreviousBundles
    assert DEPRECATED not in world.store.stages("shop").values()  # pruned
    assert world.store.load_pending("shop") is None, where  # no order left open
    state = world.state_doc()
    assert state.get("unfinished") is None
    assert state["consecutive_failures"] == 0


def port_calls(world: World, **kwargs: Any) -> list[str]:
    switch = KillSwitch()
    world.run(switch, **kwargs)
    return switch.calls


# --- the property: a kill at any call, then one not-due run ----------------------------------


def test_a_kill_at_any_call_of_a_renewal_is_cleaned_up_by_the_next_run_even_if_not_due():
    reference = two_certificates()
    calls = port_calls(reference, force=True)
    assert_clean(reference)
    assert {"challenges.present", "lease.acquire", "deployer.retire", "store.prune"} <= set(calls)

    for kill_at in range(len(calls)):
        world = two_certificates()
        orders_before = world.orders()
        with pytest.raises(Killed):
            world.run(KillSwitch(kill_at=kill_at), force=True)
        world.advance(NEXT_RUN)

        recovery = world.run()  # scheduled, not forced, nothing due

        where = f"killed at call {kill_at} ({calls[kill_at]})"
        assert recovery.outcome is not Outcome.FAILED, (where, recovery.to_dict())
        assert world.orders() - orders_before <= 1, where  # the dead run's only
        assert_clean(world, where)
        # Bounded cost: the run after the recovery is read-only again.
        after = port_calls(world)
        assert after == HEALTHY_NOT_DUE, where


def _due_by_lifetime() -> World:
    world = two_certificates()
    world.advance(25 * DAY)  # 66 days into a 90-day certificate: due by lifetime
    return world


SCENARIOS: dict[str, tuple[Callable[[], World], dict[str, Any]]] = {
    "first issuance": (World, {}),
    "forced renewal": (two_certificates, {"force": True}),
    "due renewal": (_due_by_lifetime, {}),
}


@settings(max_examples=60, deadline=None)
@given(
    scenario=st.sampled_from(sorted(SCENARIOS)),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    early=st.booleans(),
)
def test_whatever_run_dies_wherever_the_runs_after_it_converge_without_a_second_order(
    scenario: str, fraction: float, early: bool
):
    setup, kwargs = SCENARIOS[scenario]
    calls = port_calls(setup(), **kwargs)
    kill_at = int(fraction * len(calls))
    world = setup()
    orders_before = world.orders()
    with pytest.raises(Killed):
        world.run(KillSwitch(kill_at=kill_at), **kwargs)
    where = f"{scenario} killed at call {kill_at} ({calls[kill_at]})"

    if early:  # a run while the dead run's lease is live: it must leave everything alone
        world.advance(timedelta(minutes=1))
        held = world.lease.current("shop")
        early_run = world.run()
        if held is not None:
            assert (early_run.outcome, early_run.reason) == (Outcome.SKIPPED, "Locked"), where
    world.advance(NEXT_RUN)
    recovery = world.run()

    assert recovery.outcome is not Outcome.FAILED, (where, recovery.to_dict())
    # The one window no record can cover: the CA created the order, and the run died before
    # Vault stored its record (here: inside save_pending). A run that must order then orders
    # again; everywhere else the dead run's order is the only one.
    lost = calls[kill_at] == "store.save_pending"
    assert world.orders() - orders_before <= (2 if lost else 1), where
    assert_clean(world, where)
    assert port_calls(world) == HEALTHY_NOT_DUE, where


def test_a_healthy_not_due_run_makes_three_reads_and_nothing_else():
    world = two_certificates()

    calls = port_calls(world)

    # Three reads in the tenancy; the ARI query goes to the CA (this fake CA has no window to
    # give, so it is asked every run; a real one's Retry-After spaces the queries).
    assert calls == HEALTHY_NOT_DUE


# --- what each leftover used to be ------------------------------------------------------------


def test_a_resumed_order_whose_authorizations_are_valid_still_removes_the_dead_runs_tokens():
    world = World()
    # Killed right after publishing the tokens (the CA validates them after the kill): the
    # order is recorded, the tokens are in the bucket, the lease is held.
    kill_after_present = KillSwitch()
    calls = port_calls(World())
    kill_after_present.kill_at = calls.index("challenges.present") + 2
    with pytest.raises(Killed):
        world.run(kill_after_present)
    assert world.bucket.tokens == ["token-1", "token-2"]
    world.advance(NEXT_RUN)

    rerun = world.run()

    assert rerun.outcome is Outcome.RENEWED
    assert world.issuer.resumes  # finished the dead run's order, presenting nothing
    assert world.orders() == 1
    assert_clean(world)


def one_certificate() -> World:
    world = World()
    assert world.run().outcome is Outcome.RENEWED
    world.advance(DAY)
    return world


def index_in_forced_run(setup: Callable[[], World], label: str) -> int:
    """Where ``label`` is first called in a forced run of a world made by ``setup`` (measured
    on a world of its own: the fakes are deterministic, so a twin makes the same calls)."""
    return port_calls(setup(), force=True).index(label)


def test_an_expired_lease_left_with_nothing_due_is_removed():
    world = one_certificate()
    with pytest.raises(Killed):  # killed right after taking the lease
        world.run(
            KillSwitch(kill_at=index_in_forced_run(one_certificate, "lease.acquire") + 1),
            force=True,
        )
    assert world.lease.current("shop") is not None
    world.advance(NEXT_RUN)

    rerun = world.run()

    assert (rerun.outcome, rerun.reason) == (Outcome.SKIPPED, "NotDue")
    assert world.lease.current("shop") is None
    assert world.state_doc()["unfinished"] is None


def test_a_kill_between_the_switch_and_retire_is_retired_by_a_not_due_run():
    world = two_certificates()
    with pytest.raises(Killed):
        world.run(
            KillSwitch(kill_at=index_in_forced_run(two_certificates, "deployer.retire")),
            force=True,
        )
    assert len(world.deployer.bundles(TARGET)) == 3  # the superseded one is still there
    assert world.served_is_newest()
    world.advance(NEXT_RUN)

    rerun = world.run()

    assert (rerun.outcome, rerun.reason) == (Outcome.SKIPPED, "NotDue")
    assert_clean(world)


def test_after_a_failed_retire_the_next_run_prunes_the_store():
    world = two_certificates()
    world.deployer.fail_next("retire", DeploymentError("the bundle delete failed"))
    failed = world.run(force=True)
    assert (failed.outcome, failed.failed_step) == (Outcome.FAILED, "retire")
    assert DEPRECATED in world.store.stages("shop").values()  # the failed run never pruned
    world.advance(NEXT_RUN)

    rerun = world.run()  # BackingOff or NotDue: nothing due either way

    assert rerun.outcome is Outcome.SKIPPED
    assert_clean(world)


def test_a_live_run_holding_the_lease_is_left_alone_and_the_marker_stays():
    world = two_certificates()
    with pytest.raises(Killed):
        world.run(
            KillSwitch(kill_at=index_in_forced_run(two_certificates, "deployer.retire")), force=True
        )
    world.advance(timedelta(minutes=1))  # its lease has not expired: it may be alive
    saves = len(world.state.saves)

    rerun = world.run()

    assert (rerun.outcome, rerun.reason) == (Outcome.SKIPPED, "Locked")
    assert len(world.state.saves) == saves  # a Locked run writes nothing
    assert world.state_doc()["unfinished"] is not None
    assert len(world.deployer.bundles(TARGET)) == 3


def test_tokens_that_may_belong_to_a_live_run_are_swept_by_a_later_run():
    world = two_certificates()
    with pytest.raises(Killed):
        world.run(
            KillSwitch(kill_at=index_in_forced_run(two_certificates, "challenges.present") + 1),
            force=True,
        )
    world.advance(NEXT_RUN)
    world.bucket.present("live-token", "another certificate's run")  # created just now

    first = world.run()

    assert (first.outcome, first.reason) == (Outcome.RENEWED, "Resumed")  # the forced order
    assert world.bucket.tokens == ["live-token"]
    assert world.state_doc()["unfinished"] is not None  # owed: swept again later
    world.bucket.clean_up("live-token")  # that run finished
    world.advance(DAY)
    world.run()
    assert_clean(world)


def test_a_forced_run_killed_after_new_order_is_finished_by_a_not_due_run():
    world = two_certificates()
    with pytest.raises(Killed):  # killed right after the order was recorded
        world.run(
            KillSwitch(kill_at=index_in_forced_run(two_certificates, "store.save_pending") + 1),
            force=True,
        )
    pending = world.store.load_pending("shop")
    assert pending is not None
    world.advance(NEXT_RUN)

    rerun = world.run()

    assert (rerun.outcome, rerun.reason) == (Outcome.RENEWED, "Resumed"), rerun.to_dict()
    assert f"finished order {pending.order_url}" in rerun.message
    assert world.orders() == 3  # the dead run's order, finished: none placed
    assert_clean(world)
    assert world.run().reason == "NotDue"


# --- item 11: a refused pending-order record ------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        TransientError("Vault throttled the request (429 TooManyRequests)"),
        ConfigError("30 versions of the secret are in use"),
    ],
)
def test_a_refused_pending_order_record_does_not_abandon_the_order(
    error: Exception, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="renewer.renewal")
    world = World(store=RefusingStore(error))

    report = world.run()

    assert (report.outcome, report.reason) == (Outcome.RENEWED, "Missing")
    assert world.orders() == 1
    assert world.store.latest("shop") is not None
    assert world.served_is_newest()
    assert "pending order not recorded cert=shop" in caplog.text
    world.advance(DAY)
    assert world.run().reason == "NotDue"
    assert world.orders() == 1  # and the next run orders nothing either
    assert_deploys(world, 1)


def assert_deploys(world: World, count: int) -> None:
    deploys = [c for c in world.deployer.calls if isinstance(c, DeployCall) and c.target == TARGET]
    assert len({c.serial_hex for c in deploys}) == count
