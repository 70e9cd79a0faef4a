"""A fleet in the sandbox: many certificates over many load balancers (issue 15).

:class:`FleetWorld` is a :class:`~sandbox.world.SandboxWorld` whose tenancy holds ``len(layout)``
load balancers; load balancer ``i`` has ``layout[i]`` HTTPS listeners, one per certificate, each
on its own port and starting on an expiring self-signed bundle — so every certificate is due at
once. The first load balancer is the world's usual one (its :80 listener routes challenges to
the token server; Pebble validates every name there: which load balancer answers http-01 does
not matter to the fleet).

With ``function=True`` the tenancy also holds the renewer as an OCI Function
(:data:`FUNCTION_ID`, the renewer principal's own OCID) that may read itself and invoke itself
(``read fn-function``, ``use fn-invocation``: what Terraform grants for fan-out);
:meth:`FleetWorld.attach_function` makes the emulator's InvokeFunction run the real fdk server.

With ``service_targets=True`` every certificate is instead a Certificates-service certificate
that its listener references through ``certificateIds`` (the listener follows the certificate's
CURRENT version after ``listenerFollowSeconds``): a renewal needs no load-balancer work request.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandbox.world import COMPARTMENT, LB_ID, SEED_BUNDLE, SandboxWorld

FLEET_DOMAIN = "fleet.example.com"
FUNCTION_ID = "ocid1.fnfunc.oc1.phx.sandboxrenewer"  # the renewer principal (sandbox.world)
FAN_OUT_STATEMENTS = (
    "Allow dynamic-group renewer-dg to read fn-function in compartment apps",
    "Allow dynamic-group renewer-dg to use fn-invocation in compartment apps",
)


def uneven_layout(
    certificates: int = 200, load_balancers: int = 20, busiest: int = 40
) -> list[int]:
    """``busiest`` certificates on the first load balancer, the rest spread over the others."""
    if load_balancers < 1 or not 0 < busiest <= certificates:
        msg = "need >= 1 load balancer and 0 < busiest <= certificates"
        raise ValueError(msg)
    if load_balancers == 1:
        return [certificates]
    rest, others = certificates - busiest, load_balancers - 1
    return [busiest] + [rest // others + (1 if i < rest % others else 0) for i in range(others)]


def lb_id(index: int) -> str:
    """The OCID of the fleet's load balancer ``index`` (0 is the world's usual one)."""
    return LB_ID if index == 0 else f"ocid1.loadbalancer.oc1.phx.fleetlb{index:03d}"


def certificate_name(index: int) -> str:
    """The configuration name of certificate ``index``."""
    return f"c{index:03d}"


def service_certificate_id(index: int) -> str:
    """The Certificates-service OCID of certificate ``index`` (``service_targets`` only)."""
    return f"ocid1.certificate.oc1.phx.fleetcert{index:03d}"


class FleetWorld(SandboxWorld):
    """The sandbox with a fleet: see the module docstring.

    Args:
        workdir: as for :class:`SandboxWorld`.
        layout: certificates per load balancer.
        service_targets: Certificates-service targets instead of LB bundles.
        function: the renewer as an OCI Function (fixture keys such as ``timeoutInSeconds``,
            ``detachedModeTimeoutInSeconds``), with the fan-out statements; None: none.
        grant_fan_out: False leaves the fan-out statements out (Terraform's ``fan_out = false``).
        **options: the other :class:`SandboxWorld` keywords (``timing``, ``pebble_options``...).

    """

    def __init__(
        self,
        workdir: Path,
        *,
        layout: Sequence[int],
        service_targets: bool = False,
        function: dict[str, Any] | None = None,
        grant_fan_out: bool = True,
        **options: Any,  # noqa: ANN401 - SandboxWorld's keywords
    ) -> None:
        super().__init__(workdir, certificates=(f"c000.{FLEET_DOMAIN}",), **options)
        self.layout = list(layout)
        self.service_targets = service_targets
        # The function's fixture entry (timeouts...), or None: no OCI Function in the tenancy.
        self.function = function
        self.grant_fan_out = grant_fan_out
        # (certificate index, load balancer index), in configuration order.
        self.placement = [
            (sum(self.layout[:lb]) + n, lb)
            for lb, size in enumerate(self.layout)
            for n in range(size)
        ]

    @property
    def size(self) -> int:
        """Certificates in the fleet."""
        return len(self.placement)

    def dns_name(self, index: int) -> str:
        """The one DNS name of certificate ``index``."""
        return f"{certificate_name(index)}.{FLEET_DOMAIN}"

    def fixture(self, token_port: int) -> dict[str, Any]:
        """The world's fixture with the fleet's load balancers (and Certificates-service certs)."""
        fixture = super().fixture(token_port)
        first = fixture["load_balancers"][0]
        seed_pem = self.seed.certificate_pem
        balancers = []
        for lb, _size in enumerate(self.layout):
            balancer = (
                first
                if lb == 0
                else {
                    "id": lb_id(lb),
                    "compartmentId": COMPARTMENT,
                    "displayName": f"fleet-lb-{lb:03d}",
                    "listeners": {},
                    "certificates": {SEED_BUNDLE: {"publicCertificate": seed_pem}},
                    "privateKeys": {SEED_BUNDLE: self.seed.private_key_pem},
                    "backendSets": {"app": first["backendSets"]["app"]},
                }
            )
            if lb == 0:
                # The fleet's listeners only: the world's own :443 listener is not managed here.
                balancer["listeners"] = {"http": first["listeners"]["http"]}
            balancers.append(balancer)
        services = []
        for index, lb in self.placement:
            ssl: dict[str, Any] = {"protocols": ["TLSv1.2", "TLSv1.3"]}
            if self.service_targets:
                ssl["certificateIds"] = [service_certificate_id(index)]
                services.append(
                    {
                        "id": service_certificate_id(index),
                        "name": f"{certificate_name(index)}-service",
                        "compartment": COMPARTMENT,
                        "certificatePem": seed_pem,
                        "certChainPem": seed_pem,
                        "privateKeyPem": self.seed.private_key_pem,
                    }
                )
            else:
                ssl["certificateName"] = SEED_BUNDLE
            balancers[lb]["listeners"][listener_name(index)] = {
                "port": 10000 + index,
                "protocol": "HTTP",
                "defaultBackendSetName": "app",
                "sslConfiguration": ssl,
            }
        fixture["load_balancers"] = balancers
        if self.function is not None:
            fixture["functions"] = [
                {"id": FUNCTION_ID, "compartment": COMPARTMENT, **self.function}
            ]
            # The world's default policies gain the fan-out statements; given ones stay as given.
            granted = self.policies is None and self.grant_fan_out
            for policy in fixture.get("policies", []) if granted else ():
                if policy.get("name") == "renewer":
                    policy["statements"] = [*policy["statements"], *FAN_OUT_STATEMENTS]
        if services:
            fixture["certificates"] = services
        return fixture

    def attach_function(self, document: dict[str, Any] | None = None) -> None:
        """Make InvokeFunction of :data:`FUNCTION_ID` run ``func.py`` (the real fdk server)."""
        self.emulator.services["functions"].attach(  # type: ignore[attr-defined]
            FUNCTION_ID, self.function_environment(document), self.workdir / "functions"
        )

    def config_document(self) -> dict[str, Any]:
        """The renewer's configuration: one certificate per listener (or service certificate)."""
        document = super().config_document()
        certificates = []
        for index, lb in self.placement:
            target: dict[str, Any] = (
                {"certificateId": service_certificate_id(index)}
                if self.service_targets
                else {"loadBalancerId": lb_id(lb), "listeners": [listener_name(index)]}
            )
            certificates.append(
                {
                    "name": certificate_name(index),
                    "dnsNames": [self.dns_name(index)],
                    "targets": [target],
                }
            )
        document["certificates"] = certificates
        return document


def listener_name(index: int) -> str:
    """The HTTPS listener of certificate ``index``."""
    return f"https-{index:03d}"
