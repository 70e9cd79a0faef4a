"""What each target serves right now, for ``status`` and ``history``. Read-only.

A listener target: the load balancer is read once (GetLoadBalancer) for each listener's port
and the bundle (or Certificates-service certificate) it references, then each listener's port is
dialled with the certificate's first DNS name as SNI — the same handshake VERIFY makes
(:func:`renewer.adapters.oci_tls_verifier._handshake`, any chain accepted: *what* is served is
the question) — and the leaf it presents is described: serial, issuer, subject, notAfter, key
type. A Certificates-service target: the certificate's current version (serial, notAfter) as the
service reports it; listeners referencing it follow that version.

Nothing here raises for one target's trouble: a listener that cannot be read or reached is
an observation with ``error`` set (the message names the address and why, never a secret), so
``status`` still answers for everything else.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509

from renewer import pki
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_tls_verifier import AddressOverride, _handshake
from renewer.errors import ConfigError, RenewerError
from renewer.model import CertificateServiceTarget, ListenerTarget, Target
from renewer.operations.status import Observation, ServedCertificate

HANDSHAKE_S = 5.0  # a listener that does not finish a handshake in 5 s is reported as such


class ServedProbe:
    """Observe targets: see the module docstring. Safe to call again; changes nothing."""

    def __init__(
        self,
        clients: OciClients,
        *,
        address_override: AddressOverride | None = None,
        timeout: float = HANDSHAKE_S,
    ) -> None:
        self._clients = clients
        self._override = address_override
        self._timeout = timeout

    def observe(self, target: Target, server_name: str) -> list[Observation]:
        """One observation per listener of ``target`` (one for a Certificates target)."""
        if isinstance(target, CertificateServiceTarget):
            return [self._certificate(target)]
        if isinstance(target, ListenerTarget):
            return self._listeners(target, server_name)
        return []  # pragma: no cover - the two target kinds above are all there is

    def _certificate(self, target: CertificateServiceTarget) -> Observation:
        base = Observation(kind="certificate", id=target.certificate_id)
        try:
            with translate(f"read certificate {target.certificate_id}"):
                data = self._clients.certificates_management.get_certificate(
                    target.certificate_id
                ).data
        except RenewerError as exc:
            return base.failed(str(exc))
        current = data.current_version
        if current is None:
            return base.failed("the certificate has no current version")
        validity = current.validity
        not_after = None if validity is None else validity.time_of_validity_not_after
        return base.with_served(
            ServedCertificate(
                serial=pki.normalize_serial(str(current.serial_number or "")),
                issuer=None,
                subject=str(data.subject.common_name) if data.subject else None,
                not_after=_utc(not_after),
                key_type=str(data.key_algorithm) if data.key_algorithm else None,
            ),
            version=int(current.version_number) if current.version_number else None,
        )

    def _listeners(self, target: ListenerTarget, server_name: str) -> list[Observation]:
        lb_id = target.load_balancer_id
        try:
            with translate(f"read load balancer {lb_id}"):
                lb = self._clients.load_balancer.get_load_balancer(lb_id).data
        except RenewerError as exc:
            return [
                Observation(kind="listener", id=lb_id, listener=name).failed(str(exc))
                for name in target.listener_names
            ]
        listeners = lb.listeners or {}
        ips = lb.ip_addresses or []
        public = [a.ip_address for a in ips if a.is_public and a.ip_address]
        address = (public or [a.ip_address for a in ips if a.ip_address] or [None])[0]
        observed = []
        for name in target.listener_names:
            base = Observation(kind="listener", id=lb_id, listener=name)
            listener = listeners.get(name)
            if listener is None:
                observed.append(base.failed(f"load balancer {lb_id} has no listener {name!r}"))
                continue
            port = int(listener.port)
            ssl_configuration = listener.ssl_configuration
            bundle = None if ssl_configuration is None else ssl_configuration.certificate_name
            ids = (
                () if ssl_configuration is None else tuple(ssl_configuration.certificate_ids or ())
            )
            base = Observation(
                kind="listener",
                id=lb_id,
                listener=name,
                port=port,
                bundle=bundle,
                certificate_ids=ids,
            )
            if ssl_configuration is None:
                observed.append(base.failed(f"listener {name!r} has no SSL configuration"))
                continue
            overridden = self._override(lb_id, port) if self._override else None
            if overridden is None and address is None:
                observed.append(base.failed(f"load balancer {lb_id} has no IP address yet"))
                continue
            host, dial = overridden if overridden is not None else (str(address), port)
            observed.append(self._handshake(base, host, dial, server_name))
        return observed

    def _handshake(self, base: Observation, host: str, port: int, server_name: str) -> Observation:
        left = self._clients.remaining()
        if left is not None and left <= 0:
            return base.failed(f"TLS handshake with {host}:{port} not tried: no time left")
        bound = self._timeout if left is None else min(self._timeout, left)
        try:
            chain = _handshake(host, port, server_name, bound)
        except RenewerError as exc:
            return base.failed(str(exc))
        return base.with_served(describe(chain[0]))


def describe(leaf: x509.Certificate) -> ServedCertificate:
    """The facts ``status`` shows about a served leaf (nothing secret is in a certificate)."""
    try:
        key_type: str = str(pki.key_type_of(leaf.public_key()))
    except ConfigError:
        key_type = type(leaf.public_key()).__name__  # a key we would not issue: say what it is
    return ServedCertificate(
        serial=pki.serial_hex(leaf),
        issuer=pki.common_name(leaf.issuer),
        subject=pki.common_name(leaf.subject),
        not_after=leaf.not_valid_after_utc,
        key_type=key_type,
    )


def _utc(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
