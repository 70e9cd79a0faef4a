"""``Deployer`` for classic OCI Load Balancer listeners: LB certificate bundles, switched safely.

DEPLOY (ARCHITECTURE §3), for one :class:`~renewer.model.ListenerTarget`:

1. read the load balancer; every target listener must exist, have an ``sslConfiguration`` and
   be updatable without losing anything — otherwise :class:`ConfigError`, before any mutation;
2. create the bundle ``naming.bundle_name(name, serial)`` unless the load balancer has it
   (publicCertificate = the full chain as stored, leaf first; no caCertificate: that field is
   the trust anchor for verify-peer, and what a listener serves is publicCertificate — the
   chain in one file, as OCI's documentation and the classic ``fullchain.pem`` recipe have it;
   docs/oci-emulator.md "The chain"), with an
   ``opc-retry-token`` derived from the load balancer, the bundle name and the deployment
   ``attempt`` the caller recorded, so a run killed while
   the work request is queued finds that same work request again instead of a 409 (OCI keeps a
   token 24 h, so a FAILED create is answered again for that long: right when the input was
   refused, BAD_INPUT; when OCI's side failed, INTERNAL_ERROR, the create is tried once more
   with a fresh token); then wait for the work request;
3. for each listener not on the bundle yet: re-read it, write it back whole with only
   ``sslConfiguration.certificateName`` changed (``if-match`` = the load balancer's ETag; one
   412 re-reads and retries), wait for the work request;
4. read the load balancer back: every target listener must reference the bundle and every other
   field must equal what it was (:class:`DeploymentError` otherwise).

``UpdateListener`` replaces the listener whole (wire facts §1.2), so the update is built from
every field the SDK's ``Listener`` model reports: each field that ``UpdateListenerDetails`` /
``SSLConfigurationDetails`` also has is copied as read. A listener that names a
Certificates-service certificate (``certificateIds``) is moved to the bundle and the id is
cleared: a listener takes either one ``certificateName`` or one ``certificateIds`` entry.

RETIRE: delete the bundles of certificate ``name`` that no listener or backend set of the load
balancer references, except the ``keep_previous`` newest (by the leaf's notBefore) kept for
rollback. A bundle is ours only when both hold (rule 2): its name has our pattern
(``naming.owns_bundle``: our prefix, our name, a hex serial) *and* its leaf is a certificate the
renewer stored — the leaf's SHA-256 fingerprint is among ``stored.leaf_fingerprints(name)``
(the store's readable certificate versions). A bundle a person named like ours (``acme-shop-2024``)
or whose leaf the store does not hold is never deleted: one WARNING line per bundle says it was
left alone and why (``retire left_alone ... reason=not_stored``). The store is asked only when
there is something to delete; when RETIRE is called without a store, nothing can be proven and
nothing is deleted. A delete refused with 409 (attached meanwhile) is skipped with a warning.

Rule 4: one mutation at a time per load balancer in this process. A lock per load balancer
OCID, shared by every instance, is held around each mutation and the wait for its work request;
load balancers do not wait for each other. Work requests from elsewhere (another invocation, a
person) are queued by OCI and simply waited for. Waiting for the lock is bounded by the
deadline; its wait uses real time even when the injected clock is a fake.

A 409 on a mutation (the load balancer busy, a bundle another run is creating) is retried with
backoff until the deadline, then a :class:`TransientError` — never a ConfigError. A work request
of ours still running when its step's deadline passed is waited for, under the lock, before the
next mutation of that load balancer. The read-back compares :func:`normalised_listener` forms.

Work requests are polled every ``poll_interval`` seconds on the injected clock, never past the
deadline (a ``time.monotonic()`` instant): a work request still running at the deadline is a
:class:`TransientError` naming it — a later run finds the bundle or the switched listener and
carries on. A FAILED work request is a :class:`DeploymentError` with its id and errorDetails;
OCI applies nothing of a failed work request, so the listener is untouched (rule 1).

One INFO line per mutation (load balancer, listener, bundle, work request); never PEMs or keys.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization

from renewer import naming, pki
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_lb_snapshots import LoadBalancerSnapshots
from renewer.clock import Clock
from renewer.errors import ConfigError, DeploymentError, TransientError
from renewer.model import DeployedTarget, ListenerTarget, StoredCertificate, Target
from renewer.ports import StoredLeaves

# isort: split
# After oci_clients: it sets the SDK's import-time retry default before ``oci`` is first imported.
import oci

logger = logging.getLogger(__name__)

# The longest wait between two reads of a work request. OCI's take 20-60 s (docs/oci-emulator.md,
# "Timing"); the SDK's waiter (oci.wait_until) doubles from 1 s up to 30 s and the Terraform
# provider's (StateChangeConf) from 0.1 s up to 10 s. 5 s overshoots a 20-60 s work request by
# at most a quarter and costs about 15 reads for the longest.
DEFAULT_POLL_INTERVAL = 5.0
_FIRST_POLL = 0.1
# GET may answer it, but UpdateListener refuses it as input [SDK docstring of cipherSuiteName].
CUSTOMIZED_CIPHER_SUITE = "oci-customized-ssl-cipher-suite"
_SUCCEEDED, _FAILED = "SUCCEEDED", "FAILED"
_BAD_INPUT = "BAD_INPUT"  # a failed work request's errorCode when the change itself was refused
_INVALIDATED_TOKEN = "InvalidatedRetryToken"  # noqa: S105 - an OCI error code, not a secret
_NOT_FOUND, _CONFLICT, _PRECONDITION_FAILED = 404, 409, 412
_NO_DATE = datetime.min.replace(tzinfo=UTC)

SdkModel = Any  # an ``oci.load_balancer.models`` instance (the SDK ships no type hints)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One read of a load balancer and the ETag that came with it (None if OCI sent none)."""

    load_balancer: SdkModel
    etag: str | None


