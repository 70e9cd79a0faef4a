"""The renewal orchestrator with in-memory fakes and a FakeClock: no network, no real time.

Every scenario runs the real ``RenewalService`` over the ports' in-memory implementations (the
same fakes the contract suites hold to the adapters' behaviour) and a ``FakeIssuer`` that signs
real certificates, so what is asserted is what was stored, deployed and recorded, not which
methods were called.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from renewer import naming, pki
from renewer.errors import (
    AcmeProtocolError,
    ConfigError,
    DeploymentError,
    RateLimited,
    TransientError,
)
from renewer.model import (
    CertificateServiceTarget,
    IssuedCertificate,
    ListenerTarget,
    OrderRequest,
    RenewalInfo,
    StoredCertificate,
    Target,
)
from renewer.ports import LeaseHandle, OrderCreated
from renewer.renewal import RenewalService
from renewer.report import CertificateReport, Outcome, RenewalReport
from renewer.settings import Config, parse_config
from tests.support.fakes import FakeClock
from tests.support.fakes_deploy import DeployCall, RecordingDeployer, RetireCall
from tests.support.fakes_issuer import DIRECTORY_URL, FakeIssuer
from tests.support.fakes_storage import InMemoryLease, InMemoryStateRepository
from tests.support.fakes_vault import InMemoryCertificateStore

pytestmark = pytest.mark.unit

LB = "ocid1.loadbalancer.oc1.phx.aaaarenewal"
CS = "ocid1.certificate.oc1.phx.aaaarenewal"
DAY = timedelta(days=1)
BUDGET = 300.0


def cert_doc(name: str, *, extra_names: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "dnsNames": [f"{name}.example.com", f"www.{name}.example.com", *extra_names],
        "targets": [{"loadBalancerId": LB, "listeners": [f"https-{name}"]}],
        **more,
    }


def config_document(*certs: dict[str, Any], directory: str = DIRECTORY_URL) -> dict[str, Any]:
    """A valid configuration document for ``certs`` (default: ``shop``), the fakes' tenancy."""
    return {
        "acme": {"directoryUrl": directory},
        "oci": {
            "compartmentId": "ocid1.compartment.oc1..aaaa",
            "vaultId": "ocid1.vault.oc1.phx.aaaa",
            "keyId": "ocid1.key.oc1.phx.aaaa",
            "challengeBucket": "acme-challenges",
            "stateBucket": "acme-state",
        },
        "certificates": list(certs or (cert_doc("shop"),)),
    }


def make_config(*certs: dict[str, Any], directory: str = DIRECTORY_URL) -> Config:
    return parse_config(config_document(*certs, directory=directory))


def listener(name: str = "shop") -> ListenerTarget:
    return ListenerTarget(LB, (f"https-{name}",))


class ReadCountingStore(InMemoryCertificateStore):
    """The in-memory store, also counting reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def latest(self, name: str) -> StoredCertificate | None:
        self.reads.append(name)
        return super().latest(name)


class ReadCountingState(InMemoryStateRepository):
    """The in-memory state repository, also counting reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def load(self, name: str) -> dict[str, object] | None:
        self.reads.append(name)
        return super().load(name)


class ServedVerifier:
    """``TlsVerifier`` over a ``RecordingDeployer``: the serial of the bundle a target serves."""

    def __init__(self, deployer: RecordingDeployer) -> None:
        self.deployer = deployer
        self.calls: list[tuple[Target, str]] = []
        self.override: str | None = None

    def serial_served(self, target: Target, server_name: str, *, timeout: float) -> str:
        assert timeout > 0
        self.calls.append((target, server_name))
        if self.override is not None:
            return self.override
        bundle = self.deployer.serving(target)
        for call in self.deployer.calls:
            if (
                isinstance(call, DeployCall)
                and call.target == target
                and naming.bundle_name(call.name, call.serial_hex) == bundle
            ):
                return call.serial_hex
        raise TransientError(f"nothing served for {server_name}")


class BarrierIssuer:
    """An issuer whose orders all wait for each other: proves they run at the same time."""

    def __init__(self, inner: FakeIssuer, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=10)

    def issue(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None = None
    ) -> IssuedCertificate:
        self.barrier.wait()
        return self.inner.issue(request, deadline=deadline, on_order=on_order)

    def resume(
        self, order_url: str, request: OrderRequest, *, account_url: str, deadline: float
    ) -> IssuedCertificate | None:
        return self.inner.resume(order_url, request, account_url=account_url, deadline=deadline)

    def renewal_info(self, cert_pem: str, *, deadline: float | None = None) -> RenewalInfo | None:
        return self.inner.renewal_info(cert_pem, deadline=deadline)


