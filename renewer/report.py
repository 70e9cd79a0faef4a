"""What a run did, per certificate: the values the function returns and the alarms read.

Every run ends with a truthful report (ARCHITECTURE §4, rule 7): one :class:`CertificateReport`
per certificate with its :class:`Outcome` and a stable reason, gathered in a
:class:`RenewalReport`. Reports carry names, serials, dates, OCIDs, bundle names and work
request ids only: never PEM, keys or secret contents (rule 3). ``RenewalReport.summary()``
becomes the body of a failed invocation (fdk answers 502 with ``str(exc)``), so it is stricter
still: certificate names, the failed step and the error type, nothing the error said.

Pure values: no I/O, stdlib only.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from renewer.dns_names import DnsRecord
from renewer.model import DeployedTarget, ListenerTarget

if TYPE_CHECKING:
    from renewer.orphans import OrphanReport


class Outcome(enum.StrEnum):
    """What happened to one certificate in one run. Stable: reports and alarms carry them."""

    RENEWED = "renewed"  # a new certificate was issued, stored and deployed
    DEPLOYED = "deployed"  # no order, but a target was switched to the stored certificate
    SKIPPED = "skipped"  # nothing to do (not due, backing off, locked by another run)
    DEFERRED = "deferred"  # left for the next run: the time budget ran short
    FAILED = "failed"  # an error; ``error`` and ``error_type`` say which


class RunReason(enum.StrEnum):
    """Reasons that come from the run rather than the policy (see :class:`renewer.model.Reason`).

    Stable across releases, PascalCase like the policy's reasons.
    """

    LOCKED = "Locked"  # another run holds the certificate's lease
    TIME_BUDGET = "TimeBudget"  # not started (or not finished) for lack of time
    RATE_LIMITED = "RateLimited"  # a first issuance held back by the CA's limits (rate_limits)
    ALREADY_CURRENT = "AlreadyCurrent"  # after locking, another run had already renewed it
    ROLLBACK = "Rollback"  # an operator rolled the targets back to a stored version
    INTERNAL_ERROR = "InternalError"  # an unexpected exception (a bug); details only in the log
    RESUMED = "Resumed"  # nothing was due; an order a run that died left open was finished
    REVOKED = "Revoked"  # an operator revoked a stored version (renewer.revoker)
    REVOCATION_PLANNED = "RevocationPlanned"  # a revoke dry run: the plan, nothing done


@dataclass(frozen=True, slots=True)
class TargetReport:
    """What a deployment did to one target.

    ``kind`` is ``listener`` (an LB with ``listeners``; ``bundle`` is the LB certificate bundle)
    or ``certificate`` (a Certificates-service certificate; no bundle). ``changed`` is False when
    the target already served the certificate.
    """

    kind: str
    id: str
    listeners: tuple[str, ...]
    bundle: str | None
    changed: bool
    work_requests: tuple[str, ...] = ()

    @classmethod
    def from_deployed(cls, deployed: DeployedTarget) -> TargetReport:
        """Describe a :class:`~renewer.model.DeployedTarget`."""
        target = deployed.target
        if isinstance(target, ListenerTarget):
            kind, ident, listeners = "listener", target.load_balancer_id, target.listener_names
        else:
            kind, ident, listeners = "certificate", target.certificate_id, ()
        return cls(
            kind=kind,
            id=ident,
            listeners=listeners,
            bundle=deployed.bundle_name,
            changed=deployed.changed,
            work_requests=deployed.work_requests,
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready mapping with stable keys."""
        return {
            "kind": self.kind,
            "id": self.id,
            "listeners": list(self.listeners),
            "bundle": self.bundle,
            "changed": self.changed,
            "work_requests": list(self.work_requests),
        }


