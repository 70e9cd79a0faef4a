"""The OCI deployers against the emulator, through the real ``oci`` SDK signed as the function.

``LoadBalancerDeployer``: bundle creation and a full-listener write-back that changes nothing but
the certificate, idempotent re-runs, retirement that keeps the previous bundle and never touches a
foreign one, configuration errors before any mutation, FAILED work requests, one mutation at a
time per load balancer across threads, deadlines, retries. ``CertificatesServiceDeployer``: new
CURRENT versions, idempotency, rollback, retirement of our DEPRECATED versions. One scenario runs
against ``RecordingDeployer`` too, so the fake cannot drift from the adapter.

Certificates are generated per run (EC P-256, a throwaway CA); no key is committed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import oci
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from renewer import naming, pki
from renewer.adapters.oci_certificates import CertificatesServiceDeployer
from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_load_balancer import LoadBalancerDeployer
from renewer.clock import SystemClock
from renewer.errors import ConfigError, DeploymentError, TransientError
from renewer.model import (
    CertificateServiceTarget,
    DeployedTarget,
    KeyType,
    ListenerTarget,
    StoredCertificate,
)
from sandbox.oci_emulator.credentials import resource_principal_env
from sandbox.oci_emulator.faults import FaultRule
from sandbox.oci_emulator.load_balancer import LoadBalancer
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, RunningEmulator
from tests.support.fakes_deploy import DeployCall, RecordingDeployer, RetireCall
from tests.support.fakes_vault import InMemoryCertificateStore

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.deployerslb"
SLOW_LB_ID = "ocid1.loadbalancer.oc1.phx.deployersslowlb"
CS_ID = "ocid1.certificate.oc1.phx.deployersshop"
MISSING_LB_ID = "ocid1.loadbalancer.oc1.phx.missing"
MISSING_CS_ID = "ocid1.certificate.oc1.phx.missing"
WR_SECONDS = 0.05
SLOW_WR_SECONDS = 5.0
FOREIGN = "manual-2024"
OTHER_CERTIFICATES_BUNDLE = "acme-other-0123456789abcdef"  # ours, but of another certificate
ACME_CONDITION = "any(http.request.url.path sw (i '/.well-known/acme-challenge/'))"
TARGET = ListenerTarget(LB_ID, ("https", "https-api"))
CS_TARGET = CertificateServiceTarget(CS_ID)


# ------------------------------------------------------------------------------ certificates


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@functools.cache
def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Deployers Test CA")])
    start = datetime.now(UTC) - timedelta(days=30)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def issue(*names: str, days_old: float = 1, version: int = 1) -> StoredCertificate:
    """A stored certificate (leaf + CA chain, fresh key) whose notBefore is ``days_old`` ago."""
    names = names or ("shop.example.com",)
    ca_key, ca = _ca()
    key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days_old)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return StoredCertificate(
        version=version,
        fullchain_pem=_pem(leaf) + _pem(ca),
        private_key_pem=pki.private_key_to_pem(key),
        serial_hex=pki.serial_hex(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        dns_names=names,
        key_type=KeyType.EC_P256,
    )


def stored(*certificates: StoredCertificate, name: str = "shop") -> InMemoryCertificateStore:
    """A certificate store holding ``certificates``: RETIRE's proof that their bundles are ours."""
    store = InMemoryCertificateStore()
    for certificate in certificates:
        store.put(name, certificate)
    return store


def leaf_of(certificate: StoredCertificate) -> str:
    return _pem(pki.split_chain(certificate.fullchain_pem)[0])


def bundle_of(certificate: StoredCertificate, name: str = "shop") -> str:
    return naming.bundle_name(name, certificate.serial_hex)


# ---------------------------------------------------------------------------------- fixtures


def seeded_bundle(certificate: StoredCertificate) -> dict[str, str]:
    ca = _pem(_ca()[1])
    return {"publicCertificate": leaf_of(certificate), "caCertificate": ca}


