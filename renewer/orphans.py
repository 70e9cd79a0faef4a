"""Certificates that left the configuration: noticed, then retired after a grace period.

A full renewal run (no certificate names given) looks for certificates the renewer manages that
the configuration no longer names — *orphans*: an ACTIVE Vault secret of ours
(``<prefix>-<name>``, tagged ``managed-by: oci-acme-renewer``, described as a certificate), a
state object ``state/<name>.json`` or an orphan record ``orphans/<name>.json`` in the state
bucket, for a name that is not configured. Per orphan, :func:`decide` says what is due:

* NOTICE — the first run that sees it writes its orphan record (when, and the load balancers
  its state says it was deployed to); nothing else changes.
* WAIT — until ``noticed_at + renewal.orphanGraceDays`` (default 30) nothing more happens. A
  certificate put back into the configuration meanwhile has its record removed, so a later
  removal starts a fresh grace period.
* RETIRE, under the certificate's lease (another holder: skipped, tried next run):

  1. CENSUS of every load balancer the configuration names, plus those the orphan's state
     (its deployment records) and its record name: bundles named like its own that a listener
     or backend set uses (**never deleted**: reported, with the listener's fix), unused ones
     proven ours, unused ones named like ours but not proven (**never deleted**);
  2. REVOKE, only with ``renewal.revokeOnRemoval`` (off by default: Let's Encrypt no longer
     runs OCSP, so retirement rarely needs it): every stored version still valid, issued
     through the configured CA and not served by a bundle in use, with reason
     ``cessationOfOperation``; a version the CA already revoked counts as done; any other
     failure stops the retirement before anything is deleted (the next run tries again);
  3. delete the unused bundles proven ours — RETIRE's rule (oci_load_balancer: our name
     pattern *and* a leaf among the stored versions), so this comes before the secret, whose
     versions are the proof;
  4. schedule the deletion of the Vault secret after OCI's default window (30 days; ``oci
     vault secret cancel-secret-deletion`` brings it back);
  5. delete the state object, then the record; release the lease.

  Each step is idempotent, and the record stays until step 5: a run killed midway is
  finished by the next (a secret already pending deletion proves nothing, so a bundle left
  then stays, reported as not proven).

A plan (``plan`` without names) reports the same decisions read-only: what a run would notice,
wait for, or retire (the census is read; nothing is written). Retirement covers classic LB
bundles; a Certificates-service certificate is the user's resource and is never deleted.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from renewer import ca_choice, naming
from renewer.clock import Clock
from renewer.errors import AlreadyRevoked, ConfigError, RenewerError
from renewer.model import ListenerTarget, StoredCertificate
from renewer.ports import Lease, LeaseHandle, StoredLeaves
from renewer.revocation import RevocationReason
from renewer.revoker import Revoker
from renewer.settings import Config

logger = logging.getLogger(__name__)

RECORD_SCHEMA = 1
REVOCATION_REASON = RevocationReason.CESSATION_OF_OPERATION
_LB_OCID = "ocid1.loadbalancer."
_WOULD_SCHEDULE = "would schedule"  # a plan's word for the secret's deletion


class Decision(enum.StrEnum):
    """What is due for one orphan now (:func:`decide`)."""

    NOTICE = "notice"  # first seen: record it
    WAIT = "wait"  # inside the grace period
    RETIRE = "retire"  # the grace period is over


class OrphanOutcome(enum.StrEnum):
    """What happened to (or, in a plan, would happen to) one orphan. Stable: in reports."""

    NOTICED = "noticed"  # first seen; its record written (a plan: would be)
    WAITING = "waiting"  # inside its grace period
    DUE = "due"  # a plan only: the grace period is over, a run would retire it
    RETIRED = "retired"  # retired: see the report's bundles and secret
    SKIPPED = "skipped"  # another run holds its lease, or no time was left
    FAILED = "failed"  # an error; nothing after the failed step was done


def decide(noticed_at: datetime | None, *, now: datetime, grace: timedelta) -> Decision:
    """NOTICE when never noticed, WAIT until ``noticed_at + grace``, then RETIRE. Pure."""
    if noticed_at is None:
        return Decision.NOTICE
    if now < noticed_at + grace:
        return Decision.WAIT
    return Decision.RETIRE


def load_balancers_of(
    state: Mapping[str, object] | None, record: Mapping[str, object] | None
) -> tuple[str, ...]:
    """The load balancers an orphan's state (``deployed`` keys) and record name. Pure.

    The state's ``deployed`` maps ``<load balancer>/<listeners>`` (or a Certificates-service
    certificate OCID, not a load balancer) to a serial; a record lists ``load_balancers``.
    """
    found: list[str] = []
    deployed = (state or {}).get("deployed")
    if isinstance(deployed, Mapping):
        found += [str(key).split("/", 1)[0] for key in deployed]
    listed = (record or {}).get("load_balancers")
    if isinstance(listed, list):
        found += [str(item) for item in listed]
    return tuple(sorted({lb for lb in found if lb.startswith(_LB_OCID)}))


def noticed_time(record: Mapping[str, object] | None) -> datetime | None:
    """The record's ``noticed_at``; None when absent or unreadable (noticed anew). Pure."""
    value = (record or {}).get("noticed_at")
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- ports (the adapters: renewer.adapters.oci_orphans, oci_vault, oci_load_balancer) ----------


