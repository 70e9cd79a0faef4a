"""The renewal orchestrator: one certificate at a time through idempotent steps, over ports only.

Per certificate (ARCHITECTURE §3; docs/crash-recovery.md)::

    PLAN -> MARK -> LOCK -> RE-CHECK -> ISSUE -> STORE -> DEPLOY -> VERIFY -> RETIRE
         -> SWEEP -> UNLOCK -> RECORD

* PLAN reads the newest stored certificate and the derived state, asks the CA for renewal
  information when it is due (a failure there is a warning: ARI never blocks a renewal), reads
  the listener targets' TLS settings (cipher suite, protocols) and chooses the key type
  (:mod:`renewer.key_choice`: ``auto``, or the configured one, refused with ConfigError when a
  target could not serve it — before anything is ordered), then lets
  :func:`renewer.policy.decide` answer. Nothing is written.
* MARK records in the state that a run has started changing things ("unfinished"), before LOCK,
  so that a run killed at any later moment leaves that marker; RECORD of a run that finished
  clears it. A run that finds it (or a failure count) is never read-only: due or not, it takes
  the lease (a dead run's expired lease is taken over, then released) and verifies, retires,
  prunes, sweeps and finishes an order left open. A healthy run with nothing due reads the
  state, the store and the targets, and writes nothing.
* LOCK takes the certificate's lease; another holder means ``skipped`` / ``Locked`` (seen by a
  read before MARK, so such a run writes nothing).
* RE-CHECK re-reads the store and the state under the lease (CertMagic's rule): a certificate
  another run stored meanwhile is not ordered again.
* ISSUE orders only when the decision says so; STORE always follows a successful order (the
  time budget is never checked between them, so no order is wasted). Right after newOrder, the
  order and its key are recorded in the store as a pending order; a run killed anywhere
  between that and STORE leaves it open, and the next run's ISSUE resumes it (when it still
  fits the spec) instead of ordering again — also a run with nothing due. A store that refuses
  the record does not stop a live run: the record is for crashes only.
* DEPLOY runs on every run, due or not: the deployer is idempotent, so a target still on an
  older certificate after a crash between STORE and DEPLOY is switched without a second order.
* VERIFY (when something changed or was owed) reads back the serial each listener presents for
  each name — for a Certificates-service target, each listener that uses the certificate (found
  by its OCID on the configuration's load balancers), polled until it follows the new version;
  RETIRE then removes superseded bundles and prunes old store versions (rule 1:
  nothing is deleted before the switch is verified); SWEEP removes challenge objects a dead run
  left (only in runs cleaning up after one).
* UNLOCK, then RECORD writes the derived state (failures, ARI answer, what is deployed where)
  and clears the marker: a kill between the two leaves the marker, never an unannounced lease.
  A read-only run writes only when the state lags what the targets serve (a run of an older
  version died before RECORD) or it learnt an ARI answer.

Isolation (the acmebot pattern): each certificate runs in its own try block in a bounded thread
pool; an error is that certificate's ``failed`` outcome and never stops the others. Time: a
monotonic deadline is computed from the budget, and no certificate or step starts with less
than ``step_budget`` seconds left; it is reported ``deferred`` and the next run picks it up.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from renewer import ca_choice, fleet, key_choice, naming, pki
from renewer.clock import Clock
from renewer.deploy_admission import DeployAdmission
from renewer.dns_names import ChallengeType, DnsRecord
from renewer.dns_sweep import Dns01Sweeper, record_names_of
from renewer.errors import (
    AcmeProtocolError,
    ConfigError,
    DeploymentError,
    RenewerError,
    SelfCheckFailed,
    TransientError,
)
from renewer.key_choice import KeyChoice
from renewer.model import (
    CaFailure,
    CaSpec,
    CertificateServiceTarget,
    CertificateSpec,
    CurrentCertificate,
    Decision,
    DeployedTarget,
    FailureHistory,
    IssuedCertificate,
    ListenerTarget,
    ListenerTls,
    OrderRequest,
    PendingOrder,
    Reason,
    RenewalInfo,
    ServedCertificate,
    StoredCertificate,
    Target,
)
from renewer.policy import (
    PolicyConfig,
    ari_fetch_due,
    backoff_kind,
    backoff_until,
    decide,
    renewal_window_start,
)
from renewer.ports import (
    CaPersistRecordPlanner,
    CaRoutedRenewalInfo,
    CertificateStore,
    CertificateUsers,
    ChallengeRouter,
    ChallengeRouteStatus,
    ChallengeSweeper,
    Deployer,
    Issuer,
    Lease,
    LeaseHandle,
    PersistRecordPlanner,
    ServedCertificates,
    StateRepository,
    TlsVerifier,
)
from renewer.rate_limits import IssuanceGate, RateLimited
from renewer.report import CertificateReport, Outcome, RenewalReport, RunReason, TargetReport
from renewer.settings import Config, ManagedCertificate
from renewer.untrusted import describe, quote

if TYPE_CHECKING:
    from renewer.orphans import OrphanRetirement

logger = logging.getLogger(__name__)

VERIFY_TIMEOUT = 10.0  # seconds per TLS handshake when reading back what a listener serves
# A listener using a Certificates-service certificate follows a new version after a delay (OCI's
# is not published; the emulator's realistic profile says 30 s): polled this often, up to 3 s
# (Oracle's ingress controller polls the Certificates service every 3 s).
FOLLOW_FIRST_POLL = 0.25
FOLLOW_MAX_POLL = 3.0
RETIRE_UNITS = 2 + fleet.DEFAULT_DEPTH  # RETIRE: the delete, and waits for the lane's other deploy
STATE_SCHEMA = 1


class RenewalService:
    """Renews, plans and rolls back the configured certificates.

    Thread-safe for its own use: certificates run concurrently on ``max_workers`` threads, so
    every port it is given must be safe to call from several threads. The service keeps no state
    between calls; everything it knows is re-read from the ports on each run.

    Args:
        config: the validated configuration.
        issuer: orders certificates and answers ARI queries.
        certificates: the certificate store (the source of truth).
        leases: per-certificate leases.
        state: derived per-certificate state.
        deployer_for: the deployer for a target.
        verifier: reads back what a listener serves; None skips VERIFY.
        clock: wall-clock ``now`` for policy, monotonic time for deadlines.
        holder: this run's lease holder id (unique per invocation).
        policy: renewal policy tunables.
        lease_ttl: how long a lease lasts; longer than the function timeout.
        step_budget: seconds a step may take; no certificate or step starts with less left.
        max_workers: certificates processed at once.
        checks: read-only checks (besides ``certificates.check``) that must pass before the
            first order of a run, e.g. that the challenge bucket is usable.
        challenges: removes the challenge objects a dead run left; None skips that sweep.
        dns_sweeper: removes the dns-01 TXT values of a dead run's recorded order
            (:mod:`renewer.dns_sweep`); None skips that sweep.
        challenge_router: brings the http-01 route into place on each target load balancer
            before an order (read only by a plan); None: the route is the operator's.
        self_check_waits: after a failed self-check, wait each of these (seconds) and try
            the same order again, while the budget allows: a route just brought into place
            (a token server starting, a health check turning green) often needs a minute,
            and a self-check costs the CA nothing. Empty: no retry within the run.
        served: reads what targets serve when nothing is stored, so a valid certificate
            already there is adopted (renewed in its own window); None: never adopted.
        tls_settings: reads a listener target's TLS settings (read-only) for the key choice;
            None: not read, and ``auto`` treats every listener as serving any key type.
        certificate_users: finds the listeners using a Certificates-service certificate, which
            VERIFY waits for; None: such targets are not verified.
        orphans: notices and retires certificates that left the configuration, after a full
            run (and reports them in a full plan); None: never (:mod:`renewer.orphans`).
        issuance: admits each new order without ARI ``replaces`` under the CA's limits
            (:mod:`renewer.rate_limits`); one held back is ``deferred`` (``RateLimited``).
            None: no limits are counted.

    Raises:
        ConfigError: an empty holder, or a non-positive ttl, step budget or worker count.

    """

    def __init__(
        self,
        *,
        config: Config,
        issuer: Issuer,
        certificates: CertificateStore,
        leases: Lease,
        state: StateRepository,
        deployer_for: Callable[[Target], Deployer],
        verifier: TlsVerifier | None,
        clock: Clock,
        holder: str,
        policy: PolicyConfig = PolicyConfig(),  # noqa: B008 - frozen value, safe to share
        lease_ttl: timedelta = timedelta(minutes=10),
        step_budget: float = 60.0,
        max_workers: int = 4,
        checks: Sequence[Callable[[], None]] = (),
        challenges: ChallengeSweeper | None = None,
        dns_sweeper: Dns01Sweeper | None = None,
        challenge_router: ChallengeRouter | None = None,
        self_check_waits: Sequence[float] = (),
        served: ServedCertificates | None = None,
        tls_settings: Callable[[ListenerTarget], Sequence[ListenerTls]] | None = None,
        certificate_users: CertificateUsers | None = None,
        orphans: OrphanRetirement | None = None,
        issuance: IssuanceGate | None = None,
    ) -> None:
        if not holder:
            raise ConfigError("the lease holder id must not be empty; use one id per invocation")
        if lease_ttl <= timedelta(0) or step_budget <= 0 or max_workers < 1:
            raise ConfigError(
                f"lease_ttl ({lease_ttl}), step_budget ({step_budget}) and max_workers"
                f" ({max_workers}) must be positive"
            )
        self._config = config
        self._issuer = issuer
        self._certificates = certificates
        self._leases = leases
        self._state = state
        self._deployer_for = deployer_for
        self._verifier = verifier
        self._clock = clock
        self._holder = holder
        self._policy = policy
        self._lease_ttl = lease_ttl
        self._step_budget = step_budget
        self._max_workers = max_workers
        self._checks = tuple(checks)
        self._challenges = challenges
        self._dns_sweeper = dns_sweeper
        self._router = challenge_router
        self._self_check_waits = tuple(self_check_waits)
        self._served = served
        self._tls_settings = tls_settings
        self._certificate_users = certificate_users
        self._orphans = orphans
        self._issuance = issuance
        self._checks_lock = threading.Lock()
        self._checks_done = False

    # --- public operations ---------------------------------------------------------------------

    def run(
        self,
        *,
        budget_s: float,
        names: Sequence[str] | None = None,
        force: bool = False,
        dry_run: bool = False,
    ) -> RenewalReport:
        """Renew what is due and make every target serve the newest stored certificate.

        Args:
            budget_s: seconds this run may take; certificates that cannot start in time are
                reported ``deferred``.
            names: certificates to process (default: all configured), in this order.
            force: renew regardless of the policy and of any backoff.
            dry_run: only PLAN, as :meth:`plan` does.

        Returns:
            One report per certificate; ``report.failed`` when any certificate failed.

        Raises:
            ConfigError: ``names`` holds a certificate that is not configured; raised before
                any port is called.

        """
        selected = self._select(names)
        if dry_run:
            return self._with_orphans(self._plan_all(selected, force=force), names)
        started_at = self._clock.now()
        deadline = self._clock.monotonic() + budget_s
        # One book of load-balancer work per run: DEPLOY starts only if its lane's queued work
        # requests and its own fit (issue 15); a work request is assumed to take a step budget
        # (60 s in production, the top of OCI's 20-60 s) until this run has seen some finish.
        admission = DeployAdmission(self._clock.monotonic, deadline, self._step_budget)
        budget = _Budget(self._clock, deadline, self._step_budget, admission)
        logger.info(
            "run_start holder=%s certificates=%d budget_s=%.0f force=%s",
            self._holder,
            len(selected),
            budget_s,
            force,
        )
        reports = self._map(
            lambda managed: self._isolated(
                _Job(managed), budget, lambda job: self._renew(job, budget, force=force)
            ),
            selected,
            lanes=True,
        )
        # Only a full run retires: a run of named certificates is about those certificates.
        orphans = (
            self._orphans.sweep(deadline=budget.deadline)
            if names is None and self._orphans is not None
            else ()
        )
        return self._finish(
            RenewalReport(started_at, self._clock.now(), reports, mode="renew", orphans=orphans)
        )

    def plan(self, names: Sequence[str] | None = None) -> RenewalReport:
        """PLAN only: what a run would decide now. No lease, no order, no deploy, no write.

        Each certificate is reported ``skipped`` with the policy's reason, ``due`` telling
        whether a run would order now; ``failed`` if it could not even be read.

        Raises:
            ConfigError: ``names`` holds a certificate that is not configured.

        """
        return self._with_orphans(self._plan_all(self._select(names), force=False), names)

    def _with_orphans(self, report: RenewalReport, names: Sequence[str] | None) -> RenewalReport:
        """A full plan also says what would happen to certificates no longer configured."""
        if names is not None or self._orphans is None:
            return report
        return replace(report, orphans=self._orphans.plan())

    def rollback(self, name: str, version: int, *, budget_s: float) -> RenewalReport:
        """Put version ``version`` of certificate ``name`` back on every target. No ACME request.

        LOCK, read the version, make it the newest stored version again (a new store version
        with the same content, so that the next scheduled run keeps it instead of redeploying
        the newer one), DEPLOY, VERIFY, RECORD, UNLOCK. Nothing is retired: the newer bundles
        stay for a roll-forward. The version must still be valid and cover every configured
        name (rule 1); otherwise the rollback fails with ConfigError before any deploy.

        Raises:
            ConfigError: ``name`` is not configured; raised before any port is called.

        """
        managed = self._config.certificate(name)
        started_at = self._clock.now()
        budget = _Budget(self._clock, self._clock.monotonic() + budget_s, self._step_budget)
        logger.info("rollback_start cert=%s version=%d holder=%s", name, version, self._holder)
        report = self._isolated(
            _Job(managed, step="lock"),
            budget,
            lambda job: self._roll_back(job, version, budget),
        )
        return self._finish(
            RenewalReport(started_at, self._clock.now(), (report,), mode="rollback")
        )

    # --- orchestration -------------------------------------------------------------------------

    def _select(self, names: Sequence[str] | None) -> list[ManagedCertificate]:
        if names is None:
            return list(self._config.certificates)
        wanted = [names] if isinstance(names, str) else list(dict.fromkeys(names))
        configured = {m.spec.name: m for m in self._config.certificates}
        unknown = [n for n in wanted if n not in configured]
        if unknown:
            known = ", ".join(configured) or "none"
            # A name that has a certificate name's shape is shown, anything else described:
            # it may be a value pasted into the wrong field (the no-echo rule, renewer.errors).
            shown = ", ".join(
                quote(n) if naming.CERT_NAME_RE.fullmatch(n) else f"({describe(n)})"
                for n in unknown
            )
            msg = (
                f"no certificate named {shown} is configured (configured: {known});"
                " nothing was done"
            )
            raise ConfigError(msg)
        return [configured[n] for n in wanted]

    def _map(
        self,
        work: Callable[[ManagedCertificate], CertificateReport],
        selected: Sequence[ManagedCertificate],
        *,
        lanes: bool = False,
    ) -> tuple[CertificateReport, ...]:
        workers = max(1, min(self._max_workers, len(selected)))
        if lanes:
            # A renewal keeps every load balancer busy: busiest first, one certificate on the
            # load balancer while the next is ordered (renewer.fleet).
            done = fleet.run_in_lanes(selected, work, lane=fleet.lane_of, workers=workers)
            return tuple(cast("CertificateReport", report) for report in done)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="renewer") as pool:
            return tuple(pool.map(work, selected))

    def _isolated(
        self, job: _Job, budget: _Budget, work: Callable[[_Job], CertificateReport]
    ) -> CertificateReport:
        """Run ``work`` for one certificate; whatever goes wrong becomes its outcome.

        This is the one place that catches ``Exception`` (style guide C4): a failure is
        logged once with its traceback, recorded in the state (backoff), and reported; the
        other certificates carry on. The lease is released whatever happened.
        """
        started = self._clock.monotonic()
        try:
            budget.require(job.step)  # never start a certificate that cannot finish a step
            report = work(job)
        except _BudgetExhaustedError as exc:
            report = self._deferred(job, exc)
        except RateLimited as exc:
            report = self._rate_limited(job, exc)
        except Exception as exc:  # noqa: BLE001 - the per-certificate isolation boundary (C4)
            report = self._failed(job, exc)
        finally:
            self._unlock(job)
        logger.info(
            "outcome cert=%s outcome=%s reason=%s serial=%s version=%s elapsed=%.2f",
            report.name,
            report.outcome,
            report.reason,
            report.serial,
            report.version,
            self._clock.monotonic() - started,
        )
        return report

    def _renew(self, job: _Job, budget: _Budget, *, force: bool) -> CertificateReport:
        self._plan_step(job, force=force, deadline=budget.step_deadline())
        if not job.planned.renew and not _outstanding(job) and self._already_served(job):
            # Nothing due, nothing left over from a failed run, and every target serves the
            # stored certificate: a read-only run — no lease, no write, unless the plan learnt
            # something to keep (an ARI answer) or the state lacks what is deployed.
            self._tidy(job)
            return self._completed(job)
        if job.planned.renew:
            # Rule 6: a target that cannot take a certificate is found before anything is
            # ordered or written, not after the CA issued one.
            with self._step(job, "check"):
                self._check_stores()
                for target in job.managed.targets:
                    self._deployer_for(target).check(target)
                    self._check_users(target)
                job.routes = self._routes(job)
        job.inherited = _outstanding(job)
        with self._step(job, "lock"):
            self._lock(job)
        if job.lease is None:
            return self._locked(job)
        with self._step(job, "recheck"):
            self._recheck(job, force=force)
            job.inherited = job.inherited or _left_by_another(job, self._holder)
            self._mark_unfinished(job)
        if job.planned.renew and job.routes:
            with self._step(job, "route", budget):
                self._bring_routes(job, deadline=budget.step_deadline())
        self._obtain(job, budget)
        if job.stored is not None:
            self._deploy(job, budget)
            if job.issued or any(d.changed for d in job.deployed) or job.inherited:
                self._verify(job, budget)
                self._when_time_allows(job, budget, "retire", lambda: self._retire(job, budget))
        if job.inherited:
            self._when_time_allows(job, budget, "sweep", lambda: self._sweep_challenges(job))
        job.completed = True
        self._unlock_and_record(job)
        return self._completed(job)

    def _roll_back(self, job: _Job, version: int, budget: _Budget) -> CertificateReport:
        with self._step(job, "lock"):
            job.saved = _SavedState.parse(self._state.load(job.name))
            job.inherited = _outstanding(job)
            self._lock(job)
        if job.lease is None:
            return self._locked(job)
        with self._step(job, "store"):
            self._restore(job, version)
        with self._step(job, "check"):
            self._check_rollback_key(job, version)
        self._deploy(job, budget)
        self._verify(job, budget)
        # Only a verified switch makes the rolled-back version "current" in the store: a
        # rollback that failed leaves the store (and so the next run) on the newer version.
        with self._step(job, "store"):
            self._promote(job, version)
        # A rollback retires nothing, so what a dead or failed run left stays owed (the marker
        # is kept) for the next renewal run.
        job.owed = job.inherited
        job.completed = True
        self._unlock_and_record(job)
        changed = any(d.changed for d in job.deployed)
        stored = job.certificate
        return self._report(
            job,
            Outcome.DEPLOYED if changed else Outcome.SKIPPED,
            RunReason.ROLLBACK,
            f"rolled back to serial {stored.serial_hex} (requested version {version}, now"
            f" stored as version {stored.version}); {_switched(job)}",
        )

    def _plan_all(self, selected: Sequence[ManagedCertificate], *, force: bool) -> RenewalReport:
        started_at = self._clock.now()
        unlimited = _Budget(self._clock, math.inf, self._step_budget)
        reports = self._map(
            lambda managed: self._isolated(
                _Job(managed, persist=False), unlimited, lambda job: self._plan_only(job, force)
            ),
            selected,
        )
        return self._finish(RenewalReport(started_at, self._clock.now(), reports, mode="plan"))

    def _plan_only(self, job: _Job, force: bool) -> CertificateReport:
        self._plan_step(job, force=force)
        decision = job.planned
        message = f"would renew: {decision.message}" if decision.renew else decision.message
        if decision.renew and self._router is not None:
            try:
                routes = self._routes(job)
            except ConfigError as exc:
                message += f"; the order would be refused: {exc}"
            else:
                message += _route_note(routes, done=False)
        if decision.renew and job.key_choice is not None:
            message += f"; key type {job.key_choice.key_type} ({job.key_choice.reason})"
        report = self._report(job, Outcome.SKIPPED, decision.reason, message, due=decision.renew)
        if job.spec.challenge is not ChallengeType.DNS_PERSIST_01:
            return report
        return self._with_persist_records(job, report)

    def _with_persist_records(self, job: _Job, report: CertificateReport) -> CertificateReport:
        """The plan of a dns-persist-01 certificate names the TXT records it needs.

        Without an account yet there is no URL to bind: the message says how to get one.
        With a CA list, one record per CA of the certificate (each names its CA and the
        account there; issue 17), and the message names each CA without an account yet.
        """
        if isinstance(self._issuer, CaPersistRecordPlanner):
            return self._with_records_per_ca(job, report, self._issuer)
        records = None
        if isinstance(self._issuer, PersistRecordPlanner):
            try:
                records = self._issuer.persist_records(job.spec.dns_names)
            except RenewerError as exc:
                hint = f"; dns-persist-01 records unknown: {type(exc).__name__}: {exc}"
                return replace(report, message=report.message + hint)
        if records is None:
            hint = (
                "; dns-persist-01: no ACME account exists yet, so the _validation-persist"
                " record cannot be written — the first renewal registers the account (and"
                " fails on this certificate until the record exists); run plan again then"
            )
            return replace(report, message=report.message + hint)
        return replace(report, dns_records=records)

    def _with_records_per_ca(
        self, job: _Job, report: CertificateReport, planner: CaPersistRecordPlanner
    ) -> CertificateReport:
        """:meth:`_with_persist_records` for a CA list: every CA's records, every gap said."""
        try:
            entries = planner.persist_records_per_ca(job.spec.dns_names, job.spec.cas)
        except RenewerError as exc:
            hint = f"; dns-persist-01 records unknown: {type(exc).__name__}: {exc}"
            return replace(report, message=report.message + hint)
        records: list[DnsRecord] = []
        hints: list[str] = []
        for entry in entries:
            host = ca_choice.ca_host(entry.directory_url)
            if entry.error is not None:
                hints.append(f"dns-persist-01 records for {host} unknown: {entry.error}")
            elif entry.records is None:
                hints.append(
                    f"dns-persist-01: no ACME account exists yet at {host}, so its"
                    " _validation-persist record cannot be written — the first order there"
                    " registers the account (and fails until the record exists); run plan"
                    " again then"
                )
            else:
                records.extend(entry.records)
        message = report.message + "".join(f"; {hint}" for hint in hints)
        return replace(report, message=message, dns_records=tuple(records))

    def _finish(self, report: RenewalReport) -> RenewalReport:
        totals = " ".join(f"{outcome}={count}" for outcome, count in report.totals.items())
        logger.info("run_end mode=%s holder=%s %s", report.mode, self._holder, totals)
        return report

    # --- steps ---------------------------------------------------------------------------------

    @contextmanager
    def _step(self, job: _Job, name: str, budget: _Budget | None = None) -> Iterator[None]:
        """Time step ``name`` into ``job.timings``; with a budget, refuse to start it late."""
        if budget is not None:
            budget.require(name)
        job.step = name
        started = self._clock.monotonic()
        try:
            yield
        finally:
            elapsed = self._clock.monotonic() - started
            job.timings[name] = job.timings.get(name, 0.0) + elapsed

    def _plan_step(self, job: _Job, *, force: bool, deadline: float | None = None) -> None:
        """PLAN: read the store and the state, refresh ARI when due, decide. Writes nothing.

        ``deadline`` (monotonic) bounds the ARI question besides its own bound; None: only
        its own (a plan has no budget).
        """
        with self._step(job, "plan"):
            job.saved = _SavedState.parse(self._state.load(job.name))
            self._load_current(job, self._certificates.latest(job.name))
            if job.stored is not None and ari_fetch_due(job.ari, self._clock.now()):
                job.ari = self._fetch_ari(job.name, job.stored, job.ari, deadline)
            job.tls = self._read_tls(job)
            if job.current is None and not force and self._served is not None:
                job.adopted = self._adoptable(job)
            job.decision = self._decide(job, force=force)
        current = job.current
        logger.info(
            "decision cert=%s renew=%s reason=%s serial=%s not_after=%s next_check=%s"
            " key_type=%s key_type_reason=%s",
            job.name,
            job.planned.renew,
            job.planned.reason,
            current.serial_hex if current else None,
            current.not_after.isoformat() if current else None,
            _iso(job.planned.next_check),
            job.key_choice.key_type if job.key_choice else None,
            job.key_choice.reason if job.key_choice else None,
        )

    def _already_served(self, job: _Job) -> bool:
        """Whether every target already serves the stored certificate (reads only)."""
        if job.stored is None:
            return False
        with self._step(job, "check"):
            serving = all(
                self._deployer_for(target).is_serving(job.name, job.certificate, target)
                for target in job.managed.targets
            )
        if serving:
            job.served = job.managed.targets
        return serving

    def _tidy(self, job: _Job) -> None:
        """The read-only run's bookkeeping: what a run killed before RECORD left undone.

        When the state does not record the serial every target was just seen serving (a run
        switched them and died before RECORD), it is recorded — one state write, only then, or
        when the plan learnt an ARI answer — and that dead run's lease is removed if it has
        expired (conditionally, so a live holder's lease stays). A run whose state already
        records the deployment makes no request here.
        """
        saved = job.saved
        if saved is None:
            return  # a state that could not be read is not overwritten
        recorded = all(
            saved.deployed.get(_target_key(target)) == job.certificate.serial_hex
            for target in job.served
        )
        if recorded and job.ari == saved.ari:
            return
        with self._step(job, "record"):
            self._record(job)
        if recorded:
            return
        logger.info("recorded cert=%s serial=%s reason=StateBehind", job.name, job.stored_serial)
        with self._step(job, "unlock"):
            try:
                removed = self._leases.remove_expired(job.name)
            except RenewerError as exc:
                # Housekeeping: the next run that needs the lease takes an expired one over.
                logger.warning(
                    "expired lease not removed cert=%s error_type=%s error=%s",
                    job.name,
                    type(exc).__name__,
                    exc,
                )
                return
        if removed is not None:
            logger.info(
                "expired lease removed cert=%s previous_holder=%s expired_at=%s",
                job.name,
                removed.holder,
                removed.expires_at.isoformat(),
            )

    def _obtain(self, job: _Job, budget: _Budget) -> None:
        """ISSUE and STORE when due; when not, only finish an order a dead run left open.

        A forced run killed after newOrder leaves an open order that no due run will come to
        resume: a run cleaning up after it finishes that order (never placing one), so what
        the operator asked for is done and the record is closed.
        """
        if job.planned.renew:
            with self._step(job, "issue", budget):
                issued, key_pem = self._issue_patiently(job, budget)
        elif job.inherited:
            with self._step(job, "issue", budget):
                resumed = self._resume(job, deadline=budget.step_deadline())
            if resumed is None:
                return
            issued, key_pem = resumed
            job.reason = RunReason.RESUMED
        else:
            return
        # No budget check here: an issued certificate is always stored, or the order is lost.
        with self._step(job, "store"):
            self._store(job, issued, key_pem)

    def _issue_patiently(self, job: _Job, budget: _Budget) -> tuple[IssuedCertificate, str]:
        """ISSUE, trying the same order again after a failed self-check (``self_check_waits``).

        The order stays open at the CA and recorded in the store, so the next try resumes it:
        no second order, and no challenge was answered, so the CA counted no failure.
        """
        waits = list(self._self_check_waits)
        while True:
            try:
                return self._issue(job, deadline=budget.step_deadline())
            except SelfCheckFailed as exc:
                if not waits or budget.remaining() < waits[0] + budget.step:
                    raise
                wait = waits.pop(0)
                job.self_check_retries += 1
                logger.warning(
                    "self_check_retry cert=%s attempt=%d wait_s=%.0f error=%s",
                    job.name,
                    job.self_check_retries,
                    wait,
                    exc,
                )
                self._clock.sleep(wait)

    def _when_time_allows(
        self, job: _Job, budget: _Budget, step: str, work: Callable[[], None]
    ) -> None:
        """Run housekeeping ``step`` if a step still fits, else leave it owed to the next run.

        Once targets switched, the outcome is what happened to them: VERIFY always runs
        (bounded by its own timeout); only RETIRE and the sweep, which leaving for later is
        harmless, wait for a run with time to spare — the unfinished marker then stays, so the
        next run, due or not, does them.
        """
        if budget.remaining() < budget.step:
            job.owed = True
            logger.info("%s postponed cert=%s reason=TimeBudget", step, job.name)
            return
        with self._step(job, step):
            work()

    def _lock(self, job: _Job) -> None:
        """LOCK: mark the state unfinished, then take the lease (``job.lease``; None: held).

        A live lease of another run is looked at first (one read), so a run that will be
        ``Locked`` writes nothing; the marker is written before the lease is taken, so there
        is no moment at which this run holds a lease the state does not say is owed.
        """
        held = self._leases.current(job.name)
        if held is not None and held.holder != self._holder and held.expires_at > self._clock.now():
            job.holder_seen = held
            return
        self._mark_unfinished(job)
        job.lease = self._leases.acquire(job.name, holder=self._holder, ttl=self._lease_ttl)

    def _mark_unfinished(self, job: _Job) -> None:
        """Record in the state that a run is about to change things and has not finished.

        Written before LOCK (and again after RE-CHECK if a run that finished meanwhile cleared
        it), so every moment at which this run can die — holding the lease, with challenge
        objects published, between the switch and RETIRE — is covered by it; RECORD of a run
        that finished clears it. A run that finds it set is never read-only: it takes the
        lease (taking over the dead run's expired one, which it then releases) and verifies,
        retires, prunes and sweeps, whether or not anything is due. One state write, only by
        runs that are about to work anyway; a healthy not-due run never writes it.
        """
        saved = job.saved
        if saved is None or saved.unfinished is not None:
            return  # unreadable state is not overwritten; an existing marker is enough
        marked = replace(saved, unfinished=_Unfinished(self._holder, self._clock.now()))
        self._state.save(
            job.name, marked.to_document(now=self._clock.now(), next_check=self._next(job))
        )
        job.saved = marked

    def _sweep_challenges(self, job: _Job) -> None:
        """Remove challenge objects older than any live run (a dead run's); may leave some.

        Objects younger than the lease TTL may belong to a live run (of any certificate: the
        bucket is shared), so they stay, and so does the unfinished marker: a later run sweeps
        again once they are old enough.
        """
        if self._challenges is None:
            return
        swept = self._challenges.sweep(created_before=self._clock.now() - self._lease_ttl)
        if swept.removed:
            logger.info(
                "challenges removed cert=%s tokens=%d reason=LeftByAnotherRun",
                job.name,
                len(swept.removed),
            )
        if swept.younger:
            job.owed = True

    def _sweep_dns01(
        self, job: _Job, pending: PendingOrder, *, abandoned: bool, deadline: float
    ) -> None:
        """Remove the dns-01 TXT values a dead run's order ``pending`` left in the zone.

        Only in a run cleaning up after another (``job.inherited``) and for a dns-01
        certificate with a zone. Exactly the order's own values go, and only those nobody can
        need (:class:`~renewer.dns_sweep.Dns01Sweeper`); other certificates of the
        configuration that validate one of its names keep their pending values. Bounded by
        ``deadline`` (the step's); a sweep that fails or has no time left is logged and never
        fails the run (a leftover TXT value is harmless) — the marker stays, so a later run
        tries again while the record is open.
        """
        spec = job.spec
        if (
            self._dns_sweeper is None
            or not job.inherited
            or spec.challenge is not ChallengeType.DNS_01
            or not spec.dns_zone_id
        ):
            return
        if self._clock.monotonic() >= deadline:
            job.owed = True
            logger.info("dns01_sweep postponed cert=%s reason=TimeBudget", job.name)
            return
        shared = frozenset().union(
            *(
                record_names_of(other.spec.dns_names)
                for other in self._config.certificates
                if other.spec.name != job.name and other.spec.challenge.is_dns
            )
        )
        try:
            swept = self._dns_sweeper.sweep(
                pending,
                spec.dns_zone_id,
                abandoned=abandoned,
                shared_names=shared,
                deadline=deadline,
            )
        except Exception as exc:  # noqa: BLE001 - housekeeping must not fail the certificate
            job.owed = True
            logger.warning(
                "dns01_sweep failed cert=%s order=%s error_type=%s error=%s",
                job.name,
                pending.order_url,
                type(exc).__name__,
                exc,
            )
            return
        if swept.removed:
            logger.info(
                "dns01 records removed cert=%s records=%d reason=LeftByAnotherRun",
                job.name,
                len(swept.removed),
            )
        if not swept.readable:
            logger.warning(
                "dns01_sweep order unreadable cert=%s order=%s names=%s: the CA no longer"
                " answers for it with this account, so its TXT values cannot be derived; old"
                " values of this renewer at those names, if any, are left for the operator",
                job.name,
                pending.order_url,
                ",".join(sorted(record_names_of(pending.dns_names))),
            )

    def _recheck(self, job: _Job, *, force: bool) -> None:
        """RE-CHECK under the lease: re-read the store and the state, decide again.

        A serial other than the planned one means another run stored a certificate meanwhile;
        it is judged on its own (never forced), and when it is good the order is skipped.
        """
        planned_serial = job.current.serial_hex if job.current else None
        planned = job.planned
        job.saved = _SavedState.parse(self._state.load(job.name))
        fetched_ari = job.ari
        self._load_current(job, self._certificates.latest(job.name))
        serial = job.current.serial_hex if job.current else None
        if serial == planned_serial:
            job.ari = fetched_ari  # the answer fetched in PLAN is for this very certificate
        job.decision = self._decide(job, force=force and serial == planned_serial)
        if serial != planned_serial and not job.planned.renew:
            job.reason = RunReason.ALREADY_CURRENT
        if job.planned != planned:
            logger.info(
                "recheck cert=%s serial=%s renew=%s reason=%s",
                job.name,
                serial,
                job.planned.renew,
                job.reason or job.planned.reason,
            )

    def _issue(self, job: _Job, *, deadline: float) -> tuple[IssuedCertificate, str]:
        """ISSUE: finish the open order of a run that died, or place one. Returns the key PEM.

        A new order is recorded in the store with its key (``save_pending``) right after
        newOrder, before any challenge is answered: a run killed from then until STORE leaves
        it open, and the next run resumes it instead of ordering again. The record only serves
        a run that dies: when the store refuses it, this run still finishes its order.
        """
        resumed = self._resume(job, deadline=deadline)
        if resumed is not None:
            return resumed
        spec = job.spec
        previous_key = job.stored.private_key_pem if job.stored is not None else None
        key = pki.key_for(spec, previous_key)
        key_pem = pki.private_key_to_pem(key)
        issuing = ca_choice.issuing_ca(job.stored, spec.cas)
        replaces = self._replaces(job)
        if self._issuance is not None:
            # The CA's limits count new orders; a renewal naming what it replaces is exempt.
            self._issuance.admit(job.name, spec.dns_names, renewal=replaces is not None)
        request = OrderRequest(
            dns_names=spec.dns_names,
            csr_pem=pki.make_csr(key, spec.dns_names),
            profile=spec.profile,
            replaces=replaces,
            preferred_chain=spec.preferred_chain,
            challenge=spec.challenge,
            dns_zone_id=spec.dns_zone_id,
            cas=self._ca_order(job),
            replaces_ca=issuing.directory_url if issuing is not None else None,
        )
        created_at = self._clock.now()

        def record(order_url: str, account_url: str) -> None:
            # The record is for a run that dies; this one is alive and holds the order. A store
            # that refuses the record must not make a live run abandon an order it can still
            # finish (and place a second one next run): it is logged, and the order goes on.
            try:
                self._certificates.save_pending(
                    job.name,
                    PendingOrder(
                        order_url=order_url,
                        account_url=account_url,
                        private_key_pem=key_pem,
                        dns_names=spec.dns_names,
                        key_type=pki.key_type_of(key.public_key()),
                        profile=spec.profile,
                        created_at=created_at,
                    ),
                )
            except RenewerError as exc:
                logger.warning(
                    "pending order not recorded cert=%s order=%s error_type=%s error=%s;"
                    " finishing it in this run (only a crash before STORE would now cost a"
                    " second order)",
                    job.name,
                    order_url,
                    type(exc).__name__,
                    exc,
                )

        try:
            issued = self._issuer.issue(request, deadline=deadline, on_order=record)
        except RenewerError as exc:
            job.ca_failures = exc.ca_failures
            raise
        job.ca_failures, job.ca_succeeded = issued.passed_over, issued.directory_url
        logger.info(
            "issued cert=%s serial=%s not_after=%s order=%s replaces=%s ca=%s",
            job.name,
            issued.serial_hex,
            issued.not_after.isoformat(),
            issued.order_url,
            request.replaces if request.replaces_ca == issued.directory_url else None,
            ca_choice.ca_host(issued.directory_url) or "-",
        )
        return issued, key_pem

    def _ca_order(self, job: _Job) -> tuple[CaSpec, ...]:
        """The certificate's CAs to try now: those not backing off, first choice first.

        A single CA is always tried (the certificate's own backoff spaces its attempts).
        """
        saved = job.saved or _SavedState()
        return ca_choice.ca_order(job.spec.cas, saved.ca_backoff, self._clock.now())

    def _resume(self, job: _Job, *, deadline: float) -> tuple[IssuedCertificate, str] | None:
        """The open order a dead run left, finished; None when there is none worth finishing.

        It is resumed only when it still fits the spec (names, key type, profile) and came
        from the configured CA, and its certificate is kept only when it is itself good by the
        policy (an order left for weeks may hold a certificate that is already due).
        """
        pending = self._certificates.load_pending(job.name)
        if pending is None:
            return None
        why = self._unresumable(job, pending)
        key = None
        if why is None:
            try:
                key = pki.load_private_key(pending.private_key_pem)
            except ConfigError:
                why = "UnreadableKey"
        if why is not None or key is None:
            logger.info(
                "pending order ignored cert=%s order=%s reason=%s", job.name, pending.order_url, why
            )
            self._sweep_dns01(job, pending, abandoned=True, deadline=deadline)
            return None
        request = OrderRequest(
            dns_names=pending.dns_names,
            csr_pem=pki.make_csr(key, pending.dns_names),
            profile=pending.profile,
            preferred_chain=job.spec.preferred_chain,
            challenge=job.spec.challenge,
            dns_zone_id=job.spec.dns_zone_id,
            cas=job.spec.cas,
        )
        issued: IssuedCertificate | None = None
        try:
            issued = self._issuer.resume(
                pending.order_url, request, account_url=pending.account_url, deadline=deadline
            )
        finally:
            # Before STORE closes the record (its order URL is what the values derive from):
            # a run killed before this sweep leaves the record, so the next run sweeps again.
            self._sweep_dns01(job, pending, abandoned=issued is None, deadline=deadline)
        if issued is None:
            logger.info(
                "pending order not resumable cert=%s order=%s; ordering anew",
                job.name,
                pending.order_url,
            )
            return None
        described = pki.describe(issued.fullchain_pem, profile=pending.profile)
        verdict = decide(
            spec=self._spec_at(job, issued.directory_url),
            current=described,
            now=self._clock.now(),
            ari=None,
            failures=FailureHistory(),
            force=False,
            config=self._policy,
        )
        if verdict.renew:
            logger.info(
                "pending order's certificate is due itself cert=%s order=%s serial=%s"
                " reason=%s; ordering anew",
                job.name,
                pending.order_url,
                issued.serial_hex,
                verdict.reason,
            )
            return None
        job.resumed = pending.order_url
        logger.info(
            "issued cert=%s serial=%s not_after=%s order=%s resumed=true",
            job.name,
            issued.serial_hex,
            issued.not_after.isoformat(),
            issued.order_url,
        )
        return issued, pending.private_key_pem

    def _unresumable(self, job: _Job, pending: PendingOrder) -> str | None:
        """Why the open ``pending`` order does not fit the spec any more (a reason), or None."""
        spec = job.spec
        if {_normalize_name(n) for n in pending.dns_names} != {
            _normalize_name(n) for n in spec.dns_names
        }:
            return str(Reason.NAMES_CHANGED)
        if pending.key_type is not spec.key_type:
            return str(Reason.KEY_TYPE_CHANGED)
        ca = ca_choice.find_ca(spec.cas, pending.account_url) if spec.cas else None
        if spec.cas and ca is None:
            return "AnotherCa"  # a CA no longer configured for this certificate
        if pending.profile != ca_choice.profile_for(spec, ca):
            return str(Reason.PROFILE_CHANGED)
        if not spec.cas and _origin(pending.account_url) != _origin(
            self._config.acme.directory_url
        ):
            return "AnotherCa"
        return None

    def _replaces(self, job: _Job) -> str | None:
        """The ARI CertID to send as ``replaces`` (RFC 9773 section 5), or None.

        Only the account that holds a certificate may name it. Accounts are kept one per ACME
        directory, so a certificate from another CA host (a switch from staging to
        production, say) is not named. An unknown account URL is tried anyway: the issuer
        orders again without ``replaces`` when the CA refuses it.
        """
        current, stored = job.current, job.stored
        if current is None or stored is None or current.ari_cert_id is None:
            return None
        if job.spec.cas:
            # Only the CA that issued it knows it (issue 17): the issuer sends ``replaces`` to
            # that CA alone, and none is sent when that CA is no longer configured.
            return current.ari_cert_id if ca_choice.issuing_ca(stored, job.spec.cas) else None
        if stored.account_url and _origin(stored.account_url) != _origin(
            self._config.acme.directory_url
        ):
            return None
        return current.ari_cert_id

    def _store(self, job: _Job, issued: IssuedCertificate, key_pem: str) -> None:
        """STORE: check what the CA returned, then add it as the newest store version."""
        spec = self._spec_at(job, issued.directory_url)
        described = pki.describe(issued.fullchain_pem, profile=spec.profile)
        _check_issued(spec, described)
        candidate = StoredCertificate(
            version=0,  # the store assigns it
            fullchain_pem=issued.fullchain_pem,
            private_key_pem=key_pem,
            serial_hex=described.serial_hex,
            not_before=described.not_before,
            not_after=described.not_after,
            dns_names=spec.dns_names,
            key_type=described.key_type,
            profile=spec.profile,
            ari_cert_id=described.ari_cert_id,
            account_url=issued.account_url,
            order_url=issued.order_url,
            directory_url=issued.directory_url,
        )
        stored = self._certificates.put(job.name, candidate)
        job.stored, job.current, job.ari, job.issued = stored, described, None, True
        logger.info(
            "stored cert=%s version=%d serial=%s not_after=%s",
            job.name,
            stored.version,
            stored.serial_hex,
            stored.not_after.isoformat(),
        )

    def _restore(self, job: _Job, version: int) -> None:
        """Rollback's read: ``version``, checked, becomes what DEPLOY puts on the targets."""
        wanted = self._certificates.get(job.name, version)
        current = pki.describe(wanted.fullchain_pem, profile=wanted.profile)
        _check_rollback(job.spec, current, version, now=self._clock.now())
        job.stored, job.current = wanted, current

    def _check_rollback_key(self, job: _Job, version: int) -> None:
        """Rule 6 for a rollback: every target can serve the version's key, before any change.

        The listener targets' suites and protocols, the Certificates service's key types, and
        the suites of the listeners found using a Certificates-service target (they serve the
        rolled-back version too).

        Raises:
            ConfigError: naming the version, its key type, the listener and its suite (or the
                certificate), and the fix.

        """
        key_type = job.current.key_type if job.current is not None else None
        if key_type is None:
            return
        listeners = list(self._read_tls(job))
        services = [t for t in job.managed.targets if isinstance(t, CertificateServiceTarget)]
        users, read_tls = self._certificate_users, self._tls_settings
        if users is not None and read_tls is not None:
            for target in services:
                searched = self._service_load_balancers(target)
                for found in users.listeners_using(target.certificate_id, searched):
                    listeners += read_tls(found)
        refusal = key_choice.unserved(key_type, listeners, [t.certificate_id for t in services])
        if refusal is not None:
            problem, fix = refusal
            msg = (
                f"version {version} of certificate {job.name!r} holds a key of type"
                f" {key_type.value}, {problem}. Roll back to a version whose key type every"
                f" target serves, or {fix}; nothing was changed"
            )
            raise ConfigError(msg)

    def _promote(self, job: _Job, version: int) -> None:
        """Rollback's STORE, after VERIFY: make the deployed version the newest one again.

        A new store version with the same content, so the next scheduled run keeps it
        instead of redeploying the newer one. Nothing is written when it already is newest.
        """
        wanted = job.certificate
        latest = self._certificates.latest(job.name)
        if latest is not None and latest.serial_hex == wanted.serial_hex:
            job.stored = latest
            return
        stored = self._certificates.put(job.name, wanted)
        logger.info(
            "restored cert=%s from_version=%d version=%d serial=%s",
            job.name,
            version,
            stored.version,
            stored.serial_hex,
        )
        job.stored = stored

    def _deploy(self, job: _Job, budget: _Budget) -> None:
        """DEPLOY the current certificate to every target (idempotent per target).

        Each target's deadline is sized by the work OCI must do for it (:func:`_deploy_units`
        step budgets), never past the run's. The deployer gets this attempt's id
        (:func:`_attempt`), recorded in the state's marker before any deploy call.
        """
        certificate = job.certificate
        attempt = _attempt(job, self._holder)
        for target in job.managed.targets:
            with self._step(job, "deploy", budget):
                ticket = self._admit_deploy(job, target, budget)
                done = 0
                try:
                    result = self._deployer_for(target).deploy(
                        job.name,
                        certificate,
                        target,
                        deadline=budget.step_deadline(_deploy_units(target)),
                        attempt=attempt,
                    )
                    done = len(result.work_requests)
                finally:
                    if ticket is not None and budget.admission is not None:
                        budget.admission.finish(ticket, done)
            job.deployed.append(result)
            logger.info(
                "deploy cert=%s target=%s serial=%s bundle=%s changed=%s work_requests=%s",
                job.name,
                _target_key(target),
                certificate.serial_hex,
                result.bundle_name,
                result.changed,
                ",".join(result.work_requests) or None,
            )

    def _admit_deploy(self, job: _Job, target: Target, budget: _Budget) -> int | None:
        """Admit DEPLOY to a listener target only if its lane's work fits the run (issue 15).

        The work: the bundle create and one switch per listener, behind the work requests the
        lane's other certificates still have queued on the load balancer
        (:mod:`renewer.deploy_admission`). A target the state records as serving this serial
        needs none and is not counted. Returns the admission's ticket (None: not counted).

        Raises:
            _BudgetExhaustedError: the work does not fit: the certificate is deferred, stored
                already, and the next run deploys it without a new order.

        """
        if budget.admission is None or not isinstance(target, ListenerTarget):
            return None
        saved = job.saved.deployed if job.saved is not None else {}
        if saved.get(_target_key(target)) == job.certificate.serial_hex:
            return None
        work_requests = 1 + len(target.listener_names)
        admission = budget.admission.admit(target.load_balancer_id, work_requests)
        if admission.ticket is None:
            raise _BudgetExhaustedError(
                "deploy",
                admission.remaining_s,
                admission.queued_s + admission.own_s,
                message=admission.explain(target.load_balancer_id, work_requests),
            )
        return admission.ticket

    def _verify(self, job: _Job, budget: _Budget) -> None:
        """VERIFY: every listener presents the stored serial for every configured name.

        Listener targets are read once; a Certificates-service target through the listeners
        that use it, which may take a while to follow (:meth:`_verify_users`).

        Raises:
            DeploymentError: a listener target presents another certificate.
            TransientError: a listener using a Certificates-service certificate still serves
                another one at the step's deadline.

        """
        if self._verifier is None or not self._config.renewal.verify_tls:
            return
        certificate = job.certificate
        expected = pki.normalize_serial(certificate.serial_hex)
        for target in job.managed.targets:
            if not isinstance(target, ListenerTarget):
                self._verify_users(job, target, budget.step_deadline())
                continue
            for dns_name in job.spec.dns_names:
                with self._step(job, "verify"):
                    served = self._verifier.serial_served(target, dns_name, timeout=VERIFY_TIMEOUT)
                if pki.normalize_serial(served) != expected:
                    msg = (
                        f"listener(s) {', '.join(target.listener_names)} of load balancer"
                        f" {target.load_balancer_id} present serial {served} for {dns_name},"
                        f" expected {certificate.serial_hex}"
                    )
                    raise DeploymentError(msg)
        logger.info("verified cert=%s serial=%s", job.name, certificate.serial_hex)

    def _service_load_balancers(self, target: CertificateServiceTarget) -> tuple[str, ...]:
        """Where the listeners using ``target`` are looked for (docs/configuration.md).

        Its ``loadBalancerIds``, then every load balancer of a listener target in the
        configuration.
        """
        configured = [
            t.load_balancer_id
            for managed in self._config.certificates
            for t in managed.targets
            if isinstance(t, ListenerTarget)
        ]
        return tuple(dict.fromkeys([*target.load_balancer_ids, *configured]))

    def _check_users(self, target: Target) -> None:
        """The read-only check: the load balancers VERIFY will search can be read (rule 6)."""
        users = self._certificate_users
        if users is None or not isinstance(target, CertificateServiceTarget):
            return
        if self._verifier is not None and self._config.renewal.verify_tls:
            users.listeners_using(target.certificate_id, target.load_balancer_ids)

    def _verify_users(self, job: _Job, target: CertificateServiceTarget, deadline: float) -> None:
        """VERIFY of a Certificates-service target: the listeners using it serve the new serial.

        OCI's listeners pick up a new CURRENT version after a delay (issue 11 §3), so each is
        polled (0.25 s doubling to 3 s) until it serves the stored serial or ``deadline``
        passes: then a TransientError — the certificate is deployed, nothing is rolled back or
        retired, and the next run verifies again. No listener using it: the report says so.
        """
        users = self._certificate_users
        if users is None or self._verifier is None:
            return
        searched = self._service_load_balancers(target)
        with self._step(job, "verify"):
            listeners = users.listeners_using(target.certificate_id, searched) if searched else ()
        certificate_id = target.certificate_id
        if not listeners:
            where = ", ".join(searched) if searched else "none configured"
            note = (
                f"VERIFY: no listener of the load balancers searched ({where}) references"
                f" certificate {certificate_id}, so nothing was verified for it; list the load"
                " balancers using it in the target's loadBalancerIds"
            )
            logger.info("verify_nothing cert=%s certificate=%s", job.name, certificate_id)
            job.notes.append(note)
            return
        for listener_target in listeners:
            for dns_name in job.spec.dns_names:
                with self._step(job, "verify"):
                    self._await_follow(job, listener_target, certificate_id, dns_name, deadline)
        described = "; ".join(
            f"{', '.join(t.listener_names)} of {t.load_balancer_id}" for t in listeners
        )
        job.notes.append(
            f"VERIFY: certificate {certificate_id} is served by listener(s) {described}"
        )

    def _await_follow(
        self, job: _Job, target: ListenerTarget, certificate_id: str, dns_name: str, deadline: float
    ) -> None:
        """Poll what ``target`` serves for ``dns_name`` until it is the stored serial."""
        verifier = self._verifier
        assert verifier is not None  # noqa: S101 - checked by the caller
        wanted = job.certificate.serial_hex
        delay, looks = FOLLOW_FIRST_POLL, 0
        while True:
            left = deadline - self._clock.monotonic()
            looks += 1
            try:
                served: str | None = verifier.serial_served(
                    target, dns_name, timeout=max(min(VERIFY_TIMEOUT, left), 0.1), expected=wanted
                )
                seen = f"still serve serial {served}"
            except TransientError as exc:  # not reachable now: may be reloading
                served, seen = None, f"could not be read ({exc})"
            if served is not None and pki.normalize_serial(served) == pki.normalize_serial(wanted):
                return
            left = deadline - self._clock.monotonic()
            if left <= 0:
                msg = (
                    f"listener(s) {', '.join(target.listener_names)} of load balancer"
                    f" {target.load_balancer_id}, which use certificate {certificate_id}, {seen}"
                    f" for {dns_name} after {looks} look(s), not serial {wanted}, its CURRENT"
                    " version: OCI listeners follow a new version after a delay, longer here"
                    " than VERIFY's step budget. The certificate stays deployed (nothing is"
                    " rolled back or retired); the next run verifies again"
                )
                raise TransientError(msg)
            self._clock.sleep(min(delay, left))
            delay = min(delay * 2, FOLLOW_MAX_POLL)

    def _retire(self, job: _Job, budget: _Budget) -> None:
        """RETIRE superseded bundles on every target, then prune old store versions."""
        renewal = self._config.renewal
        for target in job.managed.targets:
            with self._step(job, "retire", budget):
                removed = self._deployer_for(target).retire(
                    job.name,
                    target,
                    keep_previous=renewal.keep_previous_bundles,
                    deadline=budget.step_deadline(RETIRE_UNITS),
                    stored=self._certificates,  # ownership: only stored leaves are deleted
                )
            if removed:
                logger.info(
                    "retired cert=%s target=%s bundles=%s",
                    job.name,
                    _target_key(target),
                    ",".join(removed),
                )
        # Every retirement prunes, not only an issuing run's: a run that issued and then failed
        # (or died) before this point leaves the pruning to the run that finishes its job.
        with self._step(job, "retire", budget):
            pruned = self._certificates.prune(job.name, keep=renewal.retention)
        if pruned:
            logger.info("pruned cert=%s versions=%s", job.name, ",".join(map(str, pruned)))

    def _record(self, job: _Job, *, error: BaseException | None = None) -> None:
        """RECORD the derived state: failures, ARI answer, last success, what is deployed."""
        if not job.persist or job.saved is None:
            return  # a plan writes nothing; a state that could not be read is not overwritten
        now = self._clock.now()
        saved = job.saved
        if error is not None:
            failures = FailureHistory(
                saved.failures.consecutive_failures + 1,
                now,
                cost_free=isinstance(error, SelfCheckFailed),
            )
        elif job.issued or (job.completed and job.decision is not None and not _backing_off(job)):
            failures = FailureHistory()
        else:
            failures = saved.failures  # backing off, deferred, or a rollback: history unchanged
        deployed = dict(saved.deployed)
        if job.stored is not None:
            deployed.update({_target_key(t): job.stored.serial_hex for t in job.served})
            deployed.update({_target_key(d.target): job.stored.serial_hex for d in job.deployed})
        finished = error is None and job.completed and not job.owed
        updated = _SavedState(
            unfinished=None if finished else saved.unfinished,
            failures=failures,
            ari=job.ari,
            ari_serial=job.current.serial_hex if job.ari and job.current else None,
            deployed=deployed,
            last_success_at=now if job.completed else saved.last_success_at,
            last_renewed_at=now if job.issued else saved.last_renewed_at,
            last_error_type=type(error).__name__ if error else None,
            last_error_step=job.step if error else None,
            ca_backoff=ca_choice.record(
                saved.ca_backoff,
                failures=job.ca_failures if len(job.spec.cas) > 1 else (),
                succeeded=job.ca_succeeded,
                now=now,
                config=self._policy,
            ),
        )
        job.saved = updated
        self._state.save(job.name, updated.to_document(now=now, next_check=self._next(job)))

    def _unlock_and_record(self, job: _Job) -> None:
        """UNLOCK, then RECORD, which clears the unfinished marker.

        In that order, so that a run killed between the two leaves the marker — and the next
        run, due or not, makes sure all is done — rather than a lease the state no longer says
        is owed.
        """
        with self._step(job, "unlock"):
            self._unlock(job)
        with self._step(job, "record"):
            self._record(job)

    def _unlock(self, job: _Job) -> None:
        """UNLOCK: release the lease if held. A failed release only delays the next holder."""
        handle, job.lease = job.lease, None
        if handle is None:
            return
        try:
            self._leases.release(handle)
        except RenewerError as exc:
            logger.warning(
                "unlock_failed cert=%s error_type=%s error=%s expires_at=%s",
                job.name,
                type(exc).__name__,
                exc,
                handle.expires_at.isoformat(),
            )

    # --- helpers of the steps ------------------------------------------------------------------

    def _routes(self, job: _Job) -> tuple[ChallengeRouteStatus, ...]:
        """The challenge route of each target load balancer, read (rule 6: before any order).

        A load balancer where http-01 cannot work (private) is left out when another target
        can be validated through; when none can, the order is refused with the reasons.
        """
        if self._router is None or not _uses_http01(job.spec):
            return ()  # a DNS challenge needs no route (and works on a private LB)
        lb_ids = dict.fromkeys(
            t.load_balancer_id for t in job.managed.targets if isinstance(t, ListenerTarget)
        )
        statuses = tuple(self._router.inspect(lb_id, job.spec.dns_names) for lb_id in lb_ids)
        refused = [s for s in statuses if s.refusal is not None]
        if statuses and len(refused) == len(statuses):
            msg = "no order placed: " + "; ".join(str(s.refusal) for s in refused)
            raise ConfigError(msg)
        for status in refused:
            logger.warning(
                "challenge_route skipped cert=%s lb=%s refusal=%s",
                job.name,
                status.load_balancer_id,
                status.refusal,
            )
        return tuple(s for s in statuses if s.refusal is None)

    def _bring_routes(self, job: _Job, *, deadline: float) -> None:
        """Bring the routes ``_routes`` found missing into place (before the order)."""
        router = self._router
        if router is None:
            return
        job.routes = tuple(
            router.ensure(s.load_balancer_id, job.spec.dns_names, deadline=deadline)
            if s.changes
            else s
            for s in job.routes
        )

    def _check_stores(self) -> None:
        """Read-only checks of where an order's results go, once per run (rule 6).

        The certificate store (vault and key) and the extra ``checks`` (the challenge bucket):
        a wrong one must fail before an order is spent, not at the first write after it.
        Serialized, so concurrent certificates make the reads once; a failure is not
        remembered (each certificate reports it).
        """
        with self._checks_lock:
            if self._checks_done:
                return
            self._certificates.check()
            for check in self._checks:
                check()
            self._checks_done = True

    def _load_current(self, job: _Job, stored: StoredCertificate | None) -> None:
        """Set ``job.stored``/``job.current`` from the store's newest version, and its ARI."""
        current = None
        if stored is not None:
            try:
                current = pki.describe(stored.fullchain_pem, profile=stored.profile)
            except ConfigError as exc:
                # An unreadable version must not block renewal forever: plan as if missing.
                logger.warning(
                    "unreadable cert=%s version=%d error=%s; planning as if missing",
                    job.name,
                    stored.version,
                    exc,
                )
        job.stored = stored if current is not None else None
        job.current = current
        saved = job.saved
        matches = (
            saved is not None and current is not None and saved.ari_serial == current.serial_hex
        )
        job.ari = saved.ari if saved is not None and matches else None

    def _fetch_ari(
        self,
        name: str,
        stored: StoredCertificate,
        previous: RenewalInfo | None,
        deadline: float | None = None,
    ) -> RenewalInfo | None:
        """Ask the CA for renewal information; on any failure keep ``previous`` (never blocks).

        ``previous`` is the last window this certificate's CA gave (None: the lifetime policy
        decides). ARI is advisory (RFC 9773 section 4.3): whatever goes wrong here, a CA that
        is unreachable or answers nonsense, or a fault of ours reading the answer, must not
        keep a due certificate from renewing, so nothing raised here leaves the method.
        """
        try:
            if isinstance(self._issuer, CaRoutedRenewalInfo):
                # ARI belongs to the CA that issued the certificate (issue 17), never another.
                spec = self._config.certificate(name).spec
                ca = ca_choice.issuing_ca(stored, spec.cas)
                if ca is None:
                    return previous
                return self._issuer.renewal_info_at(
                    ca.directory_url, stored.fullchain_pem, deadline=deadline
                )
            return self._issuer.renewal_info(stored.fullchain_pem, deadline=deadline)
        except Exception as exc:  # noqa: BLE001 - advisory: every failure falls back, logged
            logger.warning(
                "ari_failed cert=%s error_type=%s error=%s; deciding by %s",
                name,
                type(exc).__name__,
                exc if isinstance(exc, RenewerError) else "-",
                "the previous window" if previous is not None else "lifetime",
            )
            return previous

    def _adoptable(self, job: _Job) -> ServedCertificate | None:
        """The valid certificate a target already serves, when nothing is stored (§4).

        Reading it never fails the run: an unreadable target is left to the check step.
        """
        served = self._served
        if served is None:
            return None
        for target in job.managed.targets:
            try:
                found = served.served(target, job.spec.dns_names)
            except RenewerError as exc:
                # Advisory, like ARI: a target that cannot be read is reported by the check
                # before an order (at its own step), never here.
                logger.warning(
                    "adopt_failed cert=%s error_type=%s error=%s", job.name, type(exc).__name__, exc
                )
                continue
            if found is not None:
                logger.info(
                    "adopt cert=%s where=%s issuer=%s serial=%s not_after=%s",
                    job.name,
                    found.where,
                    found.issuer,
                    found.certificate.serial_hex,
                    found.certificate.not_after.isoformat(),
                )
                return found
        return None

    def _read_tls(self, job: _Job) -> tuple[ListenerTls, ...]:
        """The TLS settings of every listener target (read-only; none without a reader)."""
        if self._tls_settings is None:
            return ()
        settings: list[ListenerTls] = []
        for target in job.managed.targets:
            if isinstance(target, ListenerTarget):
                settings += self._tls_settings(target)
        return tuple(settings)

    def _choose_key(self, job: _Job) -> KeyChoice:
        """The key type for the next certificate (``auto`` or the configured one, checked).

        Raises:
            ConfigError: the configured key type cannot be served by a target.

        """
        services = [
            t.certificate_id for t in job.managed.targets if isinstance(t, CertificateServiceTarget)
        ]
        return key_choice.choose_key_type(
            job.name,
            job.managed.spec.key_type,
            job.tls,
            services,
            current=job.current.key_type if job.current is not None else None,
        )

    def _decide(self, job: _Job, *, force: bool) -> Decision:
        # The key choice depends on the stored certificate, so it is made again with each
        # decision (RE-CHECK may find another run's certificate).
        job.key_choice = self._choose_key(job)
        saved = job.saved or _SavedState()
        issuing = ca_choice.issuing_ca(job.stored, job.spec.cas)
        return decide(
            served=job.adopted,
            spec=self._spec_at(job, issuing.directory_url if issuing is not None else None),
            current=job.current,
            now=self._clock.now(),
            ari=job.ari,
            failures=saved.failures,
            force=force,
            config=self._policy,
        )

    def _spec_at(self, job: _Job, directory_url: str | None) -> CertificateSpec:
        """The spec as ordered at the CA at ``directory_url``: that CA's profile, if it names one.

        A certificate from a CA whose entry names its own profile is judged against that
        profile, so a fallback certificate is not "ProfileChanged" on every run.
        """
        spec = job.spec
        ca = ca_choice.find_ca(spec.cas, directory_url)
        profile = ca_choice.profile_for(spec, ca)
        return spec if profile == spec.profile else replace(spec, profile=profile)

    def _next(self, job: _Job) -> datetime | None:
        """The next renewal: planned time of a new certificate, backoff end, or policy's plan."""
        if job.issued and job.current is not None:
            return renewal_window_start(job.current, self._policy)
        if job.decision is None:
            return None if job.current is None else renewal_window_start(job.current, self._policy)
        if job.decision.renew:
            # It was due and did not happen: the next attempt waits out any backoff.
            saved = job.saved or _SavedState()
            return backoff_until(saved.failures, self._policy)
        return job.decision.next_check

    # --- reports -------------------------------------------------------------------------------

    def _report(
        self,
        job: _Job,
        outcome: Outcome,
        reason: str,
        message: str,
        *,
        due: bool | None = None,
        failed_step: str | None = None,
        error: str | None = None,
        error_type: str | None = None,
    ) -> CertificateReport:
        stored = job.stored
        return CertificateReport(
            name=job.name,
            outcome=outcome,
            reason=str(reason),
            message="; ".join([message, *job.notes]),
            serial=stored.serial_hex if stored else None,
            not_after=stored.not_after if stored else None,
            version=stored.version if stored else None,
            next_renewal=self._next(job),
            targets=tuple(TargetReport.from_deployed(d) for d in job.deployed),
            timings=dict(job.timings),
            failed_step=failed_step,
            error=error,
            error_type=error_type,
            due=due,
            consecutive_failures=job.saved.failures.consecutive_failures
            if job.saved is not None
            else None,
            order_url=stored.order_url if stored is not None and job.issued else None,
            key_type=str(job.key_choice.key_type) if job.key_choice else None,
            key_type_reason=job.key_choice.reason if job.key_choice else None,
            ca=_issuing_host(job),
            ca_passed_over=tuple(
                ca_choice.ca_host(f.directory_url) or "-" for f in job.ca_failures
            ),
        )

    def _completed(self, job: _Job) -> CertificateReport:
        decision = job.planned
        if job.issued:
            resumed = (
                f" (finished order {job.resumed}, left open by a run that stopped)"
                if job.resumed
                else ""
            )
            return self._report(
                job,
                Outcome.RENEWED,
                job.reason or decision.reason,
                f"{decision.message}; issued serial {job.certificate.serial_hex} as version"
                f" {job.certificate.version}{resumed}; {_switched(job)}"
                f"{_route_note(job.routes, done=True)}"
                f"{_retried(job.self_check_retries)}",
            )
        changed = any(d.changed for d in job.deployed)
        reason = job.reason or decision.reason
        if job.reason == RunReason.ALREADY_CURRENT:
            message = "another run stored a good certificate while this one waited for the lease"
        else:
            message = decision.message
        if changed:
            return self._report(
                job, Outcome.DEPLOYED, reason, f"{message}; {_switched(job)} (no order)"
            )
        return self._report(job, Outcome.SKIPPED, reason, message)

    def _locked(self, job: _Job) -> CertificateReport:
        what = (
            f"{job.decision.reason}: {job.decision.message}"
            if job.decision is not None
            else "rollback"
        )
        held = job.holder_seen
        if held is None:
            try:
                held = self._leases.current(job.name)
            except RenewerError:
                held = None  # only for the message: the outcome is Locked either way
        who = (
            f"run {held.holder} holds the lease until {held.expires_at.isoformat()}"
            if held is not None
            else "another run holds the lease"
        )
        return self._report(job, Outcome.SKIPPED, RunReason.LOCKED, f"{who}; left to it ({what})")

    def _deferred(self, job: _Job, exc: _BudgetExhaustedError) -> CertificateReport:
        message = str(exc)
        if job.issued:
            message += (
                f"; serial {job.certificate.serial_hex} is stored as version"
                f" {job.certificate.version} and the next run deploys it without a new order"
            )
        if job.lease is not None:
            self._record_quietly(job)
        return self._report(job, Outcome.DEFERRED, RunReason.TIME_BUDGET, message)

    def _rate_limited(self, job: _Job, exc: RateLimited) -> CertificateReport:
        if job.lease is not None:
            self._record_quietly(job)
        return self._report(job, Outcome.DEFERRED, RunReason.RATE_LIMITED, str(exc))

    def _failed(self, job: _Job, exc: Exception) -> CertificateReport:
        error_type = type(exc).__name__
        if isinstance(exc, RenewerError):
            # Our errors are secret-free by contract (errors.py), so their text may be shown.
            error, reason = str(exc), error_type
        else:
            error, reason = f"internal error ({error_type})", str(RunReason.INTERNAL_ERROR)
        logger.exception("failed cert=%s step=%s error_type=%s", job.name, job.step, error_type)
        self._record_quietly(job, error=exc)
        retry = ""
        if job.persist and job.saved is not None and job.saved.failures.consecutive_failures:
            until = backoff_until(job.saved.failures, self._policy)
            if until is not None:
                retry = f"; next attempt from {_iso(until)} ({backoff_kind(job.saved.failures)})"
        return self._report(
            job,
            Outcome.FAILED,
            reason,
            f"failed at {job.step}: {error}{retry}",
            failed_step=job.step,
            error=error,
            error_type=error_type,
        )

    def _record_quietly(self, job: _Job, *, error: BaseException | None = None) -> None:
        # Already reporting a deferral or a failure: a state that cannot be written is a warning
        # (state is derived data), not a second failure hiding the first.
        try:
            self._record(job, error=error)
        except RenewerError as exc:
            logger.warning(
                "record_failed cert=%s error_type=%s error=%s", job.name, type(exc).__name__, exc
            )


