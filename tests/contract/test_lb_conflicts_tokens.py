"""Issue 11 §3-§5 for load balancers, through the real ``oci`` SDK against the emulator.

Emulator fidelity first (what OCI answers), then the deployer coping with it:

* a busy load balancer (``busyConflict``): a mutation while a work request runs is 409 Conflict;
  the deployer backs off inside its deadline and converges, or reports a TransientError — never
  a ConfigError;
* retry tokens: a CreateCertificate token reused after its bundle was deleted is refused
  (``409 InvalidatedRetryToken``, the SDK docstring's "may be rejected") or answered with the
  first, SUCCEEDED work request (``retryTokenAfterDelete: "replay"``); the deployer re-creates
  the bundle either way, and a new deployment attempt uses a new token;
* read-back: a listener that reads with its optional fields null (``legacyListeners``) reads
  with OCI's defaults after the switch, and that is no DeploymentError.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_load_balancer import LoadBalancerDeployer, normalised_listener
from renewer.clock import SystemClock
from renewer.errors import TransientError
from renewer.model import ListenerTarget, StoredCertificate
from sandbox.oci_emulator.credentials import resource_principal_env
from sandbox.oci_emulator.load_balancer import LoadBalancer
from tests.contract.conftest import BASE_FIXTURE, RunningEmulator
from tests.contract.test_deployers import bundle_of, issue, load_balancer, stored

pytestmark = pytest.mark.integration

BUSY_LB = "ocid1.loadbalancer.oc1.phx.busylb"
REJECT_LB = "ocid1.loadbalancer.oc1.phx.rejectlb"
REPLAY_LB = "ocid1.loadbalancer.oc1.phx.replaylb"
LEGACY_LB = "ocid1.loadbalancer.oc1.phx.legacylb"
# Busy for the whole test, however slow a loaded machine is: the deadline ends first.
STUCK_LB = "ocid1.loadbalancer.oc1.phx.stucklb"
BUSY_WR_SECONDS = 0.4
STUCK_WR_SECONDS = 120.0
PERSON_TOKEN = "person-token-1"  # noqa: S105 - a retry token, not a secret
REUSED_TOKEN = "reused-token"  # noqa: S105 - a retry token, not a secret


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    manual = issue("shop.example.com", days_old=400)
    return {
        **BASE_FIXTURE,
        "load_balancers": [
            {**load_balancer(BUSY_LB, BUSY_WR_SECONDS, manual), "busyConflict": True},
            {**load_balancer(STUCK_LB, STUCK_WR_SECONDS, manual), "busyConflict": True},
            load_balancer(REJECT_LB, 0.05, manual),
            {**load_balancer(REPLAY_LB, 0.05, manual), "retryTokenAfterDelete": "replay"},
            {**load_balancer(LEGACY_LB, 0.05, manual), "legacyListeners": True},
        ],
    }


@pytest.fixture
def clients(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> OciClients:
    """``OciClients`` signed as the renewer function (resource principal)."""
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path / "rp"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return OciClients(
        OciSettings(
            endpoints=dict.fromkeys(SERVICES, emulator.endpoint),
            retry_attempts=3,
            retry_seconds=5,
            retry_backoff=0.01,
        )
    )


@pytest.fixture
def deployer(clients: OciClients) -> LoadBalancerDeployer:
    LoadBalancerDeployer._in_flight.clear()  # a fresh process's view
    return LoadBalancerDeployer(clients, clock=SystemClock(), poll_interval=0.02)


def deadline(seconds: float = 20.0) -> float:
    return time.monotonic() + seconds


def details(certificate: StoredCertificate, name: str) -> Any:  # an SDK model
    return oci.load_balancer.models.CreateCertificateDetails(
        certificate_name=name,
        public_certificate=certificate.fullchain_pem,
        private_key=certificate.private_key_pem,
    )


def wait(clients: OciClients, response: Any) -> str:  # an SDK response
    """Wait (bounded) for the work request ``response`` names; its final state."""
    work_request = response.headers["opc-work-request-id"]
    until = time.monotonic() + 10
    while time.monotonic() < until:
        state = clients.load_balancer.get_work_request(work_request).data.lifecycle_state
        if state in ("SUCCEEDED", "FAILED"):
            return str(state)
        time.sleep(0.02)
    pytest.fail(f"work request {work_request} did not finish")


def mutations(emulator: RunningEmulator) -> list[str]:
    return emulator.emulator.operations_called(mutating_only=True)


# ------------------------------------------------------------------ a busy load balancer


def test_a_busy_load_balancer_answers_409_and_still_replays_a_known_token(
    clients: OciClients,
) -> None:
    first = clients.load_balancer.create_certificate(
        details(issue(), "person-1"), BUSY_LB, opc_retry_token=PERSON_TOKEN
    )
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        clients.load_balancer.create_certificate(details(issue(), "person-2"), BUSY_LB)
    assert (refused.value.status, refused.value.code) == (409, "Conflict")
    assert first.headers["opc-work-request-id"] in refused.value.message

    again = clients.load_balancer.create_certificate(
        details(issue(), "person-1"), BUSY_LB, opc_retry_token=PERSON_TOKEN
    )
    assert again.headers["opc-work-request-id"] == first.headers["opc-work-request-id"]
    assert wait(clients, first) == "SUCCEEDED"
    accepted = clients.load_balancer.create_certificate(details(issue(), "person-2"), BUSY_LB)
    assert wait(clients, accepted) == "SUCCEEDED"


def test_the_deployer_backs_off_while_the_load_balancer_is_busy_and_converges(
    clients: OciClients,
    deployer: LoadBalancerDeployer,
    lb_service: LoadBalancer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    certificate = issue()
    # A person's change is running when the renewer arrives.
    clients.load_balancer.create_certificate(details(issue(), "person-change"), BUSY_LB)

    result = deployer.deploy(
        "shop", certificate, ListenerTarget(BUSY_LB, ("https",)), deadline=deadline()
    )

    assert result.changed
    assert f"lb_retry lb={BUSY_LB} reason=conflict" in caplog.text
    current = lb_service.current(BUSY_LB)
    assert current is not None
    assert current["listeners"]["https"]["sslConfiguration"]["certificateName"] == bundle_of(
        certificate
    )


def test_a_load_balancer_busy_until_the_deadline_is_a_transient_error(
    clients: OciClients, deployer: LoadBalancerDeployer, emulator: RunningEmulator
) -> None:
    clients.load_balancer.create_certificate(details(issue(), "person-change"), STUCK_LB)

    with pytest.raises(TransientError, match="still busy at the deadline"):
        deployer.deploy(
            "shop", issue(), ListenerTarget(STUCK_LB, ("https",)), deadline=deadline(1.0)
        )
    # Only the person's work request: every create of ours was refused, none queued.
    assert len(clients.load_balancer.list_work_requests(STUCK_LB).data) == 1
    assert mutations(emulator).count("CreateCertificate") > 1


# ------------------------------------------------------------------ retry tokens


def _create_delete(clients: OciClients, lb_id: str, certificate: StoredCertificate) -> str:
    """Create a bundle with :data:`REUSED_TOKEN`, then delete it; the create's work request."""
    created = clients.load_balancer.create_certificate(
        details(certificate, "acme-shop-reused"), lb_id, opc_retry_token=REUSED_TOKEN
    )
    assert wait(clients, created) == "SUCCEEDED"
    deleted = clients.load_balancer.delete_certificate(lb_id, "acme-shop-reused")
    assert wait(clients, deleted) == "SUCCEEDED"
    return str(created.headers["opc-work-request-id"])


