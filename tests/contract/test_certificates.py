"""Contract tests of the emulated OCI Certificates service, driven by the real ``oci`` SDK.

Every test that takes ``clients`` runs twice: signed with an operator's API key and with a
function's resource principal. Certificates and keys are generated per run with
``cryptography`` (nothing is committed).
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import oci
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from sandbox.oci_emulator import certificates as certificates_module
from sandbox.oci_emulator.app import build_emulator
from sandbox.oci_emulator.core import Principal
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    Clients,
    RunningEmulator,
    assert_clean_model,
    make_clients,
)

pytestmark = pytest.mark.integration

OTHER_COMPARTMENT = "ocid1.compartment.oc1..contractother"
models = oci.certificates_management.models
bundle_models = oci.certificates.models


# ---------------------------------------------------------------------- certificate factory


@functools.cache
def _key(kind: str, slot: int = 0) -> Any:  # slot: distinct keys of one kind
    """A private key of ``kind``; cached per (kind, slot) to keep the suite fast."""
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def _pem_key(key: Any, passphrase: str | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


def _pem_cert(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Issued:
    """An issued leaf: the three PEMs an import takes, and the parsed leaf."""

    certificate_pem: str
    chain_pem: str
    key_pem: str
    leaf: x509.Certificate

    def config(self, **extra: Any) -> models.CreateCertificateByImportingConfigDetails:
        return models.CreateCertificateByImportingConfigDetails(
            certificate_pem=self.certificate_pem,
            cert_chain_pem=self.chain_pem,
            private_key_pem=self.key_pem,
            **extra,
        )

    def update_config(self, **extra: Any) -> models.UpdateCertificateByImportingConfigDetails:
        return models.UpdateCertificateByImportingConfigDetails(
            certificate_pem=self.certificate_pem,
            cert_chain_pem=self.chain_pem,
            private_key_pem=self.key_pem,
            **extra,
        )


class TestCA:
    """A throwaway CA (self-signed root) that issues leaves, in memory only."""

    __test__ = False  # not a test class

    def __init__(self, kind: str = "rsa2048", *, slot: int = 100) -> None:
        self.key = _key(kind, slot)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Contract CA {kind}")])
        start = datetime.now(UTC) - timedelta(days=1)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        return _pem_cert(self.certificate)

    def issue(
        self,
        *names: str,
        kind: str = "rsa2048",
        slot: int = 0,
        days: int = 90,
        hash_algorithm: hashes.HashAlgorithm | None = None,
        passphrase: str | None = None,
    ) -> Issued:
        names = names or ("shop.example.com",)
        key = _key(kind, slot)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .sign(self.key, hash_algorithm or hashes.SHA256())
        )
        return Issued(_pem_cert(leaf), self.pem, _pem_key(key, passphrase), leaf)


@functools.cache
def rsa_ca() -> TestCA:
    return TestCA("rsa2048")


def octets(serial: int) -> str:
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return " ".join(f"{byte:02X}" for byte in raw)


# ---------------------------------------------------------------------- helpers


def create(
    clients: Clients,
    issued: Issued,
    name: str = "shop",
    compartment: str = COMPARTMENT,
    **kwargs: Any,
) -> oci.response.Response:
    details = models.CreateCertificateDetails(
        name=name,
        compartment_id=compartment,
        certificate_config=issued.config(),
        **kwargs,
    )
    return clients.certificates_management.create_certificate(details)


def update(clients: Clients, certificate_id: str, **kwargs: Any) -> oci.response.Response:
    return clients.certificates_management.update_certificate(
        certificate_id, models.UpdateCertificateDetails(**kwargs)
    )


def stages_by_version(clients: Clients, certificate_id: str) -> dict[int, list[str]]:
    items = clients.certificates_management.list_certificate_versions(certificate_id).data.items
    assert_clean_model(items)
    return {v.version_number: v.stages for v in items}


def service_error(call: Any, *args: Any, **kwargs: Any) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


# ---------------------------------------------------------------------- import, get, bundles


def test_import_get_and_bundles(clients: Clients) -> None:
    issued = rsa_ca().issue("shop.example.com", "www.shop.example.com")
    created = create(clients, issued, description="storefront", freeform_tags={"app": "shop"})
    cert = created.data
    assert_clean_model(cert)
    assert isinstance(cert, models.Certificate)
    assert cert.id.startswith("ocid1.certificate.oc1.")
    assert created.headers["etag"]
    assert cert.name == "shop"
    assert cert.compartment_id == COMPARTMENT
    assert cert.description == "storefront"
    assert cert.freeform_tags == {"app": "shop"}
    assert cert.lifecycle_state == "ACTIVE"
    assert cert.config_type == "IMPORTED"
    assert cert.key_algorithm == "RSA2048"
    assert cert.signature_algorithm == "SHA256_WITH_RSA"
    assert cert.subject.common_name == "shop.example.com"
    current = cert.current_version
    assert current.certificate_id == cert.id
    assert current.version_number == 1
    assert current.stages == ["CURRENT", "LATEST"]
    assert current.serial_number == octets(issued.leaf.serial_number)
    assert current.validity.time_of_validity_not_before == issued.leaf.not_valid_before_utc
    assert current.validity.time_of_validity_not_after == issued.leaf.not_valid_after_utc
    assert [(s.type, s.value) for s in current.subject_alternative_names] == [
        ("DNS", "shop.example.com"),
        ("DNS", "www.shop.example.com"),
    ]

    got = clients.certificates_management.get_certificate(cert.id)
    assert_clean_model(got.data)
    assert got.data.id == cert.id
    assert got.headers["etag"] == created.headers["etag"]

    public = clients.certificates.get_certificate_bundle(cert.id).data
    assert_clean_model(public)
    assert isinstance(public, bundle_models.CertificateBundlePublicOnly)
    assert public.certificate_bundle_type == "CERTIFICATE_CONTENT_PUBLIC_ONLY"
    assert not hasattr(public, "private_key_pem")
    assert public.certificate_pem == issued.certificate_pem
    assert public.cert_chain_pem == issued.chain_pem
    assert public.certificate_name == "shop"
    assert public.version_number == 1
    assert public.stages == ["CURRENT", "LATEST"]
    assert public.serial_number == current.serial_number

    private = clients.certificates.get_certificate_bundle(
        cert.id, certificate_bundle_type="CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"
    ).data
    assert_clean_model(private)
    assert isinstance(private, bundle_models.CertificateBundleWithPrivateKey)
    assert private.private_key_pem == issued.key_pem
    assert private.private_key_pem_passphrase is None


def test_clean_model_check_catches_unknown_enums() -> None:
    drifted = models.Certificate(key_algorithm="RSA3072")  # not in the SDK enum
    with pytest.raises(pytest.fail.Exception, match="UNKNOWN_ENUM_VALUE"):
        assert_clean_model(drifted)  # so the checks below would catch a drifted enum


ALGORITHM_CASES = [  # (CA key, leaf key, hash) -> (keyAlgorithm, signatureAlgorithm)
    ("rsa2048", "rsa2048", hashes.SHA256(), "RSA2048", "SHA256_WITH_RSA"),
    ("p256", "p256", hashes.SHA256(), "ECDSA_P256", "SHA256_WITH_ECDSA"),
    ("p384", "p384", hashes.SHA384(), "ECDSA_P384", "SHA384_WITH_ECDSA"),
    ("rsa2048", "p256", hashes.SHA512(), "ECDSA_P256", "SHA512_WITH_RSA"),
]


def test_key_and_signature_algorithms(clients: Clients) -> None:
    for index, (ca_kind, leaf_kind, hash_algorithm, key_alg, signature_alg) in enumerate(
        ALGORITHM_CASES
    ):
        issued = TestCA(ca_kind).issue(kind=leaf_kind, hash_algorithm=hash_algorithm)
        cert = create(clients, issued, name=f"algo-{index}").data
        assert_clean_model(cert)
        assert (cert.key_algorithm, cert.signature_algorithm) == (key_alg, signature_alg)
        listed = clients.certificates_management.list_certificates(name=f"algo-{index}").data
        assert_clean_model(listed)
        assert listed.items[0].key_algorithm == key_alg


def test_encrypted_private_key(clients: Clients, emulator: RunningEmulator) -> None:
    passphrase = secrets.token_urlsafe(12)
    issued = rsa_ca().issue(passphrase=passphrase)
    details = models.CreateCertificateDetails(
        name="locked",
        compartment_id=COMPARTMENT,
        certificate_config=issued.config(private_key_pem_passphrase=passphrase),
    )
    cert = clients.certificates_management.create_certificate(details).data
    bundle = clients.certificates.get_certificate_bundle(
        cert.id, certificate_bundle_type="CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"
    ).data
    assert bundle.private_key_pem == issued.key_pem
    assert bundle.private_key_pem_passphrase == passphrase
    # The data plane gets a usable, unencrypted key.
    material = emulator.emulator.services["certificates"].current_material(cert.id)
    assert material is not None
    key = serialization.load_pem_private_key(material[1].encode(), password=None)
    assert key.public_key().public_numbers() == issued.leaf.public_key().public_numbers()


# ---------------------------------------------------------------------- versions and stages


def test_update_rotates_current_and_bundles_follow(clients: Clients) -> None:
    ca = rsa_ca()
    first, second = ca.issue(slot=0), ca.issue(slot=1)
    cert = create(clients, first).data

    updated = update(clients, cert.id, certificate_config=second.update_config()).data
    assert_clean_model(updated)
    assert updated.current_version.version_number == 2
    assert updated.current_version.stages == ["CURRENT", "LATEST"]
    assert stages_by_version(clients, cert.id) == {1: ["PREVIOUS"], 2: ["CURRENT", "LATEST"]}

    bundles = clients.certificates
    assert bundles.get_certificate_bundle(cert.id).data.certificate_pem == second.certificate_pem
    previous = bundles.get_certificate_bundle(cert.id, stage="PREVIOUS").data
    assert previous.version_number == 1
    assert previous.certificate_pem == first.certificate_pem
    by_number = bundles.get_certificate_bundle(cert.id, version_number=1).data
    assert by_number.certificate_pem == first.certificate_pem
    assert by_number.stages == ["PREVIOUS"]
    latest = bundles.get_certificate_bundle(cert.id, stage="LATEST").data
    assert latest.version_number == 2
    missing = service_error(bundles.get_certificate_bundle, cert.id, stage="PENDING")
    assert (missing.status, missing.code) == (404, "NotAuthorizedOrNotFound")

    version = clients.certificates_management.get_certificate_version(cert.id, 1)
    assert_clean_model(version.data)
    assert isinstance(version.data, models.CertificateVersion)
    assert version.data.serial_number == octets(first.leaf.serial_number)


def test_pending_version_promotion_and_version_deletion(clients: Clients) -> None:
    ca = rsa_ca()
    v1, v2, v3 = ca.issue(slot=0), ca.issue(slot=1), ca.issue(slot=2)
    mgmt = clients.certificates_management
    cert = create(clients, v1).data
    update(clients, cert.id, certificate_config=v2.update_config())
    staged = update(
        clients, cert.id, certificate_config=v3.update_config(stage="PENDING", version_name="v3")
    ).data
    assert staged.current_version.version_number == 2  # PENDING is not in use
    assert stages_by_version(clients, cert.id) == {
        1: ["PREVIOUS"],
        2: ["CURRENT"],
        3: ["PENDING", "LATEST"],
    }
    pending = clients.certificates.get_certificate_bundle(cert.id, stage="PENDING").data
    assert pending.version_name == "v3"
    named = clients.certificates.get_certificate_bundle(cert.id, certificate_version_name="v3")
    assert named.data.version_number == 3

    promoted = update(clients, cert.id, current_version_number=3).data
    assert promoted.current_version.version_number == 3
    assert stages_by_version(clients, cert.id) == {
        1: ["DEPRECATED"],
        2: ["PREVIOUS"],
        3: ["CURRENT", "LATEST"],
    }
    listed = mgmt.list_certificate_versions(cert.id, sort_order="DESC").data.items
    assert [v.version_number for v in listed] == [3, 2, 1]
    assert [v.version_number for v in mgmt.list_certificate_versions(cert.id, version_number=2)
            .data.items] == [2]  # fmt: skip

    # Only DEPRECATED versions can be scheduled for deletion.
    for number, stage in ((3, "CURRENT"), (2, "PREVIOUS")):
        error = service_error(
            mgmt.schedule_certificate_version_deletion,
            cert.id,
            number,
            models.ScheduleCertificateVersionDeletionDetails(time_of_deletion=in_days(7)),
        )
        assert (error.status, error.code) == (409, "IncorrectState")
        assert stage in error.message
    # A DEPRECATED version cannot be made current again.
    error = service_error(update, clients, cert.id, current_version_number=1)
    assert (error.status, error.code) == (409, "IncorrectState")

    when = in_days(7).replace(microsecond=0)
    mgmt.schedule_certificate_version_deletion(
        cert.id, 1, models.ScheduleCertificateVersionDeletionDetails(time_of_deletion=when)
    )
    old = mgmt.get_certificate_version(cert.id, 1).data
    assert old.time_of_deletion == when
    assert old.stages == ["DEPRECATED"]
    again = service_error(
        mgmt.schedule_certificate_version_deletion,
        cert.id,
        1,
        models.ScheduleCertificateVersionDeletionDetails(),
    )
    assert (again.status, again.code) == (409, "IncorrectState")
    bundle_versions = clients.certificates.list_certificate_bundle_versions(cert.id).data
    assert_clean_model(bundle_versions)
    assert bundle_versions.items[0].time_of_deletion == when
    assert [v.version_number for v in bundle_versions.items] == [1, 2, 3]

    mgmt.cancel_certificate_version_deletion(cert.id, 1)
    assert mgmt.get_certificate_version(cert.id, 1).data.time_of_deletion is None


def test_new_pending_version_deprecates_older_pending(clients: Clients) -> None:
    ca = rsa_ca()
    cert = create(clients, ca.issue(slot=0)).data
    update(clients, cert.id, certificate_config=ca.issue(slot=1).update_config(stage="PENDING"))
    update(clients, cert.id, certificate_config=ca.issue(slot=2).update_config(stage="PENDING"))
    assert stages_by_version(clients, cert.id) == {
        1: ["CURRENT"],
        2: ["DEPRECATED"],
        3: ["PENDING", "LATEST"],
    }


def test_version_deletion_takes_effect_at_its_time(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = rsa_ca()
    mgmt = clients.certificates_management
    cert = create(clients, ca.issue(slot=0)).data
    for slot in (1, 2):
        update(clients, cert.id, certificate_config=ca.issue(slot=slot).update_config())
    early = service_error(
        mgmt.schedule_certificate_version_deletion,
        cert.id,
        1,
        models.ScheduleCertificateVersionDeletionDetails(time_of_deletion=in_days(0.5)),
    )
    assert (early.status, early.code) == (400, "InvalidParameter")
    mgmt.schedule_certificate_version_deletion(
        cert.id,
        1,
        models.ScheduleCertificateVersionDeletionDetails(),  # default: 30 days
    )
    deadline = mgmt.get_certificate_version(cert.id, 1).data.time_of_deletion
    assert timedelta(days=29) < deadline - datetime.now(UTC) <= timedelta(days=30)

    later = deadline.timestamp() + 1
    monkeypatch.setattr(certificates_module, "now", lambda: later)
    assert stages_by_version(clients, cert.id) == {2: ["PREVIOUS"], 3: ["CURRENT", "LATEST"]}
    gone = service_error(mgmt.get_certificate_version, cert.id, 1)
    assert (gone.status, gone.code) == (404, "NotAuthorizedOrNotFound")
    # Version numbers are never reused.
    nxt = update(clients, cert.id, certificate_config=ca.issue(slot=3).update_config()).data
    assert nxt.current_version.version_number == 4


def test_if_match_is_honoured(clients: Clients) -> None:
    ca = rsa_ca()
    created = create(clients, ca.issue(slot=0))
    etag = created.headers["etag"]
    mgmt = clients.certificates_management
    changed = mgmt.update_certificate(
        created.data.id, models.UpdateCertificateDetails(description="one"), if_match=etag
    )
    assert changed.headers["etag"] != etag
    stale = service_error(
        mgmt.update_certificate,
        created.data.id,
        models.UpdateCertificateDetails(description="two"),
        if_match=etag,
    )
    assert (stale.status, stale.code) == (409, "Conflict")
    assert mgmt.get_certificate(created.data.id).data.description == "one"


def test_update_rejects_current_version_number_with_other_fields(clients: Clients) -> None:
    cert = create(clients, rsa_ca().issue()).data
    error = service_error(update, clients, cert.id, current_version_number=1, description="x")
    assert (error.status, error.code) == (400, "InvalidParameter")
    error = service_error(update, clients, cert.id, current_version_number=9)
    assert (error.status, error.code) == (400, "InvalidParameter")


def test_current_material_follows_current_version(
    clients: Clients, emulator: RunningEmulator
) -> None:
    service = emulator.emulator.services["certificates"]
    ca = rsa_ca()
    first, second, third = ca.issue(slot=0), ca.issue(slot=1), ca.issue(slot=2)
    cert = create(clients, first).data
    assert service.current_material(cert.id) == (
        first.certificate_pem + first.chain_pem,
        first.key_pem,
    )
    update(clients, cert.id, certificate_config=second.update_config())
    assert service.current_material(cert.id) == (
        second.certificate_pem + second.chain_pem,
        second.key_pem,
    )
    update(clients, cert.id, certificate_config=third.update_config(stage="PENDING"))
    assert service.current_material(cert.id)[0].startswith(second.certificate_pem)
    update(clients, cert.id, current_version_number=3)
    assert service.current_material(cert.id)[0].startswith(third.certificate_pem)
    update(clients, cert.id, current_version_number=2)  # roll back to PREVIOUS
    assert service.current_material(cert.id)[0].startswith(second.certificate_pem)
    assert service.current_material("ocid1.certificate.oc1.phx.missing") is None


# ---------------------------------------------------------------------- refusals


def _bad_import(case: str) -> dict[str, Any]:
    """CreateCertificateByImportingConfigDetails kwargs broken the way ``case`` says."""
    good = rsa_ca().issue()
    config: dict[str, Any] = {
        "certificate_pem": good.certificate_pem,
        "cert_chain_pem": good.chain_pem,
        "private_key_pem": good.key_pem,
    }
    encrypted = _pem_key(_key("rsa2048", 0), "pw")
    changes: dict[str, dict[str, Any]] = {
        "mismatched key": {"private_key_pem": _pem_key(_key("rsa2048", 7))},
        "bad certificate PEM": {
            "certificate_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"
        },
        "bad chain PEM": {"cert_chain_pem": "not a pem"},
        "bad key PEM": {
            "private_key_pem": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"
        },
        "two certificates": {"certificate_pem": good.certificate_pem + good.chain_pem},
        "chain did not issue the leaf": {"cert_chain_pem": TestCA("p256", slot=101).pem},
        "encrypted key without passphrase": {"private_key_pem": encrypted},
        "wrong passphrase": {"private_key_pem": encrypted, "private_key_pem_passphrase": "no"},
        "passphrase for a plain key": {"private_key_pem_passphrase": "pw"},
        "missing private key": {"private_key_pem": None},
    }
    if case == "ed25519 key":
        leaf = TestCA("p256", slot=102).issue(kind="ed25519")
        return {
            "certificate_pem": leaf.certificate_pem,
            "cert_chain_pem": leaf.chain_pem,
            "private_key_pem": leaf.key_pem,
        }
    if case == "rsa 1024 key":
        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused
        leaf = rsa_ca().issue()
        forged = (
            x509.CertificateBuilder()
            .subject_name(leaf.leaf.subject)
            .issuer_name(rsa_ca().certificate.subject)
            .public_key(small.public_key())
            .serial_number(1)
            .not_valid_before(leaf.leaf.not_valid_before_utc)
            .not_valid_after(leaf.leaf.not_valid_after_utc)
            .sign(rsa_ca().key, hashes.SHA256())
        )
        return {**config, "certificate_pem": _pem_cert(forged), "private_key_pem": _pem_key(small)}
    return {**config, **changes[case]}


INVALID_IMPORTS = [  # (case, a phrase the 400 message must contain)
    ("mismatched key", "does not match the public key"),
    ("bad certificate PEM", "certificatePem is not a valid PEM"),
    ("bad chain PEM", "certChainPem is not a valid PEM"),
    ("bad key PEM", "privateKeyPem is not a valid PEM"),
    ("two certificates", "exactly one certificate"),
    ("chain did not issue the leaf", "certChainPem does not start with"),
    ("encrypted key without passphrase", "privateKeyPemPassphrase"),
    ("wrong passphrase", "passphrase"),
    ("passphrase for a plain key", "privateKeyPemPassphrase"),
    ("ed25519 key", "key algorithm is not supported"),
    ("rsa 1024 key", "key algorithm is not supported"),
    ("missing private key", "privateKeyPem is required"),
]


def test_invalid_material_is_rejected(clients: Clients) -> None:
    for case, phrase in INVALID_IMPORTS:
        details = models.CreateCertificateDetails(
            name="bad",
            compartment_id=COMPARTMENT,
            certificate_config=models.CreateCertificateByImportingConfigDetails(
                **_bad_import(case)
            ),
        )
        error = service_error(clients.certificates_management.create_certificate, details)
        assert error.status == 400, case
        assert error.code in ("InvalidParameter", "MissingParameter"), case
        assert phrase in error.message, (case, error.message)
        assert "BEGIN" not in error.message, case  # no PEM echoed back
    listed = clients.certificates_management.list_certificates(compartment_id=COMPARTMENT)
    assert listed.data.items == []


def test_update_with_bad_material_changes_nothing(clients: Clients) -> None:
    issued = rsa_ca().issue(slot=0)
    created = create(clients, issued)
    bad = models.UpdateCertificateByImportingConfigDetails(
        certificate_pem=issued.certificate_pem,
        cert_chain_pem=issued.chain_pem,
        private_key_pem=_pem_key(_key("rsa2048", 7)),
    )
    error = service_error(
        update, clients, created.data.id, certificate_config=bad, description="changed"
    )
    assert (error.status, error.code) == (400, "InvalidParameter")
    after = clients.certificates_management.get_certificate(created.data.id)
    assert after.headers["etag"] == created.headers["etag"]
    assert after.data.description is None
    assert stages_by_version(clients, created.data.id) == {1: ["CURRENT", "LATEST"]}


def test_other_config_types_are_not_emulated(clients: Clients) -> None:
    configs = {
        "ISSUED_BY_INTERNAL_CA": models.CreateCertificateIssuedByInternalCaConfigDetails(
            issuer_certificate_authority_id="ocid1.certificateauthority.oc1..ca",
            subject=models.CertificateSubject(common_name="shop.example.com"),
            certificate_profile_type="TLS_SERVER",
        ),
        "MANAGED_EXTERNALLY_ISSUED_BY_INTERNAL_CA": (
            models.CreateCertificateManagedExternallyIssuedByInternalCaConfigDetails(
                issuer_certificate_authority_id="ocid1.certificateauthority.oc1..ca",
                csr_pem="-----BEGIN CERTIFICATE REQUEST-----",
            )
        ),
    }
    for config_type, config in configs.items():
        details = models.CreateCertificateDetails(
            name="internal", compartment_id=COMPARTMENT, certificate_config=config
        )
        error = service_error(clients.certificates_management.create_certificate, details)
        assert (error.status, error.code) == (400, "InvalidParameter")
        assert config_type in error.message
        assert "only supports IMPORTED" in error.message


def test_names_are_unique_per_compartment(clients: Clients) -> None:
    ca = rsa_ca()
    create(clients, ca.issue(slot=0), name="shop")
    duplicate = service_error(create, clients, ca.issue(slot=1), name="shop")
    assert (duplicate.status, duplicate.code) == (409, "Conflict")
    elsewhere = create(clients, ca.issue(slot=1), name="shop", compartment=OTHER_COMPARTMENT)
    assert elsewhere.data.compartment_id == OTHER_COMPARTMENT
    bad_name = service_error(create, clients, ca.issue(slot=2), name="shop/www")
    assert (bad_name.status, bad_name.code) == (400, "InvalidParameter")


def test_version_names_are_unique_per_certificate(clients: Clients) -> None:
    ca = rsa_ca()
    details = models.CreateCertificateDetails(
        name="shop",
        compartment_id=COMPARTMENT,
        certificate_config=ca.issue(slot=0).config(version_name="2025-01"),
    )
    cert = clients.certificates_management.create_certificate(details).data
    assert cert.current_version.version_name == "2025-01"
    error = service_error(
        update,
        clients,
        cert.id,
        certificate_config=ca.issue(slot=1).update_config(version_name="2025-01"),
    )
    assert (error.status, error.code) == (409, "Conflict")


def test_unknown_certificate_is_not_found(clients: Clients) -> None:
    missing = "ocid1.certificate.oc1.phx.doesnotexist"
    for call in (
        clients.certificates_management.get_certificate,
        clients.certificates_management.list_certificate_versions,
        clients.certificates.get_certificate_bundle,
        clients.certificates.list_certificate_bundle_versions,
    ):
        error = service_error(call, missing)
        assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


# ---------------------------------------------------------------------- listing, deletion, retry


def test_list_filters_and_pages(clients: Clients) -> None:
    ca = rsa_ca()
    for index, name in enumerate(("alpha", "bravo", "charlie")):
        create(clients, ca.issue(slot=index), name=name)
    create(clients, ca.issue(slot=3), name="delta", compartment=OTHER_COMPARTMENT)
    mgmt = clients.certificates_management

    newest_first = mgmt.list_certificates(compartment_id=COMPARTMENT).data.items
    assert [c.name for c in newest_first] == ["charlie", "bravo", "alpha"]
    assert isinstance(newest_first[0], models.CertificateSummary)
    assert newest_first[0].current_version_summary.stages == ["CURRENT", "LATEST"]
    assert_clean_model(newest_first)

    first = mgmt.list_certificates(compartment_id=COMPARTMENT, sort_by="NAME", limit=2)
    assert [c.name for c in first.data.items] == ["alpha", "bravo"]
    assert first.has_next_page
    second = mgmt.list_certificates(
        compartment_id=COMPARTMENT, sort_by="NAME", limit=2, page=first.next_page
    )
    assert [c.name for c in second.data.items] == ["charlie"]
    assert not second.has_next_page
    everything = oci.pagination.list_call_get_all_results(
        mgmt.list_certificates, compartment_id=COMPARTMENT, limit=1
    ).data
    assert len(everything) == 3

    by_name = mgmt.list_certificates(compartment_id=COMPARTMENT, name="bravo").data.items
    assert [c.name for c in by_name] == ["bravo"]
    whole_tenancy = mgmt.list_certificates(sort_by="NAME").data.items
    assert [c.name for c in whole_tenancy] == ["alpha", "bravo", "charlie", "delta"]
    assert (
        mgmt.list_certificates(
            compartment_id=COMPARTMENT, lifecycle_state="PENDING_DELETION"
        ).data.items
        == []
    )


def test_certificate_deletion_is_scheduled_and_cancellable(
    clients: Clients, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = rsa_ca()
    mgmt = clients.certificates_management
    cert = create(clients, ca.issue(slot=0)).data
    when = in_days(3).replace(microsecond=0)
    mgmt.schedule_certificate_deletion(
        cert.id, models.ScheduleCertificateDeletionDetails(time_of_deletion=when)
    )
    pending = mgmt.get_certificate(cert.id).data
    assert_clean_model(pending)
    assert pending.lifecycle_state == "PENDING_DELETION"
    assert pending.time_of_deletion == when
    # Still holds its name, refuses updates, still serves.
    assert service_error(create, clients, ca.issue(slot=1)).status == 409
    assert service_error(update, clients, cert.id, description="x").code == "IncorrectState"
    assert clients.certificates.get_certificate_bundle(cert.id).data.version_number == 1

    mgmt.cancel_certificate_deletion(cert.id)
    assert mgmt.get_certificate(cert.id).data.lifecycle_state == "ACTIVE"
    assert service_error(mgmt.cancel_certificate_deletion, cert.id).code == "IncorrectState"

    mgmt.schedule_certificate_deletion(cert.id, models.ScheduleCertificateDeletionDetails())
    deadline = mgmt.get_certificate(cert.id).data.time_of_deletion.timestamp()
    monkeypatch.setattr(certificates_module, "now", lambda: deadline + 1)
    assert service_error(mgmt.get_certificate, cert.id).status == 404
    assert emulator.emulator.services["certificates"].current_material(cert.id) is None
    assert create(clients, ca.issue(slot=1)).data.name == "shop"  # the name is free again


def test_retry_token_replays_create(clients: Clients) -> None:
    ca = rsa_ca()
    details = models.CreateCertificateDetails(
        name="shop", compartment_id=COMPARTMENT, certificate_config=ca.issue().config()
    )
    mgmt = clients.certificates_management
    token, other_token = secrets.token_hex(8), secrets.token_hex(8)
    first = mgmt.create_certificate(details, opc_retry_token=token).data
    again = mgmt.create_certificate(details, opc_retry_token=token).data
    assert again.id == first.id
    assert len(mgmt.list_certificates(compartment_id=COMPARTMENT).data.items) == 1
    assert (
        service_error(mgmt.create_certificate, details, opc_retry_token=other_token).status == 409
    )


# ---------------------------------------------------------------------- authorization


class RecordingAuthorizer:
    """Records every authorization question; allows while ``allow`` is set."""

    def __init__(self) -> None:
        self.allow = True
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.principal_kinds: set[str] = set()

    def allows(
        self, principal: Principal, operation: str, compartment_id: str, target: dict[str, str]
    ) -> bool:
        self.principal_kinds.add(principal.kind)
        self.calls.append((operation, compartment_id, target))
        return self.allow


def test_authorization_names_the_certificates_service(
    clients: Clients, emulator: RunningEmulator
) -> None:
    authorizer = RecordingAuthorizer()
    emulator.emulator.authorizer = authorizer
    emulator.emulator.authorization_enabled = True
    cert = create(clients, rsa_ca().issue()).data
    clients.certificates.get_certificate_bundle(cert.id)
    clients.certificates_management.list_certificates(compartment_id=COMPARTMENT)
    service = {"certificate_service": "certificates"}
    one = {**service, "certificate_name": "shop", "certificate_id": cert.id}
    assert authorizer.calls == [
        ("CreateCertificate", COMPARTMENT, {**service, "certificate_name": "shop"}),
        (
            "GetCertificateBundle",
            COMPARTMENT,
            {**one, "certificate_bundle_type": "CERTIFICATE_CONTENT_PUBLIC_ONLY"},
        ),
        ("ListCertificates", COMPARTMENT, service),
    ]
    expected_kind = "user" if clients.signer_kind == "api_key" else "resource"
    assert authorizer.principal_kinds == {expected_kind}

    authorizer.allow = False
    for call in (
        clients.certificates_management.get_certificate,
        clients.certificates.get_certificate_bundle,
    ):
        error = service_error(call, cert.id)
        assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")
    denied = service_error(create, clients, rsa_ca().issue(slot=1), name="other")
    assert denied.status == 404


POLICY_FIXTURE: dict[str, Any] = {
    **BASE_FIXTURE,
    "authorization": True,
    "policies": [
        {
            "name": "certificates",
            "statements": [
                "Allow any-user to manage leaf-certificates in compartment apps",
                "Allow any-user to read leaf-certificate-bundles in compartment apps",
                "Allow any-user to read leaf-certificate-bundles in compartment apps where all "
                "{target.leaf-certificate.bundle-type = 'CERTIFICATE_CONTENT_WITH_PRIVATE_KEY', "
                "target.leaf-certificate.name = 'shop'}",
            ],
        }
    ],
}


@pytest.mark.parametrize("fixture_data", [POLICY_FIXTURE])
def test_policies_see_certificate_name_and_bundle_type(clients: Clients) -> None:
    ca = rsa_ca()
    shop = create(clients, ca.issue(slot=0), name="shop").data
    other = create(clients, ca.issue(slot=1), name="other").data
    with_key = "CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"
    bundles = clients.certificates
    assert bundles.get_certificate_bundle(other.id).data.version_number == 1
    assert bundles.get_certificate_bundle(shop.id, certificate_bundle_type=with_key).data
    denied = service_error(
        bundles.get_certificate_bundle, other.id, certificate_bundle_type=with_key
    )
    assert (denied.status, denied.code) == (404, "NotAuthorizedOrNotFound")
    elsewhere = service_error(
        create, clients, ca.issue(slot=2), name="x", compartment=OTHER_COMPARTMENT
    )
    assert elsewhere.status == 404


# ---------------------------------------------------------------------- persistence and seeding


@pytest.mark.parametrize("signer_kind", ["api_key", "resource_principal"])
def test_state_survives_a_restart(
    signer_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = str(tmp_path / "state.json")
    ca = rsa_ca()
    first, second = ca.issue(slot=0), ca.issue(slot=1)

    emu, tenancy = build_emulator(fixture=BASE_FIXTURE, state_path=state)
    with emu:
        clients = make_clients(
            RunningEmulator(emu, tenancy), signer_kind, tmp_path / "a", monkeypatch
        )
        cert = create(clients, first).data
        update(clients, cert.id, certificate_config=second.update_config(stage="PENDING"))

    emu, tenancy = build_emulator(fixture=BASE_FIXTURE, state_path=state)
    with emu:
        clients = make_clients(
            RunningEmulator(emu, tenancy), signer_kind, tmp_path / "b", monkeypatch
        )
        again = clients.certificates_management.get_certificate(cert.id).data
        assert_clean_model(again)
        assert again.name == "shop"
        assert stages_by_version(clients, cert.id) == {1: ["CURRENT"], 2: ["PENDING", "LATEST"]}
        update(clients, cert.id, current_version_number=2)
        material = emu.services["certificates"].current_material(cert.id)
        assert material == (second.certificate_pem + second.chain_pem, second.key_pem)
        third = update(clients, cert.id, certificate_config=ca.issue(slot=2).update_config())
        assert third.data.current_version.version_number == 3


def test_seeded_certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    issued = rsa_ca().issue("seeded.example.com")
    fixed_id = "ocid1.certificate.oc1.phx.seededshop"
    fixture = {
        **BASE_FIXTURE,
        "certificates": [
            {
                "id": fixed_id,
                "name": "seeded",
                "compartment": "apps",
                "certificatePem": issued.certificate_pem,
                "certChainPem": issued.chain_pem,
                "privateKeyPem": issued.key_pem,
            }
        ],
    }
    emu, tenancy = build_emulator(fixture=fixture, state_path=str(tmp_path / "state.json"))
    with emu:
        clients = make_clients(RunningEmulator(emu, tenancy), "api_key", tmp_path, monkeypatch)
        cert = clients.certificates_management.get_certificate(fixed_id).data
        assert_clean_model(cert)
        assert cert.compartment_id == COMPARTMENT
        assert cert.subject.common_name == "seeded.example.com"

    bad = {**fixture, "certificates": [{**fixture["certificates"][0], "privateKeyPem": "x"}]}
    with pytest.raises(ValueError, match="certificate 'seeded'"):
        build_emulator(fixture=bad)