class HookedLease:
    """A lease that runs ``hook`` (once) just before the first acquire: a concurrent run."""

    def __init__(self, inner: InMemoryLease, hook: Any) -> None:
        self.inner = inner
        self.hook = hook

    def acquire(self, name: str, *, holder: str, ttl: timedelta) -> LeaseHandle | None:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return self.inner.acquire(name, holder=holder, ttl=ttl)

    def release(self, handle: LeaseHandle) -> None:
        self.inner.release(handle)

    def current(self, name: str) -> LeaseHandle | None:
        return self.inner.current(name)


@dataclass
class World:
    clock: FakeClock
    issuer: FakeIssuer
    store: ReadCountingStore
    lease: InMemoryLease
    state: ReadCountingState
    deployer: RecordingDeployer
    verifier: ServedVerifier
    config: Config
    options: dict[str, Any] = field(default_factory=dict)

    def service(self, **kwargs: Any) -> RenewalService:
        options: dict[str, Any] = {
            "config": self.config,
            "issuer": self.issuer,
            "certificates": self.store,
            "leases": self.lease,
            "state": self.state,
            "deployer_for": lambda _target: self.deployer,
            "verifier": self.verifier,
            "clock": self.clock,
            "holder": "run-1",
            "max_workers": 1,
            **self.options,
            **kwargs,
        }
        return RenewalService(**options)

    def run(self, **kwargs: Any) -> RenewalReport:
        kwargs.setdefault("budget_s", BUDGET)
        return self.service().run(**kwargs)

    def advance(self, delta: timedelta) -> None:
        self.clock.sleep(delta.total_seconds())

    def state_of(self, name: str = "shop") -> dict[str, Any]:
        document = self.state.load(name)
        assert document is not None
        return document


def new_world(*certs: dict[str, Any]) -> World:
    clock = FakeClock()
    deployer = RecordingDeployer()
    return World(
        clock=clock,
        issuer=FakeIssuer(clock=clock),
        store=ReadCountingStore(),
        lease=InMemoryLease(clock),
        state=ReadCountingState(),
        deployer=deployer,
        verifier=ServedVerifier(deployer),
        config=make_config(*(certs or (cert_doc("shop"),))),
    )


@pytest.fixture
def world() -> World:
    return new_world()


def only(report: RenewalReport) -> CertificateReport:
    assert len(report.certificates) == 1
    return report.certificates[0]


def by_name(report: RenewalReport) -> dict[str, CertificateReport]:
    return {c.name: c for c in report.certificates}


def latest(world: World, name: str = "shop") -> StoredCertificate:
    stored = world.store.latest(name)
    assert stored is not None
    return stored


def bundle_of(stored: StoredCertificate, name: str = "shop") -> str:
    return naming.bundle_name(name, stored.serial_hex)


# --- the flow ----------------------------------------------------------------------------------


def test_first_issuance_is_stored_deployed_verified_and_recorded():
    world = new_world(
        cert_doc(
            "shop",
            targets=[
                {"loadBalancerId": LB, "listeners": ["https-shop"]},
                {"certificateId": CS},
            ],
        )
    )

    result = only(world.run())

    stored = latest(world)
    assert (result.outcome, result.reason) == (Outcome.RENEWED, "Missing")
    # Version 1 is the order's pending record (written right after newOrder); the
    # certificate closes it as version 2.
    assert (result.serial, result.version, result.not_after) == (
        stored.serial_hex,
        2,
        stored.not_after,
    )
    assert world.store.pending_writes == [("shop", 1)]
    assert world.store.stages("shop") == {1: "PREVIOUS", 2: "CURRENT"}
    assert world.store.load_pending("shop") is None
    assert stored.dns_names == ("shop.example.com", "www.shop.example.com")
    assert stored.account_url == world.issuer.account_url
    [order] = world.issuer.orders
    assert order.dns_names == ("shop.example.com", "www.shop.example.com")
    assert order.replaces is None
    assert world.deployer.serving(listener()) == bundle_of(stored)
    assert world.deployer.serving(CertificateServiceTarget(CS)) == bundle_of(stored)
    assert [t.changed for t in result.targets] == [True, True]
    assert [(t.kind, t.id) for t in result.targets] == [("listener", LB), ("certificate", CS)]
    # Only the listener has an endpoint to read back; every configured name is checked.
    assert world.verifier.calls == [
        (listener(), "shop.example.com"),
        (listener(), "www.shop.example.com"),
    ]
    state = world.state_of()
    assert state["consecutive_failures"] == 0
    assert state["last_renewed_at"] is not None
    assert state["deployed"] == {f"{LB}/https-shop": stored.serial_hex, CS: stored.serial_hex}
    # A 90-day certificate is planned for renewal with a third of its life left.
    assert result.next_renewal == stored.not_before + timedelta(days=60)
    assert set(result.timings) >= {"plan", "lock", "issue", "store", "deploy", "verify", "record"}
    assert world.lease.current("shop") is None


