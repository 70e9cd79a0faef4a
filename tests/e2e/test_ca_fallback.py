"""CA fallback end to end (issue 17): two real Pebbles with different roots, a real proxy in front
of each (:class:`sandbox.ca_proxy.CaProxy`) that makes the first CA fail on its side.

- a 503 or a ``rateLimited`` answer to newOrder at the first CA: the certificate is issued by the
  second CA, stored with that CA's directory, deployed, verified against the second CA's root,
  and the report names the CA (and the one passed over);
- the next normal renewal, once the first CA is healthy, goes back to it, with ARI asked of the
  CA that issued the current certificate only; runs in between that find nothing due order
  nothing anywhere (no flapping);
- our own failures (a failed self-check, a validation the CA could not make) never fall back:
  the first CA's failure is reported and the second CA gets no order.
"""

from __future__ import annotations

import urllib.request
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from cryptography import x509

from renewer import pki
from renewer.report import CertificateReport, Outcome, RenewalReport
from sandbox.ca_proxy import CaProxy
from sandbox.net import free_port
from sandbox.pebble import Pebble
from sandbox.world import SandboxWorld
from tests.e2e.test_faults import LaterClock, state_document

pytestmark = [pytest.mark.e2e, pytest.mark.world(second_ca=True)]

BUDGET = 120.0
CERT = "shop"
# Past the renewal window of a 90-day certificate (it starts at day 60): the next normal run.
NEXT_RENEWAL = timedelta(days=70)


def only(report: RenewalReport) -> CertificateReport:
    assert len(report.certificates) == 1, report.to_json()
    return report.certificates[0]


def host(url: str) -> str:
    return urlsplit(url).netloc


def intermediate_cn(pebble: Pebble) -> str:
    """The common name of the CA certificate that signs ``pebble``'s leaves."""
    url = f"{pebble.management_url}/intermediates/0"
    with urllib.request.urlopen(url, context=pebble.ssl_context(), timeout=10) as response:  # noqa: S310 - loopback
        certificate = x509.load_pem_x509_certificate(response.read())
    return pki.common_name(certificate.subject) or ""


def served_issuer(world: SandboxWorld) -> str:
    return pki.common_name(world.served_certificate(world.names[0]).issuer) or ""


def ari_requests(proxy: CaProxy) -> int:
    """renewalInfo GETs the CA behind ``proxy`` answered (Pebble's path names the ARI draft)."""
    return sum(n for key, n in proxy.requests.items() if key.startswith("GET /draft-ietf-acme-ari"))


def stored_directory(world: SandboxWorld) -> str | None:
    """The directory URL recorded with the CURRENT Vault version of the certificate."""
    service = world.service()
    latest = service._certificates.latest(CERT)
    assert latest is not None
    return latest.directory_url


@pytest.mark.parametrize("fault", ["503", "rateLimited"])
def test_a_ca_side_failure_at_the_first_ca_issues_from_the_second(
    world: SandboxWorld, fault: str
) -> None:
    first, second = world.ca_proxies
    first.fault = fault

    certificate = only(world.service().run(budget_s=BUDGET))

    assert certificate.outcome is Outcome.RENEWED, certificate
    assert certificate.ca == host(second.directory_url)
    assert certificate.ca_passed_over == (host(first.directory_url),)
    assert (first.new_orders, second.new_orders) == (1, 1)
    # Deployed and served: the listener's chain is the second CA's (VERIFY checked it against
    # the trust bundle, which holds both CAs' roots).
    assert world.pebble2 is not None
    assert served_issuer(world) == intermediate_cn(world.pebble2)
    assert served_issuer(world) != intermediate_cn(world.pebble)
    assert stored_directory(world) == second.directory_url
    backoff = state_document(world)["ca_backoff"]
    assert isinstance(backoff, dict)
    assert list(backoff) == [first.directory_url]
    assert backoff[first.directory_url]["failures"] == 1


def test_the_next_normal_renewal_returns_to_the_first_ca_when_healthy(world: SandboxWorld) -> None:
    first, second = world.ca_proxies
    first.fault = "rateLimited"
    fallback = only(world.service().run(budget_s=BUDGET))
    assert fallback.ca == host(second.directory_url), fallback
    first.fault = None  # the first CA is healthy again

    # A run that finds nothing due orders nowhere: no flapping back at the first chance.
    quiet = only(world.service().run(budget_s=BUDGET))
    assert (quiet.outcome, quiet.reason) == (Outcome.SKIPPED, "NotDue"), quiet
    assert quiet.ca == host(second.directory_url)
    assert (first.new_orders, second.new_orders) == (1, 1)

    ari_first = ari_requests(first)
    renewed = only(world.service(clock=LaterClock(NEXT_RENEWAL)).run(budget_s=BUDGET))

    assert renewed.outcome is Outcome.RENEWED, renewed
    assert renewed.ca == host(first.directory_url)
    assert renewed.ca_passed_over == ()
    assert (first.new_orders, second.new_orders) == (2, 1)
    assert served_issuer(world) == intermediate_cn(world.pebble)
    assert stored_directory(world) == first.directory_url
    # ARI is the issuing CA's business: the second CA's certificate was asked about there.
    assert ari_requests(first) == ari_first
    assert world.pebble2 is not None
    if world.pebble2.features.ari:  # Pebble 2.4 has no renewalInfo
        assert ari_requests(second) >= 1, second.requests
    assert "ca_backoff" not in state_document(world)  # the first CA's success cleared its backoff


def test_a_failed_self_check_does_not_fall_back(world: SandboxWorld) -> None:
    first, second = world.ca_proxies
    nothing_listens = free_port()

    certificate = only(
        world.service(self_check_port=nothing_listens, self_check_resolve=None).run(budget_s=BUDGET)
    )

    assert certificate.outcome is Outcome.FAILED, certificate
    assert certificate.error_type == "SelfCheckFailed"
    assert certificate.ca_passed_over == ()
    assert (first.new_orders, second.new_orders) == (1, 0)
    assert "ca_backoff" not in state_document(world)


def test_a_validation_the_ca_could_not_make_does_not_fall_back(world: SandboxWorld) -> None:
    first, second = world.ca_proxies
    document = world.config_document()
    document["acme"]["selfCheck"] = False  # straight to the CA's validation
    assert world.token_backend is not None
    world.token_backend.stop()  # port 80 reaches no token server: the CA cannot validate

    from renewer.settings import parse_config  # noqa: PLC0415

    certificate = only(world.service(config=parse_config(document)).run(budget_s=BUDGET))

    assert certificate.outcome is Outcome.FAILED, certificate
    assert certificate.error_type == "ChallengeFailed", certificate
    assert certificate.ca_passed_over == ()
    assert (first.new_orders, second.new_orders) == (1, 0)
    assert "ca_backoff" not in state_document(world)


def test_every_ca_failing_on_its_side_fails_with_both_named(world: SandboxWorld) -> None:
    first, second = world.ca_proxies
    first.fault, second.fault = "503", "serverInternal"

    certificate = only(world.service().run(budget_s=BUDGET))

    assert certificate.outcome is Outcome.FAILED, certificate
    assert certificate.error_type == "CaUnavailable"
    assert certificate.error is not None
    assert host(first.directory_url) in certificate.error
    assert host(second.directory_url) in certificate.error
    assert (first.new_orders, second.new_orders) == (1, 1)
    backoff = state_document(world)["ca_backoff"]
    assert isinstance(backoff, dict)
    assert set(backoff) == {first.directory_url, second.directory_url}
