"""IAM policies enforced end to end: the real SDK, real signatures, the statements our
Terraform writes, and OCI's answer for "not allowed" (the same 404 as "not there").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oci
import pytest

from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    NAMESPACE,
    RunningEmulator,
    make_clients,
)

pytestmark = pytest.mark.integration

CHALLENGES = "acme-challenges"
STATE = "renewer-state"
TOKEN_SERVER = {
    "name": "token-server",
    "kind": "resource",
    "id": "ocid1.computecontainerinstance.oc1.phx.tokenserver",
    "compartment": COMPARTMENT,
    "groups": ["token-server-dg"],
}
STRANGER = {
    "name": "stranger",
    "kind": "user",
    "id": "ocid1.user.oc1..stranger",
    "groups": ["Nobody"],
}


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "authorization": True,
        "principals": [*BASE_FIXTURE["principals"], TOKEN_SERVER, STRANGER],
        "buckets": [
            {"name": CHALLENGES, "compartment": COMPARTMENT},
            {"name": STATE, "compartment": COMPARTMENT},
        ],
        "policies": [
            {
                "name": "renewer",
                "statements": [
                    "Allow dynamic-group renewer-dg to manage objects in compartment apps"
                    f" where any {{target.bucket.name = '{CHALLENGES}',"
                    f" target.bucket.name = '{STATE}'}}",
                    "Allow dynamic-group renewer-dg to read buckets in compartment apps",
                ],
            },
            {
                "name": "token-server",
                "statements": [
                    "Allow dynamic-group token-server-dg to read objects in compartment apps"
                    f" where target.bucket.name = '{CHALLENGES}'",
                ],
            },
            {
                "name": "admins",
                "statements": ["Allow group Admins to manage all-resources in tenancy"],
            },
        ],
    }


def storage(
    emulator: RunningEmulator,
    kind: str,
    principal: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> oci.object_storage.ObjectStorageClient:
    return make_clients(emulator, kind, tmp_path / principal, monkeypatch, principal).object_storage


def denied(call: Any, *args: Any, **kwargs: Any) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as info:
        call(*args, **kwargs)
    assert info.value.status == 404  # never 403: OCI does not reveal what exists
    return info.value


def test_the_renewer_writes_challenges_and_state_only(emulator, tmp_path, monkeypatch):
    client = storage(emulator, "resource_principal", "renewer", tmp_path, monkeypatch)
    client.put_object(NAMESPACE, CHALLENGES, ".well-known/acme-challenge/tok", b"ka")
    client.put_object(NAMESPACE, STATE, "state/site.json", b"{}")
    assert (
        client.get_object(NAMESPACE, CHALLENGES, ".well-known/acme-challenge/tok").data.content
        == b"ka"
    )
    client.delete_object(NAMESPACE, CHALLENGES, ".well-known/acme-challenge/tok")


def test_the_token_server_reads_challenges_and_nothing_else(emulator, tmp_path, monkeypatch):
    renewer = storage(emulator, "resource_principal", "renewer", tmp_path, monkeypatch)
    renewer.put_object(NAMESPACE, CHALLENGES, ".well-known/acme-challenge/tok", b"ka")
    renewer.put_object(NAMESPACE, STATE, "state/site.json", b"{}")

    token_server = storage(emulator, "resource_principal", "token-server", tmp_path, monkeypatch)
    got = token_server.get_object(NAMESPACE, CHALLENGES, ".well-known/acme-challenge/tok")
    assert got.data.content == b"ka"
    denied(token_server.get_object, NAMESPACE, STATE, "state/site.json")
    error = denied(token_server.put_object, NAMESPACE, CHALLENGES, "x", b"forged")
    assert error.code == "BucketNotFound"
    denied(token_server.delete_object, NAMESPACE, CHALLENGES, ".well-known/acme-challenge/tok")


def test_a_user_without_policies_sees_nothing(emulator, tmp_path, monkeypatch):
    stranger = storage(emulator, "api_key", "stranger", tmp_path, monkeypatch)
    denied(stranger.get_object, NAMESPACE, CHALLENGES, "anything")
    denied(stranger.list_objects, NAMESPACE, CHALLENGES)


def test_admins_may_do_everything(emulator, tmp_path, monkeypatch):
    admin = storage(emulator, "api_key", "operator", tmp_path, monkeypatch)
    admin.put_object(NAMESPACE, "renewer-state", "x", b"1")
    assert [o.name for o in admin.list_objects(NAMESPACE, STATE).data.objects] == ["x"]


def test_denials_change_nothing(emulator, tmp_path, monkeypatch):
    token_server = storage(emulator, "resource_principal", "token-server", tmp_path, monkeypatch)
    denied(token_server.put_object, NAMESPACE, CHALLENGES, "x", b"forged")
    admin = storage(emulator, "api_key", "operator", tmp_path, monkeypatch)
    assert admin.list_objects(NAMESPACE, CHALLENGES).data.objects == []