class OrphanRecords(Protocol):
    """The state bucket's view for orphans: state objects and orphan records."""

    def state_names(self) -> frozenset[str]:
        """Certificate names that have a state object."""
        ...

    def record_names(self) -> frozenset[str]:
        """Certificate names that have an orphan record."""
        ...

    def load_state(self, name: str) -> dict[str, object] | None:
        """The state document of ``name``, or None."""
        ...

    def load_record(self, name: str) -> dict[str, object] | None:
        """The orphan record of ``name``, or None."""
        ...

    def save_record(self, name: str, record: dict[str, object]) -> None:
        """Write the orphan record of ``name``."""
        ...

    def delete_state(self, name: str) -> None:
        """Delete the state object of ``name``; no-op when absent."""
        ...

    def delete_record(self, name: str) -> None:
        """Delete the orphan record of ``name``; no-op when absent."""
        ...


class StoredSecrets(StoredLeaves, Protocol):
    """The certificate store's part in a retirement (the Vault adapter)."""

    def managed_names(self) -> frozenset[str]:
        """Names with an ACTIVE certificate secret of ours."""
        ...

    def certificates(self, name: str) -> list[StoredCertificate]:
        """The readable certificate versions of ``name`` (for revocation)."""
        ...

    def schedule_secret_deletion(self, name: str) -> str:
        """``scheduled``, ``pending`` or ``absent``."""
        ...


class Census(Protocol):
    """One load balancer's bundles named like a certificate's (``BundleCensus``)."""

    @property
    def load_balancer_id(self) -> str:
        """The load balancer."""
        ...

    @property
    def in_use(self) -> tuple[str, ...]:
        """Bundles a listener or backend set references."""
        ...

    @property
    def ours_unused(self) -> tuple[str, ...]:
        """Unused bundles proven ours."""
        ...

    @property
    def not_proven(self) -> tuple[tuple[str, str], ...]:
        """Unused bundles named like ours, not proven: (name, why)."""
        ...

    @property
    def gone(self) -> bool:
        """The load balancer no longer exists."""
        ...