@dataclass(frozen=True, slots=True)
class BundleCensus:
    """The bundles named like one certificate's on one load balancer (:meth:`census`).

    ``in_use``: referenced by a listener or backend set; ``ours_unused``: proven ours and
    unused; ``not_proven``: named like ours, unused, not proven (name, why); ``gone``: the load
    balancer no longer exists.
    """

    load_balancer_id: str
    in_use: tuple[str, ...] = ()
    ours_unused: tuple[str, ...] = ()
    not_proven: tuple[tuple[str, str], ...] = ()
    gone: bool = False


class LoadBalancerDeployer:
    """``Deployer`` for :class:`~renewer.model.ListenerTarget` (see the module docstring).

    ``deploy`` is idempotent: when every target listener already references the bundle it makes
    no mutating call and answers ``changed=False``. ``retire`` is idempotent and safe to call
    again at any time. Both are safe to run concurrently for different certificates, in threads
    of one process (they serialize per load balancer) or in different processes (OCI queues
    their work requests; ETags catch overlapping listener writes).

    Args:
        clients: the OCI clients (only ``load_balancer`` is used).
        prefix: the name prefix that marks bundles as ours (``naming``).
        clock: monotonic time and sleeping for work-request polling and deadlines.
        poll_interval: seconds between two reads of a work request.

    Raises:
        ConfigError: an invalid prefix.

    """

    _locks: ClassVar[dict[str, threading.Lock]] = {}
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()
    # Per load balancer, a work request of ours still running when its step ran out of time.
    # Read and written only under that load balancer's lock: the next mutation waits for it
    # first, so nothing of ours queues behind work nobody watches.
    _in_flight: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        clients: OciClients,
        *,
        prefix: str = naming.DEFAULT_PREFIX,
        clock: Clock,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        snapshots: LoadBalancerSnapshots | None = None,
    ) -> None:
        self._clients = clients
        self._snapshots = snapshots  # PLAN's reads, for is_serving; forgotten on our mutations
        self._prefix = naming.check_prefix(prefix)
        self._clock = clock
        self._poll_interval = poll_interval
        # The bundles listeners were switched away from, per (load balancer, certificate name):
        # RETIRE keeps them first when notBefore (one-second resolution) ties.
        self._left: dict[tuple[str, str], set[str]] = {}
        self._left_lock = threading.Lock()

    # ------------------------------------------------------------------ Deployer

    def deploy(
        self,
        name: str,
        certificate: StoredCertificate,
        target: Target,
        *,
        deadline: float,
        attempt: str | None = None,
    ) -> DeployedTarget:
        """Make every listener of ``target`` serve ``certificate`` (see the module docstring).

        ``attempt`` identifies this deployment attempt (recorded by the caller before the
        call): the bundle's ``opc-retry-token`` is derived from it, so a retry of the same
        attempt after a crash finds its work request again and a new attempt (a rollback to
        a bundle retired since) is a new creation. None: the token depends on the bundle only.

        Raises:
            ConfigError: not a ListenerTarget; unknown load balancer or listener; a listener
                without SSL or that cannot be written back unchanged; a certificate whose
                serial does not match its leaf. Raised before any mutation.
            DeploymentError: a work request FAILED, the bundle of that name holds another
                certificate, or the read-back differs.
            TransientError: throttling, 5xx, the deadline reached (naming the work request).

        """
        listener_target = _listener_target(target)
        lb_id = listener_target.load_balancer_id
        listeners = tuple(dict.fromkeys(listener_target.listener_names))
        if not listeners:
            msg = f"the target on load balancer {lb_id} names no listener"
            raise ConfigError(msg)
        chain = _full_chain(certificate)
        bundle = naming.bundle_name(name, certificate.serial_hex, prefix=self._prefix)

        snapshot = self._read(lb_id)
        for listener_name in listeners:  # every check before the first mutation (rule 6)
            _update_details(lb_id, _listener(snapshot, lb_id, listener_name), bundle)
        pending = [n for n in listeners if _bundle_of(_listener(snapshot, lb_id, n)) != bundle]
        if not pending:
            logger.info("deploy unchanged lb=%s bundle=%s", lb_id, bundle)
            return DeployedTarget(target, bundle, changed=False)

        work_requests: list[str] = []
        existing = (snapshot.load_balancer.certificates or {}).get(bundle)
        if existing is not None and not _leaf_without_chain(existing, chain):
            _check_holds(existing, chain, lb_id)
        else:
            work_requests += self._ensure_bundle(
                lb_id, bundle, chain, certificate, deadline, attempt or ""
            )
        switched: dict[str, tuple[str, dict[str, Any]]] = {}
        for listener_name in pending:
            done = self._switch(lb_id, listener_name, bundle, deadline)
            if done is not None:
                switched[listener_name] = done
                work_requests.append(done[0])
                left = (done[1].get("ssl_configuration") or {}).get("certificate_name")
                if left:
                    with self._left_lock:
                        self._left.setdefault((lb_id, name), set()).add(str(left))
        self._verify(lb_id, listeners, bundle, switched)
        return DeployedTarget(
            target, bundle, changed=bool(work_requests), work_requests=tuple(work_requests)
        )

    def check(self, target: Target) -> None:
        """Read-only: the load balancer exists and every listener can take a bundle.

        Raises:
            ConfigError: unknown load balancer or listener; a listener without SSL or one that
                cannot be written back unchanged.

        """
        listener_target = _listener_target(target)
        lb_id = listener_target.load_balancer_id
        snapshot = self._read(lb_id)
        for listener_name in listener_target.listener_names:
            _update_details(lb_id, _listener(snapshot, lb_id, listener_name), "check")

    def is_serving(self, name: str, certificate: StoredCertificate, target: Target) -> bool:
        """Read-only: every listener of ``target`` references this certificate's bundle."""
        listener_target = _listener_target(target)
        lb_id = listener_target.load_balancer_id
        bundle = naming.bundle_name(name, certificate.serial_hex, prefix=self._prefix)
        kept = self._snapshots.take(lb_id) if self._snapshots is not None else None
        snapshot = (
            _Snapshot(kept.data, kept.headers.get("etag"))
            if kept is not None
            else self._read(lb_id)
        )
        try:
            listeners = [_listener(snapshot, lb_id, n) for n in listener_target.listener_names]
        except ConfigError:
            return False  # deploy() raises the actionable error
        return bool(listeners) and all(_bundle_of(listener) == bundle for listener in listeners)

    def retire(
        self,
        name: str,
        target: Target,
        *,
        keep_previous: int,
        deadline: float,
        stored: StoredLeaves | None = None,
    ) -> list[str]:
        """Delete the unused bundles of ``name`` beyond the ``keep_previous`` newest.

        Only bundles proven ours are candidates (the module docstring): named by our pattern
        and holding a leaf ``stored`` has. The others are logged as left alone, with why.

        Returns:
            The bundle names deleted (their work requests SUCCEEDED), oldest last.

        Raises:
            ConfigError: not a ListenerTarget, a negative ``keep_previous``, an unknown load
                balancer.
            DeploymentError: a delete work request FAILED.
            TransientError: throttling, 5xx, the deadline reached.

        """
        lb_id = _listener_target(target).load_balancer_id
        if keep_previous < 0:
            msg = f"keep_previous must be 0 or more, not {keep_previous}"
            raise ConfigError(msg)
        load_balancer = self._read(lb_id).load_balancer
        used = _bundles_in_use(load_balancer)
        named = [
            bundle
            for bundle in (load_balancer.certificates or {}).values()
            if naming.owns_bundle(bundle.certificate_name, name, prefix=self._prefix)
            and bundle.certificate_name not in used
        ]
        unused = self._proven_ours(lb_id, name, named, keep_previous, stored)
        with self._left_lock:
            left = set(self._left.get((lb_id, name), ()))
        # Newest first; among equal notBefore (same second), the bundle a listener just left.
        unused.sort(key=lambda b: (_not_before(b), b.certificate_name in left), reverse=True)
        return [
            bundle.certificate_name
            for bundle in unused[keep_previous:]
            if self._delete_bundle(lb_id, bundle.certificate_name, deadline)
        ]

    def census(self, name: str, load_balancer_id: str, *, stored: StoredLeaves) -> BundleCensus:
        """Read-only: the bundles named like certificate ``name``'s on one load balancer.

        For the retirement of a certificate that left the configuration (:mod:`renewer.orphans`):
        which are referenced by a listener or backend set (never deleted), which are proven ours
        and unused (what :meth:`retire` with ``keep_previous=0`` deletes), and which are named
        like ours but not proven (never deleted). A load balancer that no longer exists (404)
        is ``gone``. ``stored`` is read only when an unused bundle needs the proof.

        Raises:
            ConfigError: the load balancer cannot be read (other than 404).
            TransientError: throttling, 5xx, the deadline.

        """
        try:
            load_balancer = self._read(load_balancer_id).load_balancer
        except ConfigError as exc:
            if exc.oci_status != _NOT_FOUND:
                raise
            return BundleCensus(load_balancer_id, gone=True)
        used = _bundles_in_use(load_balancer)
        named = [
            bundle
            for bundle in (load_balancer.certificates or {}).values()
            if naming.owns_bundle(bundle.certificate_name, name, prefix=self._prefix)
        ]
        unused = [b for b in named if b.certificate_name not in used]
        fingerprints = stored.leaf_fingerprints(name) if unused else frozenset()
        ours: list[str] = []
        not_proven: list[tuple[str, str]] = []
        for bundle in unused:
            reason = ownership_gap(bundle.certificate_name, bundle.public_certificate, fingerprints)
            if reason is None:
                ours.append(bundle.certificate_name)
            else:
                not_proven.append((bundle.certificate_name, reason))
        return BundleCensus(
            load_balancer_id,
            in_use=tuple(sorted(b.certificate_name for b in named if b.certificate_name in used)),
            ours_unused=tuple(sorted(ours)),
            not_proven=tuple(sorted(not_proven)),
        )

    def _proven_ours(
        self,
        lb_id: str,
        name: str,
        named: list[SdkModel],
        keep_previous: int,
        stored: StoredLeaves | None,
    ) -> list[SdkModel]:
        """The bundles of ``named`` whose leaf the store holds; the others are logged.

        The store is read only when a deletion is possible at all (more candidates than
        ``keep_previous``): most runs retire nothing and cost no Vault read.
        """
        if len(named) <= keep_previous:
            return named
        fingerprints = frozenset() if stored is None else stored.leaf_fingerprints(name)
        ours = []
        for bundle in named:
            reason = ownership_gap(bundle.certificate_name, bundle.public_certificate, fingerprints)
            if stored is None:
                reason = "no certificate store to prove it was stored"
            if reason is None:
                ours.append(bundle)
                continue
            logger.warning(
                "retire left_alone lb=%s bundle=%s reason=not_stored: %s; a bundle is deleted"
                " only when its leaf is a certificate the renewer stored",
                lb_id,
                bundle.certificate_name,
                reason,
            )
        return ours

    # ------------------------------------------------------------------ steps

    def _ensure_bundle(
        self,
        lb_id: str,
        bundle: str,
        chain: str,
        certificate: StoredCertificate,
        deadline: float,
        attempt: str = "",
    ) -> list[str]:
        """Create ``bundle`` unless present; the work requests it took ([] when it was there).

        A create whose work request SUCCEEDED without the bundle being there afterwards was
        answered from an earlier use of its token (OCI replays a token's first answer for 24 h,
        also after that bundle was deleted) or the bundle was deleted since: it is created once
        more with a fresh token.

        A ``bundle`` of an earlier version — the same leaf, with its intermediates sent as
        ``caCertificate``, which clients never see — is replaced (deleted, then created with
        the whole chain) when nothing uses it: its name and leaf prove it ours (rule 2), and a
        rollback to a version deployed before the chain was sent must work. One that a
        listener or backend set uses is refused with the way out.
        """
        action = f"create certificate bundle {bundle} on load balancer {lb_id}"
        with self._mutation(lb_id, deadline):
            snapshot = self._read(lb_id)
            existing = (snapshot.load_balancer.certificates or {}).get(bundle)
            replaced: list[str] = []
            if existing is not None and _leaf_without_chain(existing, chain):
                if bundle in _bundles_in_use(snapshot.load_balancer):
                    msg = (
                        f"bundle {bundle} on load balancer {lb_id} holds this certificate"
                        " without its intermediates (an earlier version sent them as"
                        " caCertificate, which clients never see) and a listener uses it:"
                        " run a forced renewal to move the listeners to a new bundle"
                    )
                    raise DeploymentError(msg)
                replaced.append(self._delete_locked(lb_id, bundle, deadline, "no_chain"))
            elif existing is not None:
                _check_holds(existing, chain, lb_id)
                return []
            details = oci.load_balancer.models.CreateCertificateDetails(
                certificate_name=bundle,
                public_certificate=chain,  # leaf first; served to clients as it is
                private_key=certificate.private_key_pem,
            )
            # A replaced bundle's create is a new change: its token must not replay the first.
            salt = f"{attempt}:chain" if replaced else attempt
            token = _retry_token("CreateCertificate", lb_id, bundle, salt)
            try:
                return [
                    *replaced,
                    *self._create_present(lb_id, bundle, chain, details, token, action, deadline),
                ]
            except DeploymentError as exc:
                if _BAD_INPUT in exc.error_codes or not exc.error_codes:
                    raise  # the bundle itself was refused: the same material fails the same way
                # OCI's side failed. Its answer to that token is replayed for 24 h, so one
                # more attempt needs a token of its own (and a bundle created meanwhile wins).
                logger.warning(
                    "lb_bundle_retry lb=%s bundle=%s failed_work_request=%s codes=%s",
                    lb_id,
                    bundle,
                    exc.work_request_id,
                    ",".join(exc.error_codes),
                )
                existing = (self._read(lb_id).load_balancer.certificates or {}).get(bundle)
                if existing is not None:
                    _check_holds(existing, chain, lb_id)
                    return replaced
                token = _retry_token("CreateCertificate", lb_id, bundle, secrets.token_hex(8))
                return [
                    *replaced,
                    *self._create_present(lb_id, bundle, chain, details, token, action, deadline),
                ]

    def _create_present(
        self,
        lb_id: str,
        bundle: str,
        chain: str,
        details: Any,  # noqa: ANN401 - CreateCertificateDetails
        token: str,
        action: str,
        deadline: float,
    ) -> list[str]:
        """Create ``bundle`` and make sure it is there afterwards; the work requests it took.

        A SUCCEEDED work request with no bundle afterwards (a replayed token) is followed by
        one create with a fresh token; when that one leaves no bundle either, DeploymentError.
        """
        taken: list[str] = []
        for fresh in (False, True):
            if fresh:
                logger.warning(
                    "lb_bundle_absent lb=%s bundle=%s work_request=%s; the create's token was"
                    " answered from an earlier use (or the bundle was deleted since): creating"
                    " it again with a new token",
                    lb_id,
                    bundle,
                    taken[-1] if taken else None,
                )
                token = _retry_token("CreateCertificate", lb_id, bundle, secrets.token_hex(8))
            work_request = self._create_bundle(
                lb_id, bundle, chain, details, token, action, deadline
            )
            if work_request is not None:
                taken.append(work_request)
            existing = (self._read(lb_id).load_balancer.certificates or {}).get(bundle)
            if existing is not None:
                _check_holds(existing, chain, lb_id)
                return taken
        msg = f"{action}: work request SUCCEEDED but the bundle is not on the load balancer"
        raise DeploymentError(msg, work_request_id=taken[-1] if taken else None)

    def _create_bundle(
        self,
        lb_id: str,
        bundle: str,
        chain: str,
        details: Any,  # noqa: ANN401 - CreateCertificateDetails
        token: str,
        action: str,
        deadline: float,
    ) -> str | None:
        """One CreateCertificate, retried on 409; its work request (None: made meanwhile).

        A 409 is one of: the load balancer is busy with another work request (retried with
        backoff until the deadline), the bundle exists or another run's create of it is
        queued (the bundle is re-read: once there, it is checked and no create is needed), or
        the token was invalidated because the bundle it created is gone (a fresh token).
        """
        wait = self._first_wait()
        while True:
            try:
                with translate(action):
                    response = self._clients.load_balancer.create_certificate(
                        details, lb_id, opc_retry_token=token
                    )
            except (ConfigError, TransientError) as exc:
                if exc.oci_status != _CONFLICT:
                    raise
                if exc.oci_code == _INVALIDATED_TOKEN:
                    logger.warning(
                        "lb_retry lb=%s bundle=%s reason=token_invalidated", lb_id, bundle
                    )
                    token = _retry_token("CreateCertificate", lb_id, bundle, secrets.token_hex(8))
                    continue
                existing = (self._read(lb_id).load_balancer.certificates or {}).get(bundle)
                if existing is not None:
                    _check_holds(existing, chain, lb_id)
                    return None
                wait = self._back_off(action, lb_id, deadline, wait, exc)
                continue
            return self._follow(response, "CreateCertificate", lb_id, "-", bundle, action, deadline)

    def _switch(
        self, lb_id: str, listener_name: str, bundle: str, deadline: float
    ) -> tuple[str, dict[str, Any]] | None:
        """Point one listener at ``bundle``: (work request, the listener as it was) or None.

        None when the listener already references the bundle (a concurrent run did it).
        """
        action = f"switch listener {listener_name} of load balancer {lb_id} to {bundle}"
        retries_left = 1
        wait = self._first_wait()
        with self._mutation(lb_id, deadline):
            while True:
                snapshot = self._read(lb_id)
                if bundle not in (snapshot.load_balancer.certificates or {}):
                    # Rule 1: never point a listener at a missing certificate.
                    msg = f"{action}: the bundle is not on the load balancer after its creation"
                    raise DeploymentError(msg)
                current = _listener(snapshot, lb_id, listener_name)
                if _bundle_of(current) == bundle:
                    return None
                details = _update_details(lb_id, current, bundle)
                try:
                    with translate(action):
                        response = self._clients.load_balancer.update_listener(
                            details, lb_id, listener_name, if_match=snapshot.etag
                        )
                except (ConfigError, TransientError) as exc:
                    if exc.oci_status == _CONFLICT:
                        # Busy with another work request (or a person's change): back off
                        # inside the deadline and re-read (Oracle's ingress controller treats
                        # 409 on UpdateListener as transient too).
                        wait = self._back_off(action, lb_id, deadline, wait, exc)
                        continue
                    if exc.oci_status != _PRECONDITION_FAILED:
                        raise
                    if not retries_left:
                        msg = f"{action}: the load balancer kept changing under us (412 twice)"
                        raise TransientError(msg) from exc
                    retries_left -= 1
                    logger.warning(
                        "lb_retry lb=%s listener=%s reason=etag_changed", lb_id, listener_name
                    )
                    continue
                work_request = self._follow(
                    response, "UpdateListener", lb_id, listener_name, bundle, action, deadline
                )
                return work_request, oci.util.to_dict(current)

    def _verify(
        self,
        lb_id: str,
        listeners: tuple[str, ...],
        bundle: str,
        switched: dict[str, tuple[str, dict[str, Any]]],
    ) -> None:
        """Read back: each listener on ``bundle``; a switched one otherwise as it was."""
        snapshot = self._read(lb_id)
        for listener_name in listeners:
            work_request, before = switched.get(listener_name, (None, None))
            listener = (snapshot.load_balancer.listeners or {}).get(listener_name)
            where = f"read-back of listener {listener_name} of load balancer {lb_id}"
            if listener is None or _bundle_of(listener) != bundle:
                msg = f"{where}: it does not reference {bundle}"
                raise DeploymentError(msg, work_request_id=work_request)
            if before is None:
                continue
            changed = _differences(
                normalised_listener(_with_bundle(before, bundle)),
                normalised_listener(oci.util.to_dict(listener)),
            )
            if changed:
                msg = f"{where}: fields other than the certificate changed: {', '.join(changed)}"
                raise DeploymentError(msg, work_request_id=work_request)

    def _delete_locked(self, lb_id: str, bundle: str, deadline: float, reason: str) -> str:
        """Delete ``bundle`` while holding the load balancer's lock; the work request id."""
        action = f"delete certificate bundle {bundle} from load balancer {lb_id}"
        response = self._delete_call(lb_id, bundle, action, deadline)
        if response is None:
            msg = f"{action}: a listener or backend set started using it meanwhile"
            raise DeploymentError(msg)
        logger.warning("lb_bundle_replaced lb=%s bundle=%s reason=%s", lb_id, bundle, reason)
        return self._follow(response, "DeleteCertificate", lb_id, "-", bundle, action, deadline)

    def _delete_bundle(self, lb_id: str, bundle: str, deadline: float) -> bool:
        """Delete one bundle; False when OCI refused because it is attached, or it is gone."""
        action = f"delete certificate bundle {bundle} from load balancer {lb_id}"
        with self._mutation(lb_id, deadline):
            try:
                response = self._delete_call(lb_id, bundle, action, deadline)
            except ConfigError as exc:
                if exc.oci_status == _NOT_FOUND:
                    logger.info("retire skipped lb=%s bundle=%s reason=gone", lb_id, bundle)
                    return False
                raise
            if response is None:
                logger.warning("retire skipped lb=%s bundle=%s reason=attached", lb_id, bundle)
                return False
            self._follow(response, "DeleteCertificate", lb_id, "-", bundle, action, deadline)
            return True

    def _delete_call(self, lb_id: str, bundle: str, action: str, deadline: float) -> Any:  # noqa: ANN401 - an SDK response
        """DeleteCertificate, retried while the load balancer is busy; None when attached.

        A 409 means the bundle is attached to a listener or backend set (OCI's documented
        case) or the load balancer is busy: the load balancer is re-read to tell them apart.
        """
        wait = self._first_wait()
        while True:
            try:
                with translate(action):
                    return self._clients.load_balancer.delete_certificate(lb_id, bundle)
            except (ConfigError, TransientError) as exc:
                if exc.oci_status != _CONFLICT:
                    raise
                load_balancer = self._read(lb_id).load_balancer
                if bundle not in (load_balancer.certificates or {}):
                    msg = f"{action}: OCI answered {exc.oci_status} {exc.oci_code}; it is gone"
                    error = ConfigError(msg)
                    error.oci_status, error.oci_code = _NOT_FOUND, exc.oci_code
                    raise error from exc
                if bundle in _bundles_in_use(load_balancer):
                    return None
                wait = self._back_off(action, lb_id, deadline, wait, exc)

    # ------------------------------------------------------------------ plumbing

    def _follow(
        self,
        response: Any,  # noqa: ANN401 - an SDK response
        operation: str,
        lb_id: str,
        listener: str,
        bundle: str,
        action: str,
        deadline: float,
    ) -> str:
        """Log an accepted mutation and wait for its work request; the work request id."""
        if self._snapshots is not None:
            self._snapshots.forget(lb_id)
        work_request = _work_request_id(response, action)
        logger.info(
            "lb_mutation op=%s lb=%s listener=%s bundle=%s work_request=%s",
            operation,
            lb_id,
            listener,
            bundle,
            work_request,
        )
        try:
            self._wait(work_request, action=action, deadline=deadline)
        except TransientError:
            # Still running (or unreadable) as our time ran out: the next mutation of this
            # load balancer waits for it first instead of queueing behind it unwatched.
            self._in_flight[lb_id] = work_request
            raise
        return work_request

    def _read(self, lb_id: str) -> _Snapshot:
        with translate(f"read load balancer {lb_id}"):
            response = self._clients.load_balancer.get_load_balancer(lb_id)
        return _Snapshot(response.data, response.headers.get("etag"))

    def _wait(self, work_request: str, *, action: str, deadline: float) -> None:
        """Poll until SUCCEEDED; DeploymentError on FAILED, TransientError at the deadline.

        The first reads come quickly (0.1 s, doubling up to ``poll_interval``): small changes
        may finish in under a second, and OCI's 20-60 s ones are then read every
        ``poll_interval`` seconds (see :data:`DEFAULT_POLL_INTERVAL`).
        """
        wait = self._first_wait()
        while True:
            with translate(f"{action}: read work request {work_request}"):
                state = self._clients.load_balancer.get_work_request(work_request).data
            if state.lifecycle_state == _SUCCEEDED:
                return
            if state.lifecycle_state == _FAILED:
                details = "; ".join(
                    f"{error.error_code}: {error.message}" for error in state.error_details or []
                )
                msg = f"{action}: work request {work_request} FAILED: {details or state.message}"
                codes = tuple(str(e.error_code) for e in state.error_details or [])
                raise DeploymentError(msg, work_request_id=work_request, error_codes=codes)
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                msg = (
                    f"{action}: work request {work_request} still {state.lifecycle_state} at the"
                    " deadline; the next run finds its result and carries on"
                )
                raise TransientError(msg)
            self._clock.sleep(min(wait, remaining))
            wait = min(wait * 2, self._poll_interval)

    def _first_wait(self) -> float:
        return min(_FIRST_POLL, self._poll_interval)

    def _back_off(
        self, action: str, lb_id: str, deadline: float, wait: float, exc: Exception
    ) -> float:
        """Sleep before retrying a mutation OCI answered 409; the next wait.

        The waits follow the work-request poll schedule (a busy load balancer is busy for as
        long as its work request runs). At the deadline: TransientError, never ConfigError —
        a busy load balancer is not a configuration problem.
        """
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0:
            msg = (
                f"{action}: the load balancer was still busy at the deadline ({exc});"
                " the next run carries on"
            )
            raise TransientError(msg) from exc
        logger.warning("lb_retry lb=%s reason=conflict wait=%.2f", lb_id, min(wait, remaining))
        self._clock.sleep(min(wait, remaining))
        return min(wait * 2, self._poll_interval)

    @contextmanager
    def _mutation(self, lb_id: str, deadline: float) -> Iterator[None]:
        """Hold the load balancer's process-wide lock (rule 4), waiting no longer than allowed.

        Once held, a work request of ours that an earlier step left running (its time ran
        out) is waited for before anything else is sent: the load balancer is not given to
        new mutations while our work is still under way.
        """
        with self._locks_guard:
            lock = self._locks.setdefault(lb_id, threading.Lock())
        remaining = deadline - self._clock.monotonic()
        if remaining <= 0 or not lock.acquire(timeout=remaining):
            msg = (
                f"load balancer {lb_id}: the deadline came before a change could start"
                " (another change may hold the load balancer)"
            )
            raise TransientError(msg)
        try:
            self._finish_in_flight(lb_id, deadline)
            yield
        finally:
            lock.release()

    def _finish_in_flight(self, lb_id: str, deadline: float) -> None:
        """Wait for the work request an earlier step left running on ``lb_id`` (lock held)."""
        earlier = self._in_flight.get(lb_id)
        if earlier is None:
            return
        action = f"load balancer {lb_id}: an earlier change (work request {earlier})"
        logger.info("lb_wait_in_flight lb=%s work_request=%s", lb_id, earlier)
        try:
            self._wait(earlier, action=action, deadline=deadline)
        except DeploymentError as exc:
            # Its step already failed for the time; what it did not do is redone now.
            logger.warning("lb_in_flight_failed lb=%s work_request=%s: %s", lb_id, earlier, exc)
        except ConfigError as exc:
            if exc.oci_status != _NOT_FOUND:
                raise
            # OCI no longer knows it (or this process now talks to another endpoint).
            logger.info("lb_in_flight_unknown lb=%s work_request=%s", lb_id, earlier)
        self._in_flight.pop(lb_id, None)


