"""The renewal pipeline end to end: ``wiring.build_service`` over a whole sandbox world.

Real Pebble validates http-01 through the emulated load balancer's :80 listener, its routing
policy, the sandbox token backend and the emulated Object Storage bucket the renewer wrote to;
Vault, the Load Balancer control plane and the Certificates service are the emulator's, driven
by the real ``oci`` SDK signed as the function (resource principal) under least-privilege
policies; what a listener serves is read with a TLS handshake. No fakes.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import oci
import pytest
from cryptography import x509

from renewer import naming, pki
from renewer.clock import SystemClock
from renewer.report import CertificateReport, Outcome, RenewalReport
from sandbox.oci_emulator.load_balancer import LoadBalancer
from sandbox.pebble import replaces_accepted
from sandbox.world import (
    CHALLENGE_BUCKET,
    COMPARTMENT,
    HTTPS_LISTENER,
    LB_ID,
    NAMESPACE,
    SEED_BUNDLE,
    SERVICE_CERTIFICATE_ID,
    STATE_BUCKET,
    VAULT_ID,
    SandboxWorld,
)

pytestmark = pytest.mark.e2e

BUDGET = 120.0
NAMES = ("shop.example.com", "www.shop.example.com")
HANDLER_CALL = "-> calling handler()"


# ------------------------------------------------------------------------------------ helpers


def single(report: RenewalReport) -> CertificateReport:
    assert len(report.certificates) == 1, report.to_json()
    certificate = report.certificates[0]
    assert certificate.outcome is not Outcome.FAILED, report.to_json()
    return certificate


def serial_of(certificate: x509.Certificate) -> str:
    return pki.normalize_serial(pki.serial_hex(certificate))


def served_serial(world: SandboxWorld, name: str = NAMES[0], *, port: int = 443) -> str:
    return serial_of(world.served_certificate(name, port=port))


def orders(world: SandboxWorld) -> int:
    return world.pebble_log().count("POST /order-plz")


def acme_requests(world: SandboxWorld) -> int:
    return world.pebble_log().count(HANDLER_CALL)


def mutations(world: SandboxWorld, since: int = 0) -> list[tuple[str, str]]:
    """(operation, decoded path) of every mutating call logged after entry ``since``."""
    return [
        (entry["operation"], unquote(entry["path"]))
        for entry in world.emulator.requests[since:]
        if entry["method"] not in ("GET", "HEAD")
    ]


def control_plane(world: SandboxWorld) -> LoadBalancer:
    service = world.emulator.services["loadbalancer"]
    assert isinstance(service, LoadBalancer)
    return service


def load_balancer(world: SandboxWorld) -> dict[str, Any]:
    config = control_plane(world).current(LB_ID)
    assert config is not None
    return config


def bundles(world: SandboxWorld) -> set[str]:
    return set(load_balancer(world)["certificates"])


def listener_certificate(world: SandboxWorld, listener: str = HTTPS_LISTENER) -> str:
    return str(load_balancer(world)["listeners"][listener]["sslConfiguration"]["certificateName"])


def operator_client(world: SandboxWorld, client_class: Any) -> Any:
    return client_class(
        world.operator_config(),
        service_endpoint=world.emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )


def object_names(world: SandboxWorld, bucket: str, prefix: str) -> list[str]:
    storage = operator_client(world, oci.object_storage.ObjectStorageClient)
    listing = storage.list_objects(NAMESPACE, bucket, prefix=prefix).data
    return [o.name for o in listing.objects]


def pebble_chain(world: SandboxWorld) -> tuple[x509.Certificate, x509.Certificate]:
    """Pebble's (intermediate, root), read from its management API."""
    url = f"{world.pebble.management_url}/intermediates/0"
    with urllib.request.urlopen(url, context=world.pebble.ssl_context(), timeout=10) as resp:  # noqa: S310 - loopback
        intermediate = x509.load_pem_x509_certificate(resp.read())
    root = x509.load_pem_x509_certificate(world.pebble.root_pems()[0].encode())
    return intermediate, root


