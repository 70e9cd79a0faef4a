"""The operations façade: after each run, post metrics, send notifications, write the journal.

The handler calls :meth:`Operations.after_run` once per invocation, after the renewal service
returned its report and before it answers. Order: notification states are read, metrics are
posted, notifications are published (each state stored only after its message went out, so a
message that failed is tried again next run), and the journal record — which lists what was
sent — is written last.

None of it can fail a renewal: each sink runs in its own guard, and whatever it raises is logged
(type and secret-free message, never a request body) and recorded in the returned
:class:`AfterRunSummary`. ``after_run`` never raises. This is the one place besides the
per-certificate loop of ``renewal.py`` that catches every ``Exception``: the certificate work is
done and reported; an observability outage must not turn a good run into a failed invocation.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from renewer.clock import Clock
from renewer.model import Target
from renewer.operations import journal
from renewer.operations.metrics import metric_points
from renewer.operations.notices import NoticeDecision, NoticeState, plan_notices
from renewer.operations.ports import MetricsResult, MetricsSink, NoticeStates, Notifier, RunJournal
from renewer.operations.run import RunInfo
from renewer.report import RenewalReport
from renewer.settings import OperationsSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AfterRunSummary:
    """What :meth:`Operations.after_run` did; ``errors`` maps a sink to its failure (secret free).

    ``journal_object`` is the record's object name (None when the journal is off or failed).
    """

    metrics: MetricsResult | None = None
    notifications: tuple[Mapping[str, object], ...] = ()
    journal_object: str | None = None
    pruned: tuple[str, ...] = ()
    errors: Mapping[str, str] = field(default_factory=dict)


class Operations:
    """Metrics, notifications and the run journal for every run; reads for ``status``.

    Args:
        settings: the configuration's ``operations`` section.
        targets: the configured targets per certificate name (metric dimensions, messages).
        clock: the metrics' timestamp (the instant expiry is measured from).
        metrics: where datapoints go; None when metrics are off.
        notifier: where messages go; None when notifications are off.
        notice_states: the de-duplication state; required with a notifier.
        journal: where run records go; None when the journal is off.

    Thread-safe as far as its sinks are; it keeps no state between calls.

    Raises:
        ValueError: a notifier without notice states.

    """

    def __init__(
        self,
        *,
        settings: OperationsSettings,
        targets: Mapping[str, Sequence[Target]],
        clock: Clock,
        metrics: MetricsSink | None = None,
        notifier: Notifier | None = None,
        notice_states: NoticeStates | None = None,
        journal: RunJournal | None = None,
    ) -> None:
        if notifier is not None and notice_states is None:
            msg = "notifications need a notice-state store for de-duplication"
            raise ValueError(msg)
        self._settings = settings
        self._targets = {name: tuple(found) for name, found in targets.items()}
        self._clock = clock
        self._metrics = metrics
        self._notifier = notifier
        self._notice_states = notice_states
        self._journal = journal

    # --- after a run -----------------------------------------------------------------------------

    def after_run(self, report: RenewalReport, run: RunInfo) -> AfterRunSummary:
        """Post the run's metrics, send its notifications, write its journal record.

        Never raises; every failure is logged and returned in ``errors``.
        """
        errors: dict[str, str] = {}
        metrics = self._guard("metrics", errors, lambda: self._post_metrics(report))
        sent = self._guard("notifications", errors, lambda: self._notify(report, run, errors))
        notifications = tuple(sent or ())
        journal_object, pruned = self._record(report, run, notifications, metrics, errors)
        summary = AfterRunSummary(metrics, notifications, journal_object, pruned, errors)
        logger.info(
            "operations call_id=%s metrics=%s notifications=%d journal=%s errors=%s",
            run.call_id,
            "off" if metrics is None else f"{metrics.accepted}/{metrics.rejected}",
            len(notifications),
            journal_object or "none",
            ",".join(sorted(errors)) or "none",
        )
        return summary

    def _record(
        self,
        report: RenewalReport,
        run: RunInfo,
        notifications: Sequence[Mapping[str, object]],
        metrics: MetricsResult | None,
        errors: dict[str, str],
    ) -> tuple[str | None, tuple[str, ...]]:
        """Write the journal record; its object name and the pruned names (None, () if not)."""
        if self._journal is None:
            return None, ()
        summary = (
            None
            if metrics is None
            else {"accepted": metrics.accepted, "rejected": metrics.rejected}
        )
        name = journal.object_name(report.started_at, run.call_id)
        deleted = self._guard(
            "journal",
            errors,
            lambda: self._write(
                name,
                journal.journal_record(report, run, notifications=notifications, metrics=summary),
            ),
        )
        if deleted is None:
            return None, ()
        return name, tuple(deleted)

    def _post_metrics(self, report: RenewalReport) -> MetricsResult | None:
        if self._metrics is None:
            return None
        points = metric_points(report, self._targets, now=self._clock.now())
        result = self._metrics.post(points)
        if result.rejected:
            logger.warning(
                "metrics_rejected count=%d first=%s",
                result.rejected,
                result.messages[0] if result.messages else "",
            )
        return result

    def _notify(
        self, report: RenewalReport, run: RunInfo, errors: dict[str, str]
    ) -> list[Mapping[str, object]]:
        if self._notifier is None or self._notice_states is None:
            return []
        states = self._notice_states
        previous = (
            {c.name: NoticeState.from_document(states.load(c.name)) for c in report.certificates}
            if report.mode != "plan"
            else {}
        )
        decisions = plan_notices(
            report,
            previous=previous,
            run=run,
            targets=self._targets,
            on_success=self._settings.notifications.on_success,
            expiry_warning_days=self._settings.notifications.expiry_warning_days,
        )
        sent: list[Mapping[str, object]] = []
        for decision in decisions:
            outcome = self._guard(
                f"notifications.{decision.certificate}",
                errors,
                functools.partial(self._deliver, decision),
            )
            if outcome is not None:
                sent.extend(outcome)
        return sent

    def _deliver(self, decision: NoticeDecision) -> list[Mapping[str, object]]:
        if self._notifier is None or self._notice_states is None:  # pragma: no cover - checked
            return []
        sent: list[Mapping[str, object]] = []
        if decision.notice is not None:
            message_id = self._notifier.publish(decision.notice)
            logger.info(
                "notified cert=%s kind=%s message_id=%s",
                decision.certificate,
                decision.notice.kind,
                message_id,
            )
            sent.append(
                {
                    "certificate": decision.certificate,
                    "kind": str(decision.notice.kind),
                    "title": decision.notice.title,
                    "message_id": message_id,
                }
            )
        if decision.state is not None:
            self._notice_states.save(decision.certificate, decision.state.to_document())
        return sent

    def _write(self, name: str, record: Mapping[str, object]) -> list[str]:
        if self._journal is None:  # pragma: no cover - checked by the caller
            return []
        return self._journal.write(name, record, now=self._clock.now())

    @staticmethod
    def _guard(sink: str, errors: dict[str, str], work: Callable[[], T]) -> T | None:
        try:
            return work()
        except Exception as exc:  # noqa: BLE001 - see the module docstring: never fail a run
            text = f"{type(exc).__name__}: {exc}"
            errors[sink] = text
            logger.warning("operations_sink_failed sink=%s error=%s", sink, text)
            return None

    # --- reads for `status` ----------------------------------------------------------------------

    def last_runs(self, limit: int = 10) -> list[dict[str, object]]:
        """The ``limit`` newest journal records, newest first ([] when the journal is off).

        Raises:
            ConfigError: the state bucket cannot be read (missing bucket or policy).
            TransientError: Object Storage failed or could not be reached.

        """
        if self._journal is None:
            return []
        return self._journal.recent(limit)

    def certificate_history(self, name: str, limit: int = 20) -> list[dict[str, object]]:
        """Certificate ``name``'s newest ``limit`` journal entries, newest first.

        Each entry is the certificate's part of a run record (outcome, reason, message, serial,
        expiry, targets, timings, error, order URL) plus the run's ``started_at``, ``call_id``,
        ``trigger`` and ``action``.

        Raises:
            ConfigError: the state bucket cannot be read (missing bucket or policy).
            TransientError: Object Storage failed or could not be reached.

        """
        if self._journal is None:
            return []
        return self._journal.history(name, limit=limit)
