"""Fixtures for driving the OCI emulator with the real ``oci`` SDK.

``emulator`` is a started emulator seeded with ``BASE_FIXTURE`` (override per module by defining a
``fixture_data`` fixture); ``clients`` builds every SDK client against it, parametrized over both
signers OCI offers — an operator's API key and a function's resource principal — so every contract
test runs twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before `import oci`: the SDK reads these at import time. Retries and the shared circuit breaker
# would hide the emulator's exact answers and leak state from one test into the next.
os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

import oci
import pytest

from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from sandbox.oci_emulator.app import Tenancy, build_emulator
from sandbox.oci_emulator.credentials import api_key_config, resource_principal_env
from sandbox.oci_emulator.server import Emulator

TENANCY = "ocid1.tenancy.oc1..contracttenancy"
COMPARTMENT = "ocid1.compartment.oc1..contractapps"
NAMESPACE = "contractns"
BASE_FIXTURE: dict[str, Any] = {
    "tenancy": TENANCY,
    "namespace": NAMESPACE,
    "compartments": [{"name": "apps", "id": COMPARTMENT}],
    "principals": [
        {
            "name": "operator",
            "kind": "user",
            "id": "ocid1.user.oc1..operator",
            "groups": ["Admins"],
        },
        {
            "name": "renewer",
            "kind": "resource",
            "id": "ocid1.fnfunc.oc1.phx.renewerfunction",
            "compartment": COMPARTMENT,
            "groups": ["renewer-dg"],
        },
    ],
}


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    """The tenancy to seed; modules override this fixture to add resources."""
    return BASE_FIXTURE


@dataclass
class RunningEmulator:
    """A started emulator and the identities of its fixture."""

    emulator: Emulator
    tenancy: Tenancy

    @property
    def endpoint(self) -> str:
        return self.emulator.endpoint


@pytest.fixture
def emulator(fixture_data: dict[str, Any], tmp_path: Path) -> Iterator[RunningEmulator]:
    emu, tenancy = build_emulator(fixture=fixture_data, state_path=str(tmp_path / "state.json"))
    with emu:
        yield RunningEmulator(emu, tenancy)


@dataclass
class Clients:
    """Every SDK client the renewer uses, pointed at the emulator with one kind of signer."""

    signer_kind: str
    object_storage: oci.object_storage.ObjectStorageClient
    vaults: oci.vault.VaultsClient
    secrets: oci.secrets.SecretsClient
    load_balancer: oci.load_balancer.LoadBalancerClient
    certificates_management: oci.certificates_management.CertificatesManagementClient
    certificates: oci.certificates.CertificatesClient


def make_clients(
    running: RunningEmulator,
    signer_kind: str,
    directory: Path,
    monkeypatch: pytest.MonkeyPatch,
    principal_name: str | None = None,
) -> Clients:
    """Clients signed as ``operator`` (API key) or ``renewer`` (resource principal)."""
    endpoint = running.endpoint
    common: dict[str, Any] = {
        "service_endpoint": endpoint,
        "retry_strategy": oci.retry.NoneRetryStrategy(),
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        "timeout": (5, 30),
    }
    if signer_kind == "api_key":
        principal = running.tenancy.principals[principal_name or "operator"]
        config: dict[str, Any] = api_key_config(running.emulator, principal, directory / "api")
        kwargs: dict[str, Any] = {}
    else:
        principal = running.tenancy.principals[principal_name or "renewer"]
        for name, value in resource_principal_env(
            running.emulator, principal, directory / "rp"
        ).items():
            monkeypatch.setenv(name, value)
        config = {}
        kwargs = {"signer": oci.auth.signers.get_resource_principals_signer()}
    return Clients(
        signer_kind=signer_kind,
        object_storage=oci.object_storage.ObjectStorageClient(config, **kwargs, **common),
        vaults=oci.vault.VaultsClient(config, **kwargs, **common),
        secrets=oci.secrets.SecretsClient(config, **kwargs, **common),
        load_balancer=oci.load_balancer.LoadBalancerClient(config, **kwargs, **common),
        certificates_management=oci.certificates_management.CertificatesManagementClient(
            config, **kwargs, **common
        ),
        certificates=oci.certificates.CertificatesClient(config, **kwargs, **common),
    )


@pytest.fixture(params=["api_key", "resource_principal"])
def clients(
    request: pytest.FixtureRequest,
    emulator: RunningEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Clients:
    return make_clients(emulator, request.param, tmp_path, monkeypatch)


def assert_clean_model(value: Any, path: str = "data") -> None:
    """Fail if any field of an SDK model (recursively) parsed as UNKNOWN_ENUM_VALUE.

    That value is what the SDK substitutes when the emulator answers an enum the API does not
    define: a sign the emulator's wire format drifted from OCI's.
    """
    # isinstance first: SDK models' __eq__ reads other.__dict__ and fails on a plain string.
    if isinstance(value, str) and value == "UNKNOWN_ENUM_VALUE":
        pytest.fail(f"{path} is UNKNOWN_ENUM_VALUE")
    if isinstance(value, list):
        for i, item in enumerate(value):
            assert_clean_model(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            assert_clean_model(item, f"{path}[{key!r}]")
    elif hasattr(value, "swagger_types"):
        for attribute in value.swagger_types:
            assert_clean_model(getattr(value, attribute), f"{path}.{attribute}")


def renewer_oci_clients(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> OciClients:
    """``OciClients`` as the function builds them: the renewer's resource principal, no retry."""
    env = resource_principal_env(
        emulator.emulator, emulator.tenancy.principals["renewer"], tmp_path
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return OciClients(
        OciSettings(endpoints=dict.fromkeys(SERVICES, emulator.endpoint), retry_attempts=1)
    )
