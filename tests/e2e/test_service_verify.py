"""VERIFY of a Certificates-service target (issue 11 §3): the listeners using it follow.

A listener that names a certificate by OCID (``certificateIds``) serves its new CURRENT version
only after a delay (the emulator's ``listenerFollowSeconds``). VERIFY finds those listeners on
the configuration's load balancers (and the target's ``loadBalancerIds``), polls what they
serve until the step's deadline, and says in the report what it verified — or that nothing
uses the certificate. A listener that has not followed by the deadline is a TransientError at
VERIFY: the certificate stays deployed, nothing is retired or rolled back, and the next run
verifies again.
"""

from __future__ import annotations

import time

import oci
import pytest

from renewer import pki
from renewer.report import CertificateReport, Outcome, RenewalReport
from renewer.settings import parse_config
from sandbox.oci_emulator.timing import TimingProfile
from sandbox.world import (
    LB_ID,
    SERVICE_CERTIFICATE_ID,
    SERVICE_LISTENER,
    SandboxWorld,
)
from tests.e2e.test_pipeline import BUDGET, operator_client, served_serial, single

pytestmark = pytest.mark.e2e

SCALE = 0.01
# The listener follows 3 wall seconds after the new version is CURRENT: longer than anything
# else the run does after the Certificates-service update, so only a VERIFY that waits sees it.
SLOW_FOLLOW = TimingProfile(
    scale=SCALE,
    durations={**TimingProfile.realistic().durations, "listenerFollowSeconds": (300.0, 300.0)},
)
# Longer than the step budget below (2 s), so VERIFY's wait runs out.
SLOWER_THAN_BUDGET = TimingProfile(
    scale=SCALE,
    durations={**TimingProfile.realistic().durations, "listenerFollowSeconds": (600.0, 600.0)},
)
STEP_BUDGET = 2.0
FOLLOW_WAIT_BOUND = 60.0  # wall seconds: a bound for the test's own poll, not an assertion


def _current_serial(world: SandboxWorld) -> str:
    certificates = operator_client(world, oci.certificates_management.CertificatesManagementClient)
    current = certificates.get_certificate(SERVICE_CERTIFICATE_ID).data.current_version
    return pki.normalize_serial(current.serial_number)


def _served(world: SandboxWorld) -> str:
    return pki.normalize_serial(served_serial(world, port=8443))


@pytest.mark.world(service_certificate=True, timing=TimingProfile.realistic(scale=SCALE))
def test_verify_waits_for_the_listener_using_the_certificate(world: SandboxWorld):
    report = single(world.service().run(budget_s=BUDGET))

    assert report.outcome is Outcome.RENEWED
    serial = pki.normalize_serial(report.serial or "")
    assert _current_serial(world) == serial
    assert _served(world) == serial  # VERIFY returned only once the listener had followed
    assert (
        f"certificate {SERVICE_CERTIFICATE_ID} is served by listener(s) {SERVICE_LISTENER} of"
        f" {LB_ID}"
    ) in report.message


@pytest.mark.world(service_certificate=True, timing=SLOW_FOLLOW)
def test_verify_waits_out_a_slow_follow(world: SandboxWorld):
    report = single(world.service().run(budget_s=BUDGET))

    assert report.outcome is Outcome.RENEWED
    assert _served(world) == pki.normalize_serial(report.serial or "") == _current_serial(world)
    assert report.timings["verify"] > 0


# An RSA seed, which :8443 (OCI's default suite, RSA only) can serve before it follows.
@pytest.mark.world(service_certificate=True, timing=SLOWER_THAN_BUDGET, https_at_oci_defaults=True)
def test_a_listener_slower_than_the_budget_is_a_transient_failure_and_the_next_run_verifies(
    world: SandboxWorld,
):
    seed = _served(world)
    first = world.service(step_budget=STEP_BUDGET).run(budget_s=BUDGET).certificates[0]

    assert first.outcome is Outcome.FAILED
    assert first.failed_step == "verify"
    assert first.error_type == "TransientError"
    assert f"{SERVICE_LISTENER} of load balancer {LB_ID}" in (first.error or "")
    assert "follow a new version after a delay" in (first.error or "")
    assert "nothing is rolled back or retired" in (first.error or "")
    new = pki.normalize_serial(first.serial or "")
    # Nothing was rolled back: the certificate's CURRENT version and the listener target keep
    # the new serial; the slow listener still serves the seed.
    assert _current_serial(world) == new != seed
    assert pki.normalize_serial(served_serial(world)) == new
    assert _served(world) == seed

    bound = time.monotonic() + FOLLOW_WAIT_BOUND
    while _served(world) != new and time.monotonic() < bound:
        time.sleep(0.1)
    second = single(world.service(step_budget=STEP_BUDGET).run(budget_s=BUDGET))

    assert second.outcome is not Outcome.FAILED
    assert pki.normalize_serial(second.serial or "") == new  # no second order
    assert "is served by listener(s)" in second.message
    assert second.consecutive_failures == 0  # the verified run cleared the failure


@pytest.mark.world(service_certificate=True)
def test_nothing_uses_the_certificate_the_report_says_so(world: SandboxWorld):
    lb = operator_client(world, oci.load_balancer.LoadBalancerClient)
    lb.delete_listener(LB_ID, SERVICE_LISTENER)
    _wait_for_work_requests(world)

    report = single(world.service().run(budget_s=BUDGET))

    assert report.outcome is Outcome.RENEWED
    assert (
        f"no listener of the load balancers searched ({LB_ID}) references certificate"
        f" {SERVICE_CERTIFICATE_ID}, so nothing was verified for it"
    ) in report.message


@pytest.mark.world(service_certificate=True)
def test_load_balancer_ids_name_where_a_service_only_certificate_is_used(world: SandboxWorld):
    document = world.config_document()
    document["certificates"][0]["targets"] = [
        {"certificateId": SERVICE_CERTIFICATE_ID, "loadBalancerIds": [LB_ID]}
    ]

    report = single(world.service(config=parse_config(document)).run(budget_s=BUDGET))

    assert report.outcome is Outcome.RENEWED
    assert f"is served by listener(s) {SERVICE_LISTENER} of {LB_ID}" in report.message
    assert _served(world) == pki.normalize_serial(report.serial or "")


@pytest.mark.world(service_certificate=True)
def test_a_load_balancer_id_that_cannot_be_read_is_refused_before_any_order(
    world: SandboxWorld,
):
    document = world.config_document()
    missing = "ocid1.loadbalancer.oc1.phx.nosuchlb"
    document["certificates"][0]["targets"] = [
        {"certificateId": SERVICE_CERTIFICATE_ID, "loadBalancerIds": [missing]}
    ]
    seed = _current_serial(world)

    report = single_failed(world.service(config=parse_config(document)).run(budget_s=BUDGET))

    assert report.failed_step == "check"
    assert report.error_type == "ConfigError"
    assert missing in (report.error or "")
    assert world.pebble_log().count("POST /order-plz") == 0
    assert _current_serial(world) == seed


def single_failed(run: RenewalReport) -> CertificateReport:
    (report,) = run.certificates
    assert report.outcome is Outcome.FAILED
    return report


def _wait_for_work_requests(world: SandboxWorld) -> None:
    lb = operator_client(world, oci.load_balancer.LoadBalancerClient)
    bound = time.monotonic() + FOLLOW_WAIT_BOUND
    while time.monotonic() < bound:
        requests = lb.list_work_requests(LB_ID).data
        if all(r.lifecycle_state in ("SUCCEEDED", "FAILED") for r in requests):
            return
        time.sleep(0.05)
