"""``ServedCertificates`` for load-balancer listeners: adopt what is already there (issue 13 §4).

When the renewer holds no certificate yet, the listener's bundle (``certificateName`` on the
load balancer, its ``publicCertificate``: exactly the chain the listener serves) is read, and
it is adoptable when its leaf covers every configured name, is valid now, and the chain verifies
for each name to a trusted root (``ca_bundle``, else the system store) — the checks a browser
makes. One GetLoadBalancer per target; never a key, never a write. A self-signed or expired
seed, or a bundle for other names, is not adopted: the renewer orders as before (``Missing``).
"""

from __future__ import annotations

import logging
import ssl
from datetime import datetime

from cryptography import x509
from cryptography.x509 import DNSName, verification

from renewer import pki
from renewer.adapters.oci_clients import OciClients, translate
from renewer.clock import Clock
from renewer.errors import ConfigError
from renewer.model import ListenerTarget, ServedCertificate, Target

logger = logging.getLogger(__name__)


class ListenerServedCertificates:
    """:class:`~renewer.ports.ServedCertificates` over the real SDK (the module docstring).

    Args:
        clients: the OCI clients (only ``load_balancer`` is used).
        ca_bundle: PEM file of the trusted roots; None: the system store.
        clock: ``now`` for the validity check.

    """

    def __init__(self, clients: OciClients, *, ca_bundle: str | None, clock: Clock) -> None:
        self._clients = clients
        self._ca_bundle = ca_bundle
        self._clock = clock
        self._roots: list[x509.Certificate] | None = None

    def served(self, target: Target, dns_names: tuple[str, ...]) -> ServedCertificate | None:
        """See :class:`~renewer.ports.ServedCertificates`."""
        if not isinstance(target, ListenerTarget):
            return None  # a Certificates-service certificate is renewed as before
        lb_id = target.load_balancer_id
        with translate(f"read load balancer {lb_id}"):
            load_balancer = self._clients.load_balancer.get_load_balancer(lb_id).data
        for name in target.listener_names:
            listener = (load_balancer.listeners or {}).get(name)
            ssl_config = listener.ssl_configuration if listener is not None else None
            bundle_name = ssl_config.certificate_name if ssl_config is not None else None
            bundle = (load_balancer.certificates or {}).get(bundle_name or "")
            if bundle is None or not bundle.public_certificate:
                continue
            why = self._not_adoptable(bundle.public_certificate, dns_names)
            if why:
                logger.info("adopt skipped lb=%s listener=%s reason=%s", lb_id, name, why)
                continue
            leaf = pki.split_chain(bundle.public_certificate)[0]
            return ServedCertificate(
                certificate=pki.describe(bundle.public_certificate),
                issuer=pki.common_name(leaf.issuer) or leaf.issuer.rfc4514_string(),
                where=f"listener {name} of load balancer {lb_id}",
            )
        return None

    def _not_adoptable(self, chain_pem: str, dns_names: tuple[str, ...]) -> str:
        """'' when ``chain_pem`` is adoptable for ``dns_names``; else why not (no PEM)."""
        try:
            chain = pki.split_chain(chain_pem)
        except ConfigError:
            return "the bundle does not parse"
        now: datetime = self._clock.now()
        leaf = chain[0]
        if not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
            return "not valid now"
        roots = self._trusted_roots()
        if not roots:
            return "no trusted roots to verify it with"
        store = verification.Store(roots)
        for name in dns_names:
            verifier = (
                verification.PolicyBuilder()
                .store(store)
                .time(now)
                .build_server_verifier(DNSName(name))
            )
            try:
                verifier.verify(leaf, chain[1:])
            except (verification.VerificationError, ValueError) as exc:
                return f"does not verify for {name} to a trusted root ({type(exc).__name__})"
        return ""

    def _trusted_roots(self) -> list[x509.Certificate]:
        if self._roots is None:
            path = self._ca_bundle or ssl.get_default_verify_paths().cafile
            try:
                with open(path or "", "rb") as handle:  # noqa: PTH123 - a path string
                    self._roots = x509.load_pem_x509_certificates(handle.read())
            except (OSError, ValueError):
                self._roots = []
        return self._roots