def load_balancer(lb_id: str, seconds: float, manual: StoredCertificate) -> dict[str, Any]:
    """A load balancer whose HTTPS listeners carry every kind of setting an update could lose."""
    return {
        "id": lb_id,
        "compartmentId": COMPARTMENT,
        "displayName": lb_id.rsplit(".", 1)[-1],
        "workRequestSeconds": seconds,
        "listeners": {
            "http": {
                "defaultBackendSetName": "app",
                "port": 80,
                "protocol": "HTTP",
                "routingPolicyName": "acme-routing",
            },
            "https": {
                "defaultBackendSetName": "app",
                "port": 443,
                "protocol": "HTTP",
                "hostnameNames": ["shop"],
                "ruleSetNames": ["security-headers"],
                "routingPolicyName": "acme-routing",
                "connectionConfiguration": {"idleTimeout": 120},
                "sslConfiguration": {
                    "certificateName": FOREIGN,
                    "protocols": ["TLSv1.2", "TLSv1.3"],
                    "cipherSuiteName": "oci-modern-ssl-cipher-suite-v1",
                    "serverOrderPreference": "ENABLED",
                    "hasSessionResumption": False,
                    "verifyDepth": 3,
                },
            },
            "https-api": {
                "defaultBackendSetName": "app",
                "port": 8443,
                "protocol": "HTTP",
                "hostnameNames": ["api"],
                "sslConfiguration": {"certificateName": FOREIGN},
            },
            "https-cs": {
                "defaultBackendSetName": "app",
                "port": 9443,
                "protocol": "HTTP",
                "sslConfiguration": {"certificateIds": [CS_ID]},
            },
        },
        "certificates": {
            FOREIGN: seeded_bundle(manual),
            OTHER_CERTIFICATES_BUNDLE: seeded_bundle(manual),
        },
        "privateKeys": {
            FOREIGN: manual.private_key_pem,
            OTHER_CERTIFICATES_BUNDLE: manual.private_key_pem,
        },
        "backendSets": {
            "app": {
                "policy": "ROUND_ROBIN",
                "backends": [{"ipAddress": "127.0.0.1", "port": 9}],
                "healthChecker": {"protocol": "HTTP", "urlPath": "/health", "port": 8080},
            },
            "acme-tokens": {
                "policy": "ROUND_ROBIN",
                "backends": [{"ipAddress": "127.0.0.1", "port": 8089}],
                "healthChecker": {"protocol": "TCP"},
            },
        },
        "hostnames": {
            "shop": {"hostname": "shop.example.com"},
            "api": {"hostname": "api.example.com"},
        },
        "ruleSets": {
            "security-headers": {
                "items": [
                    {
                        "action": "ADD_HTTP_RESPONSE_HEADER",
                        "header": "Strict-Transport-Security",
                        "value": "max-age=31536000",
                    }
                ]
            }
        },
        "routingPolicies": {
            "acme-routing": {
                "conditionLanguageVersion": "V1",
                "rules": [
                    {
                        "name": "acme",
                        "condition": ACME_CONDITION,
                        "actions": [
                            {"name": "FORWARD_TO_BACKENDSET", "backendSetName": "acme-tokens"}
                        ],
                    }
                ],
            }
        },
    }


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    manual = issue("shop.example.com", days_old=400)
    seeded = issue("shop.example.com", days_old=200)
    return {
        **BASE_FIXTURE,
        "load_balancers": [
            load_balancer(LB_ID, WR_SECONDS, manual),
            load_balancer(SLOW_LB_ID, SLOW_WR_SECONDS, manual),
        ],
        "certificates": [
            {
                "id": CS_ID,
                "name": "shop-cs",
                "compartment": COMPARTMENT,
                "certificatePem": leaf_of(seeded),
                "certChainPem": _pem(_ca()[1]),
                "privateKeyPem": seeded.private_key_pem,
            }
        ],
    }


@pytest.fixture
def make_clients(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], OciClients]:
    """``OciClients`` signed as the renewer function (resource principal), as in production."""
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path / "rp"
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = OciSettings(
        endpoints=dict.fromkeys(SERVICES, emulator.endpoint),
        retry_attempts=3,
        retry_seconds=5,
        retry_backoff=0.01,
    )
    return lambda: OciClients(settings)


@pytest.fixture
def clients(make_clients: Callable[[], OciClients]) -> OciClients:
    return make_clients()