class Bundles(Protocol):
    """The load balancer adapter's part: census (read-only) and deletion."""

    def census(self, name: str, load_balancer_id: str, *, stored: StoredLeaves) -> Census:
        """Read-only: the bundles named like ``name``'s."""
        ...

    def retire(
        self,
        name: str,
        target: ListenerTarget,
        *,
        keep_previous: int,
        deadline: float,
        stored: StoredLeaves | None = None,
    ) -> list[str]:
        """Delete the unused bundles of ``name`` proven ours beyond ``keep_previous``."""
        ...


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BundleNote:
    """One bundle of an orphan on one load balancer, and why it was (or was not) deleted."""

    load_balancer_id: str
    bundle: str
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready mapping."""
        return {"load_balancer": self.load_balancer_id, "bundle": self.bundle, "note": self.note}


@dataclass(frozen=True, slots=True)
class OrphanReport:
    """One orphan in one run (or plan). Names, OCIDs, serials and dates only (rule 3).

    ``deleted``: bundles deleted (a plan: that would be); ``in_use``: bundles a listener or
    backend set still uses, never deleted; ``not_proven``: named like ours, not proven, never
    deleted. ``vault``, the secret's deletion: ``scheduled``, ``pending``, ``absent`` (a plan:
    ``would schedule``).
    ``revoked``: serials revoked (or already revoked); ``not_revoked``: serial and why.
    """

    name: str
    outcome: OrphanOutcome
    message: str
    noticed_at: datetime | None = None
    retire_at: datetime | None = None
    load_balancers: tuple[str, ...] = ()
    deleted: tuple[BundleNote, ...] = ()
    in_use: tuple[BundleNote, ...] = ()
    not_proven: tuple[BundleNote, ...] = ()
    vault: str | None = None
    revoked: tuple[str, ...] = ()
    not_revoked: tuple[tuple[str, str], ...] = ()
    planned: bool = False
    failed_step: str | None = None
    error: str | None = None
    error_type: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready mapping with stable keys; dates in ISO 8601 UTC."""
        return {
            "name": self.name,
            "outcome": str(self.outcome),
            "message": self.message,
            "planned": self.planned,
            "noticed_at": _iso(self.noticed_at),
            "retire_at": _iso(self.retire_at),
            "load_balancers": list(self.load_balancers),
            "deleted_bundles": [b.to_dict() for b in self.deleted],
            "in_use_bundles": [b.to_dict() for b in self.in_use],
            "not_proven_bundles": [b.to_dict() for b in self.not_proven],
            "vault": self.vault,
            "revoked": list(self.revoked),
            "not_revoked": [{"serial": s, "why": why} for s, why in self.not_revoked],
            "failed_step": self.failed_step,
            "error": self.error,
            "error_type": self.error_type,
        }


# --- the service --------------------------------------------------------------------------------


