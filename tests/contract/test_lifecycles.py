"""Asynchronous lifecycles of Certificates-service certificates and Vault secrets (issue 11 §3).

Two halves, both through the real ``oci`` SDK:

* the emulator's fidelity: with a timing profile, changes leave the resource CREATING/UPDATING,
  become visible once it is ACTIVE again, and a change meanwhile is ``409 IncorrectState``; a
  listener on the certificate's OCID follows a new CURRENT version after
  ``listenerFollowSeconds``. The emulator's clock (``now`` of each service module) is stepped by
  hand here, so these tests never depend on how fast the machine is;
* the renewer's adapters, on real time with a small time scale: they wait the states out and
  retry the 409s instead of failing.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_certificates import CertificatesServiceDeployer
from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_vault import VaultCertificateStore
from renewer.clock import SystemClock
from renewer.errors import TransientError
from renewer.model import CertificateServiceTarget, DeployedTarget, PendingOrder
from sandbox.oci_emulator import certificates as certificates_module
from sandbox.oci_emulator import vault as vault_module
from sandbox.oci_emulator.credentials import resource_principal_env
from sandbox.oci_emulator.timing import TimingProfile
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, Clients, RunningEmulator
from tests.contract.test_deployers import _ca, _pem, bundle_of, issue, leaf_of
from tests.contract.test_vault_adapters import make_certificate

pytestmark = pytest.mark.integration

CS_ID = "ocid1.certificate.oc1.phx.lifecycle"
VAULT = "ocid1.vault.oc1.phx.lifecyclevault"
KEY = "ocid1.key.oc1.phx.lifecyclekey"
UPDATE_SECONDS = 10.0  # OCI seconds, scale 1: the hand-stepped clock decides when it passes
FOLLOW_SECONDS = 30.0
cm_models = oci.certificates_management.models
vault_models = oci.vault.models


def _fixture(timing: dict[str, Any]) -> dict[str, Any]:
    seeded = issue("shop.example.com", days_old=10)
    return {
        **BASE_FIXTURE,
        "timing": timing,
        "vaults": [{"id": VAULT, "compartment": "apps", "keys": [{"id": KEY}]}],
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


STEPPED = {
    "scale": 1,
    "certificateUpdateSeconds": UPDATE_SECONDS,
    "vaultUpdateSeconds": UPDATE_SECONDS,
    "listenerFollowSeconds": FOLLOW_SECONDS,
}
# The adapters' half: OCI's realistic durations at a small scale (5 s -> 0.15 s, 3 s -> 0.09 s).
SCALED = TimingProfile.realistic(scale=0.03).to_fixture()


@pytest.fixture
def fixture_data(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _fixture(getattr(request, "param", STEPPED))


class SteppedClock:
    """The emulator's ``now`` for the Certificates and Vault modules, moved by hand."""

    def __init__(self) -> None:
        self.moment = time.time()

    def __call__(self) -> float:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SteppedClock:
    stepped = SteppedClock()
    monkeypatch.setattr(certificates_module, "now", stepped)
    monkeypatch.setattr(vault_module, "now", stepped)
    return stepped


def _import(certificate: Any, **extra: Any) -> Any:
    leaf, chain = leaf_of(certificate), _pem(_ca()[1])
    return cm_models.UpdateCertificateDetails(
        certificate_config=cm_models.UpdateCertificateByImportingConfigDetails(
            certificate_pem=leaf,
            cert_chain_pem=chain,
            private_key_pem=certificate.private_key_pem,
            stage="CURRENT",
            **extra,
        )
    )