# ---------------------------------------------------------------------- helpers


def _listener_target(target: Target) -> ListenerTarget:
    if not isinstance(target, ListenerTarget):
        msg = f"LoadBalancerDeployer deploys to listener targets only, not {type(target).__name__}"
        raise ConfigError(msg)
    return target


def _listener(snapshot: _Snapshot, lb_id: str, listener_name: str) -> SdkModel:
    listeners = snapshot.load_balancer.listeners or {}
    listener = listeners.get(listener_name)
    if listener is None:
        known = ", ".join(sorted(listeners)) or "none"
        msg = (
            f"load balancer {lb_id} has no listener {listener_name!r} (its listeners: {known});"
            " fix the target's listener names"
        )
        raise ConfigError(msg)
    return listener


def _bundle_of(listener: SdkModel) -> str | None:
    ssl = listener.ssl_configuration
    return None if ssl is None else ssl.certificate_name


def _update_details(lb_id: str, listener: SdkModel, bundle: str) -> SdkModel:
    """UpdateListenerDetails carrying every field of ``listener``, on ``bundle``.

    Raises:
        ConfigError: no SSL configuration; a cipher suite OCI refuses as input; a field the
            update model cannot carry (a newer API than this SDK: writing would reset it).

    """
    models = oci.load_balancer.models
    where = f"listener {listener.name!r} of load balancer {lb_id}"
    ssl = listener.ssl_configuration
    if ssl is None:
        msg = f"{where} has no SSL configuration; only HTTPS listeners can take a certificate"
        raise ConfigError(msg)
    if ssl.cipher_suite_name == CUSTOMIZED_CIPHER_SUITE:
        msg = (
            f"{where} reports cipher suite {CUSTOMIZED_CIPHER_SUITE!r}, which UpdateListener does"
            " not accept; give the listener a named cipher suite first"
        )
        raise ConfigError(msg)
    fields = carry_over(listener, models.UpdateListenerDetails, where, ignore={"name"})
    ssl_fields = carry_over(ssl, models.SSLConfigurationDetails, f"{where} sslConfiguration")
    ssl_fields["certificate_name"] = bundle
    ssl_fields["certificate_ids"] = None  # exactly one of certificateName / certificateIds
    fields["ssl_configuration"] = models.SSLConfigurationDetails(**ssl_fields)
    return models.UpdateListenerDetails(**fields)


