"""``CertificateStore.leaf_fingerprints``: RETIRE's proof of ownership (issue 11 §6).

The same cases run against the Vault adapter on the emulator and the in-memory fake (the fixtures
of ``test_vault_adapters``), so the two cannot drift.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from renewer import pki
from renewer.model import PendingOrder, StoredCertificate
from renewer.ports import CertificateStore
from tests.contract import test_vault_adapters as vault
from tests.contract.test_vault_adapters import NAME, make_certificate

pytestmark = pytest.mark.integration

# The Vault adapter on the emulator and the in-memory fake, as in test_vault_adapters.
fixture_data = vault.fixture_data
store = vault.store


def fingerprint(certificate: StoredCertificate) -> str:
    leaf = pki.split_chain(certificate.fullchain_pem)[0]
    return hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


def test_nothing_stored_proves_nothing(store: CertificateStore) -> None:
    assert store.leaf_fingerprints(NAME) == frozenset()


def test_every_readable_certificate_version_counts(store: CertificateStore) -> None:
    kept = [store.put(NAME, make_certificate()) for _ in range(4)]
    assert store.leaf_fingerprints(NAME) == {fingerprint(c) for c in kept}
    assert store.leaf_fingerprints("another") == frozenset()


def test_pending_orders_and_versions_pending_deletion_do_not_count(
    store: CertificateStore,
) -> None:
    first = store.put(NAME, make_certificate())
    rest = [store.put(NAME, make_certificate()) for _ in range(3)]
    certificate = make_certificate()
    store.save_pending(
        NAME,
        PendingOrder(
            order_url="https://acme.test/order/1",
            account_url="https://acme.test/acct/1",
            private_key_pem=certificate.private_key_pem,
            dns_names=certificate.dns_names,
            key_type=certificate.key_type,
            profile=None,
            created_at=datetime.now(UTC),
        ),
    )
    assert store.prune(NAME, keep=3) == [first.version]

    assert store.leaf_fingerprints(NAME) == {fingerprint(c) for c in rest}