@pytest.fixture
def lb_deployer(clients: OciClients) -> LoadBalancerDeployer:
    return LoadBalancerDeployer(clients, clock=SystemClock(), poll_interval=0.01)


@pytest.fixture
def cs_deployer(clients: OciClients) -> CertificatesServiceDeployer:
    return CertificatesServiceDeployer(clients, clock=SystemClock())


@pytest.fixture
def lb(emulator: RunningEmulator) -> LoadBalancer:
    service = emulator.emulator.services["loadbalancer"]
    assert isinstance(service, LoadBalancer)
    return service


def deadline(seconds: float = 20.0) -> float:
    return time.monotonic() + seconds


def mutations(emulator: RunningEmulator) -> list[str]:
    return emulator.emulator.operations_called(mutating_only=True)


def config(lb: LoadBalancer, lb_id: str = LB_ID) -> dict[str, Any]:
    current = lb.current(lb_id)
    assert current is not None
    return current


def on_bundle(before: dict[str, Any], bundle: str, *listeners: str) -> dict[str, Any]:
    """``before`` with ``listeners`` on ``bundle`` (and no Certificates-service id)."""
    expected = copy.deepcopy(before)
    for name in listeners:
        ssl = expected["listeners"][name]["sslConfiguration"]
        ssl["certificateName"] = bundle
        ssl["certificateIds"] = None
    return expected


# --------------------------------------------------------------------- LoadBalancerDeployer


def test_first_deploy_creates_the_bundle_and_changes_nothing_but_the_certificate(
    emulator: RunningEmulator,
    lb: LoadBalancer,
    lb_deployer: LoadBalancerDeployer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = config(lb)
    https = before["listeners"]["https"]
    assert (https["hostnameNames"], https["ruleSetNames"], https["routingPolicyName"]) == (
        ["shop"],
        ["security-headers"],
        "acme-routing",
    )
    assert https["sslConfiguration"]["cipherSuiteName"] == "oci-modern-ssl-cipher-suite-v1"
    assert https["sslConfiguration"]["protocols"] == ["TLSv1.2", "TLSv1.3"]
    certificate = issue()
    bundle = bundle_of(certificate)

    with caplog.at_level(logging.DEBUG, logger="renewer"):
        result = lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())

    assert result == DeployedTarget(
        TARGET, bundle, changed=True, work_requests=result.work_requests
    )
    assert len(result.work_requests) == 3
    assert mutations(emulator) == ["CreateCertificate", "UpdateListener", "UpdateListener"]
    after = config(lb)
    # Every field of every listener, backend set, rule set... is as it was; only the two target
    # listeners' certificateName changed and the bundle was added.
    expected = on_bundle(before, bundle, "https", "https-api")
    expected["certificates"][bundle] = {
        "certificateName": bundle,
        # The full chain, leaf first, as publicCertificate; no caCertificate (issue 11 §2).
        "publicCertificate": certificate.fullchain_pem,
        "caCertificate": None,
    }
    assert after == expected
    served = lb.listener_certificate(LB_ID, "https")
    assert served is not None
    assert served[0] == certificate.fullchain_pem  # leaf and its issuer, as stored
    assert served[1].strip() == certificate.private_key_pem.strip()
    log = caplog.text
    assert "PRIVATE KEY" not in log
    assert "BEGIN CERTIFICATE" not in log
    switch = f"op=UpdateListener lb={LB_ID} listener=https bundle={bundle} work_request="
    assert switch in log


def test_a_re_run_makes_no_mutating_call(
    emulator: RunningEmulator, lb_deployer: LoadBalancerDeployer
) -> None:
    certificate = issue()
    lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())
    done = len(mutations(emulator))

    again = lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())

    assert again == DeployedTarget(TARGET, bundle_of(certificate), changed=False)
    assert len(mutations(emulator)) == done


def _earlier_versions_bundle(clients: OciClients, certificate: StoredCertificate) -> str:
    """The bundle an earlier version made: the leaf alone, its issuer as caCertificate."""
    bundle = bundle_of(certificate)
    details = oci.load_balancer.models.CreateCertificateDetails(
        certificate_name=bundle,
        public_certificate=leaf_of(certificate),
        ca_certificate=_pem(_ca()[1]),
        private_key=certificate.private_key_pem,
    )
    response = clients.load_balancer.create_certificate(details, LB_ID)
    oci.wait_until(
        clients.load_balancer,
        clients.load_balancer.get_work_request(response.headers["opc-work-request-id"]),
        "lifecycle_state",
        "SUCCEEDED",
        max_wait_seconds=20,
    )
    return bundle