class OrphanRetirement:
    """Finds, records and retires certificates that left the configuration (module docstring).

    Args:
        config: the validated configuration (its names, load balancers and grace period).
        secrets: the Vault certificate store (listing, proof, revocation input, deletion).
        records: the state bucket's state objects and orphan records.
        bundles: the load balancer adapter (census and deletion).
        leases: the per-certificate leases (an orphan is retired under its own).
        clock: wall clock for the grace period, monotonic clock for the deadline.
        holder: this run's lease holder id.
        revoker: the ACME revoker for a CA's directory URL (``renewal.revokeOnRemoval``: each
            certificate at the CA that issued it); None: never revokes.
        lease_ttl: how long the lease lasts.
        step_budget: seconds one retirement may take; none starts with less left.

    """

    def __init__(
        self,
        *,
        config: Config,
        secrets: StoredSecrets,
        records: OrphanRecords,
        bundles: Bundles,
        leases: Lease,
        clock: Clock,
        holder: str,
        revoker: Callable[[str], Revoker] | None = None,
        lease_ttl: timedelta = timedelta(minutes=10),
        step_budget: float = 60.0,
    ) -> None:
        self._config = config
        self._secrets = secrets
        self._records = records
        self._bundles = bundles
        self._leases = leases
        self._clock = clock
        self._holder = holder
        self._revoker = revoker
        self._lease_ttl = lease_ttl
        self._step_budget = step_budget
        self._grace = timedelta(days=config.renewal.orphan_grace_days)

    # --- public ----------------------------------------------------------------------------------

    def sweep(self, *, deadline: float) -> tuple[OrphanReport, ...]:
        """Notice, wait for or retire every orphan; one report each. Never raises.

        ``deadline``: monotonic; a retirement does not start with less than a step left.
        """
        return self._each(lambda name, record: self._act(name, record, deadline), planned=False)

    def plan(self) -> tuple[OrphanReport, ...]:
        """What :meth:`sweep` would do now; reads only. Never raises."""
        return self._each(self._plan_one, planned=True)

    # --- per orphan ------------------------------------------------------------------------------

    def _each(
        self,
        work: Callable[[str, dict[str, object] | None], OrphanReport],
        *,
        planned: bool,
    ) -> tuple[OrphanReport, ...]:
        configured = {m.spec.name for m in self._config.certificates}
        try:
            secrets = self._secrets.managed_names()
            states = self._records.state_names()
            records = self._records.record_names()
        except RenewerError as exc:
            logger.warning("orphans_unlisted error_type=%s error=%s", type(exc).__name__, exc)
            return (_failure("*", "list", exc, planned=planned),)
        if not planned:
            for name in sorted(records & configured):
                self._returned(name)
        reports = []
        for name in sorted((secrets | states | records) - configured):
            try:
                record = self._records.load_record(name) if name in records else None
                report = work(name, record)
            except RenewerError as exc:
                report = _failure(name, "read", exc, planned=planned)
            except Exception as exc:  # the per-orphan isolation boundary, as per certificate
                logger.exception("orphan failed cert=%s", name)
                report = _failure(name, "internal", exc, planned=planned)
            logger.info(
                "orphan cert=%s outcome=%s planned=%s secret=%s deleted=%d in_use=%d",
                name,
                report.outcome,
                planned,
                report.vault,
                len(report.deleted),
                len(report.in_use),
            )
            reports.append(report)
        return tuple(reports)

    def _returned(self, name: str) -> None:
        """A certificate back in the configuration: its orphan record goes (a fresh grace)."""
        try:
            self._records.delete_record(name)
            logger.info("orphan returned cert=%s: its record was removed", name)
        except RenewerError as exc:
            logger.warning("orphan_record_kept cert=%s error=%s", name, exc)

    def _act(self, name: str, record: dict[str, object] | None, deadline: float) -> OrphanReport:
        now = self._clock.now()
        noticed = noticed_time(record)
        state = self._records.load_state(name)
        load_balancers = load_balancers_of(state, record)
        match decide(noticed, now=now, grace=self._grace):
            case Decision.NOTICE:
                self._records.save_record(name, _record(name, now, load_balancers))
                return OrphanReport(
                    name,
                    OrphanOutcome.NOTICED,
                    f"no longer configured: noticed now; retired after {_iso(now + self._grace)}"
                    " unless it is configured again (nothing was deleted)",
                    noticed_at=now,
                    retire_at=now + self._grace,
                    load_balancers=load_balancers,
                )
            case Decision.WAIT:
                assert noticed is not None  # noqa: S101 - decide() waits only when noticed
                return _waiting(name, noticed, self._grace, load_balancers, planned=False)
        assert noticed is not None  # noqa: S101 - decide() retires only when noticed
        if deadline - self._clock.monotonic() < self._step_budget:
            return OrphanReport(
                name,
                OrphanOutcome.SKIPPED,
                "retirement due, but too little time was left in this run; the next run does it",
                noticed_at=noticed,
                retire_at=noticed + self._grace,
            )
        handle = self._leases.acquire(name, holder=self._holder, ttl=self._lease_ttl)
        if handle is None:
            return OrphanReport(
                name,
                OrphanOutcome.SKIPPED,
                "retirement due, but another run holds its lease; the next run does it",
                noticed_at=noticed,
                retire_at=noticed + self._grace,
            )
        try:
            return self._retire(name, noticed, load_balancers, deadline)
        finally:
            self._release(name, handle)

    def _retire(
        self, name: str, noticed: datetime, recorded: tuple[str, ...], deadline: float
    ) -> OrphanReport:
        step = "census"
        load_balancers = tuple(sorted({*recorded, *self._configured_load_balancers()}))
        proof = _ProofOrNothing(self._secrets)
        revoked: tuple[str, ...] = ()
        not_revoked: tuple[tuple[str, str], ...] = ()
        try:
            censuses = [self._bundles.census(name, lb, stored=proof) for lb in load_balancers]
            in_use = _notes(censuses, "in_use")
            if self._config.renewal.revoke_on_removal:
                step = "revoke"
                revoked, not_revoked = self._revoke_left(name, censuses, deadline)
            step = "delete bundles"
            deleted: list[BundleNote] = []
            for census in censuses:
                if census.gone or not census.ours_unused:
                    continue
                removed = self._bundles.retire(
                    name,
                    ListenerTarget(census.load_balancer_id, ()),
                    keep_previous=0,
                    deadline=deadline,
                    stored=proof,
                )
                deleted += [BundleNote(census.load_balancer_id, b, "deleted") for b in removed]
            step = "schedule secret deletion"
            secret = self._secrets.schedule_secret_deletion(name)
            step = "remove state"
            self._records.delete_state(name)
            self._records.delete_record(name)
        except RenewerError as exc:
            logger.warning(
                "orphan retirement failed cert=%s step=%s error_type=%s error=%s",
                name,
                step,
                type(exc).__name__,
                exc,
            )
            return _failure(name, step, exc, planned=False, noticed_at=noticed)
        message = _retired_message(secret, deleted, in_use, revoked)
        return OrphanReport(
            name,
            OrphanOutcome.RETIRED,
            message,
            noticed_at=noticed,
            retire_at=noticed + self._grace,
            load_balancers=load_balancers,
            deleted=tuple(deleted),
            in_use=in_use,
            not_proven=_notes(censuses, "not_proven"),
            vault=secret,
            revoked=revoked,
            not_revoked=not_revoked,
        )

    def _plan_one(self, name: str, record: dict[str, object] | None) -> OrphanReport:
        now = self._clock.now()
        noticed = noticed_time(record)
        state = self._records.load_state(name)
        recorded = load_balancers_of(state, record)
        match decide(noticed, now=now, grace=self._grace):
            case Decision.NOTICE:
                return OrphanReport(
                    name,
                    OrphanOutcome.NOTICED,
                    "no longer configured: a run would record it now and retire it after"
                    f" {self._config.renewal.orphan_grace_days} day(s)",
                    retire_at=now + self._grace,
                    load_balancers=recorded,
                    planned=True,
                )
            case Decision.WAIT:
                assert noticed is not None  # noqa: S101 - decide() waits only when noticed
                return _waiting(name, noticed, self._grace, recorded, planned=True)
        assert noticed is not None  # noqa: S101 - decide() retires only when noticed
        load_balancers = tuple(sorted({*recorded, *self._configured_load_balancers()}))
        proof = _ProofOrNothing(self._secrets)
        censuses = [self._bundles.census(name, lb, stored=proof) for lb in load_balancers]
        would_delete = tuple(
            BundleNote(c.load_balancer_id, b, "would delete")
            for c in censuses
            for b in c.ours_unused
        )
        in_use = _notes(censuses, "in_use")
        return OrphanReport(
            name,
            OrphanOutcome.DUE,
            "a run would retire it: "
            + _retired_message(_WOULD_SCHEDULE, list(would_delete), in_use, ()),
            noticed_at=noticed,
            retire_at=noticed + self._grace,
            load_balancers=load_balancers,
            deleted=would_delete,
            in_use=in_use,
            not_proven=_notes(censuses, "not_proven"),
            vault=_WOULD_SCHEDULE,
            planned=True,
        )

    # --- helpers ---------------------------------------------------------------------------------

    def _configured_load_balancers(self) -> set[str]:
        return {
            target.load_balancer_id
            for managed in self._config.certificates
            for target in managed.targets
            if isinstance(target, ListenerTarget)
        }

    def _revoke_left(
        self, name: str, censuses: Sequence[Census], deadline: float
    ) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """REVOKE what ``name`` left behind (module docstring, step 2); revoked, not revoked.

        Raises:
            RenewerError: a revocation failed (other than already revoked): nothing is deleted.

        """
        served = {b for c in censuses for b in c.in_use}
        now = self._clock.now()
        cas = ca_choice.configured_cas(self._config)
        revoked: list[str] = []
        skipped: list[tuple[str, str]] = []
        for certificate in self._secrets.certificates(name):
            serial = certificate.serial_hex
            bundle = naming.bundle_name(name, serial, prefix=self._config.oci.name_prefix)
            if certificate.not_after <= now:
                skipped.append((serial, "expired"))
                continue
            if bundle in served:
                skipped.append((serial, f"a listener still serves it (bundle {bundle})"))
                continue
            issuing = ca_choice.issuing_ca(certificate, cas)
            if issuing is None and (certificate.account_url or certificate.directory_url):
                where = certificate.directory_url or _origin(certificate.account_url or "")
                skipped.append((serial, f"issued through {where}, which is no longer configured"))
                continue
            if self._revoker is None:
                skipped.append((serial, "no revoker is configured"))
                continue
            revoker = self._revoker(
                issuing.directory_url if issuing is not None else cas[0].directory_url
            )
            try:
                revoker.revoke(
                    certificate.fullchain_pem,
                    REVOCATION_REASON.code,
                    certificate_key_pem=None,
                    deadline=min(deadline, self._clock.monotonic() + self._step_budget),
                )
            except AlreadyRevoked:
                logger.info("orphan revoke already done cert=%s serial=%s", name, serial)
            else:
                logger.warning(
                    "orphan revoked cert=%s serial=%s reason=%s", name, serial, REVOCATION_REASON
                )
            revoked.append(serial)
        return tuple(revoked), tuple(skipped)

    def _release(self, name: str, handle: LeaseHandle) -> None:
        try:
            self._leases.release(handle)
        except RenewerError as exc:
            logger.warning("orphan unlock_failed cert=%s error=%s", name, exc)