@dataclass(frozen=True, slots=True)
class CertificateReport:
    """The outcome of one certificate in one run.

    ``reason`` is a :class:`renewer.model.Reason` value (why the policy decided), a
    :class:`RunReason` value, or, for ``failed``, the error type of a :mod:`renewer.errors`
    error (``InternalError`` for anything else). ``serial``/``not_after``/``version`` describe the
    certificate that is current after the run (None when there is none). ``next_renewal`` is the
    planned renewal time, or the end of a backoff. ``due`` is set by a plan only: whether a real
    run would order a certificate now. ``consecutive_failures`` is the certificate's failure
    count in its state after this run (a plan reports the stored count; None when no state was
    read). ``dns_records`` (plans of dns-persist-01 certificates) are the TXT records to create.
    ``order_url`` is the ACME order of a certificate issued in this run. ``error`` is
    secret-free: the message of one of our typed errors, or ``internal error (<type>)``.
    ``timings`` holds seconds per step. ``key_type`` is the key type chosen for the next
    certificate (``keyType`` ``auto`` or as configured) and ``key_type_reason`` why.
    """

    name: str
    outcome: Outcome
    reason: str
    message: str
    serial: str | None = None
    not_after: datetime | None = None
    version: int | None = None
    next_renewal: datetime | None = None
    targets: tuple[TargetReport, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    failed_step: str | None = None
    error: str | None = None
    error_type: str | None = None
    due: bool | None = None
    consecutive_failures: int | None = None
    order_url: str | None = None
    # A revoke action only: its plan and what happened (renewer.revoker); names and sentences.
    revocation: Mapping[str, object] | None = None
    # A plan of a dns-persist-01 certificate: the TXT records to create (renewer.dns_names).
    dns_records: tuple[DnsRecord, ...] = ()
    key_type: str | None = None
    key_type_reason: str | None = None
    # The CA that issued the current certificate (its directory URL's host; issue 17), and
    # the CAs this run's order passed over because they failed on their side.
    ca: str | None = None
    ca_passed_over: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON-ready mapping with stable keys; dates in ISO 8601 UTC.

        ``revocation`` is present only in the reports of a revoke action.
        """
        document: dict[str, object] = {
            "name": self.name,
            "outcome": str(self.outcome),
            "reason": str(self.reason),
            "message": self.message,
            "serial": self.serial,
            "not_after": _iso(self.not_after),
            "version": self.version,
            "next_renewal": _iso(self.next_renewal),
            "due": self.due,
            "targets": [t.to_dict() for t in self.targets],
            "timings": {step: round(seconds, 3) for step, seconds in self.timings.items()},
            "failed_step": self.failed_step,
            "error": self.error,
            "error_type": self.error_type,
            "consecutive_failures": self.consecutive_failures,
            "order_url": self.order_url,
            "dns_records": [record.to_dict() for record in self.dns_records],
            "key_type": self.key_type,
            "key_type_reason": self.key_type_reason,
            "ca": self.ca,
            "ca_passed_over": list(self.ca_passed_over),
        }
        if self.revocation is not None:
            document["revocation"] = dict(self.revocation)
        return document


@dataclass(frozen=True, slots=True)
class RenewalReport:
    """A whole run. ``mode`` is ``renew``, ``plan``, ``rollback`` or ``revoke``; in order."""

    started_at: datetime
    finished_at: datetime
    certificates: tuple[CertificateReport, ...]
    mode: str = "renew"
    # Certificates that left the configuration (renewer.orphans): a full run's and plan's.
    orphans: tuple[OrphanReport, ...] = ()

    @property
    def failed(self) -> bool:
        """Whether any certificate (or a retirement) failed: the invocation fails (rule 7)."""
        return any(c.outcome is Outcome.FAILED for c in self.certificates) or any(
            o.outcome == "failed" for o in self.orphans
        )

    @property
    def totals(self) -> dict[str, int]:
        """Number of certificates per outcome; every outcome present, zeros included."""
        counts = {str(outcome): 0 for outcome in Outcome}
        for certificate in self.certificates:
            counts[str(certificate.outcome)] += 1
        return counts

    def to_json(self) -> str:
        """The report as JSON: stable keys, ISO 8601 UTC dates, no secret content."""
        document = {
            "mode": self.mode,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "failed": self.failed,
            "totals": self.totals,
            "certificates": [c.to_dict() for c in self.certificates],
            "orphans": [o.to_dict() for o in self.orphans],
        }
        return json.dumps(document)

    def summary(self) -> str:
        """One line per failed certificate: its name, the failed step and the error type.

        Meant as the body of a failed invocation, which anyone who may invoke the function
        reads: it never quotes an error message (those are in the report and the log).
        """
        failed = [c for c in self.certificates if c.outcome is Outcome.FAILED]
        retirements = [o for o in self.orphans if o.outcome == "failed"]
        if not failed and not retirements:
            return f"{self.mode}: no certificate failed ({len(self.certificates)} processed)"
        lines = [
            f"{self.mode}: {len(failed)} of {len(self.certificates)} certificate(s) failed",
            *(f"{c.name}: failed at {c.failed_step or 'unknown'} ({c.reason})" for c in failed),
            *(
                f"{o.name} (no longer configured): retirement failed at"
                f" {o.failed_step or 'unknown'} ({o.error_type})"
                for o in retirements
            ),
        ]
        return "\n".join(lines)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
