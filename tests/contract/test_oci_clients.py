"""renewer.adapters.oci_clients against the emulator: both auth modes, endpoint overrides,
bounded retries, error translation with the opc-request-id."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import oci
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings, translate
from renewer.errors import ConfigError, TransientError
from sandbox.net import free_port
from sandbox.oci_emulator.credentials import api_key_config, resource_principal_env
from sandbox.oci_emulator.faults import FaultRule
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, NAMESPACE

pytestmark = pytest.mark.integration

BUCKET = "acme-challenges"


@pytest.fixture
def fixture_data():
    return {**BASE_FIXTURE, "buckets": [{"name": BUCKET, "compartment": COMPARTMENT}]}


def endpoints(emulator) -> dict[str, str]:
    return dict.fromkeys(SERVICES, emulator.endpoint)


def write_config_file(config: dict[str, str], path: Path, profile: str = "RENEWER") -> Path:
    lines = [f"[{profile}]"] + [f"{k}={v}" for k, v in config.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_resource_principal_clients_reach_every_service(emulator, tmp_path, monkeypatch):
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clients = OciClients(OciSettings(endpoints=endpoints(emulator)))
    assert clients.object_storage.get_namespace().data == NAMESPACE
    assert clients.object_storage is clients.object_storage  # built once
    log = emulator.emulator.requests
    assert log[-1]["principal"] == emulator.tenancy.principals["renewer"].id


def test_config_file_profile_for_operators(emulator, tmp_path):
    config = api_key_config(emulator.emulator, emulator.tenancy.principals["operator"], tmp_path)
    path = write_config_file(config, tmp_path / "config")
    settings = OciSettings(
        auth="config_file", config_file=str(path), profile="RENEWER", endpoints=endpoints(emulator)
    )
    assert OciClients(settings).object_storage.get_namespace().data == NAMESPACE


def test_missing_config_file_and_profile_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found; create it with `oci setup config`"):
        OciClients(OciSettings(auth="config_file", config_file=str(tmp_path / "nope")))
    path = write_config_file({"user": "x"}, tmp_path / "config", profile="OTHER")
    with pytest.raises(ConfigError, match="profile 'RENEWER' is not in"):
        OciClients(OciSettings(auth="config_file", config_file=str(path), profile="RENEWER"))


def test_resource_principal_outside_a_function_is_a_clear_error(monkeypatch):
    for name in ("OCI_RESOURCE_PRINCIPAL_VERSION", "OCI_RESOURCE_PRINCIPAL_RPST"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="resource-principal credentials are not available"):
        OciClients(OciSettings())


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="unknown OCI endpoint override"):
        OciSettings(endpoints={"objectstorage": "http://x"})
    with pytest.raises(ConfigError, match="auth must be"):
        OciSettings(auth="password")


def operator_clients(emulator, tmp_path, **settings) -> OciClients:
    config = api_key_config(emulator.emulator, emulator.tenancy.principals["operator"], tmp_path)
    path = write_config_file(config, tmp_path / "config")
    return OciClients(
        OciSettings(
            auth="config_file",
            config_file=str(path),
            profile="RENEWER",
            endpoints=endpoints(emulator),
            **settings,
        )
    )


def test_transient_failures_are_retried_within_bounds(emulator, tmp_path):
    clients = operator_clients(
        emulator, tmp_path, retry_attempts=3, retry_seconds=5, retry_backoff=0.01
    )
    emulator.emulator.faults.add(
        FaultRule.from_json({"operation": "GetNamespace", "times": 2, "status": 503})
    )
    assert clients.object_storage.get_namespace().data == NAMESPACE
    assert emulator.emulator.operations_called().count("GetNamespace") == 3


def test_retries_stop_and_translate_to_a_transient_error(emulator, tmp_path):
    clients = operator_clients(
        emulator, tmp_path, retry_attempts=2, retry_seconds=5, retry_backoff=0.01
    )
    emulator.emulator.faults.add(
        FaultRule.from_json({"operation": "GetNamespace", "status": 429, "code": "TooManyRequests"})
    )
    with (
        pytest.raises(TransientError, match=r"429 TooManyRequests.*opc-request-id") as info,
        translate("read the namespace"),
    ):
        clients.object_storage.get_namespace()
    assert "read the namespace" in str(info.value)
    assert emulator.emulator.operations_called().count("GetNamespace") == 2


def test_not_found_is_a_config_error_with_a_hint(emulator, tmp_path):
    clients = operator_clients(emulator, tmp_path, retry_attempts=1)
    with (
        pytest.raises(ConfigError, match="check the OCID/name") as info,
        translate("read the state bucket"),
    ):
        clients.object_storage.get_object(NAMESPACE, "no-such-bucket", "x")
    assert isinstance(info.value.__cause__, oci.exceptions.ServiceError)
    assert "opc-request-id" in str(info.value)
    assert (info.value.oci_status, info.value.oci_code) == (404, "BucketNotFound")


def test_unreachable_oci_is_transient(tmp_path, monkeypatch):
    config = {
        "user": "ocid1.user.oc1..u",
        "tenancy": "ocid1.tenancy.oc1..t",
        "region": "us-phoenix-1",
    }
    key = tmp_path / "k.pem"
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config.update(fingerprint="aa:" * 15 + "aa", key_file=str(key))
    path = write_config_file(config, tmp_path / "config")
    closed = f"http://127.0.0.1:{free_port()}"
    clients = OciClients(
        OciSettings(
            auth="config_file",
            config_file=str(path),
            profile="RENEWER",
            endpoints=dict.fromkeys(SERVICES, closed),
            retry_attempts=1,
            timeout=(1, 1),
        )
    )
    with pytest.raises(TransientError, match="cannot reach OCI"), translate("read the namespace"):
        clients.object_storage.get_namespace()


def test_an_instance_and_its_connections_are_freed_once_unused(emulator, tmp_path):
    # A warm function container builds one OciClients per invocation: nothing may keep old
    # instances (and their open connections) alive.
    clients = operator_clients(emulator, tmp_path)
    assert clients.object_storage is clients.object_storage  # built once per instance
    clients.object_storage.get_namespace()
    gone = weakref.ref(clients)

    del clients
    gc.collect()

    assert gone() is None


def test_close_releases_the_connections_and_the_clients_still_work(emulator, tmp_path):
    clients = operator_clients(emulator, tmp_path)
    first = clients.object_storage
    first.get_namespace()

    clients.close()

    assert clients.object_storage is not first  # rebuilt on next use
    assert clients.object_storage.get_namespace().data