# --- per-run and per-certificate values ---------------------------------------------------------


class _BudgetExhaustedError(Exception):
    """Internal signal: a certificate or step would start with less than its budget left."""

    def __init__(
        self, step: str, remaining: float, needed: float, *, message: str | None = None
    ) -> None:
        super().__init__(
            message
            or (
                f"{step} not started: {max(remaining, 0.0):.0f} s left in this run, a step may"
                f" take {needed:.0f} s; left for the next run"
            )
        )
        self.step = step


@dataclass(frozen=True, slots=True)
class _Budget:
    """The run's monotonic deadline and the time one step may take."""

    clock: Clock
    deadline: float
    step: float
    admission: DeployAdmission | None = None  # the run's load-balancer work (run only)

    def remaining(self) -> float:
        return self.deadline - self.clock.monotonic()

    def require(self, step: str) -> None:
        remaining = self.remaining()
        if remaining < self.step:
            raise _BudgetExhaustedError(step, remaining, self.step)

    def step_deadline(self, units: int = 1) -> float:
        """When a step of ``units`` budgets must end: never past the run's deadline."""
        return min(self.deadline, self.clock.monotonic() + self.step * units)


@dataclass(slots=True)
class _Job:
    """What one certificate's run has learnt and done so far (one thread owns it)."""

    managed: ManagedCertificate
    persist: bool = True  # False for a plan: no state is ever written
    step: str = "plan"
    timings: dict[str, float] = field(default_factory=dict)
    lease: LeaseHandle | None = None
    saved: _SavedState | None = None
    stored: StoredCertificate | None = None  # the newest stored certificate (None: none usable)
    current: CurrentCertificate | None = None  # ``stored``, parsed
    ari: RenewalInfo | None = None  # for ``current`` only
    decision: Decision | None = None
    reason: str | None = None  # a RunReason overriding the decision's reason in the report
    issued: bool = False
    resumed: str | None = None  # the order URL when ISSUE finished a dead run's open order
    served: tuple[Target, ...] = ()  # targets seen serving ``stored`` by the read-only check
    deployed: list[DeployedTarget] = field(default_factory=list)
    completed: bool = False
    inherited: bool = False  # a dead or failed run left work owed (marker or failures)
    owed: bool = False  # this run left some of that work for the next run
    holder_seen: LeaseHandle | None = None  # the live lease of another run LOCK found
    routes: tuple[ChallengeRouteStatus, ...] = ()  # the challenge route per load balancer
    self_check_retries: int = 0  # failed self-checks this run waited out (same order)
    adopted: ServedCertificate | None = None  # served, valid, not held (nothing stored)
    tls: tuple[ListenerTls, ...] = ()  # the listener targets' TLS settings, read in PLAN
    key_choice: KeyChoice | None = None  # the key type PLAN chose, and why
    notes: list[str] = field(default_factory=list)  # for the report's message (VERIFY's)
    ca_failures: tuple[CaFailure, ...] = ()  # CAs this run's order passed over (their side)
    ca_succeeded: str | None = None  # the directory of the CA that issued in this run

    @property
    def name(self) -> str:
        return self.managed.spec.name

    @property
    def spec(self) -> CertificateSpec:
        """The configured spec, with the key type PLAN chose in place of ``auto``."""
        spec = self.managed.spec
        if self.key_choice is None or spec.key_type is self.key_choice.key_type:
            return spec
        return replace(spec, key_type=self.key_choice.key_type)

    @property
    def planned(self) -> Decision:
        if self.decision is None:
            msg = f"internal: {self.name} has no decision before PLAN ran"
            raise RenewerError(msg)
        return self.decision

    @property
    def stored_serial(self) -> str | None:
        return self.stored.serial_hex if self.stored is not None else None

    @property
    def certificate(self) -> StoredCertificate:
        if self.stored is None:
            msg = f"internal: {self.name} has no stored certificate at step {self.step}"
            raise RenewerError(msg)
        return self.stored


