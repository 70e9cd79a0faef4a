"""The composition root: a validated :class:`~renewer.settings.Config` becomes a RenewalService.

The only module that imports the core and the adapters together (style guide C1). It decides
nothing: each port gets the adapter the configuration names, built once and shared by every
certificate of the run (every adapter here is thread-safe for the service's worker threads).
The sandbox knobs (``ca_bundle``, ``self_check_*``, ``tls_address_override``) exist because on
loopback the CA, port 80 and the listeners' addresses are not where they are in a tenancy.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from renewer import ca_choice
from renewer.adapters.acme_renewal_info import RenewalInfoClient
from renewer.adapters.http_self_check import HttpSelfCheck
from renewer.adapters.oci_certificates import CertificatesServiceDeployer
from renewer.adapters.oci_challenge_route import LoadBalancerChallengeRoute
from renewer.adapters.oci_clients import OciClients, OciSettings
from renewer.adapters.oci_dns import OciDnsChallengeZone
from renewer.adapters.oci_issuance_log import ObjectStorageIssuanceLog
from renewer.adapters.oci_lb_snapshots import LoadBalancerSnapshots
from renewer.adapters.oci_listener_tls import ListenerTlsReader
from renewer.adapters.oci_load_balancer import DEFAULT_POLL_INTERVAL, LoadBalancerDeployer
from renewer.adapters.oci_object_storage import (
    ObjectStorageChallengeStore,
    ObjectStorageLease,
    ObjectStorageStateRepository,
)
from renewer.adapters.oci_orphans import ObjectStorageOrphanRecords
from renewer.adapters.oci_served import ListenerServedCertificates
from renewer.adapters.oci_tls_verifier import AddressOverride, ListenerTlsVerifier
from renewer.adapters.oci_vault import VaultAccountStore, VaultCertificateStore, read_eab_hmac_key
from renewer.ca_issuers import CaListIssuer
from renewer.clock import Clock, SystemClock
from renewer.dns_names import DnsRecord
from renewer.dns_sweep import Dns01Sweeper, OrderChallengeRecord, OrderChallengeRecords
from renewer.model import (
    CaSpec,
    CertificateServiceTarget,
    IssuedCertificate,
    ListenerTarget,
    OrderRequest,
    RenewalInfo,
    Target,
)
from renewer.orphans import OrphanRetirement
from renewer.ports import Deployer, Issuer, OrderCreated, PersistRecordPlanner
from renewer.rate_limits import IssuanceGate, limits_for
from renewer.renewal import RenewalService
from renewer.revoker import Revoker
from renewer.settings import Config

if TYPE_CHECKING:
    from renewer.adapters.acme_issuer import AcmeIssuer

__all__ = ["acme_revokers", "build_service"]

# A failed self-check is retried after 30 s, then 60 s, within the run's budget: the first run
# after `terraform apply` may meet a token server still starting or a backend whose health
# check has not turned green (10 s interval, 3 retries in the stack).
SELF_CHECK_WAITS = (30.0, 60.0)


def build_service(
    config: Config,
    *,
    oci: OciSettings,
    holder: str,
    clock: Clock | None = None,
    ca_bundle: str | None = None,
    self_check_port: int = 80,
    self_check_connect_host: str | None = None,
    self_check_resolve: Mapping[tuple[str, int], tuple[str, int]] | None = None,
    tls_address_override: AddressOverride | None = None,
    step_budget: float = 60.0,
    lease_ttl: timedelta = timedelta(minutes=10),
    max_workers: int = 4,
    lb_poll_interval: float = DEFAULT_POLL_INTERVAL,
    clients: OciClients | None = None,
    self_check_waits: tuple[float, ...] = SELF_CHECK_WAITS,
) -> RenewalService:
    """Wire ``config`` to the OCI and ACME adapters.

    Args:
        config: the validated configuration.
        oci: how to reach OCI (resource principal in the function, endpoints in the sandbox).
        holder: this invocation's lease holder id (unique per invocation, e.g. its call id).
        clock: time source (default: the system clock).
        ca_bundle: PEM file of the roots to trust, else the system store: for the ACME
            server's TLS, and for the chains the listeners serve (VERIFY); in the sandbox,
            Pebble's listener CA and its issuing roots.
        self_check_port: the port the CA's validator connects to (80 in production).
        self_check_connect_host: connect the self-check here instead of resolving the name.
        self_check_resolve: ``(host, port) -> (host, port)`` the self-check connects to instead
            of DNS, on any hop (the sandbox's Object Storage in redirect mode; see HttpSelfCheck).
        tls_address_override: ``(load balancer id, listener port) -> (host, port)`` for VERIFY,
            when listeners are not reachable at their OCI address (the sandbox's data plane).
        step_budget: seconds a step may take (see :class:`RenewalService`).
        lease_ttl: how long a certificate's lease lasts; longer than the function timeout.
        max_workers: certificates processed at once.
        lb_poll_interval: seconds between reads of a load-balancer work request.
        clients: SDK clients already built from ``oci`` (the invocation read its configuration
            object with them); default: new ones.
        self_check_waits: seconds to wait before each retry of a failed self-check within
            the run (the same order; see :class:`RenewalService`).

    Returns:
        The service; nothing has been called in the tenancy except, when the configuration
        names no Object Storage namespace, the namespace lookup and, with EAB, the read of the
        HMAC key secret.

    Raises:
        ConfigError: credentials, the namespace lookup or the EAB secret are unusable.
        TransientError: OCI could not be reached for those lookups.

    """
    clock = clock or SystemClock()
    resources = config.oci
    prefix = resources.name_prefix
    clients = clients or OciClients(oci)
    namespace = resources.namespace or clients.namespace()
    vault = {
        "compartment_id": resources.compartment_id,
        "vault_id": resources.vault_id,
        "key_id": resources.key_id,
        "prefix": prefix,
    }
    cas = ca_choice.configured_cas(config)
    # The EAB keys are read now, so a bad secret fails the run before any work (rule 6).
    eab_keys = {
        ca.directory_url: read_eab_hmac_key(clients, ca.eab_hmac_key_secret_id)
        for ca in cas
        if ca.eab_hmac_key_secret_id is not None
    }
    challenges = ObjectStorageChallengeStore(
        clients, namespace=namespace, bucket=resources.challenge_bucket
    )
    accounts = VaultAccountStore(clients, **vault)

    dns_zone = OciDnsChallengeZone(clients, clock=clock)

    def acme_issuer(ca: CaSpec) -> AcmeIssuer:
        # acme, josepy and requests (~30 ms and ~2.5 MB of a cold start) load here, on the first
        # order, never in a run that orders nothing.
        from renewer.adapters.acme_issuer import (  # noqa: PLC0415 - see above
            AcmeIssuer,
            ExternalAccountBinding,
        )

        eab = None
        eab_key = eab_keys.get(ca.directory_url)
        if ca.eab_key_id is not None and eab_key is not None:
            eab = ExternalAccountBinding(kid=ca.eab_key_id, hmac_key=eab_key)
        # One account per CA directory, as ever: the store names it by the directory URL.
        return AcmeIssuer(
            directory_url=ca.directory_url,
            accounts=accounts,
            challenges=challenges,
            # dns-01 certificates write their TXT records into their OCI DNS zone.
            dns_zone=dns_zone,
            self_check=HttpSelfCheck(
                port=self_check_port,
                connect_host=self_check_connect_host,
                resolve=self_check_resolve,
                clock=clock,
            )
            if config.acme.self_check
            else None,
            contact=config.acme.contact,
            eab=eab,
            terms_of_service_agreed=config.acme.terms_of_service_agreed,
            ca_bundle=ca_bundle,
            clock=clock,
        )

    # One GetLoadBalancer per load balancer serves PLAN and the read-only check of a run.
    snapshots = LoadBalancerSnapshots()
    verifier = (
        ListenerTlsVerifier(
            clients,
            address_override=tls_address_override,
            verify_chain=True,
            ca_bundle=ca_bundle,
        )
        if config.renewal.verify_tls
        else None
    )

    def on_first_use(ca: CaSpec) -> IssuerOnFirstUse:
        # Renewal information needs two GETs, not the ACME stack: a not-due run asks directly.
        renewal_info = RenewalInfoClient(ca.directory_url, ca_bundle=ca_bundle, clock=clock)
        return IssuerOnFirstUse(
            functools.partial(acme_issuer, ca), renewal_info=renewal_info.renewal_info
        )

    issuers = {ca.directory_url: on_first_use(ca) for ca in cas}
    default = config.acme.directory_url
    issuer: IssuerOnFirstUse | CaListIssuer = (
        issuers[default] if len(issuers) == 1 else CaListIssuer(issuers, default=default)
    )
    certificates = VaultCertificateStore(clients, **vault)
    leases = ObjectStorageLease(
        clients, namespace=namespace, bucket=resources.state_bucket, clock=clock
    )
    listeners = LoadBalancerDeployer(
        clients, prefix=prefix, clock=clock, poll_interval=lb_poll_interval, snapshots=snapshots
    )
    orphans = OrphanRetirement(
        config=config,
        secrets=certificates,
        records=ObjectStorageOrphanRecords(
            clients, namespace=namespace, bucket=resources.state_bucket
        ),
        bundles=listeners,
        leases=leases,
        clock=clock,
        holder=holder,
        revoker=acme_revokers(clients, vault, ca_bundle, clock)
        if config.renewal.revoke_on_removal
        else None,
        lease_ttl=lease_ttl,
        step_budget=step_budget,
    )
    return RenewalService(
        config=config,
        issuer=issuer,
        certificates=certificates,
        leases=leases,
        state=ObjectStorageStateRepository(
            clients, namespace=namespace, bucket=resources.state_bucket
        ),
        deployer_for=_deployers(
            listeners, CertificatesServiceDeployer(clients, prefix=prefix, clock=clock)
        ),
        verifier=verifier,
        certificate_users=verifier,
        clock=clock,
        holder=holder,
        lease_ttl=lease_ttl,
        step_budget=step_budget,
        max_workers=max_workers,
        checks=(challenges.check,),
        challenges=challenges,
        # A dead dns-01 run's TXT records: derived from its recorded order and removed.
        dns_sweeper=Dns01Sweeper(issuer, dns_zone),
        self_check_waits=self_check_waits,
        served=ListenerServedCertificates(clients, ca_bundle=ca_bundle, clock=clock),
        challenge_router=LoadBalancerChallengeRoute(
            clients,
            backend_set=resources.challenge_backend_set,
            prefix=prefix,
            clock=clock,
            poll_interval=lb_poll_interval,
            address_override=tls_address_override,
        )
        if resources.challenge_backend_set is not None
        else None,
        tls_settings=ListenerTlsReader(clients, snapshots=snapshots).settings,
        orphans=orphans,
        issuance=_issuance_gate(config, clients, namespace, clock),
    )


def acme_revokers(
    clients: OciClients,
    vault: Mapping[str, str],
    ca_bundle: str | None,
    clock: Clock,
) -> Callable[[str], Revoker]:
    """The ACME revoker for a CA's directory URL, built on use (it imports ``acme``) and once.

    The revoke action and ``revokeOnRemoval`` share it: a certificate is revoked at the CA that
    issued it (:func:`renewer.ca_choice.issuing_ca`), with that CA's account.
    """
    built: dict[str, Revoker] = {}

    def revoker_for(directory_url: str) -> Revoker:
        if directory_url not in built:
            from renewer.adapters.acme_revocation import AcmeRevoker  # noqa: PLC0415 - on use

            built[directory_url] = AcmeRevoker(
                directory_url=directory_url,
                accounts=VaultAccountStore(clients, **vault),
                ca_bundle=ca_bundle,
                clock=clock,
            )
        return built[directory_url]

    return revoker_for


def _issuance_gate(
    config: Config, clients: OciClients, namespace: str, clock: Clock
) -> IssuanceGate | None:
    """The CA's limits on first issuances, counted in the state bucket; None: not counted."""
    limits = limits_for(config.renewal.rate_limits, config.acme.directory_url)
    if limits is None:
        return None
    store = ObjectStorageIssuanceLog(
        clients,
        namespace=namespace,
        bucket=config.oci.state_bucket,
        directory_url=config.acme.directory_url,
    )
    return IssuanceGate(store, limits, clock.now)


class IssuerOnFirstUse:
    """The :class:`~renewer.ports.Issuer` port: orders by an issuer built on the first order.

    Most invocations are scheduled runs that find nothing due: they never order, and their
    renewal-information questions go to ``renewal_info`` (two plain GETs,
    :class:`RenewalInfoClient`). Building the ACME issuer imports the ACME stack, so it is
    built once, on the first ``issue`` or ``resume``, by whichever worker thread gets there
    first; the others wait for that one.
    """

    def __init__(
        self,
        build: Callable[[], Issuer],
        *,
        renewal_info: Callable[..., RenewalInfo | None],
    ) -> None:
        self._build = build
        self._renewal_info = renewal_info
        self._built: Issuer | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the issuer (and so the ACME stack) has been built."""
        return self._built is not None

    def _issuer(self) -> Issuer:
        with self._lock:
            if self._built is None:
                self._built = self._build()
            return self._built

    def issue(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None = None
    ) -> IssuedCertificate:
        """:meth:`Issuer.issue` of the built issuer."""
        return self._issuer().issue(request, deadline=deadline, on_order=on_order)

    def resume(
        self, order_url: str, request: OrderRequest, *, account_url: str, deadline: float
    ) -> IssuedCertificate | None:
        """:meth:`Issuer.resume` of the built issuer."""
        return self._issuer().resume(order_url, request, account_url=account_url, deadline=deadline)

    def renewal_info(self, cert_pem: str, *, deadline: float | None = None) -> RenewalInfo | None:
        """:meth:`Issuer.renewal_info`, without building the issuer."""
        return self._renewal_info(cert_pem, deadline=deadline)

    def dns01_records(
        self, order_url: str, *, account_url: str, deadline: float
    ) -> Sequence[OrderChallengeRecord] | None:
        """:meth:`OrderChallengeRecords.dns01_records` of the built issuer (None if it has none)."""
        issuer = self._issuer()
        if not isinstance(issuer, OrderChallengeRecords):
            return None
        return issuer.dns01_records(order_url, account_url=account_url, deadline=deadline)

    def persist_records(
        self, dns_names: Sequence[str], *, deadline: float | None = None
    ) -> tuple[DnsRecord, ...] | None:
        """:meth:`PersistRecordPlanner.persist_records` of the built issuer, if it plans."""
        issuer = self._issuer()
        if not isinstance(issuer, PersistRecordPlanner):
            return None
        return issuer.persist_records(dns_names, deadline=deadline)


def _deployers(
    listeners: LoadBalancerDeployer, certificates: CertificatesServiceDeployer
) -> Callable[[Target], Deployer]:
    """``deployer_for``: one shared deployer per kind of target."""

    def deployer_for(target: Target) -> Deployer:
        match target:
            case ListenerTarget():
                return listeners
            case CertificateServiceTarget():
                return certificates
        msg = f"no deployer for target {target!r}"  # pragma: no cover - Target is a closed union
        raise TypeError(msg)

    return deployer_for