def test_not_due_is_read_only(world: World):
    world.run()
    calls_before = len(world.deployer.calls)
    bundles_before = world.deployer.bundles(listener())
    verified_before = len(world.verifier.calls)
    reads_before = world.deployer.reads
    saves_before = list(world.state.saves)
    world.advance(DAY)

    result = only(world.run())

    assert (result.outcome, result.reason) == (Outcome.SKIPPED, "NotDue")
    assert len(world.issuer.orders) == 1
    # Read-only: the targets were checked, nothing was deployed, retired, verified or written.
    assert world.deployer.reads > reads_before
    assert world.deployer.calls[calls_before:] == []
    assert world.deployer.bundles(listener()) == bundles_before
    assert len(world.verifier.calls) == verified_before
    assert world.state.saves == saves_before
    assert result.next_renewal == latest(world).not_before + timedelta(days=60)


def test_due_by_lifetime_renews_with_replaces_and_keeps_the_previous_bundle(world: World):
    world.run()
    first = latest(world)
    world.advance(61 * DAY)

    result = only(world.run())

    second = latest(world)
    assert (result.outcome, result.reason) == (Outcome.RENEWED, "RenewalWindow")
    assert second.version == 4  # 3 is its order's pending record
    assert second.serial_hex != first.serial_hex
    expected = pki.describe(first.fullchain_pem).ari_cert_id
    assert expected is not None
    assert world.issuer.orders[1].replaces == expected
    assert world.deployer.serving(listener()) == bundle_of(second)
    assert world.deployer.bundles(listener()) == [bundle_of(first), bundle_of(second)]
    assert any(isinstance(c, RetireCall) for c in world.deployer.calls)


def test_replaces_is_not_sent_for_a_certificate_of_another_ca(world: World):
    world.issuer.account_url = "https://staging.acme.test/acme/acct/7"
    world.run()
    world.advance(61 * DAY)

    world.run()

    assert world.issuer.orders[1].replaces is None


def test_reused_key_is_the_previous_key(world: World):
    world.config = make_config(cert_doc("shop", reuseKey=True))
    world.run()
    first = latest(world)

    world.run(force=True)

    assert latest(world).private_key_pem == first.private_key_pem
    assert latest(world).serial_hex != first.serial_hex


def test_an_open_ari_window_renews_before_the_lifetime_window(world: World):
    world.run()
    world.advance(DAY)
    now = world.clock.now()
    world.issuer.renewal_info_answer = RenewalInfo(
        window_start=now - timedelta(hours=1),
        window_end=now + DAY,
        selected_time=now - timedelta(minutes=1),
        retry_after=now + timedelta(hours=6),
    )

    result = only(world.run())

    assert (result.outcome, result.reason) == (Outcome.RENEWED, "AriWindowOpen")
    assert world.state_of()["ari"] is None  # the answer was about the replaced certificate


def test_an_ari_answer_is_kept_until_its_retry_after(world: World):
    world.run()
    world.advance(DAY)
    now = world.clock.now()
    selected = now + 20 * DAY
    world.issuer.renewal_info_answer = RenewalInfo(
        window_start=now + 19 * DAY,
        window_end=now + 21 * DAY,
        selected_time=selected,
        retry_after=now + timedelta(hours=6),
    )

    first = only(world.run())
    world.advance(timedelta(hours=1))
    only(world.run())
    asked_before_retry_after = len(world.issuer.renewal_info_calls)
    world.advance(timedelta(hours=6))
    only(world.run())

    assert (first.outcome, first.reason) == (Outcome.SKIPPED, "NotDue")
    assert first.next_renewal == selected
    assert asked_before_retry_after == 1
    assert len(world.issuer.renewal_info_calls) == 2
    assert world.state_of()["ari"]["serial"] == latest(world).serial_hex


def test_an_ari_failure_never_blocks_and_the_lifetime_decides(
    world: World, caplog: pytest.LogCaptureFixture
):
    world.run()
    world.issuer.renewal_info_error = TransientError("renewalInfo: 503 from the CA")
    world.advance(DAY)

    not_due = only(world.run())
    world.advance(60 * DAY)
    due = only(world.run())

    assert (not_due.outcome, not_due.reason) == (Outcome.SKIPPED, "NotDue")
    assert (due.outcome, due.reason) == (Outcome.RENEWED, "RenewalWindow")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert any("ari_failed cert=shop" in r.getMessage() for r in warnings)


def test_changed_names_order_a_new_certificate_without_force(world: World):
    world.run()
    world.config = make_config(cert_doc("shop", extra_names=("api.shop.example.com",)))

    result = only(world.run())

    assert (result.outcome, result.reason) == (Outcome.RENEWED, "NamesChanged")
    assert "api.shop.example.com" in world.issuer.orders[1].dns_names
    assert "api.shop.example.com" in latest(world).dns_names