def carry_over(
    source: SdkModel,
    details_class: type,
    where: str,
    ignore: frozenset[str] | set[str] = frozenset(),
) -> dict[str, Any]:
    """The fields of ``source`` that ``details_class`` takes; ConfigError if one would be lost.

    How every whole-object update here (the HTTPS switch, the challenge route) sends back what
    it read: a field the SDK's details model cannot carry would be reset, so it is refused.
    """
    accepted: dict[str, str] = details_class().swagger_types
    lost = [
        field
        for field in source.swagger_types
        if field not in accepted and field not in ignore and getattr(source, field) is not None
    ]
    if lost:
        msg = (
            f"{where} has {', '.join(lost)}, which {details_class.__name__} cannot send back;"
            " an update would reset it (upgrade the oci SDK)"
        )
        raise ConfigError(msg)
    return {field: getattr(source, field) for field in accepted if field in source.swagger_types}


def _with_bundle(listener: dict[str, Any], bundle: str) -> dict[str, Any]:
    """The listener JSON (``oci.util.to_dict``) as it must read after the switch."""
    expected = copy.deepcopy(listener)
    expected["ssl_configuration"]["certificate_name"] = bundle
    expected["ssl_configuration"]["certificate_ids"] = None
    return expected


# What OCI answers for a listener field that was written without a value: the SDK docstrings'
# defaults (protocols, cipher suite) and the emulator's assumed ones (docs/oci-emulator.md,
# "Read-back"). Applied to both sides of the read-back comparison.
_SSL_DEFAULTS: dict[str, object] = {
    "protocols": ["TLSv1.2"],
    "cipher_suite_name": "oci-default-ssl-cipher-suite-v1",
    "server_order_preference": "DISABLED",
    "has_session_resumption": True,
    "verify_peer_certificate": False,
    "verify_depth": 1,
}
_LIST_FIELDS = frozenset(
    {
        "hostname_names",
        "rule_set_names",
        "certificate_ids",
        "trusted_certificate_authority_ids",
        "backend_tcp_proxy_protocol_options",
    }
)
_TCP_IDLE_TIMEOUT, _HTTP_IDLE_TIMEOUT = 300, 60