def _status(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call()
    return caught.value.status, caught.value.code


def _serial(certificate: Any) -> str:
    """The serial as the service writes it: minimal big-endian bytes, upper-case hex octets."""
    number = int(certificate.serial_hex, 16)
    raw = number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")
    return " ".join(f"{byte:02X}" for byte in raw)


# ------------------------------------------------------------------ emulator: Certificates


def test_an_update_is_updating_until_its_time_passes_and_visible_only_then(
    clients: Clients, clock: SteppedClock
) -> None:
    management = clients.certificates_management
    before = management.get_certificate(CS_ID)
    new = issue("shop.example.com")

    answer = management.update_certificate(CS_ID, _import(new), if_match=before.headers["etag"])

    assert answer.data.lifecycle_state == "UPDATING"
    during = management.get_certificate(CS_ID)
    assert during.data.lifecycle_state == "UPDATING"
    assert during.data.current_version.version_number == 1  # the change is not visible yet
    assert during.headers["etag"] != before.headers["etag"]
    # Every change meanwhile: 409 IncorrectState (the SDK's default strategy retries it).
    assert _status(lambda: management.update_certificate(CS_ID, _import(issue()))) == (
        409,
        "IncorrectState",
    )
    assert _status(
        lambda: management.schedule_certificate_version_deletion(
            CS_ID, 1, cm_models.ScheduleCertificateVersionDeletionDetails()
        )
    ) == (409, "IncorrectState")

    clock.advance(UPDATE_SECONDS)

    after = management.get_certificate(CS_ID).data
    assert after.lifecycle_state == "ACTIVE"
    assert after.current_version.version_number == 2
    assert after.current_version.serial_number == _serial(new)


def test_a_version_deletion_makes_the_certificate_updating_too(
    clients: Clients, clock: SteppedClock
) -> None:
    management = clients.certificates_management
    for _ in range(2):  # version 1 ends DEPRECATED
        management.update_certificate(CS_ID, _import(issue()))
        clock.advance(UPDATE_SECONDS)

    management.schedule_certificate_version_deletion(
        CS_ID, 1, cm_models.ScheduleCertificateVersionDeletionDetails()
    )

    assert management.get_certificate(CS_ID).data.lifecycle_state == "UPDATING"
    assert management.get_certificate_version(CS_ID, 1).data.time_of_deletion is None
    clock.advance(UPDATE_SECONDS)
    assert management.get_certificate(CS_ID).data.lifecycle_state == "ACTIVE"
    assert management.get_certificate_version(CS_ID, 1).data.time_of_deletion is not None


def test_a_created_certificate_is_creating_first(clients: Clients, clock: SteppedClock) -> None:
    management = clients.certificates_management
    certificate = issue()
    created = management.create_certificate(
        cm_models.CreateCertificateDetails(
            name="created",
            compartment_id=COMPARTMENT,
            certificate_config=cm_models.CreateCertificateByImportingConfigDetails(
                certificate_pem=leaf_of(certificate),
                cert_chain_pem=_pem(_ca()[1]),
                private_key_pem=certificate.private_key_pem,
            ),
        )
    ).data

    assert created.lifecycle_state == "CREATING"
    assert _status(lambda: management.update_certificate(created.id, _import(issue()))) == (
        409,
        "IncorrectState",
    )
    clock.advance(UPDATE_SECONDS)
    assert management.get_certificate(created.id).data.lifecycle_state == "ACTIVE"


def test_a_listener_follows_a_new_current_version_after_the_follow_delay(
    emulator: RunningEmulator, clients: Clients, clock: SteppedClock
) -> None:
    service = emulator.emulator.services["certificates"]
    assert isinstance(service, certificates_module.Certificates)
    old = service.current_material(CS_ID)
    new = issue()
    clients.certificates_management.update_certificate(CS_ID, _import(new))

    clock.advance(UPDATE_SECONDS)  # ACTIVE, version 2 CURRENT: the listener has not followed
    assert clients.certificates_management.get_certificate(CS_ID).data.lifecycle_state == "ACTIVE"
    assert service.current_material(CS_ID) == old
    clock.advance(FOLLOW_SECONDS - 1)
    assert service.current_material(CS_ID) == old
    clock.advance(1)
    served = service.current_material(CS_ID)
    assert served is not None
    assert served[0].startswith(leaf_of(new))


@pytest.mark.parametrize("fixture_data", [SCALED], indirect=True)
def test_the_sdk_composite_operation_waits_for_active(clients: Clients) -> None:
    composite = oci.certificates_management.CertificatesManagementClientCompositeOperations(
        clients.certificates_management
    )
    new = issue()

    done = composite.update_certificate_and_wait_for_state(
        CS_ID, _import(new), wait_for_states=["ACTIVE"], waiter_kwargs={"max_interval_seconds": 1}
    ).data

    assert done.lifecycle_state == "ACTIVE"
    assert done.current_version.serial_number == _serial(new)


# ------------------------------------------------------------------ emulator: Vault


def _content(text: str, **extra: Any) -> Any:
    return vault_models.Base64SecretContentDetails(
        content_type="BASE64", content=base64.b64encode(text.encode()).decode(), **extra
    )


def _secret(clients: Clients) -> Any:
    return clients.vaults.create_secret(
        vault_models.CreateSecretDetails(
            compartment_id=COMPARTMENT,
            vault_id=VAULT,
            key_id=KEY,
            secret_name="lifecycle",  # noqa: S106 - a name, not a password
            secret_content=_content("one"),
        )
    ).data


def _bundle_text(clients: Clients, secret_id: str) -> str:
    data = clients.secrets.get_secret_bundle(secret_id).data
    return base64.b64decode(data.secret_bundle_content.content).decode()


def test_a_secret_is_creating_then_active_and_readable_meanwhile(
    clients: Clients, clock: SteppedClock
) -> None:
    secret = _secret(clients)

    assert secret.lifecycle_state == "CREATING"
    assert _bundle_text(clients, secret.id) == "one"
    update = vault_models.UpdateSecretDetails(secret_content=_content("two"))
    assert _status(lambda: clients.vaults.update_secret(secret.id, update)) == (
        409,
        "IncorrectState",
    )
    clock.advance(UPDATE_SECONDS)
    assert clients.vaults.get_secret(secret.id).data.lifecycle_state == "ACTIVE"


def test_a_secret_update_is_updating_and_visible_once_active(
    clients: Clients, clock: SteppedClock
) -> None:
    secret = _secret(clients)
    clock.advance(UPDATE_SECONDS)
    for text in ("two", "three"):  # version 1 ends DEPRECATED
        clients.vaults.update_secret(
            secret.id, vault_models.UpdateSecretDetails(secret_content=_content(text))
        )
        clock.advance(UPDATE_SECONDS)

    answer = clients.vaults.update_secret(
        secret.id, vault_models.UpdateSecretDetails(secret_content=_content("four"))
    ).data

    assert answer.lifecycle_state == "UPDATING"
    assert answer.current_version_number == 3
    assert _bundle_text(clients, secret.id) == "three"  # not visible yet
    deletion = vault_models.ScheduleSecretVersionDeletionDetails()
    assert _status(
        lambda: clients.vaults.schedule_secret_version_deletion(secret.id, 1, deletion)
    ) == (409, "IncorrectState")
    clock.advance(UPDATE_SECONDS)
    assert clients.vaults.get_secret(secret.id).data.current_version_number == 4
    assert _bundle_text(clients, secret.id) == "four"
    clients.vaults.schedule_secret_version_deletion(secret.id, 1, deletion)
    assert clients.vaults.get_secret(secret.id).data.lifecycle_state == "UPDATING"
    clock.advance(UPDATE_SECONDS)
    assert clients.vaults.get_secret_version(secret.id, 1).data.time_of_deletion is not None


@pytest.mark.parametrize("fixture_data", [SCALED], indirect=True)
def test_the_sdk_secret_composite_operation_waits_for_active(clients: Clients) -> None:
    secret = _secret(clients)
    composite = oci.vault.VaultsClientCompositeOperations(clients.vaults)
    oci.wait_until(
        clients.vaults,
        clients.vaults.get_secret(secret.id),
        "lifecycle_state",
        "ACTIVE",
        max_interval_seconds=1,
    )

    done = composite.update_secret_and_wait_for_state(
        secret.id,
        vault_models.UpdateSecretDetails(secret_content=_content("two")),
        wait_for_states=["ACTIVE"],
        waiter_kwargs={"max_interval_seconds": 1},
    ).data

    assert (done.lifecycle_state, done.current_version_number) == ("ACTIVE", 2)


# ------------------------------------------------------------------ the renewer's adapters


@pytest.fixture
def renewer(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> OciClients:
    """The function's clients; the SDK's own retries off, so the adapters' waits are tested."""
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clients = OciClients(
        OciSettings(endpoints=dict.fromkeys(SERVICES, emulator.endpoint), retry_attempts=1)
    )
    clients.set_deadline(time.monotonic() + 60)
    return clients


TARGET = CertificateServiceTarget(CS_ID)


@pytest.mark.parametrize("fixture_data", [SCALED], indirect=True)
def test_deploy_and_retire_wait_for_active_and_never_fail_on_a_busy_certificate(
    emulator: RunningEmulator, renewer: OciClients
) -> None:
    deployer = CertificatesServiceDeployer(renewer, clock=SystemClock())
    certificates = [issue(days_old=days) for days in (4, 3, 2, 1)]

    for certificate in certificates:  # each deploy starts while the last one may be UPDATING
        result = deployer.deploy("shop", certificate, TARGET, deadline=time.monotonic() + 30)
        assert result == DeployedTarget(TARGET, None, changed=True)
    deployer.check(TARGET)  # a busy certificate is no configuration error
    retired = deployer.retire("shop", TARGET, keep_previous=0, deadline=time.monotonic() + 30)

    assert sorted(retired) == sorted(bundle_of(c) for c in certificates[:2])
    management = renewer.certificates_management
    assert deployer.is_serving("shop", certificates[3], TARGET)
    versions = management.list_certificate_versions(CS_ID).data.items
    assert {v.version_number for v in versions if v.time_of_deletion} == {2, 3}
    assert "ScheduleCertificateVersionDeletion" in emulator.emulator.operations_called(
        mutating_only=True
    )


@pytest.mark.parametrize(
    "fixture_data", [{"scale": 1, "certificateUpdateSeconds": 600}], indirect=True
)
def test_a_certificate_busy_past_the_deadline_is_a_transient_error(renewer: OciClients) -> None:
    deployer = CertificatesServiceDeployer(renewer, clock=SystemClock())
    renewer.certificates_management.update_certificate(CS_ID, _import(issue()))

    with pytest.raises(TransientError, match="UPDATING, and the deadline passed"):
        deployer.deploy("shop", issue(), TARGET, deadline=time.monotonic() + 0.5)


@pytest.mark.parametrize("fixture_data", [SCALED], indirect=True)
def test_vault_writes_back_to_back_wait_out_updating(renewer: OciClients) -> None:
    store = VaultCertificateStore(renewer, compartment_id=COMPARTMENT, vault_id=VAULT, key_id=KEY)
    stored = []
    for _ in range(4):
        certificate = make_certificate()
        store.save_pending(
            "shop",
            PendingOrder(
                order_url=f"https://acme.test/order/{certificate.serial_hex}",
                account_url="https://acme.test/account/1",
                private_key_pem=certificate.private_key_pem,
                dns_names=certificate.dns_names,
                key_type=certificate.key_type,
                profile=None,
                created_at=certificate.not_before,
            ),
        )
        stored.append(store.put("shop", certificate))  # right after the record: 409 meanwhile

    assert [s.version for s in stored] == [2, 4, 6, 8]
    latest = store.latest("shop")
    assert latest is not None
    assert latest.serial_hex == stored[-1].serial_hex
    assert store.prune("shop", keep=1)  # several deletions, each after the secret settled