def test_force_renews_a_healthy_certificate(world: World):
    world.run()

    result = only(world.run(force=True))

    assert (result.outcome, result.reason) == (Outcome.RENEWED, "Forced")
    assert len(world.issuer.orders) == 2


def test_a_failure_backs_off_and_a_success_resets_the_history(world: World):
    world.issuer.fail_next(1, RateLimited("too many new orders recently", retry_after=60))

    failed = only(world.run())
    state_after_failure = world.state_of()
    world.advance(timedelta(seconds=30))
    backing_off = only(world.run())
    world.advance(timedelta(minutes=1))
    recovered = only(world.run())

    assert (failed.outcome, failed.reason, failed.failed_step) == (
        Outcome.FAILED,
        "RateLimited",
        "issue",
    )
    assert failed.error == "too many new orders recently"
    assert failed.error_type == "RateLimited"
    assert state_after_failure["consecutive_failures"] == 1
    assert state_after_failure["last_error_type"] == "RateLimited"
    assert failed.next_renewal is not None
    assert (backing_off.outcome, backing_off.reason) == (Outcome.SKIPPED, "BackingOff")
    assert backing_off.next_renewal == failed.next_renewal
    assert (recovered.outcome, recovered.reason) == (Outcome.RENEWED, "Missing")
    assert len(world.issuer.orders) == 2
    assert world.state_of()["consecutive_failures"] == 0


def test_a_lease_held_by_another_run_skips_without_any_write(world: World):
    world.lease.acquire("shop", holder="other-run", ttl=timedelta(minutes=10))

    result = only(world.run())

    assert (result.outcome, result.reason) == (Outcome.SKIPPED, "Locked")
    assert world.issuer.orders == []
    assert world.deployer.calls == []
    assert world.state.saves == []
    held = world.lease.current("shop")
    assert held is not None
    assert held.holder == "other-run"
    # The report says who holds it and until when (what an operator asks next).
    assert f"run other-run holds the lease until {held.expires_at.isoformat()}" in result.message


def test_a_certificate_stored_by_another_run_meanwhile_is_not_ordered_again(world: World):
    world.run()
    world.advance(61 * DAY)
    other = world.service(holder="other-run")
    world.lease = HookedLease(world.lease, lambda: other.run(budget_s=BUDGET))  # type: ignore[assignment]

    result = only(world.run())

    assert (result.outcome, result.reason) == (Outcome.SKIPPED, "AlreadyCurrent")
    assert len(world.issuer.orders) == 2  # the first issuance and the other run's renewal
    assert result.serial == latest(world).serial_hex
    assert latest(world).version == 4


def test_a_crash_between_store_and_deploy_is_finished_without_a_second_order(world: World):
    world.deployer.fail_next("deploy", DeploymentError("work request wr-1 FAILED"))

    crashed = only(world.run())
    stored = latest(world)
    recovered = only(world.run())

    assert (crashed.outcome, crashed.failed_step, crashed.error_type) == (
        Outcome.FAILED,
        "deploy",
        "DeploymentError",
    )
    assert crashed.serial == stored.serial_hex  # the stored certificate is what is current
    assert (recovered.outcome, recovered.reason) == (Outcome.DEPLOYED, "NotDue")
    assert len(world.issuer.orders) == 1
    assert world.store.writes == [("shop", 2)]
    assert world.deployer.serving(listener()) == bundle_of(stored)
    assert world.state_of()["consecutive_failures"] == 0


def test_the_time_budget_defers_what_cannot_start_and_the_next_run_finishes_it():
    world = new_world(*(cert_doc(n) for n in ("a", "b", "c", "d")))
    world.issuer.issue_seconds = 40.0
    service = world.service(step_budget=60.0)

    first = by_name(service.run(budget_s=160.0))

    # a: 160 s left -> 120, its deploy's two work requests at the default 60 s fit; the fake
    # load balancer takes no time, so the lane's estimate drops: b: 120 -> 80 deploys; c starts
    # at 80, orders (-> 40), stores, cannot deploy.
    assert first["a"].outcome == first["b"].outcome == Outcome.RENEWED
    assert (first["c"].outcome, first["c"].reason) == (Outcome.DEFERRED, "TimeBudget")
    assert first["c"].serial == latest(world, "c").serial_hex
    assert "next run deploys it" in first["c"].message
    assert (first["d"].outcome, first["d"].reason) == (Outcome.DEFERRED, "TimeBudget")
    assert first["d"].serial is None
    assert [o.dns_names[0] for o in world.issuer.orders] == [
        "a.example.com",
        "b.example.com",
        "c.example.com",
    ]
    assert world.lease.current("c") is None

    second = by_name(service.run(budget_s=BUDGET))

    assert second["c"].outcome == Outcome.DEPLOYED
    assert second["d"].outcome == Outcome.RENEWED
    assert len(world.issuer.orders) == 4
    assert world.deployer.serving(listener("c")) == bundle_of(latest(world, "c"), "c")