def test_an_unused_bundle_an_earlier_version_made_without_the_chain_is_replaced(
    emulator: RunningEmulator,
    lb: LoadBalancer,
    clients: OciClients,
    lb_deployer: LoadBalancerDeployer,
) -> None:
    # A rollback to a version deployed before the chain was sent: its bundle is still there.
    certificate = issue()
    bundle = _earlier_versions_bundle(clients, certificate)
    before = len(mutations(emulator))

    result = lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())

    assert result.changed
    assert mutations(emulator)[before:] == [
        "DeleteCertificate",
        "CreateCertificate",
        "UpdateListener",
        "UpdateListener",
    ]
    assert len(result.work_requests) == 4
    held = config(lb)["certificates"][bundle]
    assert (held["publicCertificate"], held["caCertificate"]) == (certificate.fullchain_pem, None)
    served = lb.listener_certificate(LB_ID, "https")
    assert served is not None
    assert served[0] == certificate.fullchain_pem


def test_a_used_bundle_an_earlier_version_made_without_the_chain_is_refused_with_the_way_out(
    emulator: RunningEmulator, clients: OciClients, lb_deployer: LoadBalancerDeployer
) -> None:
    certificate = issue()
    bundle = _earlier_versions_bundle(clients, certificate)
    lb_deployer._switch(LB_ID, "https", bundle, deadline())  # a listener still on it
    before = len(mutations(emulator))

    with pytest.raises(DeploymentError, match="forced renewal") as info:
        lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())

    assert "without its intermediates" in str(info.value)
    assert mutations(emulator)[before:] == []  # nothing deleted, nothing switched


def test_a_listener_on_a_certificates_service_certificate_moves_to_the_bundle(
    lb: LoadBalancer, lb_deployer: LoadBalancerDeployer
) -> None:
    before = config(lb)
    certificate = issue()
    target = ListenerTarget(LB_ID, ("https-cs",))

    lb_deployer.deploy("shop", certificate, target, deadline=deadline())

    after = config(lb)
    bundle = bundle_of(certificate)
    assert after["listeners"] == on_bundle(before, bundle, "https-cs")["listeners"]


def test_renewals_switch_and_retire_keeps_the_previous_and_foreign_bundles(
    emulator: RunningEmulator, lb: LoadBalancer, lb_deployer: LoadBalancerDeployer
) -> None:
    certificates = [issue(days_old=3), issue(days_old=2), issue(days_old=1)]
    first, second, third = (bundle_of(c) for c in certificates)
    foreign = {FOREIGN, OTHER_CERTIFICATES_BUNDLE}
    for certificate in certificates[:2]:
        result = lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())
        assert result.changed
    assert set(config(lb)["certificates"]) == foreign | {first, second}
    # The first bundle is the previous one now: kept for rollback.
    store = stored(*certificates)
    assert (
        lb_deployer.retire("shop", TARGET, keep_previous=1, deadline=deadline(), stored=store) == []
    )

    lb_deployer.deploy("shop", certificates[2], TARGET, deadline=deadline())
    for listener in TARGET.listener_names:
        assert config(lb)["listeners"][listener]["sslConfiguration"]["certificateName"] == third
    done = len(mutations(emulator))
    assert lb_deployer.retire(
        "shop", TARGET, keep_previous=1, deadline=deadline(), stored=store
    ) == [first]
    assert mutations(emulator)[done:] == ["DeleteCertificate"]
    assert set(config(lb)["certificates"]) == foreign | {second, third}

    done = len(mutations(emulator))
    assert (
        lb_deployer.retire("shop", TARGET, keep_previous=1, deadline=deadline(), stored=store) == []
    )
    assert len(mutations(emulator)) == done
    assert lb_deployer.retire(
        "shop", TARGET, keep_previous=0, deadline=deadline(), stored=store
    ) == [second]
    assert set(config(lb)["certificates"]) == foreign | {third}


