"""The metric datapoints one run yields: what alarms read. Pure; no I/O.

Names and dimensions are a stable interface (the Terraform alarms query them), so they are
constants here and change only with a migration note. Dimensions stay low-cardinality: the
certificate's configured name, and per target the load balancer OCID + listener name (or the
Certificates-service certificate OCID) — never a serial, a date or a run id, which would make a
new metric stream every run.

Per target (dimensions ``certificateName`` + ``loadBalancerId`` + ``listener``, or
``certificateName`` + ``certificateId``):

* ``days_to_expiry`` — days until the newest stored certificate expires (fractional; negative
  once expired). Left out when no certificate is known (the run failed before reading it).
* ``seconds_to_renewal`` — seconds until the planned renewal or the end of a failure backoff
  (negative when overdue). Left out when unknown.
* ``run_outcome`` — :data:`OUTCOME_CODES`: 0 success or nothing to do, 1 deferred to the next run,
  2 failed.
* ``consecutive_failures`` — the certificate's failure count after the run.

Per certificate (dimension ``certificateName``): ``renewal_duration_seconds``, the time its
steps took in this run.

Per run (dimension ``action``: ``renew`` | ``rollback`` | ``plan``):
``run_certificates`` (one stream per ``outcome``: how many certificates ended so) and
``run_duration_seconds``.

A plan (``report.mode == "plan"``) changes nothing, so it only posts what it observed — expiry,
planned renewal and the run totals — never an outcome or failure count that would mask a real
run's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from renewer.model import CertificateServiceTarget, ListenerTarget, Target
from renewer.report import CertificateReport, Outcome, RenewalReport

DAYS_TO_EXPIRY = "days_to_expiry"
SECONDS_TO_RENEWAL = "seconds_to_renewal"
RUN_OUTCOME = "run_outcome"
CONSECUTIVE_FAILURES = "consecutive_failures"
RENEWAL_DURATION = "renewal_duration_seconds"
RUN_CERTIFICATES = "run_certificates"
RUN_DURATION = "run_duration_seconds"

CERTIFICATE_NAME = "certificateName"
LOAD_BALANCER_ID = "loadBalancerId"
LISTENER = "listener"
CA = "ca"  # the issuing CA's directory host (issue 17)
CERTIFICATE_ID = "certificateId"
ACTION = "action"
OUTCOME = "outcome"

# run_outcome values. Stable: alarms compare against them (``run_outcome[1h].max() >= 2``).
OUTCOME_CODES: Mapping[Outcome, int] = {
    Outcome.RENEWED: 0,
    Outcome.DEPLOYED: 0,
    Outcome.SKIPPED: 0,
    Outcome.DEFERRED: 1,
    Outcome.FAILED: 2,
}
_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One datapoint of one metric stream (the stream is ``name`` + ``dimensions``).

    ``unit`` becomes the metric's ``unit`` metadata (not part of the stream's identity).
    """

    name: str
    value: float
    dimensions: Mapping[str, str]
    timestamp: datetime
    unit: str = field(default="count")


def metric_points(
    report: RenewalReport,
    targets: Mapping[str, Sequence[Target]],
    *,
    now: datetime,
) -> list[MetricPoint]:
    """Every datapoint for ``report``, timestamped ``now``.

    Args:
        report: the run's report.
        targets: the configured targets per certificate name. A certificate missing here
            (not configured any more) is described by the targets its report names.
        now: the datapoints' timestamp and the instant expiry and renewal are measured from.

    Returns:
        The datapoints, per certificate then per run; empty values are left out.

    """
    observed_only = report.mode == "plan"
    points: list[MetricPoint] = []
    for certificate in report.certificates:
        streams = _target_dimensions(certificate, targets.get(certificate.name))
        for dimensions in streams:
            points.extend(
                _per_target(certificate, dimensions, now=now, observed_only=observed_only)
            )
        if not observed_only and certificate.timings:
            points.append(
                MetricPoint(
                    RENEWAL_DURATION,
                    round(sum(certificate.timings.values()), 3),
                    # The CA that issued the certificate (issue 17): a fallback shows as a
                    # stream of its own.
                    {CERTIFICATE_NAME: certificate.name}
                    | ({CA: certificate.ca} if certificate.ca else {}),
                    now,
                    "seconds",
                )
            )
    action = {ACTION: report.mode}
    for outcome, count in report.totals.items():
        points.append(MetricPoint(RUN_CERTIFICATES, count, {**action, OUTCOME: outcome}, now))
    duration = (report.finished_at - report.started_at).total_seconds()
    points.append(MetricPoint(RUN_DURATION, round(duration, 3), action, now, "seconds"))
    return points


def _per_target(
    certificate: CertificateReport,
    dimensions: Mapping[str, str],
    *,
    now: datetime,
    observed_only: bool,
) -> list[MetricPoint]:
    points: list[MetricPoint] = []
    if certificate.not_after is not None:
        days = (certificate.not_after - now).total_seconds() / _DAY
        points.append(MetricPoint(DAYS_TO_EXPIRY, round(days, 4), dimensions, now, "days"))
    if certificate.next_renewal is not None:
        seconds = (certificate.next_renewal - now).total_seconds()
        points.append(MetricPoint(SECONDS_TO_RENEWAL, round(seconds), dimensions, now, "seconds"))
    if observed_only:
        return points
    points.append(
        MetricPoint(RUN_OUTCOME, OUTCOME_CODES[certificate.outcome], dimensions, now, "code")
    )
    if certificate.consecutive_failures is not None:
        points.append(
            MetricPoint(CONSECUTIVE_FAILURES, certificate.consecutive_failures, dimensions, now)
        )
    return points


def _target_dimensions(
    certificate: CertificateReport, configured: Sequence[Target] | None
) -> list[dict[str, str]]:
    """One dimension set per listener / Certificates-service certificate of ``certificate``."""
    name = {CERTIFICATE_NAME: certificate.name}
    streams: list[dict[str, str]] = []
    if configured is not None:
        for target in configured:
            match target:
                case ListenerTarget():
                    streams.extend(
                        {**name, LOAD_BALANCER_ID: target.load_balancer_id, LISTENER: listener}
                        for listener in target.listener_names
                    )
                case CertificateServiceTarget():
                    streams.append({**name, CERTIFICATE_ID: target.certificate_id})
    else:
        for reported in certificate.targets:
            if reported.kind == "listener":
                streams.extend(
                    {**name, LOAD_BALANCER_ID: reported.id, LISTENER: listener}
                    for listener in reported.listeners
                )
            else:
                streams.append({**name, CERTIFICATE_ID: reported.id})
    return streams or [name]