def san_names(certificate: x509.Certificate) -> set[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return set(san.value.get_values_for_type(x509.DNSName))


# -------------------------------------------------------------------------------------- tests


@pytest.mark.world(certificates=NAMES)
def test_first_run_issues_stores_deploys_and_cleans_up(world: SandboxWorld):
    before = world.served_certificate(NAMES[0])
    assert before.issuer == before.subject  # the seeded self-signed, expiring certificate

    report = single(world.service().run(budget_s=BUDGET))

    assert (report.outcome, report.reason) == (Outcome.RENEWED, "Missing")
    assert report.version == 2  # version 1 is its order's pending record
    # The Vault secret holds it, as version 2 (read as the operator, not through the renewer).
    secrets = operator_client(world, oci.secrets.SecretsClient)
    bundle = secrets.get_secret_bundle_by_name(
        secret_name=naming.secret_name("shop"), vault_id=VAULT_ID
    ).data
    assert bundle.version_number == 2
    # Every configured name is served by :443 with the new certificate, issued by Pebble's CA.
    intermediate, root = pebble_chain(world)
    for name in NAMES:
        served = world.served_certificate(name)
        assert serial_of(served) == pki.normalize_serial(report.serial or "")
        assert san_names(served) == set(NAMES)
        served.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    assert listener_certificate(world) == naming.bundle_name("shop", report.serial or "")
    # The CA fetched the tokens the production way: the token backend read the bucket with its
    # own credentials; afterwards no challenge object is left.
    token_reads = [
        e
        for e in world.emulator.requests
        if e["operation"] == "GetObject" and f"/b/{CHALLENGE_BUCKET}/" in e["path"]
    ]
    assert token_reads
    assert {e["principal"] for e in token_reads} == {world.tenancy.principals["token-server"].id}
    assert object_names(world, CHALLENGE_BUCKET, ".well-known/") == []
    # Lease released, state recorded.
    assert object_names(world, STATE_BUCKET, "leases/") == []
    storage = operator_client(world, oci.object_storage.ObjectStorageClient)
    state = json.loads(storage.get_object(NAMESPACE, STATE_BUCKET, "state/shop.json").data.content)
    assert state["consecutive_failures"] == 0
    assert state["last_renewed_at"]
    assert set(state["deployed"].values()) == {report.serial}


def test_second_run_is_not_due_and_changes_nothing(world: SandboxWorld):
    first = single(world.service().run(budget_s=BUDGET))
    assert first.outcome is Outcome.RENEWED
    orders_before, log_mark = orders(world), len(world.emulator.requests)

    second = single(world.service().run(budget_s=BUDGET))

    assert (second.outcome, second.reason) == (Outcome.SKIPPED, "NotDue")
    assert second.serial == first.serial
    assert orders(world) == orders_before
    # No lease and no OCI change; the one write keeps the CA's first ARI answer for the new
    # certificate (so its Retry-After is honoured), in the private state bucket.
    state = f"/n/{NAMESPACE}/b/{STATE_BUCKET}/o/"
    assert mutations(world, log_mark) == [("PutObject", f"{state}state/shop.json")]
    assert "GetLoadBalancer" in [r["operation"] for r in world.emulator.requests[log_mark:]]

    # With nothing new to learn, a run is entirely read-only.
    log_mark = len(world.emulator.requests)
    third = single(world.service().run(budget_s=BUDGET))
    assert (third.outcome, third.reason) == (Outcome.SKIPPED, "NotDue")
    assert mutations(world, log_mark) == []
    assert orders(world) == orders_before
    assert served_serial(world) == pki.normalize_serial(first.serial or "")


def test_forced_runs_replace_and_retire_all_but_the_previous_bundle(world: SandboxWorld):
    first = single(world.service().run(budget_s=BUDGET))
    first_bundle = naming.bundle_name("shop", first.serial or "")
    # No pause: the three certificates may share a notBefore second; RETIRE then keeps the
    # bundle the listener just left as "the previous" one.

    second = single(world.service().run(budget_s=BUDGET, force=True))

    assert (second.outcome, second.reason) == (Outcome.RENEWED, "Forced")
    assert second.serial != first.serial
    assert second.version == 4  # each issuance: a pending-order record, then the certificate
    if world.pebble.features.ari:
        replaced = int(replaces_accepted(first.serial or ""))
        assert world.pebble_log().count("is a replacement of") == replaced
    assert served_serial(world) == pki.normalize_serial(second.serial or "")
    second_bundle = naming.bundle_name("shop", second.serial or "")
    # keepPreviousBundles=1: the first bundle stays for a rollback; the seed is not ours.
    assert bundles(world) == {SEED_BUNDLE, first_bundle, second_bundle}

    third = single(world.service().run(budget_s=BUDGET, force=True))

    third_bundle = naming.bundle_name("shop", third.serial or "")
    assert bundles(world) == {SEED_BUNDLE, second_bundle, third_bundle}
    assert served_serial(world) == pki.normalize_serial(third.serial or "")
    if world.pebble.features.ari:
        replaced += int(replaces_accepted(second.serial or ""))
        assert world.pebble_log().count("is a replacement of") == replaced


def test_the_switch_changes_nothing_but_the_certificate_name(world: SandboxWorld):
    before = load_balancer(world)
    https = before["listeners"][HTTPS_LISTENER]
    assert https["hostnameNames"] == ["site"]
    assert https["ruleSetNames"] == ["security-headers"]
    assert https["routingPolicyName"] == "acme-routing"
    assert https["connectionConfiguration"]["idleTimeout"] == 120
    assert https["sslConfiguration"]["cipherSuiteName"]

    report = single(world.service().run(budget_s=BUDGET))

    after = load_balancer(world)
    ssl_after = after["listeners"][HTTPS_LISTENER]["sslConfiguration"]
    assert ssl_after.pop("certificateName") == naming.bundle_name("shop", report.serial or "")
    before["listeners"][HTTPS_LISTENER]["sslConfiguration"].pop("certificateName")
    assert after["listeners"] == before["listeners"]
    for part in ("hostnames", "ruleSets", "routingPolicies", "backendSets"):
        assert after[part] == before[part], part


def test_plan_writes_nothing_and_rollback_serves_the_first_certificate_again(
    world: SandboxWorld,
):
    first = single(world.service().run(budget_s=BUDGET))
    second = single(world.service().run(budget_s=BUDGET, force=True))
    assert served_serial(world) == pki.normalize_serial(second.serial or "")
    orders_before, log_mark = orders(world), len(world.emulator.requests)

    plan = single(world.service().plan())

    assert (plan.outcome, plan.due) == (Outcome.SKIPPED, False)
    assert mutations(world, log_mark) == []
    assert orders(world) == orders_before

    requests_before = acme_requests(world)
    rollback = single(world.service().rollback("shop", first.version or 0, budget_s=BUDGET))

    assert (rollback.outcome, rollback.reason) == (Outcome.DEPLOYED, "Rollback")
    assert rollback.serial == first.serial
    assert rollback.version == 5  # version 2's content, stored again as the newest
    assert served_serial(world) == pki.normalize_serial(first.serial or "")
    assert acme_requests(world) == requests_before  # no ACME request at all
    # The next scheduled run keeps the rolled-back certificate.
    after = single(world.service().run(budget_s=BUDGET))
    assert (after.outcome, after.serial) == (Outcome.SKIPPED, first.serial)
    assert orders(world) == orders_before


@pytest.mark.world(service_certificate=True)
def test_a_certificates_service_target_follows_the_renewal(world: SandboxWorld):
    certificates = operator_client(world, oci.certificates_management.CertificatesManagementClient)

    def current_serial() -> str:
        current = certificates.get_certificate(SERVICE_CERTIFICATE_ID).data.current_version
        return pki.normalize_serial(current.serial_number)

    seed_serial = current_serial()
    first = single(world.service().run(budget_s=BUDGET))

    assert current_serial() == pki.normalize_serial(first.serial or "") != seed_serial
    assert served_serial(world, port=8443) == pki.normalize_serial(first.serial or "")
    assert {t.kind: t.changed for t in first.targets} == {"listener": True, "certificate": True}

    second = single(world.service().run(budget_s=BUDGET, force=True))

    assert current_serial() == pki.normalize_serial(second.serial or "")
    assert served_serial(world, port=8443) == pki.normalize_serial(second.serial or "")
    listed = certificates.list_certificates(compartment_id=COMPARTMENT).data.items
    assert [c.id for c in listed] == [SERVICE_CERTIFICATE_ID]  # a new version, not a new cert


class _StepMarks(logging.Handler):
    """Collects the wall-clock time of the orchestrator's step log lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.marks: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.marks.append((record.created, record.getMessage()))


# Log lines (message prefixes) of renewal.py and acme_issuer.py that end a phase.
PHASE_ENDS = (
    ("decision ", "plan"),
    ("acme order created ", "lock+recheck+account+newOrder"),
    ("issued ", "issue"),
    ("stored ", "store"),
    ("deploy ", "deploy"),
    ("verified ", "verify"),
    ("outcome ", "retire+record+unlock"),
)


def _phases(marks: list[tuple[float, str]]) -> list[tuple[str, float]]:
    """(phase, end time) in order, from the first log line of each ending event."""
    ends: list[tuple[str, float]] = []
    for prefix, phase in PHASE_ENDS:
        times = [t for t, message in marks if message.startswith(prefix)]
        if times:
            ends.append((phase, max(times) if prefix == "deploy " else min(times)))
    return ends


def _measure(world: SandboxWorld, service: Any, title: str, measurements: Any) -> CertificateReport:
    """Run ``service`` once; record ACME requests and OCI calls per step under ``title``."""
    handler = _StepMarks()
    loggers = [logging.getLogger(n) for n in ("renewer.renewal", "renewer.adapters.acme_issuer")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    log_before, mark = world.pebble_log(), len(world.emulator.requests)
    try:
        report = single(service.run(budget_s=BUDGET))
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    assert report.outcome is Outcome.RENEWED

    acme_lines = [
        line for line in world.pebble_log()[len(log_before) :].splitlines() if HANDLER_CALL in line
    ]
    by_endpoint = Counter(_endpoint(line) for line in acme_lines)
    entries = [e for e in world.emulator.requests[mark:] if e["principal"] != _token_id(world)]
    token_reads = len(world.emulator.requests[mark:]) - len(entries)
    per_phase: dict[str, Counter[str]] = {}
    ends = _phases(handler.marks)
    for entry in entries:
        phase = next((p for p, end in ends if entry["time"] <= end), "after")
        per_phase.setdefault(phase, Counter())[entry["operation"]] += 1
    lines = [f"ACME requests: {len(acme_lines)} ({dict(sorted(by_endpoint.items()))})"]
    lines.append(
        f"OCI calls by the renewer: {len(entries)} (+1 GetNamespace when the service is built);"
        f" by the token backend: {token_reads}"
    )
    for phase, _ in [*ends, ("after", 0.0)]:
        if phase in per_phase:
            counts = per_phase[phase]
            detail = ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))
            lines.append(f"  {phase}: {sum(counts.values())} ({detail})")
    lines.append(f"step timings (s): {dict(report.timings)}")
    text = "\n".join(lines)
    logging.getLogger(__name__).info("measurement\n%s", text)
    measurements(title, text)
    assert acme_lines
    assert entries
    return report


def test_measure_one_first_issuance(world: SandboxWorld, measurements):
    """Requests of one first issuance of one certificate on one listener (printed, not judged)."""
    _measure(world, world.service(), "first issuance, 1 certificate x 1 listener", measurements)


def test_measure_one_renewal(world: SandboxWorld, measurements):
    """Requests of one renewal (due by lifetime) of one certificate on one listener."""
    first = single(world.service().run(budget_s=BUDGET))
    # 80 % of the lifetime on: due by either lifetime rule, not yet expired, whichever profile
    # Pebble chose (it picks one at random when none is asked for: 90 days or 160 hours).
    assert first.not_after is not None
    later = _Later((first.not_after - datetime.now(UTC)) * 0.8)

    report = _measure(
        world, world.service(clock=later), "renewal, 1 certificate x 1 listener", measurements
    )

    assert report.reason in ("RenewalWindow", "AriWindowOpen"), report.to_dict()
    assert report.serial != first.serial


class _Later(SystemClock):
    """The system clock, ``offset`` ahead (monotonic time and sleeping are the real ones)."""

    def __init__(self, offset: timedelta) -> None:
        self._offset = offset

    def now(self) -> datetime:
        return super().now() + self._offset


def _endpoint(line: str) -> str:
    """``authZ`` from ``Pebble <date> <time> POST /authZ/ -> calling handler()``."""
    path = line.split(HANDLER_CALL)[0].split()[-1]
    return path.split("/")[1].split("?")[0]


def _token_id(world: SandboxWorld) -> str:
    return world.tenancy.principals["token-server"].id
