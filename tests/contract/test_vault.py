"""Contract tests for the emulated Vault (``VaultsClient``) and Secrets (``SecretsClient``).

Every test drives the emulator with the real ``oci`` SDK, once signed with an operator's API key
and once with a function's resource principal (the ``clients`` fixture).
"""

# Secret *names*, version names and retry tokens are not passwords.
# ruff: noqa: S105, S106

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import oci
import pytest

from sandbox.oci_emulator.app import build_emulator
from sandbox.oci_emulator.core import Principal, now
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    Clients,
    RunningEmulator,
    assert_clean_model,
    make_clients,
)

pytestmark = pytest.mark.integration

VAULT = "ocid1.vault.oc1.phx.contractvault"
KEY = "ocid1.key.oc1.phx.contractkey"
RSA_KEY = "ocid1.key.oc1.phx.contractrsakey"
OTHER_VAULT = "ocid1.vault.oc1.phx.othervault"
OTHER_KEY = "ocid1.key.oc1.phx.otherkey"
FIXTURE: dict[str, Any] = {
    **BASE_FIXTURE,
    "vaults": [
        {
            "id": VAULT,
            "compartment": COMPARTMENT,
            "display_name": "renewer-vault",
            "keys": [{"id": KEY}, {"id": RSA_KEY, "algorithm": "RSA"}],
        },
        {"id": OTHER_VAULT, "compartment": "apps", "keys": [{"id": OTHER_KEY}]},
    ],
}
MAX_BYTES = 25 * 1024
ALL_OPERATIONS = {
    "CreateSecret",
    "GetSecret",
    "ListSecrets",
    "UpdateSecret",
    "ScheduleSecretDeletion",
    "CancelSecretDeletion",
    "ListSecretVersions",
    "GetSecretVersion",
    "ScheduleSecretVersionDeletion",
    "CancelSecretVersionDeletion",
    "GetSecretBundle",
    "GetSecretBundleByName",
    "ListSecretBundleVersions",
}


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return FIXTURE


# ----------------------------------------------------------------------------- helpers


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def content(
    data: bytes, *, stage: str | None = None, name: str | None = None
) -> oci.vault.models.Base64SecretContentDetails:
    return oci.vault.models.Base64SecretContentDetails(content=b64(data), stage=stage, name=name)


def create(
    clients: Clients,
    name: str,
    data: bytes = b"version-1",
    *,
    vault_id: str = VAULT,
    key_id: str = KEY,
    retry_token: str | None = None,
    **details: Any,
) -> oci.vault.models.Secret:
    kwargs = {"opc_retry_token": retry_token} if retry_token else {}
    response = clients.vaults.create_secret(
        oci.vault.models.CreateSecretDetails(
            compartment_id=COMPARTMENT,
            vault_id=vault_id,
            key_id=key_id,
            secret_name=name,
            secret_content=details.pop("secret_content", content(data)),
            **details,
        ),
        **kwargs,
    )
    assert_clean_model(response.data)
    return response.data


def update(clients: Clients, secret_id: str, **details: Any) -> oci.vault.models.Secret:
    if_match = details.pop("if_match", None)
    kwargs = {"if_match": if_match} if if_match else {}
    response = clients.vaults.update_secret(
        secret_id, oci.vault.models.UpdateSecretDetails(**details), **kwargs
    )
    assert_clean_model(response.data)
    return response.data


def bundle(clients: Clients, secret_id: str, **selector: Any) -> oci.secrets.models.SecretBundle:
    data = clients.secrets.get_secret_bundle(secret_id, **selector).data
    assert_clean_model(data)
    return data


def read(clients: Clients, secret_id: str, **selector: Any) -> bytes:
    return base64.b64decode(bundle(clients, secret_id, **selector).secret_bundle_content.content)


def stages(clients: Clients, secret_id: str) -> dict[int, list[str]]:
    versions = oci.pagination.list_call_get_all_results(
        clients.vaults.list_secret_versions, secret_id
    ).data
    assert_clean_model(versions)
    return {v.version_number: v.stages for v in versions}


