"""Issue 11 §3 and §5 end to end: OCI's load-balancer timing, and rollbacks to retired bundles.

* With the realistic timing profile (work requests of 20-60 OCI seconds, every production time
  scaled by :data:`SCALE`), one certificate converges in ONE invocation: the deploy step is
  budgeted by the work OCI must do (bundle create, listener switch, a wait for the load
  balancer), bounded by what the run has left. The numbers are recorded (``measurements``).
* Three forced renewals retire the first bundle; a rollback to the first version creates it
  again (a new deployment attempt: a new retry token, so OCI does not replay the first
  creation's answer), and the store calls it current only once the switch is verified.

Real Pebble, the emulator through the real SDK, TLS handshakes; no fakes.
"""

from __future__ import annotations

import time

import pytest

from renewer import naming, pki
from renewer.adapters.oci_load_balancer import DEFAULT_POLL_INTERVAL
from renewer.report import CertificateReport, Outcome, RenewalReport
from sandbox.oci_emulator.faults import FaultRule
from sandbox.oci_emulator.load_balancer import LoadBalancer
from sandbox.oci_emulator.timing import TimingProfile
from sandbox.world import HTTPS_LISTENER, LB_ID, SandboxWorld

pytestmark = pytest.mark.e2e

SCALE = 0.1  # wall seconds per OCI second: a 30 s work request takes 3 s
PRODUCTION_BUDGET = 285.0  # a 300 s synchronous invocation minus the function's 15 s margin
PRODUCTION_STEP_BUDGET = 60.0  # wiring.build_service's default
BUDGET = 120.0
LB_MUTATIONS = ("CreateCertificate", "UpdateListener", "DeleteCertificate")


def only(report: RenewalReport) -> CertificateReport:
    assert len(report.certificates) == 1, report.to_json()
    return report.certificates[0]


def succeeded(report: RenewalReport) -> CertificateReport:
    certificate = only(report)
    assert certificate.outcome is not Outcome.FAILED, report.to_json()
    return certificate


def served_serial(world: SandboxWorld) -> str:
    return pki.normalize_serial(pki.serial_hex(world.served_certificate(world.names[0])))


def listener_bundle(world: SandboxWorld) -> str:
    service = world.emulator.services["loadbalancer"]
    assert isinstance(service, LoadBalancer)
    current = service.current(LB_ID)
    assert current is not None
    return str(current["listeners"][HTTPS_LISTENER]["sslConfiguration"]["certificateName"])


@pytest.mark.world(timing=TimingProfile.realistic(scale=SCALE))
def test_with_oci_s_timing_one_certificate_converges_in_one_invocation(
    world: SandboxWorld, measurements
):
    service = world.service(
        step_budget=PRODUCTION_STEP_BUDGET * SCALE,
        lb_poll_interval=DEFAULT_POLL_INTERVAL * SCALE,
    )
    mark = len(world.emulator.requests)
    started = time.monotonic()

    report = succeeded(service.run(budget_s=PRODUCTION_BUDGET * SCALE))

    elapsed = time.monotonic() - started
    assert report.outcome is Outcome.RENEWED
    assert served_serial(world) == pki.normalize_serial(report.serial or "")
    assert listener_bundle(world) == naming.bundle_name("shop", report.serial or "")
    calls = [entry["operation"] for entry in world.emulator.requests[mark:]]
    work_requests = [op for op in calls if op in LB_MUTATIONS]
    assert work_requests[:2] == ["CreateCertificate", "UpdateListener"]
    measurements(
        "one renewal with the realistic timing profile (scale 0.1)",
        f"  invocations to converge: 1; LB work requests: {len(work_requests)}"
        f" ({', '.join(work_requests)}); GetWorkRequest reads: {calls.count('GetWorkRequest')};"
        f" wall {elapsed:.1f} s = {elapsed / SCALE:.0f} OCI s"
        f" (deploy {report.timings.get('deploy', 0.0) / SCALE:.0f} OCI s)",
    )


@pytest.mark.world(certificates=("shop.example.com",))
def test_a_rollback_to_a_retired_bundle_creates_it_again(world: SandboxWorld):
    first = succeeded(world.service().run(budget_s=BUDGET))
    succeeded(world.service().run(budget_s=BUDGET, force=True))
    third = succeeded(world.service().run(budget_s=BUDGET, force=True))
    first_bundle = naming.bundle_name("shop", first.serial or "")
    service = world.emulator.services["loadbalancer"]
    assert isinstance(service, LoadBalancer)
    current = service.current(LB_ID)
    assert current is not None
    assert first_bundle not in current["certificates"]  # retired: keepPreviousBundles is 1

    rollback = succeeded(world.service().rollback("shop", first.version or 0, budget_s=BUDGET))

    assert (rollback.outcome, rollback.serial) == (Outcome.DEPLOYED, first.serial)
    assert served_serial(world) == pki.normalize_serial(first.serial or "")
    assert listener_bundle(world) == first_bundle
    # The store now calls the first certificate current, and the next runs agree.
    after = succeeded(world.service().run(budget_s=BUDGET))
    assert (after.outcome, after.serial) == (Outcome.SKIPPED, first.serial)
    assert third.serial != first.serial


@pytest.mark.world(certificates=("shop.example.com",))
def test_a_rollback_that_fails_leaves_the_store_on_the_served_version(world: SandboxWorld):
    first = succeeded(world.service().run(budget_s=BUDGET))
    succeeded(world.service().run(budget_s=BUDGET, force=True))
    third = succeeded(world.service().run(budget_s=BUDGET, force=True))
    world.emulator.faults.add(
        FaultRule.from_json(
            {"operation": "CreateCertificate", "status": 400, "code": "InvalidParameter"}
        )
    )

    failed = only(world.service().rollback("shop", first.version or 0, budget_s=BUDGET))

    assert failed.outcome is Outcome.FAILED
    assert served_serial(world) == pki.normalize_serial(third.serial or "")
    world.emulator.faults.clear()
    # Not "current" in the store: the next scheduled run keeps the third certificate served.
    after = succeeded(world.service().run(budget_s=BUDGET))
    assert after.serial == third.serial
    assert served_serial(world) == pki.normalize_serial(third.serial or "")