class _ProofOrNothing:
    """The store's leaves as RETIRE's proof; a secret that cannot be read proves nothing.

    A secret already pending deletion (a retirement killed after step 4) is not readable: its
    bundles are then not proven, and stay.
    """

    def __init__(self, secrets: StoredLeaves) -> None:
        self._secrets = secrets
        self._cache: dict[str, frozenset[str]] = {}

    def leaf_fingerprints(self, name: str) -> frozenset[str]:
        if name not in self._cache:
            try:
                self._cache[name] = self._secrets.leaf_fingerprints(name)
            except ConfigError as exc:
                logger.warning("orphan proof unavailable cert=%s error=%s", name, exc)
                self._cache[name] = frozenset()
        return self._cache[name]


def _record(name: str, now: datetime, load_balancers: Iterable[str]) -> dict[str, object]:
    return {
        "schema": RECORD_SCHEMA,
        "name": name,
        "noticed_at": _iso(now),
        "load_balancers": sorted(load_balancers),
    }


def _waiting(
    name: str,
    noticed: datetime,
    grace: timedelta,
    load_balancers: tuple[str, ...],
    *,
    planned: bool,
) -> OrphanReport:
    return OrphanReport(
        name,
        OrphanOutcome.WAITING,
        f"no longer configured since {_iso(noticed)}: retired after {_iso(noticed + grace)}"
        " unless it is configured again",
        noticed_at=noticed,
        retire_at=noticed + grace,
        load_balancers=load_balancers,
        planned=planned,
    )


