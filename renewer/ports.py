"""Contracts between the renewal core and the adapters (``typing.Protocol``s).

Adapters implement these with one SDK family each; tests implement them in memory
(``tests/support/fakes.py``). Every method states its idempotency and not-found behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from renewer.dns_names import DnsRecord
from renewer.model import (
    CaSpec,
    DeployedTarget,
    IssuedCertificate,
    ListenerTarget,
    OrderRequest,
    PendingOrder,
    RenewalInfo,
    ServedCertificate,
    StoredCertificate,
    Target,
)

# Called by an issuer right after newOrder, before any challenge is answered, with the order
# URL and the account URL; what it raises ends the order attempt (nothing was answered yet).
OrderCreated = Callable[[str, str], None]


class ChallengeStore(Protocol):
    """Publishes http-01 key authorizations where the public frontend serves them.

    This is the distributed http-01 solver: whoever initiated the order writes the key
    authorization to shared storage, and any frontend (the token server behind the load balancer)
    serves ``/.well-known/acme-challenge/<token>`` from it.

    ``present`` is idempotent (writing the same token twice is fine). ``clean_up`` must succeed
    when the object is already gone, and must be safe to call after a failed or partial
    ``present``. Tokens reaching these methods have been checked against ``[A-Za-z0-9_-]+``.
    Errors are raised as :class:`renewer.errors.TransientError` or
    :class:`renewer.errors.ConfigError`.
    """

    def present(self, token: str, key_authorization: str) -> None:
        """Publish ``key_authorization`` at ``.well-known/acme-challenge/<token>``."""
        ...

    def clean_up(self, token: str) -> None:
        """Remove what ``present`` published for ``token``; no-op when absent."""
        ...


@dataclass(frozen=True, slots=True)
class ChallengeSweep:
    """What :meth:`ChallengeSweeper.sweep` did: the tokens it removed, and how many it left.

    ``younger`` counts challenge objects created at or after the cutoff: they may belong to a
    run that is still alive, so they were left for a later sweep.
    """

    removed: tuple[str, ...] = ()
    younger: int = 0


class ChallengeSweeper(Protocol):
    """Removes key authorizations that no live run can still need (a dead run's leftovers).

    A run that is killed between ``present`` and ``clean_up`` — or whose ``clean_up`` failed —
    leaves ``.well-known/acme-challenge/<token>`` objects behind, and nobody knows their tokens
    any more. ``sweep`` lists the challenge objects and deletes every one created before
    ``created_before`` (callers pass a cutoff older than any run can live: now minus the lease
    TTL, which is longer than the function timeout), so a live run's tokens are never touched.
    Idempotent: an object already gone is success. Errors: TransientError, ConfigError.
    """

    def sweep(self, *, created_before: datetime) -> ChallengeSweep:
        """Delete challenge objects created before ``created_before``; what was done."""
        ...


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An ACME account: its private key (PEM, PKCS#8) and, once registered, its URL (``kid``).

    ``private_key_pem`` is secret: it is left out of ``repr`` and must never be logged.
    """

    private_key_pem: str = field(repr=False)
    account_url: str | None = None


class AccountStore(Protocol):
    """Keeps one ACME account per directory URL, so no run ever registers a second account.

    ``load`` returns None when nothing is stored for the directory. ``save`` replaces what is
    stored for the directory (last writer wins) and is idempotent. The key is saved *before* the
    account is registered, so a run killed between the two re-finds the same account next time.
    """

    def load(self, directory_url: str) -> AccountRecord | None:
        """The account stored for ``directory_url``, or None."""
        ...

    def save(self, directory_url: str, record: AccountRecord) -> None:
        """Store ``record`` for ``directory_url``, replacing what was there."""
        ...


class ChallengeSelfCheck(Protocol):
    """Confirms a published key authorization is reachable the way the CA will fetch it.

    ``verify`` returns when ``http://<dns_name>/.well-known/acme-challenge/<token>`` answers
    with ``key_authorization``; it retries a bounded number of times (never past ``deadline``, a
    ``time.monotonic()`` instant) and then raises :class:`renewer.errors.SelfCheckFailed` naming
    the URL and what came back. It only reads, so it is always safe to call again.
    """

    def verify(self, dns_name: str, token: str, key_authorization: str, *, deadline: float) -> None:
        """Return once the token URL serves ``key_authorization``; raise SelfCheckFailed."""
        ...


class CertificateStore(Protocol):
    """The source of truth for issued certificates: one Vault secret per certificate name.

    ``put`` adds a new version and returns it (never overwrites); ``latest`` is the newest good
    version or None when nothing was ever stored; ``get`` raises
    :class:`renewer.errors.ConfigError` for a version that does not exist. ``prune`` schedules
    deletion of all but the newest ``keep`` versions and returns the versions it scheduled;
    calling it again is a no-op. Errors: TransientError (throttling, 5xx), ConfigError (missing
    vault/key, permissions). ``check`` is read-only: ConfigError unless ``put`` could create a
    new secret (vault and key usable); it runs before an order is spent, at most once per store.

    Interrupted orders: ``save_pending`` records an ACME order (with its private key) right
    after it was created and before its certificate is stored; ``load_pending`` returns that
    record while it is *open* — the newest thing stored for the name, newer than every
    certificate — and None once a certificate was stored after it (``put`` closes it) or when
    there is none. A pending record is never a certificate: ``latest`` ignores it (None when
    nothing else was ever stored) and ``get`` of its version is a ConfigError. ``prune`` counts
    certificate versions only (``keep`` certificates survive) and removes closed records too.
    """

    def check(self) -> None:
        """Verify, without writing, that new certificates can be stored."""
        ...

    def latest(self, name: str) -> StoredCertificate | None:
        """The newest stored certificate for ``name``."""
        ...

    def get(self, name: str, version: int) -> StoredCertificate:
        """A specific version (rollback)."""
        ...

    def put(self, name: str, certificate: StoredCertificate) -> StoredCertificate:
        """Store a new version; returns it with its ``version`` filled in."""
        ...

    def prune(self, name: str, *, keep: int) -> list[int]:
        """Schedule deletion of certificate versions beyond the newest ``keep``."""
        ...

    def save_pending(self, name: str, order: PendingOrder) -> None:
        """Record an order whose certificate is not stored yet; it becomes the open one."""
        ...

    def load_pending(self, name: str) -> PendingOrder | None:
        """The open pending order of ``name`` (with its ``version``), or None."""
        ...

    def leaf_fingerprints(self, name: str) -> frozenset[str]:
        """Read-only: see :class:`StoredLeaves` (the proof RETIRE asks for)."""
        ...


class StoredLeaves(Protocol):
    """What proves a deployed certificate is one the renewer stored (RETIRE's ownership rule).

    ``leaf_fingerprints`` answers the SHA-256 fingerprints (of the DER, lower-case hex) of the
    leaf of every certificate version of ``name`` that can still be read — pending-order
    records, versions pending deletion and unreadable versions prove nothing and are left out;
    an empty set when nothing was stored. Read-only; safe to call again. Errors: TransientError,
    ConfigError (the store cannot be read: a caller deleting on its strength must then delete
    nothing).
    """

    def leaf_fingerprints(self, name: str) -> frozenset[str]:
        """Fingerprints of the stored leaves of ``name``."""
        ...


@dataclass(frozen=True, slots=True)
class LeaseHandle:
    """Proof of holding a lease: the holder id and the store's version tag (ETag) of the lease."""

    name: str
    holder: str
    expires_at: datetime
    tag: str


class Lease(Protocol):
    """A per-certificate mutual-exclusion lease (CertMagic's Locker, over shared storage).

    ``acquire`` returns a handle, or None when another holder has a lease that has not expired.
    An expired lease is taken over atomically (conditional write on its tag). ``release`` deletes
    the lease only if it is still ours (conditional on the tag) and is a no-op otherwise. After
    acquiring, callers must re-check that the work is still needed.

    ``remove_expired`` is for runs that take no lease: it deletes the lease of ``name`` only if
    it has expired (a dead holder's), conditionally on the tag it read, so a lease taken or
    refreshed meanwhile is never removed. It returns the removed lease (holder and expiry, for
    the log), or None when there was none, it is live, or it changed meanwhile.
    """

    def acquire(self, name: str, *, holder: str, ttl: timedelta) -> LeaseHandle | None:
        """Take the lease for ``name`` for ``ttl``, or None if someone else holds it."""
        ...

    def release(self, handle: LeaseHandle) -> None:
        """Give the lease back."""
        ...

    def remove_expired(self, name: str) -> LeaseHandle | None:
        """Delete the lease of ``name`` if it has expired; the removed lease, or None."""
        ...

    def current(self, name: str) -> LeaseHandle | None:
        """Read-only: the lease stored for ``name`` (holder, expiry), expired or not; or None."""
        ...


class StateRepository(Protocol):
    """Derived per-certificate state (failures, ARI answer, what is deployed where).

    Losing it must never cause a duplicate order: Vault and the load balancer are re-read every
    run. ``load`` returns None when absent; ``save`` replaces. Values are JSON objects.
    """

    def load(self, name: str) -> dict[str, object] | None:
        """The saved state of certificate ``name``."""
        ...

    def save(self, name: str, state: dict[str, object]) -> None:
        """Replace the saved state of certificate ``name``."""
        ...


class Deployer(Protocol):
    """Puts a stored certificate on its targets and retires what it superseded.

    ``deploy`` is idempotent: a target already serving the certificate is left alone
    (``changed=False``). Rule 1: a listener never references a missing or wrong-domain bundle;
    nothing is deleted before the switch has succeeded and been read back. ``retire`` deletes
    bundles this renewer created (name prefix, and a leaf it stored) that no listener uses,
    keeping ``keep_previous`` most recent ones for rollback. Errors: DeploymentError (work
    request FAILED, read-back mismatch), TransientError, ConfigError (unknown LB/listener,
    listener without SSL).
    """

    def deploy(
        self,
        name: str,
        certificate: StoredCertificate,
        target: Target,
        *,
        deadline: float,
        attempt: str | None = None,
    ) -> DeployedTarget:
        """Make ``target`` serve ``certificate``.

        ``attempt`` identifies the deployment attempt, recorded by the caller before the
        call: retry tokens derive from it, so a retry after a crash reuses them and a new
        attempt does not (issue 11 §5).
        """
        ...

    def check(self, target: Target) -> None:
        """Read-only: raise ConfigError when ``target`` cannot take a certificate.

        Called before anything is ordered or written (rule 6): an unknown load balancer or
        listener, a listener without SSL, a missing Certificates-service certificate.
        """
        ...

    def is_serving(self, name: str, certificate: StoredCertificate, target: Target) -> bool:
        """Read-only: whether every part of ``target`` already serves ``certificate``.

        False also when the target is misconfigured (``deploy`` then reports why).
        """
        ...

    def retire(
        self,
        name: str,
        target: Target,
        *,
        keep_previous: int,
        deadline: float,
        stored: StoredLeaves | None = None,
    ) -> list[str]:
        """Delete superseded bundles of ``name`` on ``target``; returns what was deleted.

        ``stored``: the proof of ownership. A load-balancer bundle is deleted only when its name
        is ours *and* its leaf is among ``stored.leaf_fingerprints(name)``; without ``stored``
        no load-balancer bundle is deleted.
        """
        ...


class Issuer(Protocol):
    """Obtains certificates from a CA (the ACME engine; an in-memory fake in tests).

    ``issue`` runs one order to completion before ``deadline`` (a ``time.monotonic()``
    instant) and raises the typed errors of :mod:`renewer.errors`; ``on_order`` (when given)
    is called once, right after the order was created and before any challenge is answered,
    with the order URL and the account URL — what it raises ends the attempt. ``resume``
    finishes an order created earlier (by a run that died) with the same account: it returns
    the certificate, or None when that order cannot be finished (invalid, expired, unknown to
    the CA, another account's or another CA's) and a new one must be placed; it never creates
    an order. ``renewal_info`` asks the CA for RFC 9773 renewal information, ending by
    ``deadline`` (monotonic) when given and within its own advisory bound in any case: None
    when the CA has none for that certificate; it raises on failure, and callers fall back to
    the lifetime policy.
    """

    def issue(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None = None
    ) -> IssuedCertificate:
        """Order a certificate."""
        ...

    def resume(
        self, order_url: str, request: OrderRequest, *, account_url: str, deadline: float
    ) -> IssuedCertificate | None:
        """Finish the order at ``order_url`` (created by ``account_url``), or None."""
        ...

    def renewal_info(self, cert_pem: str, *, deadline: float | None = None) -> RenewalInfo | None:
        """The CA's suggested renewal window for ``cert_pem``, asked before ``deadline``."""
        ...


class TlsVerifier(Protocol):
    """Checks what a live endpoint serves after a switch.

    ``serial_served`` returns the serial (lower-case hex) of the leaf certificate presented for
    ``server_name`` by the listener of ``target``, or raises TransientError when it cannot
    connect. Read-only; safe to call again.
    """

    def serial_served(
        self, target: Target, server_name: str, *, timeout: float, expected: str | None = None
    ) -> str:
        """The serial the target presents for ``server_name``.

        ``expected``: the serial the caller waits for (a listener that has not followed a
        Certificates-service rotation yet is reported, not judged).
        """
        ...


class CertificateUsers(Protocol):
    """Finds the listeners that serve a Certificates-service certificate (by OCID). Read-only."""

    def listeners_using(
        self, certificate_id: str, load_balancer_ids: Sequence[str]
    ) -> tuple[ListenerTarget, ...]:
        """Per load balancer of ``load_balancer_ids``, its listeners naming the certificate."""
        ...


@dataclass(frozen=True, slots=True)
class ChallengeRouteStatus:
    """The http-01 challenge route of one load balancer, as read or as brought into place.

    ``changes`` lists, in words, what :meth:`ChallengeRouter.ensure` makes (or made) so that
    ``/.well-known/acme-challenge/`` reaches the token backend set; empty when the route is in
    place. ``refusal`` says why http-01 cannot work there at all (and the way out): nothing is
    changed and no order is placed. ``work_requests`` are those ``ensure`` waited for.
    """

    load_balancer_id: str
    changes: tuple[str, ...] = ()
    refusal: str | None = None
    work_requests: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """Whether the challenge path already reaches the token backend set."""
        return not self.changes and self.refusal is None


class ChallengeRouter(Protocol):
    """Brings the http-01 challenge route into place on a load balancer's port-80 listener.

    ``inspect`` only reads. ``ensure`` changes only what the route needs (never another rule,
    listener field or routing), verifies it by reading back, and is idempotent: a second call
    finds the route in place and changes nothing. A refusal is answered, never raised.
    """

    def inspect(self, load_balancer_id: str, dns_names: tuple[str, ...]) -> ChallengeRouteStatus:
        """What ``ensure`` would do now (reads only)."""
        ...

    def ensure(
        self, load_balancer_id: str, dns_names: tuple[str, ...], *, deadline: float
    ) -> ChallengeRouteStatus:
        """Make the route be in place; ``changes`` says what was done."""
        ...


class ServedCertificates(Protocol):
    """What a target serves when the renewer holds nothing for its certificate (read only).

    ``served`` answers a :class:`~renewer.model.ServedCertificate` only for a certificate that
    covers every one of ``dns_names``, is valid now and chains to a trusted root; None for
    anything else (nothing served, a self-signed seed, another name, a target kind it cannot
    read). It never raises for what it finds, only for OCI errors.
    """

    def served(self, target: Target, dns_names: tuple[str, ...]) -> ServedCertificate | None:
        """The adoptable certificate ``target`` serves, if any."""
        ...


class DnsChallengeZone(Protocol):
    """Writes dns-01 TXT records into a DNS zone and waits until the zone answers with them.

    ``present`` adds each ``(name, value)`` TXT record to ``zone_id`` (other records of the
    same name stay: several orders may validate one name at once) and returns once the zone's
    authoritative answer holds them all, or raises :class:`~renewer.errors.AcmeTimeout` at
    ``deadline`` (a ``time.monotonic()`` instant). ``clean_up`` removes exactly those values;
    removing an absent record is a no-op.
    """

    def present(self, zone_id: str, records: Sequence[tuple[str, str]], *, deadline: float) -> None:
        """Add the TXT records and wait until the zone serves them."""
        ...

    def clean_up(self, zone_id: str, records: Sequence[tuple[str, str]]) -> None:
        """Remove the TXT records (idempotent)."""
        ...


@runtime_checkable
class PersistRecordPlanner(Protocol):
    """Says which dns-persist-01 records a certificate needs (for ``plan``); reads only.

    Returns None when it cannot say yet (no ACME account exists, so its URL is unknown).
    """

    def persist_records(
        self, dns_names: Sequence[str], *, deadline: float | None = None
    ) -> tuple[DnsRecord, ...] | None:
        """The ``_validation-persist`` TXT records that authorize this renewer's account."""
        ...


@dataclass(frozen=True, slots=True)
class CaPersistRecords:
    """One CA's dns-persist-01 records for a certificate (``plan`` with a CA list).

    ``records`` None: no ACME account exists at this CA yet, so there is no URL to bind;
    ``error``: the CA could not say (e.g. its directory names no ``caaIdentities``).
    """

    directory_url: str
    records: tuple[DnsRecord, ...] | None
    error: str | None = None


@runtime_checkable
class CaPersistRecordPlanner(Protocol):
    """Says which dns-persist-01 records a certificate needs at each of its CAs; reads only.

    The draft allows several ``_validation-persist`` records at one name, one per CA: each
    names its CA's issuer domain and this renewer's account at that CA.
    """

    def persist_records_per_ca(
        self, dns_names: Sequence[str], cas: Sequence[CaSpec], *, deadline: float | None = None
    ) -> tuple[CaPersistRecords, ...]:
        """One entry per CA of ``cas`` (the default CA when empty), in order."""
        ...


@runtime_checkable
class CaRoutedRenewalInfo(Protocol):
    """Asks the CA that issued a certificate for its renewal information (issue 17).

    With several CAs configured, RFC 9773's renewalInfo of one CA knows nothing of another's
    certificates: the question goes to the issuing CA's directory, never to the first CA.
    """

    def renewal_info_at(
        self, directory_url: str, cert_pem: str, *, deadline: float | None = None
    ) -> RenewalInfo | None:
        """:meth:`Issuer.renewal_info`, asked of the CA at ``directory_url``."""
        ...