def test_retire_retries_a_409_while_the_bundle_is_unattached(
    emulator: RunningEmulator,
    lb: LoadBalancer,
    lb_deployer: LoadBalancerDeployer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 409 on a bundle nothing uses is the load balancer being busy: retried, not skipped."""
    old, new = issue(days_old=2), issue(days_old=1)
    for certificate in (old, new):
        lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())
    emulator.emulator.faults.add(
        FaultRule.from_json(
            {"operation": "DeleteCertificate", "times": 1, "status": 409, "code": "Conflict"}
        )
    )

    store = stored(old, new)
    assert lb_deployer.retire(
        "shop", TARGET, keep_previous=0, deadline=deadline(), stored=store
    ) == [bundle_of(old)]

    assert f"lb_retry lb={LB_ID} reason=conflict" in caplog.text
    assert bundle_of(old) not in config(lb)["certificates"]


def _create_bundle(clients: OciClients, name: str, certificate: StoredCertificate) -> None:
    """A bundle made by hand (a person with the console), waited for."""
    response = clients.load_balancer.create_certificate(
        oci.load_balancer.models.CreateCertificateDetails(
            certificate_name=name,
            public_certificate=certificate.fullchain_pem,
            private_key=certificate.private_key_pem,
        ),
        LB_ID,
    )
    work_request = response.headers["opc-work-request-id"]
    until = time.monotonic() + 10
    while clients.load_balancer.get_work_request(work_request).data.lifecycle_state not in (
        "SUCCEEDED",
        "FAILED",
    ):
        assert time.monotonic() < until, "the work request did not finish"
        time.sleep(0.02)


def test_retire_deletes_only_bundles_whose_leaf_the_store_holds(
    clients: OciClients,
    lb: LoadBalancer,
    lb_deployer: LoadBalancerDeployer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11 §6: a bundle named like ours is not ours unless the renewer stored its leaf."""
    old, new = issue(days_old=3), issue(days_old=1)
    for certificate in (old, new):
        lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())
    person, copied = issue(days_old=2), issue(days_old=2)
    _create_bundle(clients, "acme-shop-2024", person)  # a person's name that fits our pattern
    _create_bundle(clients, bundle_of(person), person)  # our exact name, a leaf never stored
    _create_bundle(clients, "acme-shop-abc", copied)  # a stored leaf under a hand-made name
    store = stored(old, new, copied)
    before = set(config(lb)["certificates"])

    with caplog.at_level(logging.INFO, logger="renewer"):
        removed = lb_deployer.retire(
            "shop", TARGET, keep_previous=0, deadline=deadline(), stored=store
        )

    assert removed == [bundle_of(old)]
    assert set(config(lb)["certificates"]) == before - {bundle_of(old)}
    for bundle, why in [
        ("acme-shop-2024", f"its leaf (serial {person.serial_hex}) is not a stored certificate"),
        (bundle_of(person), "is not a stored certificate"),
        ("acme-shop-abc", f"its name does not carry its leaf's serial {copied.serial_hex}"),
    ]:
        line = f"retire left_alone lb={LB_ID} bundle={bundle} reason=not_stored: "
        assert line in caplog.text
        assert why in caplog.text
    assert "BEGIN CERTIFICATE" not in caplog.text


def test_retire_without_a_store_deletes_nothing(
    lb: LoadBalancer, lb_deployer: LoadBalancerDeployer, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = issue(days_old=2), issue(days_old=1)
    for certificate in (old, new):
        lb_deployer.deploy("shop", certificate, TARGET, deadline=deadline())

    assert lb_deployer.retire("shop", TARGET, keep_previous=0, deadline=deadline()) == []

    assert bundle_of(old) in config(lb)["certificates"]
    assert f"bundle={bundle_of(old)} reason=not_stored: no certificate store" in caplog.text


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (ListenerTarget(LB_ID, ("https", "nope")), f"load balancer {LB_ID} has no listener 'nope'"),
        (
            ListenerTarget(LB_ID, ("https", "http")),
            f"listener 'http' of load balancer {LB_ID} has no SSL configuration",
        ),
        (ListenerTarget(MISSING_LB_ID, ("https",)), f"read load balancer {MISSING_LB_ID}: .* 404"),
        (CertificateServiceTarget(CS_ID), "listener targets only"),
    ],
    ids=["unknown-listener", "plain-listener", "unknown-load-balancer", "wrong-target"],
)
def test_configuration_errors_come_before_any_mutation(
    emulator: RunningEmulator,
    lb_deployer: LoadBalancerDeployer,
    target: ListenerTarget,
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message):
        lb_deployer.deploy("shop", issue(), target, deadline=deadline())
    assert mutations(emulator) == []


