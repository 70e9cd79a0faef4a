"""The Vault adapters (``renewer.adapters.oci_vault``) against the emulator, and the
``CertificateStore`` contract against both the in-memory fake and the real adapter.

The adapters run as the function does: ``OciClients`` with the renewer's resource principal.
Inspections and foreign secrets go through the operator's API key (``make_clients``).
Certificates and keys are generated per run with ``cryptography``; none is committed.
"""

# Secret names and retry tokens are not passwords.
# ruff: noqa: S105

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import oci
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from renewer import pki
from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_vault import (
    MANAGED_BY,
    MAX_CONTENT_BYTES,
    VaultAccountStore,
    VaultCertificateStore,
    certificate_document,
    pending_version_name,
    read_eab_hmac_key,
)
from renewer.errors import ConfigError
from renewer.model import KeyType, PendingOrder, StoredCertificate
from renewer.ports import AccountRecord, AccountStore, CertificateStore
from sandbox.oci_emulator.credentials import resource_principal_env
from sandbox.oci_emulator.faults import FaultRule
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    TENANCY,
    Clients,
    RunningEmulator,
    make_clients,
)
from tests.support.fakes import InMemoryAccountStore
from tests.support.fakes_vault import InMemoryCertificateStore

pytestmark = pytest.mark.integration

VAULT = "ocid1.vault.oc1.phx.renewervault"
KEY = "ocid1.key.oc1.phx.renewerkey"
FIXTURE: dict[str, Any] = {
    **BASE_FIXTURE,
    "vaults": [{"id": VAULT, "compartment": "apps", "keys": [{"id": KEY}]}],
}
RENEWER_POLICIES = [
    "Allow dynamic-group renewer-dg to manage secret-family in compartment apps",
    "Allow dynamic-group renewer-dg to use vaults in compartment apps",
    "Allow dynamic-group renewer-dg to use keys in compartment apps",
]
ADMINS = {"name": "admins", "statements": ["Allow group Admins to manage all-resources in tenancy"]}


def with_policies(statements: list[str]) -> dict[str, Any]:
    return {
        **FIXTURE,
        "authorization": True,
        "policies": [{"name": "renewer", "statements": statements}, ADMINS],
    }


@pytest.fixture
def fixture_data(request: pytest.FixtureRequest) -> dict[str, Any]:
    # Tests choose another tenancy with parametrize("fixture_data", [...], indirect=True).
    return getattr(request, "param", FIXTURE)


NAME = "shop"
SECRET = "acme-shop"
DIRECTORY = "https://acme.test/directory"
ACCOUNT_SECRET = "acme-account-acme-test-directory"


# ------------------------------------------------------------------------------ certificates


@functools.cache
def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Vault Contract CA")])
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_certificate(
    names: tuple[str, ...] = ("shop.example.com", "www.shop.example.com"),
    *,
    key_type: KeyType = KeyType.EC_P256,
    profile: str | None = "classic",
) -> StoredCertificate:
    """A fresh leaf (with AKI, so it has an ARI CertID) plus its CA, as the store keeps it."""
    ca_key, ca = _ca()
    key = pki.generate_private_key(key_type)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    fullchain = _pem(leaf) + _pem(ca)
    described = pki.describe(fullchain, profile=profile)
    return StoredCertificate(
        version=0,
        fullchain_pem=fullchain,
        private_key_pem=pki.private_key_to_pem(key),
        serial_hex=described.serial_hex,
        not_before=described.not_before,
        not_after=described.not_after,
        dns_names=names,
        key_type=described.key_type,
        profile=profile,
        ari_cert_id=described.ari_cert_id,
        account_url="https://acme.test/acct/17",
        order_url=f"https://acme.test/order/{described.serial_hex[:12]}",
        directory_url="https://acme.test/directory",  # the issuing CA (issue 17)
    )


def same_certificate(a: StoredCertificate, b: StoredCertificate) -> bool:
    return dataclasses.replace(a, version=0) == dataclasses.replace(b, version=0)


