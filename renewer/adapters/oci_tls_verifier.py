"""Live verification after a switch: a TLS handshake with the listener, as a client would.

For a :class:`ListenerTarget`, the load balancer's first IP address (from the control plane) and
the listener's port are dialled with the certificate's DNS name as SNI, and the serial of the
leaf the listener presents is returned. The orchestrator compares it with the serial it just
deployed. Nothing is sent after the handshake.

As the listener's clients will (:func:`renewer.key_choice.offers`): one handshake per protocol
the listener enables (none named: TLSv1.2), each offering exactly that protocol and the
listener's cipher suite's ciphers for it (no suite named: ``oci-default-ssl-cipher-suite-v1``;
custom suites from the load balancer's ``sslCipherSuites``; TLS 1.3 with the suite's TLS 1.3
ciphersuites). A certificate whose key the suite cannot use fails those handshakes: when some
protocol's handshake succeeds and another's fails, that is a :class:`DeploymentError` naming
the protocol and the suite; when every one fails, a :class:`TransientError` as before (the
listener may not be serving yet).

The chain (``verify_chain=True``): the handshake itself accepts any chain, so that *which*
certificate is served can always be reported; then, when the served leaf is the one the
listener's bundle holds, the served chain must be exactly the bundle's ``publicCertificate``
(leaf and intermediates, in order: what the renewer stored) and must verify, for the server
name, to a trusted root — the roots in ``ca_bundle`` (``RENEWER_ACME_CA_BUNDLE``; Pebble's root
in the sandbox), else the system store. Either failure is a :class:`DeploymentError` naming the
address and what was served: a client without the intermediate cannot build the path. A listener
on a Certificates-service certificate has no bundle to compare with; its chain must still
verify. A served leaf that is not the bundle's (the listener has not followed yet) is reported
by its serial alone, for the orchestrator to judge.

A Certificates-service target has no endpoint of its own: :meth:`ListenerTlsVerifier.
listeners_using` finds the listeners whose ``certificateIds`` name it, and the orchestrator
polls those (with ``expected``: until it is served, a listener's chain is not judged, so an old
certificate still served while the listener follows is never a DeploymentError).

``address_override`` maps (load balancer OCID, listener port) to the (host, port) to dial
instead — the sandbox's data plane, or a private address reachable from inside the VCN when the
public one is not (hairpin NAT).

Time: ``timeout`` bounds each handshake in total (connect and TLS together, however slowly the
peer answers), and no handshake outlasts the run's deadline held by the :class:`OciClients`
(which also bounds the GetLoadBalancer read).
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification

from renewer import key_choice, pki
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_listener_tls import tls_of
from renewer.deadline import cut_at
from renewer.errors import ConfigError, DeploymentError, TransientError
from renewer.model import ListenerTarget, Target

AddressOverride = Callable[[str, int], tuple[str, int] | None]
_VERSIONS = {"TLSv1": "TLS1_VERSION", "TLSv1.1": "TLS1_1_VERSION", "TLSv1.2": "TLS1_2_VERSION"}
_VERSIONS["TLSv1.3"] = "TLS1_3_VERSION"


@dataclass(frozen=True, slots=True)
class _Offer:
    """What one kind of client of the listener offers: a protocol and the suite's ciphers."""

    suite: str
    protocol: str
    ciphers: tuple[str, ...] | None  # None: the client's defaults (the suite is not known)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """One address to dial, and the chain its listener's bundle holds (None: no bundle)."""

    host: str
    port: int
    bundle: str | None
    chain: tuple[bytes, ...] | None  # DER, leaf first
    offers: tuple[_Offer, ...] = ()  # none: one handshake with the client's defaults