def _notes(censuses: Sequence[Census], kind: str) -> tuple[BundleNote, ...]:
    notes: list[BundleNote] = []
    for census in censuses:
        if kind == "in_use":
            notes += [
                BundleNote(
                    census.load_balancer_id,
                    bundle,
                    "in use: point its listener at another certificate, then delete it by hand",
                )
                for bundle in census.in_use
            ]
        else:
            notes += [
                BundleNote(census.load_balancer_id, bundle, f"not proven ours: {why}")
                for bundle, why in census.not_proven
            ]
    return tuple(notes)


def _retired_message(
    secret: str,
    deleted: Sequence[BundleNote],
    in_use: Sequence[BundleNote],
    revoked: Sequence[str],
) -> str:
    words = {
        "scheduled": "its Vault secret is scheduled for deletion (OCI's window)",
        "pending": "its Vault secret was already pending deletion",
        "absent": "it had no Vault secret",
        _WOULD_SCHEDULE: "its Vault secret would be scheduled for deletion",
    }
    parts = [words.get(secret, secret), f"{len(deleted)} bundle(s) deleted"]
    if revoked:
        parts.append(f"{len(revoked)} certificate(s) revoked")
    if in_use:
        shown = ", ".join(f"{b.bundle} on {b.load_balancer_id}" for b in in_use)
        parts.append(f"left in use (never deleted): {shown}")
    return "; ".join(parts)


def _failure(
    name: str,
    step: str,
    exc: Exception,
    *,
    planned: bool,
    noticed_at: datetime | None = None,
) -> OrphanReport:
    error = str(exc) if isinstance(exc, RenewerError) else f"internal error ({type(exc).__name__})"
    return OrphanReport(
        name,
        OrphanOutcome.FAILED,
        f"failed at {step}: {error}",
        noticed_at=noticed_at,
        planned=planned,
        failed_step=step,
        error=error,
        error_type=type(exc).__name__,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


__all__ = [
    "BundleNote",
    "Decision",
    "OrphanOutcome",
    "OrphanReport",
    "OrphanRetirement",
    "decide",
    "load_balancers_of",
    "noticed_time",
]