def in_days(days: float) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def schedule_version(clients: Clients, secret_id: str, number: int, days: float = 2) -> None:
    clients.vaults.schedule_secret_version_deletion(
        secret_id,
        number,
        oci.vault.models.ScheduleSecretVersionDeletionDetails(time_of_deletion=in_days(days)),
    )


def expect_error(status: int, code: str, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(oci.exceptions.ServiceError) as info:
        call(*args, **kwargs)
    assert (info.value.status, info.value.code) == (status, code), info.value.message


# ----------------------------------------------------------------------------- create and read


def test_create_get_and_read_bundle_by_id_and_by_name(clients: Clients) -> None:
    payload = b'{"cert": "-----BEGIN CERTIFICATE-----\\n..."}\x00\xff'
    secret = create(
        clients,
        "cert-www",
        payload,
        description="www certificate",
        metadata={"serial": "01ab", "notAfter": "2030-01-01T00:00:00Z"},
        freeform_tags={"managed-by": "renewer"},
        defined_tags={"ops": {"team": "edge"}},
    )
    assert secret.id.startswith("ocid1.vaultsecret.")
    assert secret.lifecycle_state == "ACTIVE"
    assert secret.current_version_number == 1
    assert (secret.compartment_id, secret.vault_id, secret.key_id) == (COMPARTMENT, VAULT, KEY)
    assert secret.secret_name == "cert-www"
    assert secret.description == "www certificate"
    assert secret.freeform_tags == {"managed-by": "renewer"}
    assert secret.defined_tags == {"ops": {"team": "edge"}}
    assert secret.metadata == {"serial": "01ab", "notAfter": "2030-01-01T00:00:00Z"}

    got = clients.vaults.get_secret(secret.id)
    assert_clean_model(got.data)
    assert oci.util.to_dict(got.data) == oci.util.to_dict(secret)
    assert got.headers["etag"]

    by_id = bundle(clients, secret.id)
    assert base64.b64decode(by_id.secret_bundle_content.content) == payload
    assert by_id.secret_bundle_content.content_type == "BASE64"
    assert by_id.stages == ["CURRENT", "LATEST"]
    assert by_id.version_number == 1
    assert by_id.secret_id == secret.id
    assert by_id.metadata == secret.metadata
    assert by_id.time_created is not None

    by_name = clients.secrets.get_secret_bundle_by_name(secret_name="cert-www", vault_id=VAULT).data
    assert_clean_model(by_name)
    assert oci.util.to_dict(by_name) == oci.util.to_dict(by_id)

    version = clients.vaults.get_secret_version(secret.id, 1).data
    assert_clean_model(version)
    assert (version.version_number, version.stages, version.content_type) == (
        1,
        ["CURRENT", "LATEST"],
        "BASE64",
    )


def test_update_creates_versions_and_moves_stages(clients: Clients) -> None:
    secret = create(clients, "rotating", b"one", secret_content=content(b"one", name="v-one"))
    two = update(clients, secret.id, secret_content=content(b"two"))
    assert two.current_version_number == 2
    assert stages(clients, secret.id) == {2: ["CURRENT", "LATEST"], 1: ["PREVIOUS"]}
    assert read(clients, secret.id) == b"two"
    assert read(clients, secret.id, stage="PREVIOUS") == b"one"
    assert read(clients, secret.id, stage="LATEST") == b"two"
    expect_error(
        404,
        "NotAuthorizedOrNotFound",
        clients.secrets.get_secret_bundle,
        secret.id,
        stage="DEPRECATED",
    )

    three = update(clients, secret.id, secret_content=content(b"three", stage="CURRENT"))
    assert three.current_version_number == 3
    assert stages(clients, secret.id) == {
        3: ["CURRENT", "LATEST"],
        2: ["PREVIOUS"],
        1: ["DEPRECATED"],
    }
    assert read(clients, secret.id, stage="CURRENT") == b"three"
    assert read(clients, secret.id, stage="PREVIOUS") == b"two"
    assert read(clients, secret.id, stage="DEPRECATED") == b"one"
    assert read(clients, secret.id, version_number=1) == b"one"
    assert read(clients, secret.id, version_number=2) == b"two"
    assert read(clients, secret.id, secret_version_name="v-one") == b"one"
    by_name = clients.secrets.get_secret_bundle_by_name(
        secret_name="rotating", vault_id=VAULT, version_number=2
    ).data
    assert base64.b64decode(by_name.secret_bundle_content.content) == b"two"
    assert by_name.stages == ["PREVIOUS"]
    expect_error(
        404,
        "NotAuthorizedOrNotFound",
        clients.secrets.get_secret_bundle,
        secret.id,
        version_number=9,
    )
    expect_error(
        400,
        "InvalidParameter",
        clients.secrets.get_secret_bundle,
        secret.id,
        version_number=1,
        stage="CURRENT",
    )


def test_pending_version_then_promotion(clients: Clients) -> None:
    secret = create(clients, "staged", b"live")
    staged = update(clients, secret.id, secret_content=content(b"next", stage="PENDING"))
    assert staged.current_version_number == 1
    assert stages(clients, secret.id) == {2: ["PENDING", "LATEST"], 1: ["CURRENT"]}
    assert read(clients, secret.id) == b"live"
    assert read(clients, secret.id, stage="PENDING") == b"next"
    assert read(clients, secret.id, stage="LATEST") == b"next"

    promoted = update(clients, secret.id, current_version_number=2)
    assert promoted.current_version_number == 2
    assert stages(clients, secret.id) == {2: ["CURRENT", "LATEST"], 1: ["PREVIOUS"]}
    assert read(clients, secret.id) == b"next"
    expect_error(
        404,
        "NotAuthorizedOrNotFound",
        clients.secrets.get_secret_bundle,
        secret.id,
        stage="PENDING",
    )
    expect_error(
        400,
        "InvalidParameter",
        update,
        clients,
        secret.id,
        current_version_number=2,
        secret_content=content(b"both"),
    )


def test_update_fields_and_if_match(clients: Clients) -> None:
    secret = create(clients, "fields", metadata={"a": 1}, description="old")
    etag = clients.vaults.get_secret(secret.id).headers["etag"]
    expect_error(
        412, "NoEtagMatch", update, clients, secret.id, description="x", if_match="not-the-etag"
    )
    updated = update(
        clients,
        secret.id,
        if_match=etag,
        description="new",
        metadata={"b": "2"},
        freeform_tags={"k": "v"},
    )
    assert (updated.description, updated.metadata, updated.freeform_tags) == (
        "new",
        {"b": "2"},
        {"k": "v"},
    )
    assert updated.current_version_number == 1  # no new content, no new version
    assert bundle(clients, secret.id).metadata == {"b": "2"}
    assert clients.vaults.get_secret(secret.id).headers["etag"] != etag
    expect_error(412, "NoEtagMatch", update, clients, secret.id, description="stale", if_match=etag)


# ----------------------------------------------------------------------------- lists


def test_list_secrets_paginates_filters_and_sorts(
    clients: Clients, emulator: RunningEmulator
) -> None:
    names = [f"s{i}" for i in range(5)]
    for name in names:
        create(clients, name)
    create(clients, "elsewhere", vault_id=OTHER_VAULT, key_id=OTHER_KEY)

    first = clients.vaults.list_secrets(COMPARTMENT, limit=2)
    assert len(first.data) == 2
    assert first.headers.get("opc-next-page")
    emulator.emulator.requests.clear()
    everything = oci.pagination.list_call_get_all_results(
        clients.vaults.list_secrets, COMPARTMENT, limit=2
    ).data
    assert_clean_model(everything)
    assert len(everything) == 6
    pages = [r for r in emulator.emulator.requests if r["operation"] == "ListSecrets"]
    assert len(pages) == 3
    # Default: newest first.
    assert [s.secret_name for s in everything] == ["elsewhere", *reversed(names)]

    in_vault = oci.pagination.list_call_get_all_results(
        clients.vaults.list_secrets, COMPARTMENT, vault_id=VAULT, sort_by="NAME", limit=4
    ).data
    assert [s.secret_name for s in in_vault] == names
    by_name = clients.vaults.list_secrets(COMPARTMENT, name="s3").data
    assert [s.secret_name for s in by_name] == ["s3"]
    assert clients.vaults.list_secrets(COMPARTMENT, lifecycle_state="PENDING_DELETION").data == []
    assert clients.vaults.list_secrets("ocid1.compartment.oc1..empty").data == []


def test_list_versions_and_bundle_versions_paginate(clients: Clients) -> None:
    secret = create(clients, "versions", b"1")
    for n in range(2, 6):
        update(clients, secret.id, secret_content=content(str(n).encode()))

    summaries = oci.pagination.list_call_get_all_results(
        clients.vaults.list_secret_versions, secret.id, limit=2
    ).data
    assert_clean_model(summaries)
    assert [v.version_number for v in summaries] == [5, 4, 3, 2, 1]
    assert summaries[0].stages == ["CURRENT", "LATEST"]
    assert all(v.secret_id == secret.id and v.content_type == "BASE64" for v in summaries)
    ascending = oci.pagination.list_call_get_all_results(
        clients.vaults.list_secret_versions, secret.id, limit=3, sort_order="ASC"
    ).data
    assert [v.version_number for v in ascending] == [1, 2, 3, 4, 5]

    bundles = oci.pagination.list_call_get_all_results(
        clients.secrets.list_secret_bundle_versions, secret.id, limit=2
    ).data
    assert_clean_model(bundles)
    assert [(b.version_number, b.stages) for b in bundles] == [
        (5, ["CURRENT", "LATEST"]),
        (4, ["PREVIOUS"]),
        (3, ["DEPRECATED"]),
        (2, ["DEPRECATED"]),
        (1, ["DEPRECATED"]),
    ]


# ----------------------------------------------------------------------------- conflicts, tokens


def test_duplicate_name_in_a_vault_is_a_conflict(clients: Clients) -> None:
    create(clients, "dup")
    expect_error(409, "Conflict", create, clients, "dup")
    create(clients, "dup", vault_id=OTHER_VAULT, key_id=OTHER_KEY)  # other vault: fine
    in_vault = clients.vaults.list_secrets(COMPARTMENT, name="dup", vault_id=VAULT).data
    assert len(in_vault) == 1


def test_retry_token_deduplicates_create(clients: Clients, emulator: RunningEmulator) -> None:
    first = create(clients, "once", retry_token="token-1234")
    again = create(clients, "once", retry_token="token-1234")
    assert again.id == first.id
    listed = clients.vaults.list_secrets(COMPARTMENT, name="once").data
    assert [s.id for s in listed] == [first.id]
    creates = [r for r in emulator.emulator.requests if r["operation"] == "CreateSecret"]
    assert [(r["status"], r["retry_token"]) for r in creates] == [(200, "token-1234")] * 2
    # The same token for a different request is refused; without a token the name is taken.
    expect_error(409, "Conflict", create, clients, "other", retry_token="token-1234")
    expect_error(409, "Conflict", create, clients, "once")


# ----------------------------------------------------------------------------- limits


def test_content_size_limit(clients: Clients) -> None:
    largest = bytes(range(256)) * (MAX_BYTES // 256)
    assert len(largest) == MAX_BYTES
    secret = create(clients, "big", largest)
    assert read(clients, secret.id) == largest
    expect_error(400, "InvalidParameter", create, clients, "too-big", largest + b"x")
    expect_error(
        400, "InvalidParameter", update, clients, secret.id, secret_content=content(largest + b"x")
    )
    assert clients.vaults.get_secret(secret.id).data.current_version_number == 1
    assert clients.vaults.list_secrets(COMPARTMENT, name="too-big").data == []


def test_thirty_active_versions_and_deletion_frees_a_slot(clients: Clients) -> None:
    secret = create(clients, "busy", b"1")
    for n in range(2, 31):
        update(clients, secret.id, secret_content=content(str(n).encode()))
    expect_error(400, "LimitExceeded", update, clients, secret.id, secret_content=content(b"31"))
    assert clients.vaults.get_secret(secret.id).data.current_version_number == 30

    schedule_version(clients, secret.id, 1)
    assert update(clients, secret.id, secret_content=content(b"31")).current_version_number == 31
    expect_error(400, "LimitExceeded", update, clients, secret.id, secret_content=content(b"32"))
    # Cancelling the deletion would make 31 versions in active use.
    expect_error(400, "LimitExceeded", clients.vaults.cancel_secret_version_deletion, secret.id, 1)
    assert read(clients, secret.id) == b"31"


def test_only_deprecated_versions_can_be_scheduled_for_deletion(clients: Clients) -> None:
    secret = create(clients, "careful", b"1")
    expect_error(409, "Conflict", schedule_version, clients, secret.id, 1)  # CURRENT
    update(clients, secret.id, secret_content=content(b"2"))
    expect_error(409, "Conflict", schedule_version, clients, secret.id, 1)  # PREVIOUS
    expect_error(409, "Conflict", schedule_version, clients, secret.id, 2)  # CURRENT
    update(clients, secret.id, secret_content=content(b"3", stage="PENDING"))
    expect_error(409, "Conflict", schedule_version, clients, secret.id, 3)  # PENDING
    update(clients, secret.id, secret_content=content(b"4"))  # 1 is now DEPRECATED
    assert stages(clients, secret.id)[1] == ["DEPRECATED"]

    expect_error(400, "InvalidParameter", schedule_version, clients, secret.id, 1, days=0.5)
    expect_error(400, "InvalidParameter", schedule_version, clients, secret.id, 1, days=31)
    schedule_version(clients, secret.id, 1, days=7)
    version = clients.vaults.get_secret_version(secret.id, 1).data
    assert_clean_model(version)
    assert version.time_of_deletion is not None
    assert abs((version.time_of_deletion - in_days(7)).total_seconds()) < 60
    expect_error(409, "Conflict", schedule_version, clients, secret.id, 1)  # already scheduled
    expect_error(404, "NotAuthorizedOrNotFound", read, clients, secret.id, version_number=1)
    expect_error(409, "Conflict", update, clients, secret.id, current_version_number=1)

    clients.vaults.cancel_secret_version_deletion(secret.id, 1)
    assert clients.vaults.get_secret_version(secret.id, 1).data.time_of_deletion is None
    assert read(clients, secret.id, version_number=1) == b"1"
    expect_error(409, "Conflict", clients.vaults.cancel_secret_version_deletion, secret.id, 1)


def test_scheduled_deletions_take_effect_when_due(
    clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = create(clients, "ageing", b"1")
    for n in (2, 3):
        update(clients, secret.id, secret_content=content(str(n).encode()))
    schedule_version(clients, secret.id, 1, days=1.5)
    doomed = create(clients, "doomed")
    clients.vaults.schedule_secret_deletion(
        doomed.id, oci.vault.models.ScheduleSecretDeletionDetails(time_of_deletion=in_days(1))
    )

    later = now() + 2 * 24 * 3600
    monkeypatch.setattr("sandbox.oci_emulator.vault.now", lambda: later)
    expect_error(404, "NotAuthorizedOrNotFound", clients.vaults.get_secret_version, secret.id, 1)
    assert sorted(stages(clients, secret.id)) == [2, 3]
    expect_error(404, "NotAuthorizedOrNotFound", clients.vaults.get_secret, doomed.id)
    create(clients, "doomed")  # the name is free again


# ----------------------------------------------------------------------------- secret deletion


def test_schedule_and_cancel_secret_deletion(clients: Clients) -> None:
    secret = create(clients, "retired", b"payload")
    clients.vaults.schedule_secret_deletion(
        secret.id, oci.vault.models.ScheduleSecretDeletionDetails(time_of_deletion=in_days(3))
    )
    pending = clients.vaults.get_secret(secret.id).data
    assert_clean_model(pending)
    assert pending.lifecycle_state == "PENDING_DELETION"
    assert pending.time_of_deletion is not None
    listed = clients.vaults.list_secrets(COMPARTMENT, lifecycle_state="PENDING_DELETION").data
    assert [s.id for s in listed] == [secret.id]
    expect_error(404, "NotAuthorizedOrNotFound", read, clients, secret.id)
    expect_error(409, "Conflict", update, clients, secret.id, secret_content=content(b"x"))
    expect_error(409, "Conflict", create, clients, "retired")  # the name is still taken

    clients.vaults.cancel_secret_deletion(secret.id)
    active = clients.vaults.get_secret(secret.id).data
    assert (active.lifecycle_state, active.time_of_deletion) == ("ACTIVE", None)
    assert read(clients, secret.id) == b"payload"
    expect_error(409, "Conflict", clients.vaults.cancel_secret_deletion, secret.id)


# ----------------------------------------------------------------------------- bad input


def test_unknown_vault_key_or_secret_is_rejected(clients: Clients) -> None:
    related = "RelatedResourceNotAuthorizedOrNotFound"
    expect_error(400, related, create, clients, "x", vault_id="ocid1.vault.oc1.phx.nope")
    expect_error(400, related, create, clients, "x", key_id="ocid1.key.oc1.phx.nope")
    expect_error(400, related, create, clients, "x", key_id=OTHER_KEY)  # key of another vault
    expect_error(400, "InvalidParameter", create, clients, "x", key_id=RSA_KEY)  # asymmetric
    assert clients.vaults.list_secrets(COMPARTMENT).data == []

    missing = "ocid1.vaultsecret.oc1.phx.nope"
    for call, args in (
        (clients.vaults.get_secret, (missing,)),
        (clients.vaults.list_secret_versions, (missing,)),
        (clients.vaults.get_secret_version, (missing, 1)),
        (clients.secrets.get_secret_bundle, (missing,)),
        (clients.secrets.list_secret_bundle_versions, (missing,)),
    ):
        expect_error(404, "NotAuthorizedOrNotFound", call, *args)
    expect_error(404, "NotAuthorizedOrNotFound", update, clients, missing, description="x")
    expect_error(
        404,
        "NotAuthorizedOrNotFound",
        clients.secrets.get_secret_bundle_by_name,
        secret_name="nope",
        vault_id=VAULT,
    )
    expect_error(
        404,
        "NotAuthorizedOrNotFound",
        clients.secrets.get_secret_bundle_by_name,
        secret_name="nope",
        vault_id="ocid1.vault.oc1.phx.nope",
    )


def test_invalid_content_and_names_are_rejected(clients: Clients) -> None:
    expect_error(400, "InvalidParameter", create, clients, "bad name")
    expect_error(
        400,
        "InvalidParameter",
        create,
        clients,
        "pending",
        secret_content=content(b"x", stage="PENDING"),
    )
    not_base64 = oci.vault.models.Base64SecretContentDetails(content="@@not base64@@")
    expect_error(400, "InvalidParameter", create, clients, "garbled", secret_content=not_base64)
    expect_error(400, "MissingParameter", create, clients, "empty", secret_content=None)
    expect_error(400, "InvalidParameter", create, clients, "empty", secret_content=content(b""))
    secret = create(clients, "named", secret_content=content(b"1", name="first"))
    expect_error(
        409, "Conflict", update, clients, secret.id, secret_content=content(b"2", name="first")
    )
    assert clients.vaults.list_secrets(COMPARTMENT).data[0].secret_name == "named"


# ----------------------------------------------------------------------------- persistence


def test_state_survives_an_emulator_restart(
    clients: Clients,
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = create(clients, "durable", b"first")
    update(clients, secret.id, secret_content=content(b"second", stage="PENDING"))
    emulator.emulator.stop()

    restarted, tenancy = build_emulator(fixture=FIXTURE, state_path=str(tmp_path / "state.json"))
    with restarted:
        again = make_clients(
            RunningEmulator(restarted, tenancy), clients.signer_kind, tmp_path / "2", monkeypatch
        )
        assert read(again, secret.id) == b"first"
        assert read(again, secret.id, stage="PENDING") == b"second"
        assert stages(again, secret.id) == {2: ["PENDING", "LATEST"], 1: ["CURRENT"]}
        expect_error(409, "Conflict", create, again, "durable")
        third = update(again, secret.id, secret_content=content(b"third"))
        assert third.current_version_number == 3  # version numbers continue


# ----------------------------------------------------------------------------- authorization


class RecordingAuthorizer:
    """Answers ``allow`` and records what each handler asked."""

    def __init__(self, *, allow: bool) -> None:
        self.allow = allow
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def allows(
        self, _principal: Principal, operation: str, compartment_id: str, target: dict[str, str]
    ) -> bool:
        self.calls.append((operation, compartment_id, target))
        return self.allow


def test_every_operation_asks_for_authorization(
    clients: Clients, emulator: RunningEmulator
) -> None:
    recorder = RecordingAuthorizer(allow=True)
    emulator.emulator.authorizer = recorder
    emulator.emulator.authorization_enabled = True

    secret = create(clients, "audited", b"1")
    clients.vaults.get_secret(secret.id)
    clients.vaults.list_secrets(COMPARTMENT)
    update(clients, secret.id, secret_content=content(b"2"))
    update(clients, secret.id, secret_content=content(b"3"))
    clients.vaults.list_secret_versions(secret.id)
    clients.vaults.get_secret_version(secret.id, 1)
    schedule_version(clients, secret.id, 1)
    clients.vaults.cancel_secret_version_deletion(secret.id, 1)
    clients.secrets.get_secret_bundle(secret.id)
    clients.secrets.get_secret_bundle_by_name(secret_name="audited", vault_id=VAULT)
    clients.secrets.list_secret_bundle_versions(secret.id)
    clients.vaults.schedule_secret_deletion(
        secret.id, oci.vault.models.ScheduleSecretDeletionDetails()
    )
    clients.vaults.cancel_secret_deletion(secret.id)

    assert {operation for operation, _, _ in recorder.calls} == ALL_OPERATIONS
    assert {compartment for _, compartment, _ in recorder.calls} == {COMPARTMENT}
    full = {"secret_name": "audited", "secret_id": secret.id, "vault_id": VAULT, "key_id": KEY}
    for operation, _, target in recorder.calls:
        if operation == "ListSecrets":
            assert target == {}
        elif operation == "CreateSecret":  # no id yet
            assert target == {k: v for k, v in full.items() if k != "secret_id"}
        else:
            assert target == full, operation

    recorder.allow = False
    denied = "NotAuthorizedOrNotFound"
    expect_error(404, denied, clients.vaults.get_secret, secret.id)
    expect_error(404, denied, clients.secrets.get_secret_bundle, secret.id)
    expect_error(
        404,
        denied,
        clients.secrets.get_secret_bundle_by_name,
        secret_name="audited",
        vault_id=VAULT,
    )
    expect_error(404, denied, clients.vaults.list_secrets, COMPARTMENT)
    expect_error(404, denied, create, clients, "sneaky")
    expect_error(404, denied, update, clients, secret.id, secret_content=content(b"x"))
    recorder.allow = True
    assert clients.vaults.get_secret(secret.id).data.current_version_number == 3


def test_policies_see_the_secret_as_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = {
        **FIXTURE,
        "authorization": True,
        "policies": [
            {
                "name": "operators",
                "statements": [
                    "Allow group Admins to manage secret-family in tenancy",
                    "Allow group Admins to use vaults in tenancy",
                    "Allow group Admins to use keys in tenancy",
                ],
            },
            {
                "name": "renewer",
                "compartment": "apps",
                "statements": [
                    "Allow dynamic-group renewer-dg to read secret-bundles in compartment id"
                    f" {COMPARTMENT} where target.secret.name = /cert-*/",
                ],
            },
        ],
    }
    emulator, tenancy = build_emulator(fixture=fixture, state_path=str(tmp_path / "state.json"))
    with emulator:
        running = RunningEmulator(emulator, tenancy)
        operator = make_clients(running, "api_key", tmp_path / "op", monkeypatch)
        renewer = make_clients(running, "resource_principal", tmp_path / "fn", monkeypatch)
        cert = create(operator, "cert-www", b"pem")
        other = create(operator, "db-password", b"hunter2")

        assert read(renewer, cert.id) == b"pem"
        by_name = renewer.secrets.get_secret_bundle_by_name(secret_name="cert-www", vault_id=VAULT)
        assert base64.b64decode(by_name.data.secret_bundle_content.content) == b"pem"
        denied = "NotAuthorizedOrNotFound"
        expect_error(404, denied, read, renewer, other.id)
        expect_error(404, denied, renewer.vaults.get_secret, cert.id)  # needs read secrets
        expect_error(404, denied, create, renewer, "cert-new")
        expect_error(404, denied, update, renewer, cert.id, secret_content=content(b"x"))
        assert read(operator, cert.id) == b"pem"