class ListenerTlsVerifier:
    """``TlsVerifier`` for load-balancer listeners. Read-only; safe to call again.

    Raises:
        ConfigError: the target is not a listener target, or the listener does not exist.
        TransientError: the address cannot be reached or the handshake fails.

    """

    def __init__(
        self,
        clients: OciClients,
        *,
        address_override: AddressOverride | None = None,
        verify_chain: bool = False,
        ca_bundle: str | None = None,
    ) -> None:
        """Dial through ``address_override``; check chains when ``verify_chain`` (see below).

        ``ca_bundle``: a PEM file of the roots the served chain must verify to; None: the
        system store.
        """
        self._clients = clients
        self._override = address_override
        self._verify_chain = verify_chain
        self._ca_bundle = ca_bundle
        self._roots: list[x509.Certificate] | None = None
        self._roots_lock = threading.Lock()

    def listeners_using(
        self, certificate_id: str, load_balancer_ids: Sequence[str]
    ) -> tuple[ListenerTarget, ...]:
        """The listeners of ``load_balancer_ids`` whose ``certificateIds`` name the certificate.

        One :class:`ListenerTarget` per load balancer that has any, its listeners in name
        order; one GetLoadBalancer per load balancer. Read-only.

        Raises:
            ConfigError, TransientError: as the read of a load balancer answers
                (:func:`renewer.adapters.oci_clients.translate`; a load balancer that does
                not exist or may not be read is a ConfigError naming it).

        """
        found = []
        for lb_id in dict.fromkeys(load_balancer_ids):
            with translate(f"read load balancer {lb_id} (listeners using {certificate_id})"):
                lb = self._clients.load_balancer.get_load_balancer(lb_id).data
            names = sorted(
                name
                for name, listener in (lb.listeners or {}).items()
                if listener.ssl_configuration is not None
                and certificate_id in (listener.ssl_configuration.certificate_ids or ())
            )
            if names:
                found.append(ListenerTarget(lb_id, tuple(names)))
        return tuple(found)

    def serial_served(
        self, target: Target, server_name: str, *, timeout: float, expected: str | None = None
    ) -> str:
        """The serial (lower-case hex) every listener of ``target`` presents for ``server_name``.

        Each distinct listener port is dialled; when they disagree (one listener switched, one
        not), DeploymentError names what each port serves. ``expected``: the serial the
        caller waits for; a listener without a bundle of its own (``certificateIds``) has its
        chain checked only once it serves that serial — before, what it serves is reported by
        serial alone (it has not followed yet), never judged.
        """
        if not isinstance(target, ListenerTarget):
            msg = "live TLS verification applies to load-balancer listener targets only"
            raise ConfigError(msg)
        endpoints = self._addresses(target)
        served = {}
        for endpoint in endpoints:
            host, port = endpoint.host, endpoint.port
            failed: list[tuple[_Offer, TransientError]] = []
            for offer in endpoint.offers or (None,):
                left = self._clients.remaining()
                if left is not None and left <= 0:
                    msg = (
                        f"TLS handshake with {host}:{port} not tried: the run's deadline has passed"
                    )
                    raise TransientError(msg)
                bound = timeout if left is None else min(timeout, left)
                try:
                    chain = _handshake(host, port, server_name, bound, offer)
                except TransientError as exc:
                    if offer is None:
                        raise
                    failed.append((offer, exc))
                    continue
                if self._verify_chain and _judged(endpoint, chain, expected):
                    self._check_chain(endpoint, server_name, chain)
                where = f"{host}:{port}" + (f" ({offer.protocol})" if offer else "")
                served[where] = pki.serial_hex(chain[0])
            _judge_offers(target, host, port, server_name, failed, len(endpoint.offers))
        serials = set(served.values())
        if len(serials) > 1:
            detail = ", ".join(
                f"{where} serves {serial}" for where, serial in sorted(served.items())
            )
            msg = f"listeners of {target.load_balancer_id} disagree for {server_name}: {detail}"
            raise DeploymentError(msg)
        return serials.pop()

    def _check_chain(
        self, endpoint: _Endpoint, server_name: str, chain: list[x509.Certificate]
    ) -> None:
        """DeploymentError unless ``chain`` is the bundle's and verifies to a trusted root."""
        where = f"{endpoint.host}:{endpoint.port} for {server_name}"
        ders = tuple(c.public_bytes(serialization.Encoding.DER) for c in chain)
        expected = endpoint.chain
        if expected is not None and expected[:1] == ders[:1] and expected != ders:
            msg = (
                f"{where} serves the chain {_describe(chain)}, but bundle {endpoint.bundle}"
                f" holds {len(expected)} certificate(s): the listener does not serve the stored"
                " chain"
            )
            raise DeploymentError(msg)
        if expected is not None and expected[:1] != ders[:1]:
            return  # another leaf: the orchestrator reports the serial
        policy = verification.PolicyBuilder().store(verification.Store(self._trusted_roots()))
        name = server_name.removeprefix("*.")
        subject = x509.DNSName(name if name == server_name else f"wildcard.{name}")
        try:
            policy.build_server_verifier(subject).verify(chain[0], chain[1:])
        except verification.VerificationError as exc:
            roots = self._ca_bundle or "the system store"
            msg = (
                f"{where} serves the chain {_describe(chain)}, which does not verify to a root"
                f" in {roots} ({exc}); clients will refuse it — is an intermediate missing?"
            )
            raise DeploymentError(msg) from exc

    def _trusted_roots(self) -> list[x509.Certificate]:
        """The roots of ``ca_bundle``, else of the system store; read once.

        Raises:
            ConfigError: the file cannot be read, or no root was found.

        """
        with self._roots_lock:
            if self._roots is None:
                self._roots = _load_roots(self._ca_bundle)
            return self._roots

    def _addresses(self, target: ListenerTarget) -> list[_Endpoint]:
        """What to dial for each distinct listener port of the target, and its bundle's chain."""
        with translate(f"read load balancer {target.load_balancer_id}"):
            lb = self._clients.load_balancer.get_load_balancer(target.load_balancer_id).data
        listeners = lb.listeners or {}
        missing = [name for name in target.listener_names if name not in listeners]
        if missing:
            msg = f"load balancer {target.load_balancer_id} has no listener {missing[0]!r}"
            raise ConfigError(msg)
        by_port: dict[int, str | None] = {}
        by_name = tuple(target.listener_names)
        for name in target.listener_names:
            ssl_configuration = listeners[name].ssl_configuration
            bundle = None if ssl_configuration is None else ssl_configuration.certificate_name
            by_port.setdefault(int(listeners[name].port), bundle)
        settings = {tls.listener: tls for tls in tls_of(lb, target.load_balancer_id, by_name)}
        offers_by_port: dict[int, tuple[_Offer, ...]] = {}
        for name in target.listener_names:
            tls = settings.get(name)
            if tls is not None:
                offers_by_port.setdefault(
                    int(listeners[name].port),
                    tuple(_Offer(tls.suite, p, c) for p, c in key_choice.offers(tls)),
                )
        bundles = lb.certificates or {}
        ips = lb.ip_addresses or []
        public = [a.ip_address for a in ips if a.is_public and a.ip_address]
        address = (public or [a.ip_address for a in ips if a.ip_address] or [None])[0]
        result = []
        for port, bundle in sorted(by_port.items()):
            overridden = self._override(target.load_balancer_id, port) if self._override else None
            if overridden is None and address is None:
                msg = f"load balancer {target.load_balancer_id} has no IP address yet"
                raise TransientError(msg)
            host, dial = overridden if overridden is not None else (str(address), port)
            held = bundles.get(bundle) if bundle else None
            chain = None if held is None else _ders(held.public_certificate or "")
            result.append(_Endpoint(host, dial, bundle, chain, offers_by_port.get(port, ())))
        return result