def test_a_failed_work_request_leaves_the_listener_untouched(
    emulator: RunningEmulator, lb: LoadBalancer, lb_deployer: LoadBalancerDeployer
) -> None:
    before = config(lb)
    mismatched = dataclasses.replace(issue(), private_key_pem=issue().private_key_pem)

    with pytest.raises(DeploymentError) as caught:
        lb_deployer.deploy("shop", mismatched, TARGET, deadline=deadline())

    error = caught.value
    assert error.work_request_id is not None
    assert f"work request {error.work_request_id} FAILED: BAD_INPUT" in str(error)
    assert "PRIVATE KEY" not in str(error)
    assert mutations(emulator) == ["CreateCertificate"]
    assert config(lb) == before


def test_two_deployers_never_overlap_work_requests_on_one_load_balancer(
    make_clients: Callable[[], OciClients], clients: OciClients
) -> None:
    jobs = [
        ("shop", issue("shop.example.com"), ListenerTarget(LB_ID, ("https",))),
        ("api", issue("api.example.com"), ListenerTarget(LB_ID, ("https-api",))),
    ]
    start = threading.Barrier(len(jobs))

    def run(job: tuple[str, StoredCertificate, ListenerTarget]) -> DeployedTarget:
        deployer = LoadBalancerDeployer(make_clients(), clock=SystemClock(), poll_interval=0.01)
        start.wait()
        return deployer.deploy(job[0], job[1], job[2], deadline=deadline())

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(run, jobs))

    assert all(result.changed for result in results)
    work_requests = sorted(
        clients.load_balancer.list_work_requests(LB_ID).data, key=lambda w: w.time_accepted
    )
    assert len(work_requests) == 4
    assert all(w.lifecycle_state == "SUCCEEDED" for w in work_requests)
    for earlier, later in itertools.pairwise(work_requests):
        assert later.time_accepted >= earlier.time_finished, (earlier.type, later.type)


def test_a_deadline_too_short_names_the_work_request_and_a_re_run_finds_it(
    emulator: RunningEmulator, clients: OciClients, lb_deployer: LoadBalancerDeployer
) -> None:
    certificate = issue()
    target = ListenerTarget(SLOW_LB_ID, ("https",))

    with pytest.raises(TransientError, match="still IN_PROGRESS at the deadline") as first:
        lb_deployer.deploy("shop", certificate, target, deadline=deadline(0.3))
    found = re.search(r"work request (\S+) still", str(first.value))
    assert found is not None
    # The same process sends nothing while its work request still runs: it waits for it.
    with pytest.raises(TransientError, match=re.escape(found.group(1))):
        lb_deployer.deploy("shop", certificate, target, deadline=deadline(0.3))
    assert mutations(emulator) == ["CreateCertificate"]
    # A re-run in a new process (the first was killed, say) gets the same work request back
    # through the retry token instead of a second bundle or a 409.
    LoadBalancerDeployer._in_flight.clear()  # what a new process starts with
    with pytest.raises(TransientError, match=re.escape(found.group(1))):
        lb_deployer.deploy("shop", certificate, target, deadline=deadline(0.3))
    assert mutations(emulator) == ["CreateCertificate", "CreateCertificate"]
    assert [w.id for w in clients.load_balancer.list_work_requests(SLOW_LB_ID).data] == [
        found.group(1)
    ]