def key_lines(pem: str) -> list[str]:
    """The base64 body lines of a PEM: what must never show up anywhere."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


# ------------------------------------------------------------------------------ OCI plumbing


def renewer_clients(
    running: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    **settings: Any,
) -> OciClients:
    """``OciClients`` as built inside the function: resource principal, endpoint overrides."""
    directory = tmp_path / f"rp-{len(list(tmp_path.iterdir()))}"
    directory.mkdir()
    env = resource_principal_env(running.emulator, running.tenancy.principals["renewer"], directory)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    options: dict[str, Any] = {"retry_attempts": 1, **settings}
    return OciClients(OciSettings(endpoints=dict.fromkeys(SERVICES, running.endpoint), **options))


def vault_store(clients: OciClients) -> VaultCertificateStore:
    return VaultCertificateStore(clients, compartment_id=COMPARTMENT, vault_id=VAULT, key_id=KEY)


def account_store(clients: OciClients) -> VaultAccountStore:
    return VaultAccountStore(clients, compartment_id=COMPARTMENT, vault_id=VAULT, key_id=KEY)


@pytest.fixture
def oci_clients(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> OciClients:
    return renewer_clients(emulator, tmp_path, monkeypatch)


@pytest.fixture
def operator(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Clients:
    return make_clients(emulator, "api_key", tmp_path / "operator", monkeypatch)


def secrets_in_vault(running: RunningEmulator) -> list[dict[str, Any]]:
    with running.emulator.state.lock:
        secrets = running.emulator.state.section("vault").get("secrets", {})
        return [dict(s) for s in secrets.values() if s["vaultId"] == VAULT]


def writes(running: RunningEmulator) -> list[str]:
    return [
        op
        for op in running.emulator.operations_called(mutating_only=True)
        if op in ("CreateSecret", "UpdateSecret")
    ]


def create_foreign_secret(operator: Clients, name: str, content: bytes) -> str:
    details = oci.vault.models.CreateSecretDetails(
        compartment_id=COMPARTMENT,
        vault_id=VAULT,
        key_id=KEY,
        secret_name=name,
        secret_content=oci.vault.models.Base64SecretContentDetails(
            content_type="BASE64", content=base64.b64encode(content).decode()
        ),
    )
    return operator.vaults.create_secret(details).data.id


def bundle_document(operator: Clients, secret_id: str) -> dict[str, Any]:
    data = operator.secrets.get_secret_bundle(secret_id).data
    return json.loads(base64.b64decode(data.secret_bundle_content.content))


# ============================================================================== the contract


@pytest.fixture(params=["fake", "emulator"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> CertificateStore:
    if request.param == "fake":
        return InMemoryCertificateStore()
    running: RunningEmulator = request.getfixturevalue("emulator")
    return vault_store(renewer_clients(running, tmp_path, monkeypatch))


def test_put_then_latest_round_trips_every_field(store: CertificateStore) -> None:
    assert store.latest(NAME) is None
    certificate = make_certificate()

    stored = store.put(NAME, certificate)

    assert stored.version >= 1
    assert stored == dataclasses.replace(certificate, version=stored.version)
    latest = store.latest(NAME)
    assert latest == stored
    assert latest is not None
    assert latest.not_after.tzinfo is not None
    assert latest.dns_names == ("shop.example.com", "www.shop.example.com")
    assert latest.ari_cert_id
    assert latest.ari_cert_id == certificate.ari_cert_id
    assert store.latest("other") is None  # one secret per certificate name


def test_optional_fields_round_trip_as_none(store: CertificateStore) -> None:
    certificate = dataclasses.replace(
        make_certificate(("a.example.com",), key_type=KeyType.RSA_2048, profile=None),
        ari_cert_id=None,
        account_url=None,
        order_url=None,
    )
    stored = store.put(NAME, certificate)
    assert store.latest(NAME) == stored
    assert same_certificate(stored, certificate)


def test_versions_increase_and_latest_is_the_newest(store: CertificateStore) -> None:
    versions = [store.put(NAME, make_certificate()).version for _ in range(3)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3
    latest = store.latest(NAME)
    assert latest is not None
    assert latest.version == versions[-1]


def test_get_by_version_is_the_rollback_source(store: CertificateStore) -> None:
    first = store.put(NAME, make_certificate())
    second = store.put(NAME, make_certificate())

    assert store.get(NAME, first.version) == first
    assert store.get(NAME, second.version) == second
    with pytest.raises(ConfigError, match=f"version 99 of secret {SECRET} does not exist"):
        store.get(NAME, 99)
    with pytest.raises(ConfigError, match="secret acme-other does not exist"):
        store.get("other", 1)


def test_put_of_the_same_serial_is_idempotent(store: CertificateStore) -> None:
    certificate = make_certificate()
    first = store.put(NAME, certificate)
    again = store.put(NAME, certificate)
    assert again == first
    newer = store.put(NAME, make_certificate())
    assert newer.version == first.version + 1  # the repeated put added no version
    with pytest.raises(ConfigError, match="does not exist"):
        store.get(NAME, newer.version + 1)


def test_prune_keeps_the_newest_and_is_idempotent(store: CertificateStore) -> None:
    stored = [store.put(NAME, make_certificate()) for _ in range(6)]
    numbers = [s.version for s in stored]

    assert store.prune(NAME, keep=3) == numbers[:3]
    assert store.prune(NAME, keep=3) == []  # re-running is a no-op
    for old in numbers[:3]:
        with pytest.raises(ConfigError, match=f"version {old} of secret {SECRET}"):
            store.get(NAME, old)
    assert [store.get(NAME, n) for n in numbers[3:]] == stored[3:]
    assert store.latest(NAME) == stored[-1]

    # keep=1 still leaves PREVIOUS: OCI deletes DEPRECATED versions only.
    assert store.prune(NAME, keep=1) == [numbers[3]]
    assert store.get(NAME, numbers[4]) == stored[4]
    assert store.prune("never-stored", keep=1) == []


@pytest.mark.parametrize("keep", [0, -1, 31])
def test_prune_keep_out_of_range_is_a_config_error(store: CertificateStore, keep: int) -> None:
    store.put(NAME, make_certificate())
    with pytest.raises(ConfigError, match=f"keep={keep} is out of range"):
        store.prune(NAME, keep=keep)


def test_thirty_versions_in_use_then_prune_makes_room(store: CertificateStore) -> None:
    for _ in range(30):
        store.put(NAME, make_certificate())
    with pytest.raises(ConfigError, match="prune"):
        store.put(NAME, make_certificate())
    # At most 27 certificates are kept (room for a renewal's record and certificate and the
    # last record), also when the configuration asks for up to 30.
    assert store.prune(NAME, keep=30) == [1, 2, 3]
    assert store.prune(NAME, keep=27) == []
    assert store.put(NAME, make_certificate()).version == 31


def pending_order(
    names: tuple[str, ...] = ("shop.example.com", "www.shop.example.com"),
    *,
    url: str = "https://acme.test/order/77",
) -> PendingOrder:
    key = pki.generate_private_key(KeyType.EC_P256)
    return PendingOrder(
        order_url=url,
        account_url="https://acme.test/acct/17",
        private_key_pem=pki.private_key_to_pem(key),
        dns_names=names,
        key_type=KeyType.EC_P256,
        profile="classic",
        created_at=dt.datetime(2026, 11, 27, 12, 30, tzinfo=dt.UTC),
    )


def test_a_first_pending_order_is_no_certificate_and_the_certificate_closes_it(
    store: CertificateStore,
) -> None:
    assert store.load_pending(NAME) is None
    order = pending_order()

    store.save_pending(NAME, order)

    assert store.latest(NAME) is None  # the secret exists, but holds no certificate yet
    found = store.load_pending(NAME)
    assert found == dataclasses.replace(order, version=found.version if found else 0)
    assert found is not None
    assert found.version == 1
    with pytest.raises(ConfigError, match=r"version 1 of .*not a certificate"):
        store.get(NAME, 1)
    stored = store.put(NAME, make_certificate())
    assert stored.version == 2
    assert store.latest(NAME) == stored
    assert store.load_pending(NAME) is None
    assert store.load_pending("other") is None


def test_a_renewals_pending_order_leaves_the_current_certificate_alone(
    store: CertificateStore,
) -> None:
    first = store.put(NAME, make_certificate())
    store.save_pending(NAME, pending_order(url="https://acme.test/order/1"))
    second = pending_order(url="https://acme.test/order/2")  # the first attempt died

    store.save_pending(NAME, second)

    assert store.latest(NAME) == first
    found = store.load_pending(NAME)
    assert found is not None
    assert (found.order_url, found.version) == (second.order_url, 3)
    renewed = store.put(NAME, make_certificate())
    assert renewed.version == 4
    assert store.load_pending(NAME) is None
    assert store.get(NAME, first.version) == first  # the rollback history is intact
    assert store.put(NAME, renewed) == renewed  # idempotent by serial, as before


def test_prune_counts_certificates_and_drops_closed_pending_orders(
    store: CertificateStore,
) -> None:
    certificates = []
    for number in range(5):
        store.save_pending(NAME, pending_order(url=f"https://acme.test/order/{number}"))
        certificates.append(store.put(NAME, make_certificate()))
    # Versions: records 1, 3, 5, 7, 9; certificates 2, 4, 6, 8, 10. Record 1 was created as
    # CURRENT and is DEPRECATED by now; 9 stays PENDING (a new CURRENT does not move it).

    assert store.prune(NAME, keep=3) == [1, 2, 3, 4, 5, 7]
    assert [c.version for c in certificates] == [2, 4, 6, 8, 10]
    assert [store.get(NAME, n) for n in (6, 8, 10)] == certificates[2:]
    assert store.prune(NAME, keep=3) == []
    assert store.load_pending(NAME) is None


def test_thirty_versions_with_closed_pending_orders_still_take_a_certificate(
    store: CertificateStore,
) -> None:
    store.put(NAME, make_certificate())
    for number in range(29):  # 29 attempts that died: 28 DEPRECATED records, 1 PENDING
        store.save_pending(NAME, pending_order(url=f"https://acme.test/order/{number}"))

    stored = store.put(NAME, make_certificate())

    assert stored.version == 31
    assert store.latest(NAME) == stored


def test_invalid_certificate_names_are_refused(store: CertificateStore) -> None:
    with pytest.raises(ConfigError, match=r"certificate name \(a string of 8 characters\)") as info:
        store.put("Shop_WWW", make_certificate())
    assert "Shop_WWW" not in str(info.value)  # a value is described, never echoed


@pytest.fixture(params=["fake", "emulator"])
def accounts(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AccountStore:
    if request.param == "fake":
        return InMemoryAccountStore()
    running: RunningEmulator = request.getfixturevalue("emulator")
    return account_store(renewer_clients(running, tmp_path, monkeypatch))


def test_account_store_contract(accounts: AccountStore) -> None:
    key = pki.private_key_to_pem(pki.generate_private_key(KeyType.EC_P256))
    assert accounts.load(DIRECTORY) is None
    accounts.save(DIRECTORY, AccountRecord(private_key_pem=key))
    assert accounts.load(DIRECTORY) == AccountRecord(private_key_pem=key)
    registered = AccountRecord(private_key_pem=key, account_url="https://acme.test/acct/1")
    accounts.save(DIRECTORY, registered)
    accounts.save(DIRECTORY, registered)
    assert accounts.load(DIRECTORY) == registered
    assert accounts.load("https://other.test/directory") is None


# ============================================================================== emulator only


def test_secret_is_named_tagged_and_described_in_the_configured_vault(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    certificate = make_certificate()
    stored = vault_store(oci_clients).put(NAME, certificate)

    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=SECRET).data
    secret = operator.vaults.get_secret(summary.id).data
    assert (secret.secret_name, secret.vault_id, secret.key_id) == (SECRET, VAULT, KEY)
    assert secret.compartment_id == COMPARTMENT
    assert secret.freeform_tags == {"managed-by": MANAGED_BY}
    assert secret.current_version_number == stored.version == 1
    assert secret.metadata == {
        "format": "1",
        "serial": certificate.serial_hex,
        "notBefore": certificate.not_before.isoformat().replace("+00:00", "Z"),
        "notAfter": certificate.not_after.isoformat().replace("+00:00", "Z"),
        "dnsNames": "shop.example.com,www.shop.example.com",
        "keyType": "ecdsa-p256",
        "profile": "classic",
        "ariCertId": certificate.ari_cert_id,
        "accountUrl": certificate.account_url,
        "orderUrl": certificate.order_url,
        "directoryUrl": "https://acme.test/directory",
    }
    assert not any("PRIVATE" in str(value) for value in secret.metadata.values())
    assert len(secrets_in_vault(emulator)) == 1


def test_version_content_is_a_compact_format_1_document(
    oci_clients: OciClients, operator: Clients
) -> None:
    certificate = make_certificate()
    vault_store(oci_clients).put(NAME, certificate)
    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=SECRET, vault_id=VAULT).data
    data = operator.secrets.get_secret_bundle(summary.id).data
    raw = base64.b64decode(data.secret_bundle_content.content)
    assert b": " not in raw
    assert b", " not in raw
    assert json.loads(raw) == {
        "format": 1,
        "fullchain": certificate.fullchain_pem,
        "privateKey": certificate.private_key_pem,
        "serial": certificate.serial_hex,
        "notBefore": certificate.not_before.isoformat().replace("+00:00", "Z"),
        "notAfter": certificate.not_after.isoformat().replace("+00:00", "Z"),
        "dnsNames": list(certificate.dns_names),
        "keyType": "ecdsa-p256",
        "profile": "classic",
        "ariCertId": certificate.ari_cert_id,
        "accountUrl": certificate.account_url,
        "orderUrl": certificate.order_url,
        "directoryUrl": "https://acme.test/directory",
    }
    assert data.stages == ["CURRENT", "LATEST"]


def test_an_idempotent_put_writes_nothing(
    emulator: RunningEmulator, oci_clients: OciClients
) -> None:
    store = vault_store(oci_clients)
    certificate = make_certificate()
    store.put(NAME, certificate)
    store.put(NAME, make_certificate())
    before = writes(emulator)
    store.put(NAME, certificate)  # not the CURRENT serial any more: a new version
    newest = make_certificate()
    store.put(NAME, newest)
    assert writes(emulator) == [*before, "UpdateSecret", "UpdateSecret"]
    store.put(NAME, newest)
    vault_store(oci_clients).put(NAME, newest)
    assert writes(emulator) == [*before, "UpdateSecret", "UpdateSecret"]


def test_a_rerun_from_fresh_instances_creates_one_secret(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = make_certificate()
    first = vault_store(renewer_clients(emulator, tmp_path, monkeypatch)).put(NAME, certificate)
    second = vault_store(renewer_clients(emulator, tmp_path, monkeypatch)).put(NAME, certificate)

    assert first == second
    assert len(secrets_in_vault(emulator)) == 1
    assert writes(emulator) == ["CreateSecret"]


def test_the_retry_token_dedups_a_create_whose_answer_was_lost(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first CreateSecret is processed only after the client gave up waiting for it; the
    # SDK's retry and the late original both carry the token derived from name + serial.
    clients = renewer_clients(
        emulator, tmp_path, monkeypatch, retry_attempts=3, retry_seconds=10, timeout=(5.0, 0.5)
    )
    emulator.emulator.faults.add(
        FaultRule.from_json({"operation": "CreateSecret", "times": 1, "latency": 1.5})
    )
    certificate = make_certificate()

    stored = vault_store(clients).put(NAME, certificate)

    deadline = time.monotonic() + 10
    while writes(emulator).count("CreateSecret") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    creates = [e for e in emulator.emulator.requests if e["operation"] == "CreateSecret"]
    assert len(creates) == 2
    assert all(e["status"] == 200 for e in creates)
    assert len({e["retry_token"] for e in creates}) == 1
    assert len(creates[0]["retry_token"]) == 64
    [secret] = secrets_in_vault(emulator)
    assert len(secret["versions"]) == 1
    assert stored.version == 1
    assert vault_store(clients).latest(NAME) == stored


def test_the_25_kb_limit_is_checked_before_any_write(
    emulator: RunningEmulator, oci_clients: OciClients
) -> None:
    store = vault_store(oci_clients)
    certificate = make_certificate()
    _, ca = _ca()
    huge = dataclasses.replace(certificate, fullchain_pem=certificate.fullchain_pem + _pem(ca) * 40)
    size = len(base64.b64encode(certificate_document(huge)))
    assert size > MAX_CONTENT_BYTES

    with pytest.raises(ConfigError, match=rf"certificate shop: .* {size} bytes") as info:
        store.put(NAME, huge)
    assert "25 KB" in str(info.value)
    assert emulator.emulator.operations_called() == []  # not even a lookup

    store.put(NAME, certificate)
    with pytest.raises(ConfigError, match="over the 25600-byte"):
        store.put(NAME, dataclasses.replace(huge, serial_hex="abcdef"))
    assert writes(emulator) == ["CreateSecret"]


def test_a_certificate_close_to_the_limit_is_stored(oci_clients: OciClients) -> None:
    certificate = make_certificate(key_type=KeyType.RSA_4096)
    _, ca = _ca()
    chain = certificate.fullchain_pem + _pem(ca) * 20
    big = dataclasses.replace(certificate, fullchain_pem=chain)
    assert 20_000 < len(base64.b64encode(certificate_document(big))) <= MAX_CONTENT_BYTES
    store = vault_store(oci_clients)
    assert store.latest(NAME) is None
    assert store.put(NAME, big) == store.latest(NAME)


FOREIGN = b"password=hunter2-do-not-echo"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (FOREIGN, "does not hold a certificate written by this renewer"),
        (b"\xff\xfe\x00binary", "does not hold a certificate written by this renewer"),
        (b'["format", "hunter2-do-not-echo"]', "does not hold a certificate"),
        (b'{"format": 7, "x": "hunter2-do-not-echo"}', "has format 7"),
        (b'{"format": "hunter2-do-not-echo"}', "has format unknown"),
        (b'{"format": 1, "fullchain": "hunter2-do-not-echo"}', "field 'dnsNames'"),
    ],
    ids=["text", "binary", "json-list", "newer-format", "bad-format", "missing-fields"],
)
def test_foreign_secret_content_is_a_config_error_without_the_content(
    emulator: RunningEmulator,
    oci_clients: OciClients,
    operator: Clients,
    content: bytes,
    expected: str,
) -> None:
    create_foreign_secret(operator, SECRET, content)
    store = vault_store(oci_clients)

    with pytest.raises(ConfigError, match=expected) as info:
        store.latest(NAME)
    assert SECRET in str(info.value)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        store.put(NAME, make_certificate())
    assert "hunter2" not in str(info.value)
    assert writes(emulator) == ["CreateSecret"]  # the operator's, nothing of ours


def test_a_secret_without_our_tag_is_never_written(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    theirs = make_certificate()
    create_foreign_secret(operator, SECRET, certificate_document(theirs))
    store = vault_store(oci_clients)
    latest = store.latest(NAME)  # reading is harmless
    assert latest is not None
    assert same_certificate(latest, theirs)

    with pytest.raises(ConfigError, match="was not created by this renewer"):
        store.put(NAME, make_certificate())
    with pytest.raises(ConfigError, match="was not created by this renewer"):
        store.prune(NAME, keep=1)
    assert writes(emulator) == ["CreateSecret"]


def test_a_secret_pending_deletion_blocks_before_any_order(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    store = vault_store(oci_clients)
    stored = store.put(NAME, make_certificate())
    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=SECRET).data
    operator.vaults.schedule_secret_deletion(
        summary.id,
        oci.vault.models.ScheduleSecretDeletionDetails(
            time_of_deletion=dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        ),
    )

    # The warm instance's cached OCID answers 404 now: it looks the name up again.
    with pytest.raises(ConfigError, match=r"is PENDING_DELETION.*cancel the deletion"):
        store.latest(NAME)
    fresh = vault_store(oci_clients)
    with pytest.raises(ConfigError, match="is PENDING_DELETION"):
        fresh.latest(NAME)
    with pytest.raises(ConfigError, match="is PENDING_DELETION"):
        fresh.put(NAME, make_certificate())
    assert writes(emulator) == ["CreateSecret"]

    operator.vaults.cancel_secret_deletion(summary.id)
    assert fresh.latest(NAME) == stored


def test_a_name_taken_outside_the_compartment_is_explained(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    # Names are unique per vault; the lookup only sees the configured compartment.
    details = oci.vault.models.CreateSecretDetails(
        compartment_id=TENANCY,
        vault_id=VAULT,
        key_id=KEY,
        secret_name=SECRET,
        secret_content=oci.vault.models.Base64SecretContentDetails(
            content_type="BASE64", content=base64.b64encode(b"elsewhere").decode()
        ),
    )
    operator.vaults.create_secret(details)
    store = vault_store(oci_clients)
    assert store.latest(NAME) is None
    with pytest.raises(ConfigError, match=r"409 Conflict.*already exists in vault") as info:
        store.put(NAME, make_certificate())
    assert "elsewhere" not in str(info.value)
    assert len(secrets_in_vault(emulator)) == 1


def test_prune_schedules_deprecated_versions_with_the_default_window(
    oci_clients: OciClients, operator: Clients
) -> None:
    store = vault_store(oci_clients)
    for _ in range(4):
        store.put(NAME, make_certificate())
    assert store.prune(NAME, keep=1) == [1, 2]
    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=SECRET).data
    versions = {
        v.version_number: v
        for v in oci.pagination.list_call_get_all_results(
            operator.vaults.list_secret_versions, summary.id
        ).data
    }
    assert versions[4].stages == ["CURRENT", "LATEST"]
    assert versions[3].stages == ["PREVIOUS"]
    assert versions[3].time_of_deletion is None
    for number in (1, 2):
        left = versions[number].time_of_deletion - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=29) < left <= dt.timedelta(days=30)


# ------------------------------------------------------------------------------ pending orders


def versions_of(operator: Clients) -> dict[int, Any]:
    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=SECRET, vault_id=VAULT).data
    return {
        v.version_number: v
        for v in oci.pagination.list_call_get_all_results(
            operator.vaults.list_secret_versions, summary.id
        ).data
    }


def test_a_first_pending_order_creates_the_secret_with_it_as_version_1(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    order = pending_order()

    vault_store(oci_clients).save_pending(NAME, order)

    assert writes(emulator) == ["CreateSecret"]
    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=SECRET).data
    secret = operator.vaults.get_secret(summary.id).data
    assert secret.freeform_tags == {"managed-by": MANAGED_BY}
    assert secret.metadata == {"format": "1", "pendingOrder": order.order_url}
    version = versions_of(operator)[1]
    assert version.name == pending_version_name(order.order_url)
    assert version.name.startswith("pending-order-")
    assert version.stages == ["CURRENT", "LATEST"]
    assert bundle_document(operator, summary.id) == {
        "format": 1,
        "kind": "pending-order",
        "privateKey": order.private_key_pem,
        "orderUrl": order.order_url,
        "accountUrl": order.account_url,
        "dnsNames": list(order.dns_names),
        "keyType": "ecdsa-p256",
        "profile": "classic",
        "createdAt": "2026-11-27T12:30:00Z",
    }


def test_a_renewals_pending_order_is_one_pending_version_read_with_one_call(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    store = vault_store(oci_clients)
    certificate = make_certificate()
    store.put(NAME, certificate)
    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=SECRET).data
    metadata = operator.vaults.get_secret(summary.id).data.metadata
    mark = len(emulator.emulator.requests)

    store.save_pending(NAME, pending_order())
    written = emulator.emulator.operations_called()[mark:]
    mark = len(emulator.emulator.requests)
    assert store.load_pending(NAME) is not None
    read = emulator.emulator.operations_called()[mark:]

    assert (written, read) == (["UpdateSecret"], ["GetSecretBundle"])
    assert versions_of(operator)[2].stages == ["PENDING", "LATEST"]
    assert versions_of(operator)[1].stages == ["CURRENT"]
    assert operator.vaults.get_secret(summary.id).data.metadata == metadata  # the certificate's
    # What every reader sees as CURRENT is still the certificate.
    assert bundle_document(operator, summary.id)["serial"] == certificate.serial_hex


def test_recording_the_same_order_twice_adds_one_version(
    emulator: RunningEmulator, oci_clients: OciClients
) -> None:
    # The wire effect of an UpdateSecret the SDK retried after its answer was lost: the second
    # one is refused as a duplicate version name, and the version is already there.
    store = vault_store(oci_clients)
    store.put(NAME, make_certificate())
    order = pending_order()

    store.save_pending(NAME, order)
    store.save_pending(NAME, order)

    found = store.load_pending(NAME)
    assert found is not None
    assert found.version == 2
    assert writes(emulator) == ["CreateSecret", "UpdateSecret", "UpdateSecret"]


def test_closed_pending_orders_are_deleted_after_one_day(
    oci_clients: OciClients, operator: Clients
) -> None:
    store = vault_store(oci_clients)
    for number in range(3):
        store.save_pending(NAME, pending_order(url=f"https://acme.test/order/{number}"))
        store.put(NAME, make_certificate())

    # Records 1, 3 (closed), 5 (PENDING); certificates 2, 4 (PREVIOUS), 6 (CURRENT).
    assert store.prune(NAME, keep=2) == [1, 2, 3]

    versions = versions_of(operator)
    now = dt.datetime.now(dt.UTC)
    for number in (1, 3):
        left = versions[number].time_of_deletion - now
        assert dt.timedelta(days=1) < left <= dt.timedelta(days=1, hours=1)
    assert versions[2].time_of_deletion - now > dt.timedelta(days=29)  # a certificate
    assert versions[5].stages == ["PENDING"]
    assert [versions[n].time_of_deletion for n in (4, 5, 6)] == [None] * 3


def test_no_key_of_a_pending_order_in_debug_logs(
    oci_clients: OciClients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    order = pending_order()
    store = vault_store(oci_clients)

    store.save_pending(NAME, order)
    found = store.load_pending(NAME)

    assert found is not None
    assert order.private_key_pem not in repr(found)
    assert caplog.text
    for line in key_lines(order.private_key_pem):
        assert line not in caplog.text


# ------------------------------------------------------------------------------ accounts


def test_account_store_round_trip_and_reuse_across_instances(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    key = pki.private_key_to_pem(pki.generate_private_key(KeyType.EC_P256))
    store = account_store(oci_clients)
    assert store.load(DIRECTORY) is None

    store.save(DIRECTORY, AccountRecord(private_key_pem=key))
    registered = AccountRecord(private_key_pem=key, account_url="https://acme.test/acct/9")
    store.save(DIRECTORY, registered)
    store.save(DIRECTORY, registered)  # unchanged: no version
    account_store(oci_clients).save(DIRECTORY, registered)

    assert writes(emulator) == ["CreateSecret", "UpdateSecret"]
    assert account_store(oci_clients).load(DIRECTORY) == registered
    [summary] = operator.vaults.list_secrets(COMPARTMENT, name=ACCOUNT_SECRET).data
    assert summary.freeform_tags == {"managed-by": MANAGED_BY}
    assert bundle_document(operator, summary.id) == {
        "format": 1,
        "directoryUrl": DIRECTORY,
        "privateKey": key,
        "accountUrl": "https://acme.test/acct/9",
    }
    assert "hunter" not in repr(store)


def test_account_secrets_of_two_directories_sharing_a_name_are_not_confused(
    oci_clients: OciClients,
) -> None:
    key = pki.private_key_to_pem(pki.generate_private_key(KeyType.EC_P256))
    store = account_store(oci_clients)
    store.save("https://a.b/dir", AccountRecord(private_key_pem=key))
    with pytest.raises(ConfigError, match=re.escape("holds the ACME account of https://a.b/dir")):
        store.load("https://a-b/dir")


# ------------------------------------------------------------------------------ EAB


EAB_KEY = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


@pytest.mark.parametrize(
    "content",
    [
        EAB_KEY.encode(),
        f"  {EAB_KEY}\n".encode(),
        f"{EAB_KEY[:32]}\n{EAB_KEY[32:]}\n".encode(),
        base64.urlsafe_b64decode(EAB_KEY + "=" * (-len(EAB_KEY) % 4)),  # the raw key bytes
    ],
    ids=["plain", "padded-with-whitespace", "wrapped", "raw-bytes"],
)
def test_eab_key_reader(oci_clients: OciClients, operator: Clients, content: bytes) -> None:
    secret_id = create_foreign_secret(operator, "eab-hmac-key", content)
    assert read_eab_hmac_key(oci_clients, secret_id) == EAB_KEY


def test_eab_key_in_standard_base64_alphabet_is_normalized(
    oci_clients: OciClients, operator: Clients
) -> None:
    raw = bytes(range(250, 256)) * 6
    standard = base64.b64encode(raw).decode()
    assert "+" in standard or "/" in standard
    secret_id = create_foreign_secret(operator, "eab-std", standard.encode())
    assert read_eab_hmac_key(oci_clients, secret_id) == base64.urlsafe_b64encode(raw).decode(
        "ascii"
    ).rstrip("=")


def test_eab_key_errors_name_the_ocid_and_never_the_content(
    oci_clients: OciClients, operator: Clients
) -> None:
    missing = "ocid1.vaultsecret.oc1.phx.doesnotexist"
    with pytest.raises(ConfigError, match=missing):
        read_eab_hmac_key(oci_clients, missing)

    blank = create_foreign_secret(operator, "eab-blank", b"  \n")
    with pytest.raises(ConfigError, match=f"{blank} .*is empty"):
        read_eab_hmac_key(oci_clients, blank)

    wrong = create_foreign_secret(operator, "eab-wrong", b"hunter2 is my password!")
    with pytest.raises(ConfigError, match=f"{wrong} does not hold an EAB HMAC key") as info:
        read_eab_hmac_key(oci_clients, wrong)
    assert "hunter2" not in str(info.value)


# ------------------------------------------------------------------------------ authorization


@pytest.mark.parametrize("fixture_data", [with_policies(RENEWER_POLICIES)], indirect=True)
def test_the_renewer_policies_are_enough(
    emulator: RunningEmulator, oci_clients: OciClients, operator: Clients
) -> None:
    store = vault_store(oci_clients)
    stored = [store.put(NAME, make_certificate()) for _ in range(4)]
    assert store.latest(NAME) == stored[-1]
    assert store.get(NAME, 1) == stored[0]
    assert store.prune(NAME, keep=2) == [1, 2]

    key = pki.private_key_to_pem(pki.generate_private_key(KeyType.EC_P256))
    accounts = account_store(oci_clients)
    accounts.save(DIRECTORY, AccountRecord(private_key_pem=key, account_url="https://a/1"))
    assert accounts.load(DIRECTORY) == AccountRecord(key, "https://a/1")

    eab = create_foreign_secret(operator, "eab-hmac-key", EAB_KEY.encode())
    assert read_eab_hmac_key(oci_clients, eab) == EAB_KEY
    renewer_id = emulator.tenancy.principals["renewer"].id
    assert any(e["principal"] == renewer_id for e in emulator.emulator.requests)


@pytest.mark.parametrize(
    "fixture_data",
    [with_policies([s for s in RENEWER_POLICIES if "use keys" not in s])],
    indirect=True,
)
def test_without_use_keys_the_create_is_refused_with_a_policy_hint(
    emulator: RunningEmulator, oci_clients: OciClients
) -> None:
    store = vault_store(oci_clients)
    with pytest.raises(ConfigError, match="create Vault secret acme-shop") as info:
        store.put(NAME, make_certificate())
    message = str(info.value)
    assert "404 NotAuthorizedOrNotFound" in message
    assert "opc-request-id" in message
    assert f"'use keys' for key {KEY}" in message
    assert "'use vaults'" in message
    assert "'manage secret-family'" in message
    assert secrets_in_vault(emulator) == []


# ------------------------------------------------------------------------------ logs


def test_no_key_material_or_eab_key_in_debug_logs(
    oci_clients: OciClients, operator: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    eab = create_foreign_secret(operator, "eab-hmac-key", EAB_KEY.encode())
    certificate = make_certificate()
    account_key = pki.private_key_to_pem(pki.generate_private_key(KeyType.EC_P256))

    store = vault_store(oci_clients)
    stored = store.put(NAME, certificate)
    assert store.latest(NAME) == stored
    store.put(NAME, certificate)
    accounts = account_store(oci_clients)
    accounts.save(DIRECTORY, AccountRecord(private_key_pem=account_key, account_url="https://a/1"))
    accounts.load(DIRECTORY)
    read_eab_hmac_key(oci_clients, eab)

    logged = caplog.text
    assert "vault certificate stored cert=shop" in logged  # the INFO line is there
    assert certificate.serial_hex in logged
    assert "PRIVATE KEY" not in logged
    for line in key_lines(certificate.private_key_pem) + key_lines(account_key):
        assert line not in logged
    assert EAB_KEY not in logged
    assert EAB_KEY[:16] not in logged
    encoded = base64.b64encode(certificate_document(certificate)).decode()
    assert encoded[:40] not in logged
    assert "privateKey" not in logged
    assert "private_key_pem" not in repr(stored)


# ------------------------------------------------------------------------------ check (rule 6)

OTHER_VAULT = "ocid1.vault.oc1.phx.othervault"
RSA_KEY = "ocid1.key.oc1.phx.rsakey"
DISABLED_KEY = "ocid1.key.oc1.phx.disabledkey"
OTHER_KEY = "ocid1.key.oc1.phx.otherkey"
KEYS_FIXTURE: dict[str, Any] = {
    **FIXTURE,
    "vaults": [
        {
            "id": VAULT,
            "compartment": "apps",
            "keys": [
                {"id": KEY},
                {"id": RSA_KEY, "algorithm": "RSA"},
                {"id": DISABLED_KEY, "state": "DISABLED"},
            ],
        },
        {"id": OTHER_VAULT, "compartment": "apps", "keys": [{"id": OTHER_KEY}]},
    ],
}


def store_with(clients: OciClients, *, vault_id: str = VAULT, key_id: str = KEY):
    return VaultCertificateStore(
        clients, compartment_id=COMPARTMENT, vault_id=vault_id, key_id=key_id
    )


@pytest.mark.parametrize("fixture_data", [KEYS_FIXTURE], indirect=True)
def test_check_reads_the_vault_and_the_key_once_and_writes_nothing(
    emulator: RunningEmulator, oci_clients: OciClients
) -> None:
    store = store_with(oci_clients)
    mark = len(emulator.emulator.requests)
    store.check()
    store.check()
    seen = [(e["method"], e["operation"]) for e in emulator.emulator.requests[mark:]]
    assert seen == [("GET", "GetVault"), ("GET", "GetKey")]


@pytest.mark.parametrize("fixture_data", [KEYS_FIXTURE], indirect=True)
@pytest.mark.parametrize(
    ("vault_id", "key_id", "expected"),
    [
        ("ocid1.vault.oc1.phx.nosuchvault", KEY, r"read vault \S+nosuchvault \(oci\.vaultId\)"),
        (VAULT, "ocid1.key.oc1.phx.nosuchkey", r"key \S+nosuchkey \(oci\.keyId\).*404"),
        (VAULT, RSA_KEY, r"rsakey \(oci\.keyId\) is an RSA key; Vault secrets need .*AES"),
        (VAULT, DISABLED_KEY, r"disabledkey \(oci\.keyId\) is DISABLED, not ENABLED"),
        (VAULT, OTHER_KEY, r"otherkey \(oci\.keyId\) belongs to vault \S+othervault"),
    ],
    ids=["unknown-vault", "unknown-key", "rsa-key", "disabled-key", "key-of-another-vault"],
)
def test_check_names_what_is_wrong_with_the_vault_or_key(
    emulator: RunningEmulator, oci_clients: OciClients, vault_id: str, key_id: str, expected: str
) -> None:
    store = store_with(oci_clients, vault_id=vault_id, key_id=key_id)
    with pytest.raises(ConfigError, match=expected):
        store.check()
    assert writes(emulator) == []


@pytest.mark.parametrize(
    "fixture_data",
    [{**with_policies(RENEWER_POLICIES), "vaults": KEYS_FIXTURE["vaults"]}],
    indirect=True,
)
def test_check_passes_with_the_renewer_policies(oci_clients: OciClients) -> None:
    store_with(oci_clients).check()