def test_one_failing_certificate_does_not_stop_the_others():
    world = new_world(*(cert_doc(n) for n in ("a", "b", "c")))
    world.issuer.fail_next(
        1, AcmeProtocolError("a.example.com is not allowed", problem_type="rejectedIdentifier")
    )

    report = world.run()

    outcomes = {c.name: c.outcome for c in report.certificates}
    assert outcomes == {"a": Outcome.FAILED, "b": Outcome.RENEWED, "c": Outcome.RENEWED}
    assert report.failed
    assert report.totals == {
        "renewed": 2,
        "deployed": 0,
        "skipped": 0,
        "deferred": 0,
        "failed": 1,
    }
    assert report.summary().splitlines() == [
        "renew: 1 of 3 certificate(s) failed",
        "a: failed at issue (AcmeProtocolError)",
    ]


def test_reports_and_logs_never_carry_key_material(caplog: pytest.LogCaptureFixture):
    world = new_world(cert_doc("a"), cert_doc("b"))
    first = world.run()
    keys = [latest(world, n).private_key_pem for n in ("a", "b")]
    world.issuer.fail_next(1, AcmeProtocolError("the CA refused the order", problem_type="x"))
    world.issuer.fail_next(1, RuntimeError("internal detail 42"))

    second = world.run(force=True)

    failures = by_name(second)
    assert failures["a"].error == "the CA refused the order"
    assert (failures["b"].error, failures["b"].reason) == (
        "internal error (RuntimeError)",
        "InternalError",
    )
    assert second.summary().splitlines() == [
        "renew: 2 of 2 certificate(s) failed",
        "a: failed at issue (AcmeProtocolError)",
        "b: failed at issue (InternalError)",
    ]
    bodies = [line for key in keys for line in key.splitlines() if "-----" not in line]
    assert bodies
    outputs = [first.to_json(), second.to_json(), first.summary(), second.summary()]
    for text in [*outputs, caplog.text]:
        assert "PRIVATE KEY" not in text
        assert "BEGIN" not in text
        assert not [body for body in bodies if body in text]
    for text in outputs:
        assert "internal detail 42" not in text  # internal errors are opaque outside the log
    assert "the CA refused" not in second.summary()  # names and reasons only


def test_to_json_has_stable_keys_and_iso_dates(world: World):
    report = world.run()

    document = json.loads(report.to_json())

    assert list(document) == [
        "mode",
        "started_at",
        "finished_at",
        "failed",
        "totals",
        "certificates",
        "orphans",
    ]
    [certificate] = document["certificates"]
    assert certificate["outcome"] == "renewed"
    assert certificate["not_after"].endswith("Z")
    assert certificate["next_renewal"].endswith("Z")
    assert document["started_at"].endswith("Z")
    assert certificate["targets"][0]["bundle"] == bundle_of(latest(world))
    assert document["totals"]["renewed"] == 1


def test_an_unknown_name_is_a_config_error_before_any_call(world: World):
    with pytest.raises(ConfigError, match="'nope'"):
        world.run(names=["shop", "nope"])

    assert world.store.reads == []
    assert world.state.reads == []
    assert world.issuer.orders == []
    assert world.deployer.calls == []
    assert world.lease.current("shop") is None


def test_plan_decides_and_writes_nothing(world: World):
    missing = only(world.service().plan())
    world.run()
    world.advance(61 * DAY)
    writes, saves, calls = (
        len(world.store.writes),
        len(world.state.saves),
        len(world.deployer.calls),
    )

    planned = world.service().plan()
    dry = world.run(dry_run=True)

    assert (missing.outcome, missing.reason, missing.due) == (Outcome.SKIPPED, "Missing", True)
    for report in (planned, dry):
        assert report.mode == "plan"
        assert (only(report).reason, only(report).due) == ("RenewalWindow", True)
    assert (len(world.store.writes), len(world.state.saves)) == (writes, saves)
    assert len(world.deployer.calls) == calls
    assert len(world.issuer.orders) == 1
    assert world.lease.current("shop") is None


def test_rollback_deploys_an_older_version_without_an_order(world: World):
    world.run()
    first = latest(world)
    world.advance(40 * DAY)
    world.run(force=True)
    verified = len(world.verifier.calls)

    report = world.service().rollback("shop", first.version, budget_s=BUDGET)

    result = only(report)
    assert report.mode == "rollback"
    assert (result.outcome, result.reason) == (Outcome.DEPLOYED, "Rollback")
    assert world.deployer.serving(listener()) == bundle_of(first)
    assert len(world.issuer.orders) == 2
    assert len(world.verifier.calls) == verified + 2
    # The rolled-back certificate is the newest version again, so the next run keeps it.
    assert (latest(world).serial_hex, latest(world).version) == (first.serial_hex, 5)
    assert (result.serial, result.version) == (first.serial_hex, 5)
    assert (only(world.run()).outcome, len(world.issuer.orders)) == (Outcome.SKIPPED, 2)


