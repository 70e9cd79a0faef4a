"""The ownership rule of RETIRE (issue 11 §6): a name like ours is not enough.

``ownership_gap`` is pure: a bundle (its name and publicCertificate) against the fingerprints of
the leaves the renewer stored. A bundle is ours only when its leaf is stored *and* its name
carries that leaf's serial; everything else is left alone, with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from renewer import naming, pki
from renewer.adapters.oci_load_balancer import ownership_gap

_KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(serial: int) -> x509.Certificate:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shop.example.com")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=90))
        .sign(_KEY, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


STORED = certificate(0x1F2E3D4C5B6A79880123)
OURS = naming.bundle_name("shop", pki.serial_hex(STORED))


def test_a_stored_leaf_under_its_own_name_is_ours() -> None:
    assert ownership_gap(OURS, pem(STORED), frozenset({fingerprint(STORED)})) is None


def test_the_chain_after_the_leaf_does_not_matter() -> None:
    chain = pem(STORED) + pem(certificate(7))
    assert ownership_gap(OURS, chain, frozenset({fingerprint(STORED)})) is None


def test_a_leaf_that_was_never_stored_is_not_ours() -> None:
    person = certificate(0x2024)
    gap = ownership_gap("acme-shop-2024", pem(person), frozenset({fingerprint(STORED)}))
    assert gap == "its leaf (serial 2024) is not a stored certificate"


def test_nothing_stored_proves_nothing() -> None:
    assert ownership_gap(OURS, pem(STORED), frozenset()) is not None


@pytest.mark.parametrize("public", [None, "", "-----BEGIN CERTIFICATE-----\nnope\n"])
def test_an_unreadable_public_certificate_is_not_ours(public: str | None) -> None:
    assert ownership_gap(OURS, public, frozenset({fingerprint(STORED)})) == (
        "its publicCertificate does not parse"
    )


@given(tail=st.text(alphabet="0123456789abcdef", min_size=1, max_size=16))
def test_a_stored_leaf_under_a_name_without_its_serial_is_not_ours(tail: str) -> None:
    serial = pki.serial_hex(STORED)
    gap = ownership_gap(f"acme-shop-{tail}", pem(STORED), frozenset({fingerprint(STORED)}))
    if serial.startswith(tail):
        assert gap is None
    else:
        assert gap == f"its name does not carry its leaf's serial {serial}"
