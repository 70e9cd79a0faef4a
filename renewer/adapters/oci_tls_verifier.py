"""Live verification after a switch: a TLS handshake with the listener, as a client would.

For a :class:`ListenerTarget`, the load balancer's first IP address (from the control plane) and
the listener's port are dialled with the certificate's DNS name as SNI, and the serial of the
leaf the listener presents is returned. The orchestrator compares it with the serial it just
deployed. The handshake does not validate the chain: the point is *which* certificate is served
(a staging CA's chain is not trusted by this host), and nothing is sent after the handshake.

``address_override`` maps (load balancer OCID, listener port) to the (host, port) to dial
instead — the sandbox's data plane, or a private address reachable from inside the VCN when the
public one is not (hairpin NAT).

Time: ``timeout`` bounds each handshake in total (connect and TLS together, however slowly the
peer answers), and no handshake outlasts the run's deadline held by the :class:`OciClients`
(which also bounds the GetLoadBalancer read).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable

from cryptography import x509

from renewer import pki
from renewer.adapters.oci_clients import OciClients, translate
from renewer.deadline import cut_at
from renewer.errors import ConfigError, DeploymentError, TransientError
from renewer.model import ListenerTarget, Target

AddressOverride = Callable[[str, int], tuple[str, int] | None]


class ListenerTlsVerifier:
    """``TlsVerifier`` for load-balancer listeners. Read-only; safe to call again.

    Raises:
        ConfigError: the target is not a listener target, or the listener does not exist.
        TransientError: the address cannot be reached or the handshake fails.

    """

    def __init__(
        self, clients: OciClients, *, address_override: AddressOverride | None = None
    ) -> None:
        self._clients = clients
        self._override = address_override

    def serial_served(self, target: Target, server_name: str, *, timeout: float) -> str:
        """The serial (lower-case hex) every listener of ``target`` presents for ``server_name``.

        Each distinct listener port is dialled; when they disagree (one listener switched, one
        not), DeploymentError names what each port serves.
        """
        if not isinstance(target, ListenerTarget):
            msg = "live TLS verification applies to load-balancer listener targets only"
            raise ConfigError(msg)
        addresses = self._addresses(target)
        served = {}
        for host, port in addresses:
            left = self._clients.remaining()
            if left is not None and left <= 0:
                msg = f"TLS handshake with {host}:{port} not tried: the run's deadline has passed"
                raise TransientError(msg)
            bound = timeout if left is None else min(timeout, left)
            served[f"{host}:{port}"] = self._handshake(host, port, server_name, bound)
        serials = set(served.values())
        if len(serials) > 1:
            detail = ", ".join(
                f"{where} serves {serial}" for where, serial in sorted(served.items())
            )
            msg = f"listeners of {target.load_balancer_id} disagree for {server_name}: {detail}"
            raise DeploymentError(msg)
        return serials.pop()

    @staticmethod
    def _handshake(host: str, port: int, server_name: str, timeout: float) -> str:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # Which certificate is served is the question; trust is not (see the module docstring).
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        until = time.monotonic() + timeout
        try:
            with (
                cut_at(until) as cutoff,
                socket.create_connection((host, port), timeout=timeout) as raw,
            ):
                cutoff.watch(raw)
                # The handshake is one call bounded by the socket timeout: what is left of it.
                raw.settimeout(max(0.001, until - time.monotonic()))
                with context.wrap_socket(raw, server_hostname=server_name) as tls:
                    der = tls.getpeercert(binary_form=True)
        except (OSError, ssl.SSLError) as exc:
            msg = (
                f"TLS handshake with {host}:{port} for {server_name} failed"
                f" ({type(exc).__name__}); the listener may not be serving yet"
            )
            if cutoff.fired or time.monotonic() >= until:
                msg = (
                    f"TLS handshake with {host}:{port} for {server_name} did not finish"
                    f" within {timeout:.1f} s; the listener may not be serving yet"
                )
            raise TransientError(msg) from exc
        if der is None:
            msg = f"{host}:{port} presented no certificate for {server_name}"
            raise TransientError(msg)
        return pki.serial_hex(x509.load_der_x509_certificate(der))

    def _addresses(self, target: ListenerTarget) -> list[tuple[str, int]]:
        """(host, port) to dial for each distinct listener port of the target."""
        with translate(f"read load balancer {target.load_balancer_id}"):
            lb = self._clients.load_balancer.get_load_balancer(target.load_balancer_id).data
        listeners = lb.listeners or {}
        missing = [name for name in target.listener_names if name not in listeners]
        if missing:
            msg = f"load balancer {target.load_balancer_id} has no listener {missing[0]!r}"
            raise ConfigError(msg)
        ports = sorted({int(listeners[name].port) for name in target.listener_names})
        ips = lb.ip_addresses or []
        public = [a.ip_address for a in ips if a.is_public and a.ip_address]
        address = (public or [a.ip_address for a in ips if a.ip_address] or [None])[0]
        result = []
        for port in ports:
            overridden = self._override(target.load_balancer_id, port) if self._override else None
            if overridden is not None:
                result.append(overridden)
            elif address is None:
                msg = f"load balancer {target.load_balancer_id} has no IP address yet"
                raise TransientError(msg)
            else:
                result.append((address, port))
        return result