def test_rollback_refuses_a_version_that_misses_a_configured_name(world: World):
    world.run()
    world.config = make_config(cert_doc("shop", extra_names=("api.shop.example.com",)))
    calls = len(world.deployer.calls)

    result = only(world.service().rollback("shop", latest(world).version, budget_s=BUDGET))

    assert (result.outcome, result.error_type) == (Outcome.FAILED, "ConfigError")
    assert "api.shop.example.com" in (result.error or "")
    assert len(world.deployer.calls) == calls


def test_rollback_of_an_unknown_certificate_is_a_config_error(world: World):
    with pytest.raises(ConfigError, match="'nope'"):
        world.service().rollback("nope", 1, budget_s=BUDGET)


def test_a_verify_mismatch_fails_before_anything_is_retired(world: World):
    world.verifier.override = "deadbeef"

    result = only(world.run())

    assert (result.outcome, result.failed_step, result.error_type) == (
        Outcome.FAILED,
        "verify",
        "DeploymentError",
    )
    assert "deadbeef" in (result.error or "")
    assert not any(isinstance(c, RetireCall) for c in world.deployer.calls)
    assert world.state_of()["consecutive_failures"] == 1


def test_a_damaged_state_document_does_not_block_renewal(world: World):
    world.state.save("shop", {"consecutive_failures": "many", "ari": 5, "deployed": []})

    result = only(world.run())

    assert result.outcome == Outcome.RENEWED
    assert world.state_of()["consecutive_failures"] == 0


def _on_own_lb(name: str) -> dict[str, Any]:
    return cert_doc(name, targets=[{"loadBalancerId": f"{LB}{name}", "listeners": ["https"]}])


def test_four_certificates_on_four_workers_run_together_and_all_complete():
    # Four load balancers: four lanes (renewer.fleet), so all four are ordered at once.
    world = new_world(*(_on_own_lb(n) for n in ("a", "b", "c", "d")))
    issuer = BarrierIssuer(world.issuer, parties=4)

    report = world.service(issuer=issuer, max_workers=4).run(budget_s=BUDGET)

    assert [c.name for c in report.certificates] == ["a", "b", "c", "d"]
    assert {c.outcome for c in report.certificates} == {Outcome.RENEWED}
    assert not report.failed


def test_a_switched_certificate_is_reported_renewed_and_retirement_waits_when_time_runs_low():
    world = new_world(cert_doc("a"))
    slow = world.deployer

    class SlowDeployer:
        """Deploys like the recording fake, but each switch takes 80 s of the run."""

        def deploy(self, *args: Any, **kwargs: Any) -> Any:
            world.clock.sleep(80.0)
            return slow.deploy(*args, **kwargs)

        def retire(self, *args: Any, **kwargs: Any) -> Any:
            return slow.retire(*args, **kwargs)

        def check(self, *args: Any, **kwargs: Any) -> Any:
            return slow.check(*args, **kwargs)

        def is_serving(self, *args: Any, **kwargs: Any) -> Any:
            return slow.is_serving(*args, **kwargs)

    deployer = SlowDeployer()
    report = only(
        world.service(step_budget=60.0, deployer_for=lambda _t: deployer).run(budget_s=130.0)
    )

    # 130 s: the order starts, the deploy's two work requests fit (2 x 60 s default), the switch
    # ends with 50 s left: verified, not retired.
    assert report.outcome == Outcome.RENEWED
    assert world.verifier.calls
    assert not any(call for call in slow.calls if type(call).__name__ == "RetireCall")


def test_a_target_that_cannot_take_a_certificate_fails_before_anything_is_ordered(world: World):
    world.deployer.fail_next(
        "check", ConfigError("load balancer ocid1.loadbalancer.x has no listener 'nope'")
    )

    result = only(world.run())

    assert (result.outcome, result.error_type) == (Outcome.FAILED, "ConfigError")
    assert "no listener 'nope'" in (result.error or "")
    assert world.issuer.orders == []  # rule 6: nothing ordered...
    assert world.store.writes == []  # ...nothing stored...
    assert world.deployer.calls == []  # ...nothing deployed
    assert world.lease.current("shop") is None


def test_after_a_failed_verification_the_next_run_verifies_again_and_clears_the_failure(
    world: World,
):
    world.verifier.override = "deadbeef"  # the listener answers with another certificate
    assert only(world.run()).outcome == Outcome.FAILED
    verified_before = len(world.verifier.calls)
    world.verifier.override = None  # the data plane caught up
    world.advance(DAY)

    result = only(world.run())

    assert len(world.issuer.orders) == 1  # nothing re-ordered...
    assert len(world.verifier.calls) > verified_before  # ...but verified again
    assert result.outcome != Outcome.FAILED
    assert world.state_of()["consecutive_failures"] == 0
    assert any(isinstance(c, RetireCall) for c in world.deployer.calls)  # retired once verified


