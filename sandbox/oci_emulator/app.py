"""Build a complete emulator: every service registered, a tenancy seeded from a fixture.

Fixture format (JSON; every key optional) — each service reads its own keys::

    {
      "tenancy": "ocid1.tenancy.oc1..example",
      "region": "us-phoenix-1",
      "namespace": "renewerns",                    # Object Storage namespace
      "compartments": [{"name": "apps", "id": "ocid1.compartment.oc1..apps"}],
      "principals": [                              # who may call; credentials are made by tests
        {"name": "operator", "kind": "user", "id": "ocid1.user.oc1..op", "groups": ["Admins"]},
        {"name": "renewer", "kind": "resource", "id": "ocid1.fnfunc.oc1..fn",
         "compartment": "ocid1.compartment.oc1..apps", "groups": ["renewer-dg"]}
      ],
      "authorization": false,                      # enforce the policies below
      "policies": [{"name": "...", "compartment": "...", "statements": ["Allow ..."]}],
      "buckets": [...], "vaults": [...], "load_balancers": [...], "certificates": [...],
      "topics": [...],                             # Notifications topics
      "zones": [...],                              # DNS zones and their records
      "functions": [...]                           # OCI Functions (sandbox.oci_emulator.functions)
    }

Run standalone: ``python -m sandbox.oci_emulator --state FILE --seed FIXTURE.json``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from sandbox.oci_emulator.core import DEFAULT_TENANCY, Principal
from sandbox.oci_emulator.server import Authorizer, Emulator

# module: class. Each class is constructed with the Emulator and implements server.Service.
SERVICES = (
    ("sandbox.oci_emulator.object_storage", "ObjectStorage"),
    ("sandbox.oci_emulator.vault", "Vault"),
    ("sandbox.oci_emulator.load_balancer", "LoadBalancer"),
    ("sandbox.oci_emulator.certificates", "Certificates"),
    ("sandbox.oci_emulator.monitoring", "Monitoring"),  # PostMetricData: a recording sink
    ("sandbox.oci_emulator.notifications", "Notifications"),  # PublishMessage: recording sink
    ("sandbox.oci_emulator.dns", "Dns"),  # zones and records (dns-01)
    ("sandbox.oci_emulator.functions", "Functions"),  # GetFunction, InvokeFunction (real fdk)
    ("sandbox.oci_emulator.dataplane", "DataPlane"),  # serves what the services above configure
)


@dataclass(frozen=True, slots=True)
class Tenancy:
    """The fixture's identity part: tenancy, compartments and principals by name."""

    tenancy: str
    region: str
    compartments: dict[str, str]
    principals: dict[str, Principal]

    @classmethod
    def from_fixture(cls, fixture: dict[str, Any]) -> Tenancy:
        """Read the identity keys of a fixture; ValueError names a bad entry."""
        tenancy = str(fixture.get("tenancy", DEFAULT_TENANCY))
        compartments = {str(c["name"]): str(c["id"]) for c in fixture.get("compartments", [])}
        principals: dict[str, Principal] = {}
        for entry in fixture.get("principals", []):
            kind = entry.get("kind")
            if kind not in ("user", "resource"):
                msg = f"principal {entry.get('name')!r}: kind must be 'user' or 'resource'"
                raise ValueError(msg)
            principals[str(entry["name"])] = Principal(
                kind=kind,
                id=str(entry["id"]),
                tenancy=tenancy,
                compartment=entry.get("compartment"),
                groups=frozenset(entry.get("groups", [])),
            )
        return cls(tenancy, str(fixture.get("region", "us-phoenix-1")), compartments, principals)


def build_emulator(
    *,
    fixture: dict[str, Any] | None = None,
    state_path: str | None = None,
    port: int = 0,
) -> tuple[Emulator, Tenancy]:
    """An emulator with every available service, seeded with ``fixture`` (not started).

    When ``state_path`` holds saved state, the state wins and the fixture only supplies the
    identities (principals are not state: credentials are issued per run).
    """
    fixture = fixture or {}
    tenancy = Tenancy.from_fixture(fixture)
    authorizer = _policy_engine(fixture, tenancy)
    emulator = Emulator(state_path=state_path, port=port, authorizer=authorizer)
    emulator.authorization_enabled = bool(fixture.get("authorization", False))
    emulator.principals = dict(tenancy.principals)
    for module_name, class_name in SERVICES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a service not written yet
        emulator.register(getattr(module, class_name)(emulator))
    if not emulator.state.load():
        emulator.seed(fixture)
    return emulator, tenancy


def _policy_engine(fixture: dict[str, Any], tenancy: Tenancy) -> Authorizer | None:
    try:
        policies = importlib.import_module("sandbox.oci_emulator.policies")
    except ModuleNotFoundError as exc:
        if exc.name != "sandbox.oci_emulator.policies":
            raise
        return None
    engine: Authorizer = policies.PolicyEngine.from_fixture(fixture, tenancy)
    return engine