def _judged(endpoint: _Endpoint, chain: list[x509.Certificate], expected: str | None) -> bool:
    """Whether the chain check applies: a bundle listener always, any other once it follows."""
    if endpoint.chain is not None or expected is None:
        return True
    return pki.normalize_serial(pki.serial_hex(chain[0])) == pki.normalize_serial(expected)


def _judge_offers(
    target: ListenerTarget,
    host: str,
    port: int,
    server_name: str,
    failed: list[tuple[_Offer, TransientError]],
    offered: int,
) -> None:
    """Raise when the listener's clients could not all connect (see the module docstring)."""
    if not failed:
        return
    if len(failed) == offered:  # nothing answered: not serving yet, or serving nobody
        offer, exc = failed[0]
        protocols = ", ".join(o.protocol for o, _ in failed)
        msg = (
            f"{exc}; no handshake offering the ciphers of suite {offer.suite!r} ({protocols})"
            " completed — or the certificate's key type does not suit that suite"
        )
        raise TransientError(msg) from exc
    offer, exc = failed[0]
    msg = (
        f"{host}:{port} (listener(s) {', '.join(target.listener_names)} of load balancer"
        f" {target.load_balancer_id}) completes no {offer.protocol} handshake for {server_name}"
        f" with the ciphers of its suite {offer.suite!r}: its {offer.protocol} clients cannot"
        f" connect ({exc}). Does the certificate's key type suit the suite? keyType 'auto'"
        " chooses one that does"
    )
    raise DeploymentError(msg)