def test_a_create_token_reused_after_its_bundle_was_deleted_is_rejected(
    clients: OciClients,
) -> None:
    certificate = issue()
    _create_delete(clients, REJECT_LB, certificate)

    with pytest.raises(oci.exceptions.ServiceError) as refused:
        clients.load_balancer.create_certificate(
            details(certificate, "acme-shop-reused"), REJECT_LB, opc_retry_token=REUSED_TOKEN
        )
    assert (refused.value.status, refused.value.code) == (409, "InvalidatedRetryToken")


def test_or_its_first_answer_is_replayed_and_creates_nothing(clients: OciClients) -> None:
    certificate = issue()
    first = _create_delete(clients, REPLAY_LB, certificate)

    again = clients.load_balancer.create_certificate(
        details(certificate, "acme-shop-reused"), REPLAY_LB, opc_retry_token=REUSED_TOKEN
    )

    assert again.headers["opc-work-request-id"] == first
    assert wait(clients, again) == "SUCCEEDED"
    certificates = clients.load_balancer.get_load_balancer(REPLAY_LB).data.certificates
    assert "acme-shop-reused" not in certificates


@pytest.mark.parametrize("lb_id", [REJECT_LB, REPLAY_LB])
def test_the_same_attempt_re_creates_a_bundle_deleted_since(
    deployer: LoadBalancerDeployer,
    lb_service: LoadBalancer,
    lb_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's scenario at the adapter: a bundle created, retired, then deployed again."""
    first, second = issue(days_old=2), issue(days_old=1)
    target = ListenerTarget(lb_id, ("https",))
    deployer.deploy("shop", first, target, deadline=deadline(), attempt="run-1")
    deployer.deploy("shop", second, target, deadline=deadline(), attempt="run-2")
    assert deployer.retire(
        "shop", target, keep_previous=0, deadline=deadline(), stored=stored(first, second)
    ) == [bundle_of(first)]

    # The same attempt again (a retry of run-1 after its bundle was retired): its token's
    # first answer is replayed or refused; the bundle is created again all the same.
    result = deployer.deploy("shop", first, target, deadline=deadline(), attempt="run-1")

    assert result.changed
    current = lb_service.current(lb_id)
    assert current is not None
    assert current["listeners"]["https"]["sslConfiguration"]["certificateName"] == bundle_of(first)
    assert "reason=token_invalidated" in caplog.text or "lb_bundle_absent" in caplog.text


def test_a_new_attempt_creates_a_retired_bundle_with_one_create(
    deployer: LoadBalancerDeployer, emulator: RunningEmulator
) -> None:
    first, second = issue(days_old=2), issue(days_old=1)
    target = ListenerTarget(REPLAY_LB, ("https",))
    deployer.deploy("shop", first, target, deadline=deadline(), attempt="run-1")
    deployer.deploy("shop", second, target, deadline=deadline(), attempt="run-2")
    deployer.retire(
        "shop", target, keep_previous=0, deadline=deadline(), stored=stored(first, second)
    )
    before = len(mutations(emulator))

    deployer.deploy("shop", first, target, deadline=deadline(), attempt="rollback-3")

    assert mutations(emulator)[before:] == ["CreateCertificate", "UpdateListener"]


# ------------------------------------------------------------------ read-back


def test_a_listener_never_written_reads_its_optional_fields_as_null_until_it_is(
    clients: OciClients,
) -> None:
    listener = clients.load_balancer.get_load_balancer(LEGACY_LB).data.listeners["https-api"]
    assert listener.rule_set_names is None
    assert listener.connection_configuration is None
    assert listener.ssl_configuration.protocols is None
    assert listener.ssl_configuration.verify_depth is None
    written = clients.load_balancer.get_load_balancer(REJECT_LB).data.listeners["https-api"]
    assert written.rule_set_names == []
    assert written.ssl_configuration.protocols == ["TLSv1.2"]
    assert written.ssl_configuration.verify_depth == 1
    assert written.connection_configuration.idle_timeout == 60  # OCI's default


def test_a_switch_read_back_in_oci_s_normalised_form_is_no_deployment_error(
    clients: OciClients, deployer: LoadBalancerDeployer
) -> None:
    certificate = issue()
    before = oci.util.to_dict(
        clients.load_balancer.get_load_balancer(LEGACY_LB).data.listeners["https-api"]
    )

    result = deployer.deploy(
        "shop", certificate, ListenerTarget(LEGACY_LB, ("https-api",)), deadline=deadline()
    )

    assert result.changed
    after = oci.util.to_dict(
        clients.load_balancer.get_load_balancer(LEGACY_LB).data.listeners["https-api"]
    )
    assert after != before  # OCI answers the defaults now ...
    assert after["rule_set_names"] == []
    expected = {**before, "ssl_configuration": {**before["ssl_configuration"]}}
    expected["ssl_configuration"]["certificate_name"] = bundle_of(certificate)
    assert normalised_listener(after) == normalised_listener(expected)  # ... meaning the same


@pytest.fixture
def lb_service(emulator: RunningEmulator) -> LoadBalancer:
    service = emulator.emulator.services["loadbalancer"]
    assert isinstance(service, LoadBalancer)
    return service
