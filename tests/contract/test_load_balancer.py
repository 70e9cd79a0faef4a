"""Contract tests of the emulated Load Balancer, driven by the real ``oci`` SDK with both signers.

Work-request timing is deterministic where it matters: the ``clock`` fixture replaces the
service's clock (``load_balancer.now``) so a test moves time forward itself; one test uses the
real clock and ``oci.wait_until`` to show the lazy model also progresses on its own.
Certificates and keys are generated per run with ``cryptography``; no key is committed.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import oci
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from oci.load_balancer import models

from sandbox.oci_emulator import load_balancer
from sandbox.oci_emulator.app import build_emulator
from sandbox.oci_emulator.core import StateStore
from sandbox.oci_emulator.dataplane import DataPlane
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    Clients,
    RunningEmulator,
    assert_clean_model,
    make_clients,
)

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.contractshoplb"
BARE_LB_ID = "ocid1.loadbalancer.oc1.phx.contractbarelb"
WR_SECONDS = 0.2
ACME_PREFIX = "/.well-known/acme-challenge/"


# ------------------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Bundle:
    certificate: str  # leaf PEM
    private_key: str  # PKCS#8 PEM
    ca: str  # issuing CA PEM


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=90))
        .sign(signer, hashes.SHA256())
    )


@cache
def _ca() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = _certificate("Contract Test CA", key, "Contract Test CA", key)
    return key, pem.public_bytes(serialization.Encoding.PEM).decode()


def issue(name: str) -> Bundle:
    """A fresh leaf certificate for ``name`` with its key, issued by the test CA."""
    ca_key, ca_pem = _ca()
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(name, key, "Contract Test CA", ca_key)
    return Bundle(leaf.public_bytes(serialization.Encoding.PEM).decode(), _pem_key(key), ca_pem)


REDIRECT_RULE = {
    "action": "REDIRECT",
    "responseCode": 302,
    "conditions": [
        {"attributeName": "PATH", "attributeValue": ACME_PREFIX, "operator": "PREFIX_MATCH"}
    ],
    "redirectUri": {
        "protocol": "HTTPS",
        "host": "objectstorage.us-phoenix-1.oraclecloud.com",
        "port": 443,
        "path": "/p/PARTOKEN/n/contractns/b/challenges/o{path}",
        "query": "",
    },
}
ACME_CONDITION = f"any(http.request.url.path sw (i '{ACME_PREFIX}'))"


def shop_load_balancer(shop: Bundle) -> dict[str, Any]:
    """The fixture load balancer: HTTP + HTTPS listeners, rule sets, a routing policy..."""
    return {
        "id": LB_ID,
        "compartmentId": COMPARTMENT,
        "displayName": "shop-lb",
        "shapeName": "flexible",
        "shapeDetails": {"minimumBandwidthInMbps": 10, "maximumBandwidthInMbps": 100},
        "ipAddresses": [{"ipAddress": "203.0.113.10", "isPublic": True}],
        "lifecycleState": "ACTIVE",
        "workRequestSeconds": WR_SECONDS,
        "listeners": {
            "http": {
                "defaultBackendSetName": "app",
                "port": 80,
                "protocol": "HTTP",
                "hostnameNames": ["shop"],
                "ruleSetNames": ["acme-redirect"],
                "routingPolicyName": "acme-routing",
            },
            "https": {
                "name": "https",
                "defaultBackendSetName": "app",
                "port": 443,
                "protocol": "HTTP",
                "hostnameNames": ["shop"],
                "ruleSetNames": ["security-headers"],
                "connectionConfiguration": {"idleTimeout": 120},
                "sslConfiguration": {
                    "certificateName": "shop-2024",
                    "protocols": ["TLSv1.2", "TLSv1.3"],
                    "cipherSuiteName": "oci-modern-ssl-cipher-suite-v1",
                    "serverOrderPreference": "ENABLED",
                },
            },
        },
        "certificates": {
            "shop-2024": {"publicCertificate": shop.certificate, "caCertificate": shop.ca}
        },
        "privateKeys": {"shop-2024": shop.private_key},
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
        "hostnames": {"shop": {"hostname": "shop.example.com"}},
        "ruleSets": {
            "acme-redirect": {"items": [REDIRECT_RULE]},
            "security-headers": {
                "items": [
                    {
                        "action": "ADD_HTTP_RESPONSE_HEADER",
                        "header": "Strict-Transport-Security",
                        "value": "max-age=31536000",
                    }
                ]
            },
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
def shop() -> Bundle:
    return issue("shop.example.com")


@pytest.fixture
def fixture_data(shop: Bundle) -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "load_balancers": [
            shop_load_balancer(shop),
            {"id": BARE_LB_ID, "compartmentId": COMPARTMENT, "workRequestSeconds": WR_SECONDS},
        ],
    }


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(load_balancer, "now", fake)
    return fake


def service(running: RunningEmulator) -> load_balancer.LoadBalancer:
    lb = running.emulator.services["loadbalancer"]
    assert isinstance(lb, load_balancer.LoadBalancer)
    return lb


def work_request_id(response: oci.response.Response) -> str:
    assert response.status == 204
    assert response.data is None
    return str(response.headers["opc-work-request-id"])


def state_of(clients: Clients, wr_id: str) -> str:
    return str(clients.load_balancer.get_work_request(wr_id).data.lifecycle_state)


def finished(clients: Clients, wr_id: str, clock: Clock) -> models.WorkRequest:
    """Move the clock past any queue and answer the settled work request."""
    clock.advance(60)
    work_request = clients.load_balancer.get_work_request(wr_id).data
    assert work_request.lifecycle_state in ("SUCCEEDED", "FAILED")
    return work_request


def outcome(clients: Clients, clock: Clock, response: oci.response.Response) -> str:
    """The final state of the work request that a mutation answered with."""
    return str(finished(clients, work_request_id(response), clock).lifecycle_state)


def listener(clients: Clients, name: str, lb_id: str = LB_ID) -> models.Listener:
    return clients.load_balancer.get_load_balancer(lb_id).data.listeners[name]


def create_certificate(clients: Clients, name: str, bundle: Bundle, **overrides: Any) -> str:
    details = {
        "certificate_name": name,
        "public_certificate": bundle.certificate,
        "private_key": bundle.private_key,
        "ca_certificate": bundle.ca,
        **overrides,
    }
    response = clients.load_balancer.create_certificate(
        models.CreateCertificateDetails(**details), LB_ID
    )
    return work_request_id(response)


def update_details_from(current: models.Listener, **changes: Any) -> models.UpdateListenerDetails:
    """What the renewer does: every field of the listener read back, then ``changes``."""
    fields = {name: getattr(current, name) for name in models.UpdateListenerDetails().swagger_types}
    ssl = current.ssl_configuration
    if ssl is not None:
        fields["ssl_configuration"] = models.SSLConfigurationDetails(
            **{name: getattr(ssl, name) for name in models.SSLConfigurationDetails().swagger_types}
        )
    fields.update(changes)
    return models.UpdateListenerDetails(**fields)


def with_certificate(
    current: models.Listener, certificate_name: str
) -> models.UpdateListenerDetails:
    details = update_details_from(current)
    details.ssl_configuration.certificate_name = certificate_name
    return details


def service_error(call: Any, *args: Any, **kwargs: Any) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def raw_json(clients: Clients, call: Any, *args: Any) -> Any:
    """The answer's JSON exactly as sent (the SDK's deserialization switched off)."""
    base = clients.load_balancer.base_client
    base.skip_deserialization = True
    try:
        return call(*args).data
    finally:
        base.skip_deserialization = False


def assert_complete(data: Any, type_name: str, path: str = "data") -> None:
    """Fail when the JSON lacks a field of the SDK model ``type_name`` (recursively)."""
    if data is None:
        return
    if type_name.startswith("list["):
        for i, item in enumerate(data):
            assert_complete(item, type_name[5:-1], f"{path}[{i}]")
        return
    if type_name.startswith("dict("):
        inner = type_name[5:-1].split(", ", 1)[1]
        for key, item in data.items():
            assert_complete(item, inner, f"{path}[{key!r}]")
        return
    cls = getattr(models, type_name, None)
    if cls is None:
        return  # a primitive
    if hasattr(cls, "get_subtype"):
        cls = getattr(models, cls.get_subtype(data))
    model = cls()
    missing = [
        model.attribute_map[a] for a in model.swagger_types if model.attribute_map[a] not in data
    ]
    assert not missing, f"{path} ({cls.__name__}) lacks {missing}"
    for attribute, attribute_type in model.swagger_types.items():
        key = model.attribute_map[attribute]
        assert_complete(data[key], attribute_type, f"{path}.{key}")


# ---------------------------------------------------------------------------- load balancers


def test_get_load_balancer_parses_fully(clients: Clients) -> None:
    response = clients.load_balancer.get_load_balancer(LB_ID)
    lb = response.data
    assert_clean_model(lb)
    assert response.headers["etag"]
    assert lb.id == LB_ID
    assert lb.compartment_id == COMPARTMENT
    assert lb.lifecycle_state == "ACTIVE"
    assert set(lb.listeners) == {"http", "https"}
    https = lb.listeners["https"]
    assert https.ssl_configuration.certificate_name == "shop-2024"
    assert https.ssl_configuration.protocols == ["TLSv1.2", "TLSv1.3"]
    assert https.connection_configuration.idle_timeout == 120
    assert lb.listeners["http"].routing_policy_name == "acme-routing"
    assert set(lb.backend_sets) == {"app", "acme-tokens"}
    assert lb.backend_sets["app"].backends[0].name == "127.0.0.1:9"
    assert lb.hostnames["shop"].hostname == "shop.example.com"
    redirect = lb.rule_sets["acme-redirect"].items[0]
    assert isinstance(redirect, models.RedirectRule)
    assert isinstance(redirect.conditions[0], models.PathMatchCondition)
    assert redirect.conditions[0].operator == "PREFIX_MATCH"
    assert redirect.redirect_uri.path.endswith("/o{path}")
    action = lb.routing_policies["acme-routing"].rules[0].actions[0]
    assert isinstance(action, models.ForwardToBackendSet)
    assert action.backend_set_name == "acme-tokens"
    assert set(lb.certificates) == {"shop-2024"}


def test_wire_json_carries_every_model_field_and_no_private_key(clients: Clients) -> None:
    for lb_id in (LB_ID, BARE_LB_ID):
        data = raw_json(clients, clients.load_balancer.get_load_balancer, lb_id)
        assert_complete(data, "LoadBalancer")
        assert "privateKey" not in json.dumps(data)
        assert "PRIVATE KEY" not in json.dumps(data)
    bare = clients.load_balancer.get_load_balancer(BARE_LB_ID).data
    assert_clean_model(bare)
    assert bare.listeners == {}
    assert bare.shape_name == "flexible"


def test_list_load_balancers_by_compartment(clients: Clients) -> None:
    found = clients.load_balancer.list_load_balancers(COMPARTMENT).data
    assert {lb.id for lb in found} == {LB_ID, BARE_LB_ID}
    for lb in found:
        assert_clean_model(lb)
    named = clients.load_balancer.list_load_balancers(COMPARTMENT, display_name="shop-lb").data
    assert [lb.id for lb in named] == [LB_ID]
    assert clients.load_balancer.list_load_balancers("ocid1.compartment.oc1..other").data == []


def test_missing_load_balancer_is_404(clients: Clients) -> None:
    error = service_error(clients.load_balancer.get_load_balancer, "ocid1.loadbalancer.oc1..nope")
    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


def test_handlers_authorize_against_the_load_balancers_compartment(
    clients: Clients, emulator: RunningEmulator
) -> None:
    calls: list[tuple[str, str]] = []

    class DenyAll:
        def allows(
            self, _principal: Any, operation: str, compartment_id: str, _target: Any
        ) -> bool:
            calls.append((operation, compartment_id))
            return False

    emulator.emulator.authorizer = DenyAll()
    emulator.emulator.authorization_enabled = True
    error = service_error(clients.load_balancer.get_load_balancer, LB_ID)
    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")
    current = service(emulator).listeners(LB_ID)["https"]
    details = models.UpdateListenerDetails(
        default_backend_set_name="app", port=current["port"], protocol="HTTP"
    )
    error = service_error(clients.load_balancer.update_listener, details, LB_ID, "https")
    assert error.status == 404
    assert calls == [("GetLoadBalancer", COMPARTMENT), ("UpdateListener", COMPARTMENT)]
    assert service(emulator).listeners(LB_ID)["https"] == current


# ------------------------------------------------------------------------------ certificates


def test_create_certificate_work_request_succeeds(
    clients: Clients, emulator: RunningEmulator
) -> None:
    """Real clock: the work request progresses on its own and the bundle appears."""
    fresh = issue("shop.example.com")
    wr_id = create_certificate(clients, "shop-2025", fresh)
    first = clients.load_balancer.get_work_request(wr_id)
    assert first.data.lifecycle_state in ("ACCEPTED", "IN_PROGRESS")
    assert first.data.type == "CreateCertificate"
    assert first.data.load_balancer_id == LB_ID
    assert first.data.time_finished is None
    # oci.wait_until sleeps a whole second before its first poll; a short loop is quicker.
    deadline = time.monotonic() + 10
    done = first.data
    while done.lifecycle_state not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.05)
        done = clients.load_balancer.get_work_request(wr_id).data
    assert_clean_model(done)
    assert done.lifecycle_state == "SUCCEEDED"
    assert done.error_details == []
    assert done.time_finished >= done.time_accepted
    certificates = clients.load_balancer.list_certificates(LB_ID).data
    assert {c.certificate_name for c in certificates} == {"shop-2024", "shop-2025"}
    raw = raw_json(clients, clients.load_balancer.list_certificates, LB_ID)
    assert all(set(c) == {"certificateName", "publicCertificate", "caCertificate"} for c in raw)
    chain, key = service(emulator).certificate_material(LB_ID, "shop-2025") or ("", "")
    assert chain == fresh.certificate  # exactly publicCertificate: caCertificate is not served
    assert key == fresh.private_key


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bad_certificate", "publicCertificate"),
        ("bad_key", "privateKey"),
        ("mismatched_key", "does not match"),
        ("wrong_passphrase", "passphrase"),
    ],
)
def test_invalid_bundle_fails_its_work_request(
    clients: Clients, clock: Clock, case: str, message: str
) -> None:
    bundle = issue("shop.example.com")
    overrides = {
        "bad_certificate": {"public_certificate": "-----BEGIN CERTIFICATE-----\nnope\n"},
        "bad_key": {"private_key": "not a key"},
        "mismatched_key": {"private_key": issue("other.example.com").private_key},
        "wrong_passphrase": {"passphrase": "wrong"},
    }[case]
    wr_id = create_certificate(clients, "broken", bundle, **overrides)
    assert state_of(clients, wr_id) == "IN_PROGRESS"
    work_request = finished(clients, wr_id, clock)
    assert_clean_model(work_request)
    assert work_request.lifecycle_state == "FAILED"
    assert [e.error_code for e in work_request.error_details] == ["BAD_INPUT"]
    assert message in work_request.error_details[0].message
    assert "PRIVATE KEY" not in work_request.error_details[0].message
    names = {c.certificate_name for c in clients.load_balancer.list_certificates(LB_ID).data}
    assert names == {"shop-2024"}


def test_duplicate_certificate_name_is_409(clients: Clients, clock: Clock) -> None:
    bundle = issue("shop.example.com")
    error = service_error(create_certificate, clients, "shop-2024", bundle)
    assert (error.status, error.code) == (409, "Conflict")
    create_certificate(clients, "shop-2025", bundle)
    error = service_error(create_certificate, clients, "shop-2025", bundle)  # still queued
    assert (error.status, error.code) == (409, "Conflict")


@pytest.mark.parametrize("name", ["with space", "with.dot", "slash/name", "x" * 256, ""])
def test_certificate_name_rules(clients: Clients, name: str) -> None:
    error = service_error(create_certificate, clients, name, issue("shop.example.com"))
    assert error.status == 400
    assert error.code in ("InvalidParameter", "MissingParameter")


def test_delete_certificate_attached_is_409_until_the_listener_moves(
    clients: Clients, clock: Clock
) -> None:
    error = service_error(clients.load_balancer.delete_certificate, LB_ID, "shop-2024")
    assert (error.status, error.code) == (409, "Conflict")
    assert "attached" in error.message
    create_certificate(clients, "shop-2025", issue("shop.example.com"))
    clock.advance(1)
    details = with_certificate(listener(clients, "https"), "shop-2025")
    response = clients.load_balancer.update_listener(details, LB_ID, "https")
    assert outcome(clients, clock, response) == "SUCCEEDED"
    response = clients.load_balancer.delete_certificate(LB_ID, "shop-2024")
    assert outcome(clients, clock, response) == "SUCCEEDED"
    names = {c.certificate_name for c in clients.load_balancer.list_certificates(LB_ID).data}
    assert names == {"shop-2025"}


def test_delete_missing_certificate_is_404(clients: Clients) -> None:
    error = service_error(clients.load_balancer.delete_certificate, LB_ID, "nope")
    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


# --------------------------------------------------------------------------------- listeners


def test_update_listener_replaces_the_whole_listener(clients: Clients, clock: Clock) -> None:
    before = listener(clients, "https")
    assert before.hostname_names == ["shop"]
    details = models.UpdateListenerDetails(
        default_backend_set_name="app",
        port=443,
        protocol="HTTP",
        ssl_configuration=models.SSLConfigurationDetails(certificate_name="shop-2024"),
    )
    response = clients.load_balancer.update_listener(details, LB_ID, "https")
    assert outcome(clients, clock, response) == "SUCCEEDED"
    after = listener(clients, "https")
    assert_clean_model(after)
    assert after.hostname_names == []
    assert after.rule_set_names == []
    assert after.routing_policy_name is None
    assert after.connection_configuration.idle_timeout == 60
    assert after.ssl_configuration.protocols == ["TLSv1.2"]
    assert after.ssl_configuration.cipher_suite_name == "oci-default-ssl-cipher-suite-v1"
    assert after.ssl_configuration.server_order_preference == "DISABLED"


def test_update_listener_sending_everything_back_changes_only_the_certificate(
    clients: Clients, clock: Clock, emulator: RunningEmulator
) -> None:
    """What the renewer does: read the listener, change the certificate, write it all back."""
    fresh = issue("shop.example.com")
    create_certificate(clients, "shop-2025", fresh)
    before = listener(clients, "https")
    details = with_certificate(before, "shop-2025")
    response = clients.load_balancer.update_listener(details, LB_ID, "https")
    assert outcome(clients, clock, response) == "SUCCEEDED"
    after = listener(clients, "https")
    for name in models.Listener().swagger_types:
        if name != "ssl_configuration":
            assert getattr(after, name) == getattr(before, name), name
    for name in models.SSLConfiguration().swagger_types:
        expected_value = (
            "shop-2025" if name == "certificate_name" else getattr(before.ssl_configuration, name)
        )
        assert getattr(after.ssl_configuration, name) == expected_value, name
    assert service(emulator).listener_certificate(LB_ID, "https") == service(
        emulator
    ).certificate_material(LB_ID, "shop-2025")


def test_update_listener_with_a_missing_certificate_fails_at_apply_time(
    clients: Clients, clock: Clock
) -> None:
    before = listener(clients, "https")
    details = with_certificate(before, "nope")
    wr_id = work_request_id(clients.load_balancer.update_listener(details, LB_ID, "https"))
    work_request = finished(clients, wr_id, clock)
    assert work_request.lifecycle_state == "FAILED"
    assert work_request.error_details[0].error_code == "BAD_INPUT"
    assert "'nope'" in work_request.error_details[0].message
    assert listener(clients, "https").ssl_configuration.certificate_name == "shop-2024"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"port": None}, "port"),
        ({"protocol": "SMTP"}, "protocol"),
        ({"ssl_configuration": models.SSLConfigurationDetails()}, "certificate"),
        (
            {
                "ssl_configuration": models.SSLConfigurationDetails(
                    certificate_name="shop-2024",
                    cipher_suite_name="oci-customized-ssl-cipher-suite",
                )
            },
            "cipherSuiteName",
        ),
        (
            {
                "ssl_configuration": models.SSLConfigurationDetails(
                    certificate_ids=["ocid1.certificate.oc1..a", "ocid1.certificate.oc1..b"]
                )
            },
            "certificateIds",
        ),
    ],
)
def test_update_listener_rejects_bad_bodies(
    clients: Clients, changes: dict[str, Any], field: str
) -> None:
    details = update_details_from(listener(clients, "https"), **changes)
    error = service_error(clients.load_balancer.update_listener, details, LB_ID, "https")
    assert error.status == 400
    assert field in error.message


def test_update_missing_listener_is_404(clients: Clients) -> None:
    details = models.UpdateListenerDetails(default_backend_set_name="app", port=81, protocol="HTTP")
    error = service_error(clients.load_balancer.update_listener, details, LB_ID, "nope")
    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


def test_create_and_delete_listener(clients: Clients, clock: Clock) -> None:
    details = models.CreateListenerDetails(
        name="alt", default_backend_set_name="app", port=8080, protocol="HTTP"
    )
    response = clients.load_balancer.create_listener(details, LB_ID)
    assert outcome(clients, clock, response) == "SUCCEEDED"
    assert listener(clients, "alt").port == 8080
    clash = models.CreateListenerDetails(
        name="alt2", default_backend_set_name="app", port=8080, protocol="HTTP"
    )
    wr_id = work_request_id(clients.load_balancer.create_listener(clash, LB_ID))
    failed = finished(clients, wr_id, clock)
    assert failed.lifecycle_state == "FAILED"
    assert "port 8080" in failed.error_details[0].message
    response = clients.load_balancer.delete_listener(LB_ID, "alt")
    assert outcome(clients, clock, response) == "SUCCEEDED"
    assert "alt" not in clients.load_balancer.get_load_balancer(LB_ID).data.listeners


def test_certificate_ids_resolve_through_the_certificates_service(
    clients: Clients, clock: Clock, emulator: RunningEmulator
) -> None:
    fresh = issue("shop.example.com")
    known = "ocid1.certificate.oc1.phx.known"

    class FakeCertificates:
        name = "certificates"

        def current_material(self, certificate_id: str) -> tuple[str, str] | None:
            return (fresh.certificate, fresh.private_key) if certificate_id == known else None

    emulator.emulator.services["certificates"] = FakeCertificates()  # type: ignore[assignment]
    before = listener(clients, "https")
    for certificate_id, expected in (
        ("ocid1.certificate.oc1.phx.unknown", "FAILED"),
        (known, "SUCCEEDED"),
    ):
        details = update_details_from(before)
        details.ssl_configuration.certificate_name = None
        details.ssl_configuration.certificate_ids = [certificate_id]
        response = clients.load_balancer.update_listener(details, LB_ID, "https")
        assert outcome(clients, clock, response) == expected
    ssl = listener(clients, "https").ssl_configuration
    assert (ssl.certificate_name, ssl.certificate_ids) == (None, [known])
    lb = service(emulator)
    assert lb.listener_certificate(LB_ID, "https") == (fresh.certificate, fresh.private_key)
    assert lb.certificate_ids_in_use() == {known}
    # The bundle is no longer attached, so it can go.
    response = clients.load_balancer.delete_certificate(LB_ID, "shop-2024")
    assert outcome(clients, clock, response) == "SUCCEEDED"


# ----------------------------------------------------------------------------- work requests


def test_work_requests_queue_per_load_balancer(clients: Clients, clock: Clock) -> None:
    create = create_certificate(clients, "shop-2025", issue("shop.example.com"))
    # The listener update names the bundle the queued work request is still creating.
    details = with_certificate(listener(clients, "https"), "shop-2025")
    update = work_request_id(clients.load_balancer.update_listener(details, LB_ID, "https"))
    elsewhere = work_request_id(
        clients.load_balancer.create_certificate(
            models.CreateCertificateDetails(
                certificate_name="ca-only", ca_certificate=issue("x.example.com").ca
            ),
            BARE_LB_ID,
        )
    )
    assert [state_of(clients, w) for w in (create, update, elsewhere)] == [
        "IN_PROGRESS",
        "ACCEPTED",
        "IN_PROGRESS",
    ]
    accepted = clients.load_balancer.get_work_request(update).data
    assert_clean_model(accepted)
    assert accepted.time_finished is None
    clock.advance(WR_SECONDS * 1.5)
    assert [state_of(clients, w) for w in (create, update, elsewhere)] == [
        "SUCCEEDED",
        "IN_PROGRESS",
        "SUCCEEDED",
    ]
    assert listener(clients, "https").ssl_configuration.certificate_name == "shop-2024"
    clock.advance(WR_SECONDS)
    assert state_of(clients, update) == "SUCCEEDED"
    assert listener(clients, "https").ssl_configuration.certificate_name == "shop-2025"
    listed = clients.load_balancer.list_work_requests(LB_ID).data
    assert [w.id for w in listed] == [update, create]
    for work_request in listed:
        assert_clean_model(work_request)
    first_page = clients.load_balancer.list_work_requests(LB_ID, limit=1)
    assert [w.id for w in first_page.data] == [update]
    assert first_page.headers["opc-next-page"]


def test_stale_if_match_is_412(clients: Clients, clock: Clock) -> None:
    etag = clients.load_balancer.get_load_balancer(LB_ID).headers["etag"]
    details = with_certificate(listener(clients, "https"), "shop-2024")
    response = clients.load_balancer.update_listener(details, LB_ID, "https", if_match=etag)
    work_request_id(response)
    assert response.headers["etag"] != etag
    error = service_error(
        clients.load_balancer.update_listener, details, LB_ID, "https", if_match=etag
    )
    assert (error.status, error.code) == (412, "NoEtagMatch")
    accepted_etag = response.headers["etag"]
    clock.advance(1)
    settled_etag = clients.load_balancer.get_load_balancer(LB_ID).headers["etag"]
    assert settled_etag != accepted_etag  # applying the work request changed the configuration
    response = clients.load_balancer.update_listener(details, LB_ID, "https", if_match=settled_etag)
    work_request_id(response)


def test_retry_token_answers_the_same_work_request(clients: Clients) -> None:
    details = with_certificate(listener(clients, "https"), "shop-2024")
    token = uuid.uuid4().hex
    first = clients.load_balancer.update_listener(details, LB_ID, "https", opc_retry_token=token)
    again = clients.load_balancer.update_listener(details, LB_ID, "https", opc_retry_token=token)
    assert work_request_id(first) == work_request_id(again)
    assert len(clients.load_balancer.list_work_requests(LB_ID).data) == 1
    bundle = models.CreateCertificateDetails(certificate_name="ca-only", ca_certificate=_ca()[1])
    other = service_error(
        clients.load_balancer.create_certificate, bundle, LB_ID, opc_retry_token=token
    )
    assert (other.status, other.code) == (409, "Conflict")


def test_unknown_work_request_is_404(clients: Clients) -> None:
    error = service_error(
        clients.load_balancer.get_work_request, "ocid1.loadbalancerworkrequest..x"
    )
    assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


# ------------------------------------------------------------- rule sets, routing, backends


def test_rule_set_crud(clients: Clients, clock: Clock) -> None:
    lb = clients.load_balancer
    redirect = models.RedirectRule(
        action="REDIRECT",
        conditions=[
            models.PathMatchCondition(
                attribute_name="PATH", attribute_value=ACME_PREFIX, operator="PREFIX_MATCH"
            )
        ],
        redirect_uri=models.RedirectUri(protocol="HTTPS", path="/o{path}", query=""),
    )
    create = models.CreateRuleSetDetails(name="acme-2", items=[redirect])
    assert outcome(clients, clock, lb.create_rule_set(LB_ID, create)) == "SUCCEEDED"
    got = lb.get_rule_set(LB_ID, "acme-2")
    assert got.headers["etag"]
    assert_clean_model(got.data)
    rule = got.data.items[0]
    assert isinstance(rule, models.RedirectRule)
    assert rule.response_code == 302  # the documented default
    assert rule.redirect_uri.host is None  # null keeps the incoming host
    update = models.UpdateRuleSetDetails(
        items=[
            models.RemoveHttpRequestHeaderRule(action="REMOVE_HTTP_REQUEST_HEADER", header="X-A")
        ]
    )
    assert outcome(clients, clock, lb.update_rule_set(LB_ID, "acme-2", update)) == "SUCCEEDED"
    assert lb.get_rule_set(LB_ID, "acme-2").data.items[0].header == "X-A"
    assert {r.name for r in lb.list_rule_sets(LB_ID).data} == {
        "acme-redirect",
        "security-headers",
        "acme-2",
    }
    error = service_error(lb.delete_rule_set, LB_ID, "acme-redirect")  # the http listener's
    assert (error.status, error.code) == (409, "Conflict")
    assert outcome(clients, clock, lb.delete_rule_set(LB_ID, "acme-2")) == "SUCCEEDED"
    assert service_error(lb.get_rule_set, LB_ID, "acme-2").status == 404


def test_rule_bodies_are_validated_per_action(clients: Clients) -> None:
    bad_redirect = {
        "name": "bad",
        "items": [
            {
                "action": "REDIRECT",
                "conditions": [
                    {"attributeName": "SOURCE_IP_ADDRESS", "attributeValue": "10.0.0.0/8"}
                ],
            }
        ],
    }
    error = service_error(clients.load_balancer.create_rule_set, LB_ID, bad_redirect)
    assert error.status == 400
    assert "attributeName" in error.message
    no_action = {"name": "bad", "items": [{"header": "X"}]}
    error = service_error(clients.load_balancer.create_rule_set, LB_ID, no_action)
    assert error.status == 400
    assert "action" in error.message


def test_routing_policy_crud(clients: Clients, clock: Clock) -> None:
    lb = clients.load_balancer

    def policy_rules(backend_set: str) -> list[models.RoutingRule]:
        return [
            models.RoutingRule(
                name="acme",
                condition=ACME_CONDITION,
                actions=[
                    models.ForwardToBackendSet(
                        name="FORWARD_TO_BACKENDSET", backend_set_name=backend_set
                    )
                ],
            )
        ]

    create = models.CreateRoutingPolicyDetails(
        name="tokens", condition_language_version="V1", rules=policy_rules("acme-tokens")
    )
    assert outcome(clients, clock, lb.create_routing_policy(create, LB_ID)) == "SUCCEEDED"
    got = lb.get_routing_policy(LB_ID, "tokens").data
    assert_clean_model(got)
    assert got.rules[0].actions[0].backend_set_name == "acme-tokens"
    update = models.UpdateRoutingPolicyDetails(rules=policy_rules("app"))
    assert outcome(clients, clock, lb.update_routing_policy(update, LB_ID, "tokens")) == "SUCCEEDED"
    assert lb.get_routing_policy(LB_ID, "tokens").data.rules[0].actions[0].backend_set_name == "app"
    dangling = models.UpdateRoutingPolicyDetails(rules=policy_rules("nope"))
    failed = finished(
        clients, work_request_id(lb.update_routing_policy(dangling, LB_ID, "tokens")), clock
    )
    assert failed.lifecycle_state == "FAILED"
    assert "backend set 'nope'" in failed.error_details[0].message
    assert {p.name for p in lb.list_routing_policies(LB_ID).data} == {"acme-routing", "tokens"}
    bad_name = models.CreateRoutingPolicyDetails(
        name="9bad/name", condition_language_version="V1", rules=policy_rules("app")
    )
    assert service_error(lb.create_routing_policy, bad_name, LB_ID).status == 400
    assert outcome(clients, clock, lb.delete_routing_policy(LB_ID, "tokens")) == "SUCCEEDED"
    assert service_error(lb.get_routing_policy, LB_ID, "tokens").status == 404


def test_backend_sets_and_backends(clients: Clients, clock: Clock) -> None:
    lb = clients.load_balancer
    checker = models.HealthCheckerDetails(protocol="HTTP", url_path="/ping")
    create = models.CreateBackendSetDetails(
        name="tokens-2",
        policy="LEAST_CONNECTIONS",
        health_checker=checker,
        backends=[models.BackendDetails(ip_address="127.0.0.1", port=9000)],
    )
    assert outcome(clients, clock, lb.create_backend_set(create, LB_ID)) == "SUCCEEDED"
    backend_set = lb.get_backend_set(LB_ID, "tokens-2").data
    assert_clean_model(backend_set)
    assert [b.name for b in backend_set.backends] == ["127.0.0.1:9000"]
    assert backend_set.health_checker.retries == 3
    backend = models.CreateBackendDetails(ip_address="127.0.0.1", port=9001, weight=3)
    assert outcome(clients, clock, lb.create_backend(backend, LB_ID, "tokens-2")) == "SUCCEEDED"
    assert lb.get_backend(LB_ID, "tokens-2", "127.0.0.1:9001").data.weight == 3
    drain = models.UpdateBackendDetails(weight=1, backup=False, drain=True, offline=False)
    response = lb.update_backend(drain, LB_ID, "tokens-2", "127.0.0.1:9001")
    assert outcome(clients, clock, response) == "SUCCEEDED"
    assert lb.get_backend(LB_ID, "tokens-2", "127.0.0.1:9001").data.drain is True
    response = lb.delete_backend(LB_ID, "tokens-2", "127.0.0.1:9000")
    assert outcome(clients, clock, response) == "SUCCEEDED"
    assert [b.name for b in lb.list_backends(LB_ID, "tokens-2").data] == ["127.0.0.1:9001"]
    replace = models.UpdateBackendSetDetails(
        policy="ROUND_ROBIN", backends=[], health_checker=checker
    )
    assert outcome(clients, clock, lb.update_backend_set(replace, LB_ID, "tokens-2")) == "SUCCEEDED"
    assert lb.get_backend_set(LB_ID, "tokens-2").data.backends == []
    assert service_error(lb.delete_backend_set, LB_ID, "app").status == 409  # listeners use it
    bad = models.CreateBackendSetDetails(
        name="bad name", policy="ROUND_ROBIN", health_checker=checker
    )
    assert service_error(lb.create_backend_set, bad, LB_ID).status == 400


def test_hostnames(clients: Clients, clock: Clock) -> None:
    lb = clients.load_balancer
    create = models.CreateHostnameDetails(name="www", hostname="www.example.com")
    assert outcome(clients, clock, lb.create_hostname(create, LB_ID)) == "SUCCEEDED"
    update = models.UpdateHostnameDetails(hostname="www2.example.com")
    assert outcome(clients, clock, lb.update_hostname(update, LB_ID, "www")) == "SUCCEEDED"
    assert lb.get_hostname(LB_ID, "www").data.hostname == "www2.example.com"
    assert service_error(lb.delete_hostname, LB_ID, "shop").status == 409


# ------------------------------------------------------------------------------- persistence


def test_state_survives_a_restart_with_a_work_request_in_flight(
    clients: Clients,
    clock: Clock,
    emulator: RunningEmulator,
    fixture_data: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = issue("shop.example.com")
    done = create_certificate(clients, "shop-2025", fresh)
    clock.advance(1)
    assert state_of(clients, done) == "SUCCEEDED"
    in_flight = create_certificate(clients, "shop-2026", fresh)
    assert state_of(clients, in_flight) == "IN_PROGRESS"
    state_path = emulator.emulator.state.path
    assert state_path is not None
    emulator.emulator.stop()

    second, tenancy = build_emulator(fixture=fixture_data, state_path=state_path)
    with second:
        running = RunningEmulator(second, tenancy)
        again = make_clients(running, clients.signer_kind, tmp_path / "second", monkeypatch)
        assert state_of(again, done) == "SUCCEEDED"
        assert state_of(again, in_flight) == "IN_PROGRESS"
        clock.advance(1)
        assert state_of(again, in_flight) == "SUCCEEDED"
        names = {c.certificate_name for c in again.load_balancer.list_certificates(LB_ID).data}
        assert names == {"shop-2024", "shop-2025", "shop-2026"}
        material = service(running).certificate_material(LB_ID, "shop-2026")
        assert material is not None
        assert material[1] == fresh.private_key
        saved = json.loads(Path(state_path).read_text())["loadbalancer"]
        assert all("payload" not in wr for wr in saved["workRequests"].values())


# ---------------------------------------------------------------------------- data plane, seed


def test_data_plane_accessors(emulator: RunningEmulator, shop: Bundle) -> None:
    dataplane = emulator.emulator.services["dataplane"]
    assert isinstance(dataplane, DataPlane)
    dataplane.stop()  # the accessors alone: port_map() holds only what this test publishes
    lb = service(emulator)
    assert lb.load_balancer_ids() == sorted([LB_ID, BARE_LB_ID])
    assert set(lb.listeners(LB_ID)) == {"http", "https"}
    assert lb.listeners("ocid1.loadbalancer.oc1..nope") == {}
    chain, key = lb.listener_certificate(LB_ID, "https") or ("", "")
    assert chain == shop.certificate  # publicCertificate only (docs: "The chain")
    assert key == shop.private_key
    assert lb.listener_certificate(LB_ID, "http") is None
    assert lb.config_version(LB_ID) == 0
    assert lb.port_map() == {}
    lb.publish_port(LB_ID, 443, 50443)
    assert lb.port_map() == {LB_ID: {443: 50443}}
    current = lb.current(LB_ID)
    assert current is not None
    current["listeners"].clear()  # a copy: the service's state is untouched
    assert set(lb.listeners(LB_ID)) == {"http", "https"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": "x"}, "compartmentId"),
        ({"compartmentId": COMPARTMENT, "lifecycleState": "SLEEPING"}, "lifecycleState"),
        (
            {
                "compartmentId": COMPARTMENT,
                "listeners": {"l": {"port": 80, "protocol": "HTTP", "defaultBackendSetName": "x"}},
            },
            "backend set 'x'",
        ),
        ({"compartmentId": COMPARTMENT, "privateKeys": {"ghost": "pem"}}, "ghost"),
    ],
)
def test_seed_rejects_a_bad_fixture(entry: dict[str, Any], message: str) -> None:
    lb = load_balancer.LoadBalancer(SimpleNamespace(state=StateStore()))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        lb.seed({"load_balancers": [entry]})