def _handshake(
    host: str, port: int, server_name: str, timeout: float, offer: _Offer | None = None
) -> list[x509.Certificate]:
    """The chain ``host:port`` sends for SNI ``server_name``, as sent (leaf first).

    Any chain is accepted here: what is served is the question; trust is judged afterwards.
    pyOpenSSL, because the standard library only exposes the peer's chain from Python 3.13.
    ``offer``: the one protocol and the ciphers to offer (None: the client's defaults).
    """
    # Imported here: VERIFY is the only user, and a run that deploys nothing never loads it.
    from OpenSSL import SSL  # noqa: PLC0415

    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE, lambda *_: True)
    if offer is not None:
        _offer_only(context, offer, f"{host}:{port}")
    until = time.monotonic() + timeout
    try:
        with (
            cut_at(until) as cutoff,
            socket.create_connection((host, port), timeout=timeout) as raw,
        ):
            cutoff.watch(raw)
            raw.setblocking(False)  # noqa: FBT003 - the loop below waits, bounded by ``until``
            connection = SSL.Connection(context, raw)
            connection.set_tlsext_host_name(server_name.encode("idna"))
            connection.set_connect_state()
            while True:
                try:
                    connection.do_handshake()
                    break
                except (SSL.WantReadError, SSL.WantWriteError) as want:
                    left = until - time.monotonic()
                    if left <= 0:
                        raise TimeoutError from want
                    reading = isinstance(want, SSL.WantReadError)
                    select.select([raw] if reading else [], [] if reading else [raw], [], left)
            chain = connection.get_peer_cert_chain(as_cryptography=True) or []
    except (OSError, SSL.Error, ValueError) as exc:
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
    if not chain:
        msg = f"{host}:{port} presented no certificate for {server_name}"
        raise TransientError(msg)
    return list(chain)


def _offer_only(context: Any, offer: _Offer, where: str) -> None:  # noqa: ANN401 - SSL.Context
    """Make ``context`` offer exactly ``offer``'s protocol and ciphers.

    Raises:
        TransientError: this client's OpenSSL has none of the ciphers (the handshake is not
            tried; reported like a failed one).

    """
    from OpenSSL import SSL  # noqa: PLC0415

    version = getattr(SSL, _VERSIONS[offer.protocol])
    context.set_min_proto_version(version)
    context.set_max_proto_version(version)
    legacy = offer.protocol in ("TLSv1", "TLSv1.1")
    try:
        if offer.protocol == "TLSv1.3":
            if offer.ciphers is not None:
                context.set_tls13_ciphersuites(":".join(offer.ciphers).encode())
        else:
            names = ":".join(offer.ciphers) if offer.ciphers is not None else "DEFAULT"
            context.set_cipher_list((f"{names}:@SECLEVEL=0" if legacy else names).encode())
    except SSL.Error as exc:
        msg = f"{where}: this client cannot offer the {offer.protocol} ciphers of {offer.suite}"
        raise TransientError(msg) from exc


def _ders(pem: str) -> tuple[bytes, ...] | None:
    """The DER of each certificate in ``pem``, in order; None when it does not parse."""
    try:
        return tuple(c.public_bytes(serialization.Encoding.DER) for c in pki.split_chain(pem))
    except ConfigError:
        return None


def _describe(chain: list[x509.Certificate]) -> str:
    """``[leaf CN <- issuer CN <- ...]``: subjects only, never the PEM."""
    return "[" + " <- ".join(pki.common_name(c.subject) for c in chain) + "]"


def _load_roots(ca_bundle: str | None) -> list[x509.Certificate]:
    """Every certificate of ``ca_bundle``, or of the system store (OpenSSL's default paths)."""
    if ca_bundle is not None:
        files = [Path(ca_bundle)]
    else:
        paths = ssl.get_default_verify_paths()
        files = [Path(paths.cafile)] if paths.cafile else []
        if not files and paths.capath and Path(paths.capath).is_dir():
            files = sorted(p for p in Path(paths.capath).iterdir() if p.is_file())
    roots: list[x509.Certificate] = []
    for path in files:
        try:
            text = path.read_text("ascii", errors="replace")
        except OSError as exc:
            msg = f"the trusted roots for VERIFY cannot be read from {path} ({exc.strerror})"
            raise ConfigError(msg) from exc
        try:
            roots += pki.split_chain(text)
        except ConfigError:
            continue  # not a certificate file (capath holds other things too)
    if not roots:
        where = ca_bundle or "the system store"
        msg = (
            f"no trusted root certificate found in {where} for VERIFY's chain check;"
            " set RENEWER_ACME_CA_BUNDLE to a PEM file of the CA's roots"
        )
        raise ConfigError(msg)
    return roots