def test_an_unusable_vault_key_or_challenge_bucket_fails_before_anything_is_ordered():
    world = new_world(cert_doc("shop"), cert_doc("blog"))
    world.store.unusable = "master encryption key k (oci.keyId) is DISABLED, not ENABLED"
    bucket_checks: list[str] = []

    report = world.service(checks=(lambda: bucket_checks.append("bucket"),)).run(budget_s=BUDGET)

    for result in report.certificates:
        assert (result.outcome, result.failed_step) == (Outcome.FAILED, "check")
        assert "(oci.keyId) is DISABLED" in (result.error or "")
    assert world.issuer.orders == []
    assert world.store.writes == []
    assert bucket_checks == []  # the store failed first

    world.store.unusable = None
    world.advance(timedelta(minutes=2))  # past the first backoff step
    report = world.service(checks=(lambda: bucket_checks.append("bucket"),)).run(budget_s=BUDGET)

    assert [r.outcome for r in report.certificates] == [Outcome.RENEWED, Outcome.RENEWED]
    assert bucket_checks == ["bucket"]  # once per run, not once per certificate


def test_a_run_with_nothing_due_does_not_check_the_stores(world: World):
    assert only(world.run()).outcome == Outcome.RENEWED
    checks_before = world.store.checks

    assert only(world.run()).outcome == Outcome.SKIPPED

    assert world.store.checks == checks_before


# --- an order interrupted between newOrder and STORE ------------------------------------------


class Killed(BaseException):
    """Stands for the process dying inside ISSUE: not an ``Exception``, so the run records no
    failure and reports nothing — it just ends, as a killed process does."""


def killed_run(world: World, **kwargs: Any) -> None:
    with pytest.raises(Killed):
        world.run(**kwargs)


def test_a_run_killed_after_new_order_is_resumed_without_a_second_order(world: World):
    world.issuer.crash_next(Killed("kill -9 before the challenges were answered"), after="order")

    killed_run(world)
    pending = world.store.load_pending("shop")
    assert pending is not None
    assert pending.order_url == "https://acme.test/acme/order/1"
    assert pending.dns_names == ("shop.example.com", "www.shop.example.com")
    assert world.store.latest("shop") is None  # a pending record is not a certificate
    with pytest.raises(ConfigError, match="not a certificate"):
        world.store.get("shop", pending.version)

    rerun = only(world.run())

    assert (rerun.outcome, rerun.reason) == (Outcome.RENEWED, "Missing")
    assert len(world.issuer.orders) == 1  # no second order
    assert world.issuer.resumes == [pending.order_url]
    assert rerun.order_url == pending.order_url
    assert f"finished order {pending.order_url}" in rerun.message
    stored = latest(world)
    assert stored.private_key_pem == pending.private_key_pem  # the order's CSR key
    assert stored.order_url == pending.order_url
    assert world.store.load_pending("shop") is None  # closed by the certificate
    assert world.deployer.serving(listener()) == bundle_of(stored)


def test_a_run_killed_after_the_certificate_was_issued_stores_that_certificate(world: World):
    world.run()
    world.advance(61 * DAY)
    world.issuer.crash_next(Killed("kill -9 before STORE"), after="certificate")

    killed_run(world)
    lost = world.issuer.issued[-1]
    rerun = only(world.run())

    assert rerun.outcome == Outcome.RENEWED
    assert len(world.issuer.orders) == 2  # the first issuance and the killed renewal
    assert rerun.serial == lost.serial_hex  # the CA's certificate was not lost
    assert latest(world).serial_hex == lost.serial_hex
    # Versions: 1 record, 2 certificate; 3 the killed renewal's record, 4 its certificate.
    assert world.store.stages("shop") == {2: "PREVIOUS", 3: "PENDING", 4: "CURRENT"}


def test_an_invalid_pending_order_is_replaced_by_a_new_order(world: World):
    world.issuer.crash_next(Killed("kill -9"), after="order")
    killed_run(world)
    first = world.store.load_pending("shop")
    assert first is not None
    world.issuer.invalidate(first.order_url)  # its authorizations failed or expired

    rerun = only(world.run())

    assert rerun.outcome == Outcome.RENEWED
    assert world.issuer.resumes == [first.order_url]
    assert len(world.issuer.orders) == 2
    assert rerun.order_url != first.order_url
    assert latest(world).private_key_pem != first.private_key_pem  # a fresh key for it
    # 1 the dead record (CURRENT at creation, PREVIOUS now), 2 the new record, 3 certificate.
    assert world.store.stages("shop") == {1: "PREVIOUS", 2: "PENDING", 3: "CURRENT"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dnsNames": ["shop.example.com"]}, "NamesChanged"),
        ({"keyType": "ecdsa-p384"}, "KeyTypeChanged"),
    ],
)
def test_a_pending_order_that_no_longer_fits_the_spec_is_not_resumed(
    world: World, change: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="renewer.renewal")
    world.issuer.crash_next(Killed("kill -9"), after="order")
    killed_run(world)
    world.config = make_config(cert_doc("shop", **change))

    rerun = only(world.run())

    assert rerun.outcome == Outcome.RENEWED
    assert world.issuer.resumes == []
    assert len(world.issuer.orders) == 2
    assert f"reason={reason}" in caplog.text