def normalised_listener(listener: dict[str, Any]) -> dict[str, Any]:
    """A listener's JSON (``oci.util.to_dict``) in one form for every way OCI may answer it.

    OCI normalises what it stores: an absent list reads as ``[]`` or null, an empty name as
    null, an unnamed SSL setting or connection configuration as its default, and the order of
    ``protocols`` carries no meaning. Two answers that mean the same listener normalise to
    equal values, so a faithful read-back after a switch is never a difference.
    """
    out = copy.deepcopy(listener)
    _normalise_lists(out)
    for key in ("routing_policy_name", "path_route_set_name"):
        out[key] = out.get(key) or None
    idle = _TCP_IDLE_TIMEOUT if out.get("protocol") == "TCP" else _HTTP_IDLE_TIMEOUT
    connection = out.get("connection_configuration") or {}
    out["connection_configuration"] = {
        "idle_timeout": connection.get("idle_timeout") or idle,
        "backend_tcp_proxy_protocol_version": connection.get("backend_tcp_proxy_protocol_version"),
        "backend_tcp_proxy_protocol_options": connection.get("backend_tcp_proxy_protocol_options")
        or [],
    }
    ssl = out.get("ssl_configuration")
    if isinstance(ssl, dict):
        for key, default in _SSL_DEFAULTS.items():
            if ssl.get(key) is None or ssl.get(key) == []:
                ssl[key] = copy.deepcopy(default)
        ssl["protocols"] = sorted(ssl["protocols"])
    return out


