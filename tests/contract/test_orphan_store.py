"""The Vault adapter's part in retiring certificates that left the configuration, through the
real SDK against the emulator: which secrets count as the renewer's certificates, and the
scheduled deletion of a whole secret (only ours, idempotent).
"""

# Secret names are not passwords.

from __future__ import annotations

from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_vault import VaultAccountStore, VaultCertificateStore
from renewer.errors import ConfigError
from renewer.ports import AccountRecord
from tests.contract.conftest import COMPARTMENT, Clients, RunningEmulator, make_clients
from tests.contract.test_vault_adapters import (
    FIXTURE,
    KEY,
    VAULT,
    create_foreign_secret,
    make_certificate,
    renewer_clients,
    secrets_in_vault,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return FIXTURE


@pytest.fixture
def store(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> VaultCertificateStore:
    clients = renewer_clients(emulator, tmp_path, monkeypatch)
    return VaultCertificateStore(clients, compartment_id=COMPARTMENT, vault_id=VAULT, key_id=KEY)


@pytest.fixture
def operator(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Clients:
    return make_clients(emulator, "api_key", tmp_path / "operator", monkeypatch)


def test_only_our_certificate_secrets_are_listed(
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    store: VaultCertificateStore,
    operator: Clients,
) -> None:
    store.put("shop", make_certificate())
    store.put("blog", make_certificate())
    clients = renewer_clients(emulator, tmp_path, monkeypatch)
    VaultAccountStore(clients, compartment_id=COMPARTMENT, vault_id=VAULT, key_id=KEY).save(
        "https://acme.test/directory", AccountRecord("not-a-real-key", None)
    )
    create_foreign_secret(operator, "acme-theirs", b"{}")  # our pattern, not our tag
    # Another stack's prefix ("acme-x"): its certificate "shop" is not our "x-shop".
    VaultCertificateStore(
        clients, compartment_id=COMPARTMENT, vault_id=VAULT, key_id=KEY, prefix="acme-x"
    ).put("shop", make_certificate())

    assert store.managed_names() == {"shop", "blog"}


def test_the_whole_secret_is_scheduled_once_and_only_ours(
    store: VaultCertificateStore, operator: Clients, emulator: RunningEmulator
) -> None:
    store.put("shop", make_certificate())
    create_foreign_secret(operator, "acme-theirs", b"{}")

    assert store.schedule_secret_deletion("shop") == "scheduled"
    assert store.schedule_secret_deletion("shop") == "pending"  # idempotent
    assert store.schedule_secret_deletion("gone") == "absent"
    with pytest.raises(ConfigError, match="not created by this renewer"):
        store.schedule_secret_deletion("theirs")

    states = {s["secretName"]: s["lifecycleState"] for s in secrets_in_vault(emulator)}
    assert states == {"acme-shop": "PENDING_DELETION", "acme-theirs": "ACTIVE"}
    shop = next(s for s in secrets_in_vault(emulator) if s["secretName"] == "acme-shop")
    secret = operator.vaults.get_secret(shop["id"]).data
    assert isinstance(secret, oci.vault.models.Secret)
    assert secret.time_of_deletion is not None  # OCI's default window (30 days)
    assert store.managed_names() == frozenset()  # a pending secret is no longer listed