def test_a_pending_order_of_another_ca_is_not_resumed(world: World):
    world.issuer.account_url = "https://staging.acme.test/acme/acct/7"
    world.issuer.crash_next(Killed("kill -9"), after="order")
    killed_run(world)
    world.issuer.account_url = "https://acme.test/acme/acct/1"

    assert only(world.run()).outcome == Outcome.RENEWED
    assert world.issuer.resumes == []
    assert len(world.issuer.orders) == 2


def test_a_resumed_certificate_that_is_due_itself_is_not_kept(world: World):
    world.run()
    world.advance(40 * DAY)
    world.issuer.crash_next(Killed("kill -9 of a forced run"), after="certificate")
    killed_run(world, force=True)  # its order stays open, its certificate issued
    abandoned = world.issuer.issued[-1]
    world.advance(61 * DAY)  # the stored certificate is due, and so is the abandoned one

    rerun = only(world.run())

    assert rerun.outcome == Outcome.RENEWED
    assert len(world.issuer.resumes) == 1
    assert len(world.issuer.orders) == 3
    assert rerun.serial != abandoned.serial_hex


def test_retention_counts_certificates_not_pending_records():
    world = new_world(cert_doc("shop"))
    world.config = parse_config(
        {**config_document(), "renewal": {"retention": 2, "keepPreviousBundles": 1}}
    )
    for _ in range(5):
        world.run(force=True)

    # Five issuances: versions 1..10, records odd, certificates even. Two certificates are
    # kept (retention 2), and of the records only the newest (PENDING until the next one).
    assert world.store.stages("shop") == {8: "PREVIOUS", 9: "PENDING", 10: "CURRENT"}
    assert [latest(world).version, world.store.get("shop", 8).version] == [10, 8]


# --- a run killed between the switch and RECORD ---------------------------------------------


class CountingLease(InMemoryLease):
    """The in-memory lease, counting ``remove_expired`` calls."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.remove_calls = 0

    def remove_expired(self, name: str) -> LeaseHandle | None:
        self.remove_calls += 1
        return super().remove_expired(name)


def _died_before_record(world: World, *, lease_age: timedelta) -> None:
    """The state a run leaves when killed after switching and before RECORD and UNLOCK."""
    world.lease = CountingLease(world.clock)
    world.run()
    world.state.save("shop", {})  # as before that run: nothing recorded
    world.lease.acquire("shop", holder="dead-run", ttl=timedelta(minutes=10))
    world.advance(lease_age)


def test_a_not_due_run_records_the_deployment_and_removes_the_dead_runs_expired_lease(
    world: World,
):
    _died_before_record(world, lease_age=timedelta(minutes=11))
    saves = len(world.state.saves)

    result = only(world.run())

    assert (result.outcome, result.reason) == (Outcome.SKIPPED, "NotDue")
    assert len(world.state.saves) == saves + 1
    assert world.state_of()["deployed"] == {f"{LB}/https-shop": latest(world).serial_hex}
    assert world.lease.current("shop") is None
    assert len([c for c in world.deployer.calls if isinstance(c, DeployCall)]) == 1  # 1st run

    # Recorded now: the next not-due run is read-only again and asks for no lease at all.
    assert isinstance(world.lease, CountingLease)
    removes = world.lease.remove_calls
    only(world.run())
    assert (len(world.state.saves), world.lease.remove_calls) == (saves + 1, removes)


def test_a_live_lease_is_never_removed_by_a_not_due_run(world: World):
    _died_before_record(world, lease_age=timedelta(minutes=1))  # its holder may be alive

    result = only(world.run())

    assert result.outcome == Outcome.SKIPPED
    held = world.lease.current("shop")
    assert held is not None
    assert held.holder == "dead-run"
    assert world.state_of()["deployed"] == {f"{LB}/https-shop": latest(world).serial_hex}


def test_a_common_not_due_run_never_looks_for_a_lease(world: World):
    world.lease = CountingLease(world.clock)
    world.run()
    world.advance(DAY)
    saves = len(world.state.saves)

    assert only(world.run()).reason == "NotDue"

    assert isinstance(world.lease, CountingLease)
    assert world.lease.remove_calls == 0
    assert len(world.state.saves) == saves