def test_a_503_on_update_listener_is_retried_by_the_client_policy(
    emulator: RunningEmulator, lb: LoadBalancer, lb_deployer: LoadBalancerDeployer
) -> None:
    emulator.emulator.faults.add(
        FaultRule.from_json(
            {"operation": "UpdateListener", "times": 1, "status": 503, "code": "ServiceUnavailable"}
        )
    )
    certificate = issue()
    target = ListenerTarget(LB_ID, ("https",))

    assert lb_deployer.deploy("shop", certificate, target, deadline=deadline()).changed

    assert mutations(emulator) == ["CreateCertificate", "UpdateListener", "UpdateListener"]
    ssl = config(lb)["listeners"]["https"]["sslConfiguration"]
    assert ssl["certificateName"] == bundle_of(certificate)


@pytest.mark.parametrize("stale", [1, 2])
def test_a_stale_etag_is_read_again_and_retried_once(
    emulator: RunningEmulator, lb: LoadBalancer, lb_deployer: LoadBalancerDeployer, stale: int
) -> None:
    emulator.emulator.faults.add(
        FaultRule.from_json(
            {"operation": "UpdateListener", "times": stale, "status": 412, "code": "NoEtagMatch"}
        )
    )
    certificate = issue()
    target = ListenerTarget(LB_ID, ("https",))

    if stale == 1:
        assert lb_deployer.deploy("shop", certificate, target, deadline=deadline()).changed
        listener = config(lb)["listeners"]["https"]
        assert listener["sslConfiguration"]["certificateName"] == bundle_of(certificate)
    else:
        with pytest.raises(TransientError, match="412 twice"):
            lb_deployer.deploy("shop", certificate, target, deadline=deadline())
        assert config(lb)["listeners"]["https"]["sslConfiguration"]["certificateName"] == FOREIGN
    assert mutations(emulator).count("UpdateListener") == 2


# --------------------------------------------------------------- CertificatesServiceDeployer


def current_version(clients: OciClients) -> Any:
    return clients.certificates_management.get_certificate(CS_ID).data.current_version


def versions(clients: OciClients) -> dict[int, Any]:
    items = clients.certificates_management.list_certificate_versions(CS_ID).data.items
    return {v.version_number: v for v in items}


def serial_of(version: Any) -> int:
    return int(version.serial_number.replace(" ", ""), 16)


def test_certificates_service_new_version_becomes_current_and_listeners_follow(
    emulator: RunningEmulator,
    clients: OciClients,
    lb: LoadBalancer,
    cs_deployer: CertificatesServiceDeployer,
) -> None:
    certificate = issue()

    result = cs_deployer.deploy("shop", certificate, CS_TARGET, deadline=deadline())

    assert result == DeployedTarget(CS_TARGET, None, changed=True)
    current = current_version(clients)
    assert serial_of(current) == int(certificate.serial_hex, 16)
    assert (current.version_number, current.version_name) == (2, bundle_of(certificate))
    served = lb.listener_certificate(LB_ID, "https-cs")
    assert served is not None
    assert served[0].startswith(leaf_of(certificate))
    done = len(mutations(emulator))
    again = cs_deployer.deploy("shop", certificate, CS_TARGET, deadline=deadline())
    assert again == DeployedTarget(CS_TARGET, None, changed=False)
    assert len(mutations(emulator)) == done


def test_certificates_service_rollback_promotes_the_existing_version(
    emulator: RunningEmulator, clients: OciClients, cs_deployer: CertificatesServiceDeployer
) -> None:
    first, second = issue(days_old=2), issue(days_old=1)
    for certificate in (first, second, first):
        assert cs_deployer.deploy("shop", certificate, CS_TARGET, deadline=deadline()).changed

    assert sorted(versions(clients)) == [1, 2, 3]  # no second copy of the first certificate
    assert current_version(clients).version_number == 2
    assert mutations(emulator) == ["UpdateCertificate"] * 3
    assert cs_deployer.is_serving("shop", first, CS_TARGET)
    assert not cs_deployer.is_serving("shop", second, CS_TARGET)
    assert mutations(emulator) == ["UpdateCertificate"] * 3  # reads only