@dataclass(frozen=True, slots=True)
class _SavedState:
    """The per-certificate state document, parsed leniently.

    It is derived data: a damaged document costs at most an ARI query or a backoff, never a
    renewal.
    """

    failures: FailureHistory = field(default_factory=FailureHistory)
    ari: RenewalInfo | None = None
    ari_serial: str | None = None
    deployed: Mapping[str, str] = field(default_factory=dict)  # target key -> serial
    last_success_at: datetime | None = None
    last_renewed_at: datetime | None = None
    last_error_type: str | None = None
    last_error_step: str | None = None
    unfinished: _Unfinished | None = None  # a run started changing things and did not finish
    # CA directory -> its side's backoff for this certificate (renewer.ca_choice, issue 17)
    ca_backoff: Mapping[str, ca_choice.CaBackoff] = field(default_factory=dict)

    @classmethod
    def parse(cls, document: Mapping[str, object] | None) -> _SavedState:
        if not document:
            return cls()
        failures = _count(document.get("consecutive_failures"))
        deployed_doc = document.get("deployed")
        deployed = (
            {str(k): v for k, v in deployed_doc.items() if isinstance(v, str)}
            if isinstance(deployed_doc, Mapping)
            else {}
        )
        ari, ari_serial = _parse_ari(document.get("ari"))
        error_type, error_step = document.get("last_error_type"), document.get("last_error_step")
        return cls(
            failures=FailureHistory(
                failures,
                _time(document.get("last_failure_at")),
                cost_free=document.get("last_failure_cost_free") is True,
            ),
            ari=ari,
            ari_serial=ari_serial,
            deployed=deployed,
            last_success_at=_time(document.get("last_success_at")),
            last_renewed_at=_time(document.get("last_renewed_at")),
            last_error_type=error_type if isinstance(error_type, str) else None,
            last_error_step=error_step if isinstance(error_step, str) else None,
            unfinished=_Unfinished.parse(document.get("unfinished")),
            ca_backoff=_parse_ca_backoff(document.get("ca_backoff")),
        )

    def to_document(self, *, now: datetime, next_check: datetime | None) -> dict[str, object]:
        ari = self.ari
        return {
            "schema": STATE_SCHEMA,
            "updated_at": _iso(now),
            "consecutive_failures": self.failures.consecutive_failures,
            "last_failure_at": _iso(self.failures.last_failure_at),
            "last_failure_cost_free": self.failures.cost_free,
            "last_error_type": self.last_error_type,
            "last_error_step": self.last_error_step,
            "last_success_at": _iso(self.last_success_at),
            "last_renewed_at": _iso(self.last_renewed_at),
            "next_check": _iso(next_check),
            "ari": None
            if ari is None
            else {
                "serial": self.ari_serial,
                "window_start": _iso(ari.window_start),
                "window_end": _iso(ari.window_end),
                "selected_time": _iso(ari.selected_time),
                "retry_after": _iso(ari.retry_after),
                "explanation_url": ari.explanation_url,
            },
            "deployed": dict(self.deployed),
            "unfinished": None if self.unfinished is None else self.unfinished.to_document(),
            # Only when a CA is backing off: a single-CA certificate's document is unchanged.
            **(
                {"ca_backoff": {url: b.to_document() for url, b in self.ca_backoff.items()}}
                if self.ca_backoff
                else {}
            ),
        }