def _normalise_lists(value: object) -> None:
    """In place: every known list field that is null becomes ``[]``, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _LIST_FIELDS and item is None:
                value[key] = []
            else:
                _normalise_lists(item)


def _differences(expected: object, actual: object, path: str = "") -> list[str]:
    """Paths (``ssl_configuration.protocols``) where two (normalised) JSON values differ.

    A field the update sent without a value (None) matches whatever OCI answers for it: OCI
    fills a default there, and a value we never had cannot be lost.
    """
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key in sorted(set(expected) | set(actual)):
            found += _differences(expected.get(key), actual.get(key), f"{path}{key}.")
        return found
    if expected is None:
        return []
    return [] if expected == actual else [path.rstrip(".")]


def _full_chain(certificate: StoredCertificate) -> str:
    """The stored chain as one PEM text, leaf first: the bundle's ``publicCertificate``.

    Raises:
        ConfigError: the chain does not parse, or its leaf's serial is not ``serial_hex``.

    """
    leaf, rest = pki.stored_leaf_and_chain(certificate)
    return leaf + rest


def _ders(pem: str) -> list[bytes]:
    """The DER of every certificate in ``pem``, in order; [] when it does not parse."""
    try:
        return [c.public_bytes(serialization.Encoding.DER) for c in pki.split_chain(pem)]
    except ConfigError:
        return []


def _leaf_without_chain(bundle: SdkModel, chain: str) -> bool:
    """Whether ``bundle`` holds the leaf of ``chain`` but not the whole chain (see _check_holds)."""
    held, expected = _ders(bundle.public_certificate or ""), _ders(chain)
    return held[:1] == expected[:1] and held != expected


def _check_holds(bundle: SdkModel, chain: str, lb_id: str) -> None:
    """DeploymentError unless the existing ``bundle``'s publicCertificate is ``chain``.

    The whole chain counts, not only the leaf: the listener serves publicCertificate as it is,
    so a bundle with our leaf but without its intermediates (made by an earlier version, which
    sent them as caCertificate) would break every client that lacks them.
    """
    held, expected = _ders(bundle.public_certificate or ""), _ders(chain)
    if held != expected:
        what = (
            "the same leaf without the rest of its chain"
            if held[:1] == expected[:1]
            else "another certificate"
        )
        msg = (
            f"bundle {bundle.certificate_name} on load balancer {lb_id} holds {what};"
            " refusing to switch listeners to it (delete it and run again)"
        )
        raise DeploymentError(msg)


def _bundles_in_use(load_balancer: SdkModel) -> set[str]:
    """Bundle names referenced by any listener or backend set of the load balancer."""
    holders = [
        *(load_balancer.listeners or {}).values(),
        *(load_balancer.backend_sets or {}).values(),
    ]
    return {
        holder.ssl_configuration.certificate_name
        for holder in holders
        if holder.ssl_configuration is not None and holder.ssl_configuration.certificate_name
    }


def _not_before(bundle: SdkModel) -> datetime:
    """The bundle leaf's notBefore; unreadable bundles sort as the oldest."""
    try:
        return pki.split_chain(bundle.public_certificate or "")[0].not_valid_before_utc
    except ConfigError:
        return _NO_DATE