def test_certificates_service_retire_schedules_only_our_deprecated_versions(
    emulator: RunningEmulator, clients: OciClients, cs_deployer: CertificatesServiceDeployer
) -> None:
    certificates = [issue(days_old=3), issue(days_old=2), issue(days_old=1)]
    for certificate in certificates:
        cs_deployer.deploy("shop", certificate, CS_TARGET, deadline=deadline())
    assert {n: v.stages for n, v in versions(clients).items()} == {
        1: ["DEPRECATED"],  # imported by a person: never ours to delete
        2: ["DEPRECATED"],
        3: ["PREVIOUS"],
        4: ["CURRENT", "LATEST"],
    }

    retired = cs_deployer.retire("shop", CS_TARGET, keep_previous=1, deadline=deadline())

    assert retired == [bundle_of(certificates[0])]
    scheduled = {n for n, v in versions(clients).items() if v.time_of_deletion is not None}
    assert scheduled == {2}
    done = len(mutations(emulator))
    assert cs_deployer.retire("shop", CS_TARGET, keep_previous=1, deadline=deadline()) == []
    # PREVIOUS cannot be scheduled (OCI: DEPRECATED only), even with nothing to keep.
    assert cs_deployer.retire("shop", CS_TARGET, keep_previous=0, deadline=deadline()) == []
    assert len(mutations(emulator)) == done


def test_certificates_service_missing_certificate_is_a_config_error(
    emulator: RunningEmulator, cs_deployer: CertificatesServiceDeployer
) -> None:
    target = CertificateServiceTarget(MISSING_CS_ID)
    with pytest.raises(ConfigError, match=f"certificate {MISSING_CS_ID}: OCI answered 404"):
        cs_deployer.deploy("shop", issue(), target, deadline=deadline())
    with pytest.raises(ConfigError, match="Certificates-service targets only"):
        cs_deployer.deploy("shop", issue(), TARGET, deadline=deadline())
    assert mutations(emulator) == []


# ------------------------------------------------------------ the fake keeps to the contract


@pytest.fixture(params=["fake", "emulator"])
def deployer(request: pytest.FixtureRequest) -> Any:
    if request.param == "fake":
        return RecordingDeployer()
    return request.getfixturevalue("lb_deployer")


def test_deployer_contract(deployer: Any) -> None:
    target = ListenerTarget(LB_ID, ("https",))
    certificates = [issue(days_old=3), issue(days_old=2), issue(days_old=1)]
    bundles = [bundle_of(c) for c in certificates]

    assert not deployer.is_serving("shop", certificates[0], target)
    first = deployer.deploy("shop", certificates[0], target, deadline=deadline())
    assert (first.bundle_name, first.changed, bool(first.work_requests)) == (bundles[0], True, True)
    assert deployer.is_serving("shop", certificates[0], target)
    assert not deployer.is_serving("shop", certificates[1], target)
    assert not deployer.is_serving("shop", certificates[0], ListenerTarget(LB_ID, ("nope",)))
    again = deployer.deploy("shop", certificates[0], target, deadline=deadline())
    assert again == DeployedTarget(target, bundles[0], changed=False)
    for certificate, bundle in zip(certificates[1:], bundles[1:], strict=True):
        assert deployer.deploy("shop", certificate, target, deadline=deadline()).bundle_name == (
            bundle
        )
    store = stored(*certificates)
    retire = {"keep_previous": 1, "deadline": deadline(), "stored": store}
    assert deployer.retire("shop", target, **retire) == [bundles[0]]
    assert deployer.retire("shop", target, **retire) == []


def test_recording_deployer_records_calls_and_raises_queued_failures() -> None:
    deployer = RecordingDeployer()
    certificate = issue()
    deployer.fail_next("deploy", TransientError("throttled"))

    with pytest.raises(TransientError, match="throttled"):
        deployer.deploy("shop", certificate, CS_TARGET, deadline=5.0)
    result = deployer.deploy("shop", certificate, CS_TARGET, deadline=5.0)
    deployer.retire("shop", CS_TARGET, keep_previous=1, deadline=6.0)

    assert result == DeployedTarget(CS_TARGET, None, changed=True)
    assert deployer.serving(CS_TARGET) == bundle_of(certificate)
    call = DeployCall("shop", certificate.serial_hex, certificate.version, CS_TARGET, 5.0)
    assert deployer.calls == [call, call, RetireCall("shop", CS_TARGET, 1, 6.0)]