@dataclass(frozen=True, slots=True)
class _Unfinished:
    """The state's "cleanup owed" marker: which run started changing things, and when."""

    holder: str
    since: datetime

    @classmethod
    def parse(cls, value: object) -> _Unfinished | None:
        """The marker in ``value``; a damaged one still counts (cleaning up costs little)."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            return cls("unknown", datetime.min.replace(tzinfo=UTC))
        holder, since = value.get("holder"), _time(value.get("since"))
        return cls(
            holder if isinstance(holder, str) else "unknown",
            since or datetime.min.replace(tzinfo=UTC),
        )

    def to_document(self) -> dict[str, object]:
        return {"holder": self.holder, "since": _iso(self.since)}


# --- pure helpers -------------------------------------------------------------------------------


def _check_issued(spec: CertificateSpec, issued: CurrentCertificate) -> None:
    """Refuse to store a certificate for other names than ordered (rule 1)."""
    wanted = {_normalize_name(n) for n in spec.dns_names}
    got = {_normalize_name(n) for n in issued.dns_names}
    if got != wanted:
        msg = (
            f"the CA issued serial {issued.serial_hex} for {', '.join(sorted(got))}, but"
            f" {', '.join(sorted(wanted))} was ordered; it was not stored"
        )
        raise AcmeProtocolError(msg, problem_type="unexpectedCertificate")


def _check_rollback(
    spec: CertificateSpec, current: CurrentCertificate, version: int, *, now: datetime
) -> None:
    """Refuse to roll back to a certificate that is expired or misses a configured name."""
    if now >= current.not_after:
        msg = f"version {version} expired at {_iso(current.not_after)}; pick a newer version"
        raise ConfigError(msg)
    missing = {_normalize_name(n) for n in spec.dns_names} - set(current.dns_names)
    if missing:
        msg = (
            f"version {version} does not cover {', '.join(sorted(missing))}, which the"
            " configuration lists; pick a version issued for every configured name"
        )
        raise ConfigError(msg)


def _outstanding(job: _Job) -> bool:
    """A run failed or died, so work may be owed: verify, retire, prune, sweep, unlock.

    Its switch may be unverified, its old bundles unretired, its store versions unpruned, its
    challenge objects and its lease still there. Such a run is never read-only, and it
    verifies, retires, prunes and sweeps even when nothing is due and no target changes now,
    so the failure (or the unfinished marker) is cleared only by a run that saw the result
    work.
    """
    saved = job.saved
    return saved is not None and (
        saved.failures.consecutive_failures > 0 or saved.unfinished is not None
    )


def _left_by_another(job: _Job, holder: str) -> bool:
    """Like :func:`_outstanding`, not counting the marker this run (``holder``) wrote."""
    saved = job.saved
    if saved is None:
        return False
    unfinished = saved.unfinished
    return saved.failures.consecutive_failures > 0 or (
        unfinished is not None and unfinished.holder != holder
    )


def _attempt(job: _Job, holder: str) -> str:
    """The deployment attempt's id: the run that set the state's unfinished marker.

    The marker is written before LOCK, so before any deploy call, and cleared only by a run
    that finished: a run retrying after a crash (or a failure) finds the same marker and so
    the same attempt (its retry tokens find the dead run's work requests again), while a run
    after a finished one — a rollback to a bundle retired since — is a new attempt.
    """
    unfinished = job.saved.unfinished if job.saved is not None else None
    if unfinished is None:
        return holder  # no readable state: this run's own attempt
    return f"{unfinished.holder}@{_iso(unfinished.since)}"


def _deploy_units(target: Target) -> int:
    """Step budgets a target's DEPLOY may take: one per OCI work request it waits for.

    A listener target: the bundle create, one switch per listener, and one for the load
    balancer's lock or an earlier work request on it (issue 11: with OCI's 20-60 s work
    requests one budget cannot cover all of them) — times the lane depth (:mod:`renewer.fleet`):
    a certificate may be scheduled while the one before it on the same load balancer still
    deploys, and waits for that one's work requests first (issue 15). Others: the update and
    the wait.
    """
    if isinstance(target, ListenerTarget):
        return (2 + len(target.listener_names)) * fleet.DEFAULT_DEPTH
    return 2


def _backing_off(job: _Job) -> bool:
    return job.decision is not None and job.decision.reason is Reason.BACKING_OFF


def _switched(job: _Job) -> str:
    changed = sum(d.changed for d in job.deployed)
    return f"switched {changed} of {len(job.deployed)} target(s)"


def _target_key(target: Target) -> str:
    if isinstance(target, ListenerTarget):
        return f"{target.load_balancer_id}/{','.join(target.listener_names)}"
    return target.certificate_id


def _route_note(routes: Sequence[ChallengeRouteStatus], *, done: bool) -> str:
    """The report's words for the challenge routes changed (or to change); '' when none."""
    changes = [c for status in routes for c in status.changes]
    if not changes:
        return ""
    verb = "challenge route brought into place" if done else "the run would first"
    return f"; {verb}: {'; '.join(changes)}"