def ownership_gap(
    bundle_name: str, public_certificate: str | None, fingerprints: frozenset[str]
) -> str | None:
    """Why a bundle named like ours is not proven ours; None when it is (rule 2).

    It is ours when its publicCertificate parses, its leaf's SHA-256 fingerprint is one of the
    stored leaves' ``fingerprints`` and its name carries that leaf's serial (a bundle renamed
    by hand, or holding another certificate under our name, is not ours). The name pattern
    itself is checked by the caller (``naming.owns_bundle``).
    """
    try:
        leaf = pki.split_chain(public_certificate or "")[0]
    except ConfigError:
        return "its publicCertificate does not parse"
    digest = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    if digest not in fingerprints:
        return f"its leaf (serial {pki.serial_hex(leaf)}) is not a stored certificate"
    tail = bundle_name.rsplit("-", 1)[-1].lower()
    if not pki.serial_hex(leaf).startswith(tail):
        return f"its name does not carry its leaf's serial {pki.serial_hex(leaf)}"
    return None


def _retry_token(operation: str, lb_id: str, name: str, salt: str = "") -> str:
    """A retry token that is the same for the same change, across processes and restarts.

    ``salt`` makes a fresh one: OCI replays a token's first answer for 24 h, so the retry of a
    create that OCI failed on its side (INTERNAL_ERROR) needs a token of its own.
    """
    return hashlib.sha256(f"{operation}\0{lb_id}\0{name}\0{salt}".encode()).hexdigest()[:48]


def _work_request_id(response: SdkModel, action: str) -> str:
    work_request = response.headers.get("opc-work-request-id")
    if not work_request:
        msg = (
            f"{action}: OCI accepted the change but named no work request"
            f" (opc-request-id {response.headers.get('opc-request-id')})"
        )
        raise DeploymentError(msg)
    return str(work_request)
