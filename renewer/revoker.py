"""The revoke action: revoke one stored certificate version, never one a target still serves.

Order (the plan, :func:`renewer.revocation.plan_revocation`, is made and logged first, and a
dry run stops there)::

    PLAN -> REPLACE (a forced renewal run) or DEPLOY (a normal run) -> CHECK -> REVOKE

* PLAN reads the version to revoke and the newest version from the certificate store; an unknown
  version is :class:`~renewer.errors.UnknownCertificateVersion`, a version issued through
  another CA (its account URL is on another host) a ConfigError. Nothing is written.
* REPLACE: revoking the newest version (or, for ``keyCompromise``, any version whose key the
  newest still uses) first runs the renewal pipeline forced for this certificate — ISSUE,
  STORE, DEPLOY, VERIFY, RETIRE, with its lease and its crash rules — with ``reuseKey`` off for
  ``keyCompromise``. Otherwise DEPLOY runs the pipeline unforced, which switches a target still
  serving an older version to the newest (read-only when every target already does). Either
  run failing, deferred or locked stops the revocation: nothing is revoked while a target may
  serve it.
* CHECK re-reads the newest version: it must not be the one being revoked, nor (for
  ``keyCompromise``) share its key — an order a dead run left open with the old key could have
  been finished by REPLACE; then the revocation stops, and the next attempt replaces again.
* REVOKE sends revokeCert (:class:`~renewer.adapters.acme_revocation.AcmeRevoker`), signed with
  the account key or the certificate's own key, and records the revocation durably
  (``revocations/<name>.json``: ``rollback`` refuses a revoked version). The certificate's
  lease is held from CHECK to that record, so no rollback or renewal runs in between.

The result is a :class:`~renewer.report.RenewalReport` (mode ``revoke``) with one certificate
report: the outcome of the renewal run (``renewed`` when a replacement was issued), reason
``Revoked``, and ``revocation`` holding the plan and what happened; the runner journals it like
any run, so the journal records every revocation (and every refused one).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from renewer import ca_choice, pki
from renewer.clock import Clock
from renewer.errors import AlreadyRevoked, ConfigError, RenewerError, UnknownCertificateVersion
from renewer.model import StoredCertificate
from renewer.ports import CertificateStore, Lease, LeaseHandle
from renewer.report import CertificateReport, Outcome, RenewalReport, RunReason
from renewer.revocation import (
    RevocationPlan,
    RevocationReason,
    RevokedVersion,
    SignWith,
    plan_revocation,
)
from renewer.settings import Config

logger = logging.getLogger(__name__)

REVOKE_STEP_S = 60.0  # at most this much of the budget for the revokeCert request itself
_REVOKE_RESERVE_S = 15.0  # kept from the renewal run for the revokeCert request


class Revoker(Protocol):
    """Sends revokeCert to the configured CA (the ACME adapter)."""

    directory_url: str

    def revoke(
        self,
        fullchain_pem: str,
        reason_code: int,
        *,
        certificate_key_pem: str | None,
        deadline: float,
    ) -> str:
        """Revoke the leaf; returns who signed. Raises the typed refusals of renewer.errors."""
        ...


class RevocationRecords(Protocol):
    """Where revocations are recorded (``renewer.adapters.oci_revocations``)."""

    def record(self, name: str, revoked: RevokedVersion) -> None:
        """Add ``revoked`` to what is recorded for certificate ``name``."""
        ...


class Renewals(Protocol):
    """The part of :class:`~renewer.renewal.RenewalService` a revocation runs first."""

    def run(
        self, *, budget_s: float, names: list[str] | None = None, force: bool = False
    ) -> RenewalReport:
        """A renewal run of ``names``."""
        ...


@dataclass(frozen=True, slots=True)
class RevocationRequest:
    """One revoke action: certificate ``name``, store ``version``, reason, signer, dry run."""

    name: str
    version: int
    reason: RevocationReason
    sign_with: SignWith = SignWith.ACCOUNT
    dry_run: bool = False


class RevocationService:
    """Runs revoke actions (see the module docstring).

    Args:
        config: the validated configuration.
        certificates: the certificate store (the versions and their keys).
        revoker: the revoker for a CA's directory URL (revokeCert at the CA that issued the
            version, with that CA's account); built on use (it imports ``acme``).
        renewals_for: the renewal service for a configuration (the replacement runs with
            ``reuseKey`` off for ``keyCompromise``, so it may be a modified one).
        clock: wall clock for the report, monotonic clock for the deadline.
        records: where each revocation is recorded durably (rollback refuses a revoked
            version); None: not recorded.
        leases: the certificate's lease, held from CHECK until the revocation is recorded;
            None: not held.
        holder: the lease holder id (this invocation's).
        lease_ttl: how long that lease lasts.

    """

    def __init__(
        self,
        *,
        config: Config,
        certificates: CertificateStore,
        revoker: Callable[[str], Revoker],
        renewals_for: Callable[[Config], Renewals],
        clock: Clock,
        records: RevocationRecords | None = None,
        leases: Lease | None = None,
        holder: str = "revoke",
        lease_ttl: timedelta = timedelta(minutes=10),
    ) -> None:
        self._config = config
        self._certificates = certificates
        self._revoker = revoker
        self._renewals_for = renewals_for
        self._clock = clock
        self._records = records
        self._leases = leases
        self._holder = holder
        self._lease_ttl = lease_ttl

    def revoke(self, request: RevocationRequest, *, budget_s: float) -> RenewalReport:
        """Run ``request``; a failure is the report's ``failed`` outcome, never an exception.

        Raises:
            ConfigError: ``request.name`` is not configured (before anything is read).

        """
        self._config.certificate(request.name)
        started_at = self._clock.now()
        deadline = self._clock.monotonic() + budget_s
        run = _Run(request)
        try:
            report = self._revoke(run, deadline)
        except RenewerError as exc:
            report = _failed(run, exc, str(exc))
        except Exception as exc:
            logger.exception("revoke failed cert=%s step=%s", request.name, run.step)
            report = _failed(run, exc, f"internal error ({type(exc).__name__})")
        logger.info(
            "revoke_end cert=%s version=%d outcome=%s reason=%s",
            request.name,
            request.version,
            report.outcome,
            report.reason,
        )
        return RenewalReport(started_at, self._clock.now(), (report,), mode="revoke")

    def _revoke(self, run: _Run, deadline: float) -> CertificateReport:
        request = run.request
        run.step = "plan"
        target = self._version(request.name, request.version)
        latest = self._certificates.latest(request.name)
        directory = self._ca_of(request.name, target)
        run.plan = plan_revocation(
            name=request.name,
            version=request.version,
            serial=target.serial_hex,
            latest_version=latest.version if latest else None,
            latest_serial=latest.serial_hex if latest else None,
            shares_key_with_latest=latest is not None and _same_key(target, latest),
            reason=request.reason,
            sign_with=request.sign_with,
            ca=directory,
        )
        logger.info(
            "revocation_plan cert=%s version=%d serial=%s reason=%s steps=%s",
            request.name,
            request.version,
            target.serial_hex,
            request.reason,
            " | ".join(run.plan.steps),
        )
        if request.dry_run:
            return CertificateReport(
                name=request.name,
                outcome=Outcome.SKIPPED,
                reason=str(RunReason.REVOCATION_PLANNED),
                message="would: " + "; then ".join(run.plan.steps),
                due=True,
                revocation={**run.plan.to_dict(), "revoked": False},
            )
        run.step = "replace" if run.plan.replace else "deploy"
        renewal = self._renewal(run.plan, deadline)
        run.renewal = renewal
        run.step = "check"
        # Held from CHECK to the record: no rollback or renewal of this certificate runs between
        # the check that no target serves the version and its revocation.
        handle = self._lock(request.name)
        try:
            self._check_replaced(run.plan, target)
            run.step = "revoke"
            remaining = deadline - self._clock.monotonic()
            revoker = self._revoker(directory)
            try:
                signer = revoker.revoke(
                    target.fullchain_pem,
                    request.reason.code,
                    certificate_key_pem=(
                        target.private_key_pem
                        if request.sign_with is SignWith.CERTIFICATE_KEY
                        else None
                    ),
                    deadline=self._clock.monotonic() + max(1.0, min(REVOKE_STEP_S, remaining)),
                )
            except AlreadyRevoked:
                # Revoked all the same (an earlier attempt whose record was lost): record it.
                self._record(request, target, self._clock.now())
                raise
            revoked_at = self._clock.now()
            recorded = self._record(request, target, revoked_at)
        finally:
            self._unlock(handle)
        replaced = (
            f"; replaced by serial {renewal.serial} (version {renewal.version}), which every"
            " target serves"
            if run.plan.replace
            else f"; every target serves version {renewal.version} (serial {renewal.serial})"
        )
        return replace(
            renewal,
            outcome=renewal.outcome
            if renewal.outcome in (Outcome.RENEWED, Outcome.DEPLOYED)
            else Outcome.SKIPPED,
            reason=str(RunReason.REVOKED),
            message=(
                f"revoked serial {target.serial_hex} (version {request.version}) with reason"
                f" {request.reason.value}{replaced}"
            ),
            revocation={
                **run.plan.to_dict(),
                "revoked": True,
                "revokedAt": revoked_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "signer": signer,
                "ca": revoker.directory_url,
                "recorded": recorded,
            },
        )

    def _lock(self, name: str) -> LeaseHandle | None:
        """The certificate's lease (None without leases); RenewerError when another holds it."""
        if self._leases is None:
            return None
        handle = self._leases.acquire(name, holder=self._holder, ttl=self._lease_ttl)
        if handle is None:
            msg = (
                f"not revoked: another run (a renewal or a rollback) holds the lease of {name};"
                " run the revoke again when it has finished"
            )
            raise RenewerError(msg)
        return handle

    def _unlock(self, handle: LeaseHandle | None) -> None:
        if handle is None or self._leases is None:
            return
        try:
            self._leases.release(handle)
        except RenewerError as exc:
            logger.warning("revoke unlock_failed cert=%s error=%s", handle.name, exc)

    def _record(
        self, request: RevocationRequest, target: StoredCertificate, revoked_at: datetime
    ) -> bool:
        """Record the revocation durably (rollback refuses the version); False if it failed.

        A failure does not undo the revocation and is not the revocation's failure: it is
        logged, and the report says ``recorded: false``.
        """
        if self._records is None:
            return False
        try:
            self._records.record(
                request.name,
                RevokedVersion(
                    target.serial_hex.lower(), request.version, request.reason.value, revoked_at
                ),
            )
        except RenewerError as exc:
            logger.warning(
                "revocation not recorded cert=%s serial=%s error=%s",
                request.name,
                target.serial_hex,
                exc,
            )
            return False
        return True

    def _version(self, name: str, version: int) -> StoredCertificate:
        try:
            return self._certificates.get(name, version)
        except ConfigError as exc:
            msg = (
                f"version {version} of certificate {name} cannot be revoked: {exc}; the"
                " status action lists its versions in the history"
            )
            raise UnknownCertificateVersion(msg) from exc

    def _ca_of(self, name: str, target: StoredCertificate) -> str:
        """The directory URL of the configured CA that issued ``target`` (its account's CA).

        Raises:
            ConfigError: it was issued through a CA the configuration no longer lists.

        """
        cas = ca_choice.configured_cas(self._config)
        issuing = ca_choice.issuing_ca(target, cas)
        if issuing is not None:
            return issuing.directory_url
        if not target.account_url and not target.directory_url:
            return self._config.certificate(name).spec.cas[0].directory_url
        where = target.directory_url or _origin(target.account_url or "")
        listed = ", ".join(_origin(ca.directory_url) for ca in cas)
        msg = (
            f"version {target.version} was issued through {where}, which the configuration no"
            f" longer lists ({listed}); add it to acme.cas to revoke there"
        )
        raise ConfigError(msg)

    def _renewal(self, plan: RevocationPlan, deadline: float) -> CertificateReport:
        """REPLACE (forced, maybe with a fresh key) or DEPLOY (unforced); its report."""
        config = self._config
        if plan.fresh_key:
            config = _without_key_reuse(config, plan.name)
        budget = deadline - self._clock.monotonic() - _REVOKE_RESERVE_S
        if budget <= 0:
            msg = "no time left for the renewal run before revoking; run the revoke again"
            raise ConfigError(msg)
        report = self._renewals_for(config).run(
            budget_s=budget, names=[plan.name], force=plan.replace
        )
        (renewal,) = report.certificates
        if (
            renewal.outcome is Outcome.FAILED
            or renewal.outcome is Outcome.DEFERRED
            or (renewal.reason == RunReason.LOCKED)
        ):
            msg = (
                f"not revoked: the {'replacement' if plan.replace else 'deployment'} run"
                f" ended {renewal.outcome} ({renewal.reason}"
                f"{': ' + renewal.error if renewal.error else ''}), so a target may still"
                " serve the certificate; fix that and run the revoke again"
            )
            raise _RenewalRunFailedError(msg, renewal)
        return renewal

    def _check_replaced(self, plan: RevocationPlan, target: StoredCertificate) -> None:
        latest = self._certificates.latest(plan.name)
        if latest is None or latest.serial_hex == target.serial_hex:
            msg = (
                f"not revoked: serial {target.serial_hex} is still the newest version of"
                f" {plan.name}; run the revoke again"
            )
            raise RenewerError(msg)
        if plan.fresh_key and _same_key(target, latest):
            msg = (
                f"not revoked: the replacement (version {latest.version}) has the compromised"
                " key (an order a dead run left open was finished); run the revoke again: the"
                " next replacement gets a fresh key"
            )
            raise RenewerError(msg)


class _RenewalRunFailedError(RenewerError):
    """The renewal run before a revocation did not end with every target served."""

    def __init__(self, message: str, report: CertificateReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(slots=True)
class _Run:
    request: RevocationRequest
    step: str = "plan"
    plan: RevocationPlan | None = None
    renewal: CertificateReport | None = None


def _failed(run: _Run, exc: Exception, error: str) -> CertificateReport:
    request = run.request
    renewal = exc.report if isinstance(exc, _RenewalRunFailedError) else run.renewal
    error_type = type(exc).__name__
    if isinstance(exc, _RenewalRunFailedError):
        error_type = exc.report.error_type or "RenewalRunFailed"
    reason = error_type if isinstance(exc, RenewerError) else str(RunReason.INTERNAL_ERROR)
    revocation: dict[str, object] = {"revoked": False}
    if run.plan is not None:
        revocation = {**run.plan.to_dict(), "revoked": False}
    else:
        revocation.update(
            version=request.version,
            reason=request.reason.value,
            reasonCode=request.reason.code,
            signWith=request.sign_with.value,
        )
    base = renewal or CertificateReport(
        name=request.name, outcome=Outcome.FAILED, reason="", message=""
    )
    return replace(
        base,
        outcome=Outcome.FAILED,
        reason=reason,
        message=f"failed at {run.step}: {error}",
        failed_step=run.step,
        error=error,
        error_type=error_type,
        revocation=revocation,
    )


def _same_key(one: StoredCertificate, other: StoredCertificate) -> bool:
    """Whether two stored certificates certify the same public key."""
    return pki.leaf_public_key_der(one.fullchain_pem) == pki.leaf_public_key_der(
        other.fullchain_pem
    )


def _without_key_reuse(config: Config, name: str) -> Config:
    """``config`` with ``reuseKey`` off for certificate ``name`` (a compromised key)."""
    return replace(
        config,
        certificates=tuple(
            replace(m, spec=replace(m.spec, reuse_key=False)) if m.spec.name == name else m
            for m in config.certificates
        ),
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