def _retried(count: int) -> str:
    """The report's words for self-checks this run waited out; '' when none."""
    if not count:
        return ""
    return (
        f"; the self-check failed {count} time{'s' if count != 1 else ''} first and was"
        " retried in this run with the same order (it costs the CA nothing)"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _normalize_name(name: str) -> str:
    return name.lower().removesuffix(".")


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _parse_ari(value: object) -> tuple[RenewalInfo | None, str | None]:
    if not isinstance(value, Mapping):
        return None, None
    times = [
        _time(value.get(k)) for k in ("window_start", "window_end", "selected_time", "retry_after")
    ]
    serial, url = value.get("serial"), value.get("explanation_url")
    start, end, selected, retry = times
    if start is None or end is None or selected is None or retry is None:
        return None, None
    if not isinstance(serial, str):
        return None, None
    info = RenewalInfo(start, end, selected, retry, url if isinstance(url, str) else None)
    return info, serial


def _issuing_host(job: _Job) -> str | None:
    """The host of the CA that issued the stored certificate.

    Recorded with it, else found by its account URL among the configured CAs (versions stored
    before the CA was recorded).
    """
    stored = job.stored
    if stored is None:
        return None
    if stored.directory_url is not None:
        return ca_choice.ca_host(stored.directory_url)
    ca = ca_choice.issuing_ca(stored, job.spec.cas)
    return ca_choice.ca_host(ca.directory_url) if ca is not None else None


def _parse_ca_backoff(value: object) -> dict[str, ca_choice.CaBackoff]:
    """The state's ``ca_backoff``, leniently: damaged entries are dropped (derived data)."""
    if not isinstance(value, Mapping):
        return {}
    parsed = {str(url): ca_choice.CaBackoff.parse(entry) for url, entry in value.items()}
    return {url: entry for url, entry in parsed.items() if entry is not None}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _uses_http01(spec: CertificateSpec) -> bool:
    """Whether the CA validates ``spec`` through the load balancer's port-80 challenge path."""
    return spec.challenge is ChallengeType.HTTP_01
