"""Which messages a run sends, and their words. Pure; no I/O.

Let's Encrypt no longer e-mails before expiry, so these messages are how operators hear that a
renewal needs them. They are de-duplicated by a small per-certificate :class:`NoticeState`
(``ok`` or ``failing``, and whether the expiry warning went out): a message goes out when the
state changes, never once per run, so a certificate failing twice a day for a week produces one
failure message, at most one expiry warning, and one recovery message.

Per certificate, after a real run (``renew`` / ``rollback``; a plan sends nothing):

* ``failure`` — it is failing now and was not before: which step, the CA's or OCI's error (secret
  free by contract, and :func:`~renewer.operations.redact.redact` ed anyway), when the next
  attempt is.
* ``expiry-warning`` — it is failing (now or still backing off) and its certificate expires
  within ``expiryWarningDays``; once per failing spell. When a certificate starts failing
  already inside that window, this one message replaces the failure message.
* ``recovery`` — it was failing and a run succeeded (its failure count is back to 0).
* ``renewed`` — a new certificate was issued, when ``onSuccess`` is set (a recovery that
  renewed says so in the recovery message instead).

"Failing" is read from the report: a ``failed`` outcome, or a failure count above 0 (a run that
skips while backing off is still failing). A run that learnt nothing (locked by another run, or
deferred without a readable state) keeps the previous state.

Messages read well in e-mail (the title is the subject) and in chat and HTTPS subscriptions,
which ignore the title: so the body starts with the title line and is plain text with short
"Label: value" lines.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from renewer.model import CertificateServiceTarget, ListenerTarget, Target
from renewer.operations.redact import redact
from renewer.operations.run import RunInfo
from renewer.report import CertificateReport, Outcome, RenewalReport

NOTICE_SCHEMA = 1
TITLE_LABEL = "ACME renewer"
MAX_ERROR_CHARS = 4000  # an error longer than this is cut: the journal and the log have it all
_DAY = 86_400.0


class NoticeKind(enum.StrEnum):
    """What a message is about. Stable: the journal records it."""

    FAILURE = "failure"
    EXPIRY_WARNING = "expiry-warning"
    RECOVERY = "recovery"
    RENEWED = "renewed"


class NoticeStatus(enum.StrEnum):
    """A certificate's notification state."""

    OK = "ok"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class NoticeState:
    """What operators were last told about one certificate (the de-duplication state).

    ``since`` is when the current status began; ``expiry_warned`` whether the expiry warning of
    this failing spell went out; ``failed_step``/``error_type`` describe the failure that opened
    it.
    """

    status: NoticeStatus = NoticeStatus.OK
    since: datetime | None = None
    expiry_warned: bool = False
    failed_step: str | None = None
    error_type: str | None = None

    @property
    def failing(self) -> bool:
        """Whether operators were told it is failing (and not told it recovered)."""
        return self.status is NoticeStatus.FAILING

    def to_document(self) -> dict[str, object]:
        """The JSON document stored per certificate."""
        return {
            "schema": NOTICE_SCHEMA,
            "status": str(self.status),
            "since": _iso(self.since),
            "expiry_warned": self.expiry_warned,
            "failed_step": self.failed_step,
            "error_type": self.error_type,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, object] | None) -> NoticeState:
        """Parse leniently: an unreadable document is "ok" (at worst one extra message)."""
        if not document:
            return cls()
        try:
            status = NoticeStatus(str(document.get("status")))
        except ValueError:
            return cls()
        since = document.get("since")
        step, error_type = document.get("failed_step"), document.get("error_type")
        return cls(
            status=status,
            since=_parse_time(since),
            expiry_warned=document.get("expiry_warned") is True,
            failed_step=step if isinstance(step, str) else None,
            error_type=error_type if isinstance(error_type, str) else None,
        )


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to publish: ``title`` (the e-mail subject) and a plain-text ``body``."""

    certificate: str
    kind: NoticeKind
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class NoticeDecision:
    """For one certificate: the message to send (if any) and the state to store (if changed).

    Store ``state`` only after ``notice`` was published (or when there is none): a message that
    could not be sent is then tried again by the next run.
    """

    certificate: str
    notice: Notice | None
    state: NoticeState | None


def plan_notices(
    report: RenewalReport,
    *,
    previous: Mapping[str, NoticeState],
    run: RunInfo,
    targets: Mapping[str, Sequence[Target]],
    on_success: bool,
    expiry_warning_days: int,
) -> list[NoticeDecision]:
    """What to tell operators about ``report``.

    Args:
        report: the run's report.
        previous: the stored state per certificate name (absent: ``ok``).
        run: the invocation, quoted in every message.
        targets: the configured targets per certificate (named in failure messages).
        on_success: also announce each renewal.
        expiry_warning_days: warn when a failing certificate expires within this many days.

    Returns:
        One decision per certificate that needs a message or a state change, in report order.

    """
    if report.mode == "plan":
        return []
    decisions: list[NoticeDecision] = []
    for certificate in report.certificates:
        before = previous.get(certificate.name, NoticeState())
        decision = _decide(
            certificate,
            before,
            report=report,
            run=run,
            targets=targets.get(certificate.name, ()),
            on_success=on_success,
            warning_days=expiry_warning_days,
        )
        if decision.notice is not None or decision.state is not None:
            decisions.append(decision)
    return decisions


def _failing(certificate: CertificateReport, before: NoticeState) -> bool:
    if certificate.outcome is Outcome.FAILED:
        return True
    if certificate.consecutive_failures is not None:
        return certificate.consecutive_failures > 0
    if certificate.outcome in (Outcome.RENEWED, Outcome.DEPLOYED):
        return False
    return before.failing  # locked or deferred with no state read: nothing learnt


def _decide(
    certificate: CertificateReport,
    before: NoticeState,
    *,
    report: RenewalReport,
    run: RunInfo,
    targets: Sequence[Target],
    on_success: bool,
    warning_days: int,
) -> NoticeDecision:
    now = report.finished_at
    failing = _failing(certificate, before)
    words = _Words(certificate, run=run, targets=targets, now=now)
    name = certificate.name
    if failing:
        state = before
        notice = None
        if not before.failing:
            state = NoticeState(
                NoticeStatus.FAILING,
                since=now,
                failed_step=certificate.failed_step,
                error_type=certificate.error_type,
            )
            notice = words.failure()
        days = words.days_left
        if days is not None and days <= warning_days and not state.expiry_warned:
            state = replace(state, expiry_warned=True)
            notice = words.expiry_warning(since=state.since)
        return NoticeDecision(name, notice, state if state != before else None)
    if before.failing:
        return NoticeDecision(name, words.recovery(since=before.since), NoticeState(since=now))
    if on_success and certificate.outcome is Outcome.RENEWED:
        return NoticeDecision(name, words.renewed(), None)
    return NoticeDecision(name, None, None)


class _Words:
    """The wording of every message about one certificate in one run."""

    def __init__(
        self,
        certificate: CertificateReport,
        *,
        run: RunInfo,
        targets: Sequence[Target],
        now: datetime,
    ) -> None:
        self.c = certificate
        self.run = run
        self.targets = targets
        self.now = now

    @property
    def days_left(self) -> float | None:
        if self.c.not_after is None:
            return None
        return (self.c.not_after - self.now).total_seconds() / _DAY

    # --- the four messages ---------------------------------------------------------------------

    def failure(self) -> Notice:
        step = self.c.failed_step or "unknown step"
        if self.c.outcome is Outcome.FAILED:
            headline = f"Renewal FAILED: {self.c.name} (at {step}: {self.c.error_type})"
            what = [
                f"The renewal of certificate {self.c.name!r} failed at the {step} step.",
                "",
                f"Error ({self.c.error_type}):",
                _indent(_error(self.c.error)),
            ]
        else:  # still backing off after failures operators were not told about
            headline = f"Renewal FAILING: {self.c.name} ({self.c.consecutive_failures} failures)"
            what = [
                f"The renewal of certificate {self.c.name!r} has failed"
                f" {self.c.consecutive_failures} time(s) in a row and is backing off.",
            ]
        lines = [
            headline,
            "",
            *what,
            "",
            *self._certificate_lines(),
            *self._next_attempt_lines(),
            "",
            "What to do: the renewer retries on its own (1 min, 10 min, 100 min, then daily).",
            "If the error names a configuration or permission problem, fix it; the run's",
            "journal record and log (call id below) have the details.",
            "",
            *self._run_lines(),
        ]
        return self._notice(NoticeKind.FAILURE, headline, lines)

    def expiry_warning(self, *, since: datetime | None) -> Notice:
        days = self.days_left or 0.0
        if days <= 0:
            headline = f"EXPIRED: {self.c.name} - its renewal keeps failing"
            when = f"expired {_days(-days)} ago"
        else:
            headline = f"EXPIRING in {_days(days)}: {self.c.name} - its renewal keeps failing"
            when = f"expires in {_days(days)}"
        lines = [
            headline,
            "",
            f"Certificate {self.c.name!r} {when}, and renewing it has failed"
            f" {self.c.consecutive_failures or 1} time(s) in a row"
            f"{' since ' + _iso(since) if since else ''}. Clients will see certificate errors"
            " once it expires: this needs a person now.",
            "",
        ]
        if self.c.error:
            lines += [
                f"Last error ({self.c.error_type}, at {self.c.failed_step}):",
                _indent(_error(self.c.error)),
                "",
            ]
        lines += [*self._certificate_lines(), *self._next_attempt_lines(), "", *self._run_lines()]
        return self._notice(NoticeKind.EXPIRY_WARNING, headline, lines)

    def recovery(self, *, since: datetime | None) -> Notice:
        if self.c.outcome is Outcome.RENEWED:
            headline = f"Recovered: {self.c.name} renewed"
        else:
            headline = f"Recovered: {self.c.name} is healthy again"
        lines = [
            headline,
            "",
            f"Certificate {self.c.name!r} is fine again"
            f"{' after failing since ' + _iso(since) if since else ''}: {self.c.message}",
            "",
            *self._certificate_lines(),
            *self._next_attempt_lines(label="Next renewal"),
            "",
            *self._run_lines(),
        ]
        return self._notice(NoticeKind.RECOVERY, headline, lines)

    def renewed(self) -> Notice:
        until = f" (valid until {_day(self.c.not_after)})" if self.c.not_after else ""
        headline = f"Renewed: {self.c.name}{until}"
        lines = [
            headline,
            "",
            f"Certificate {self.c.name!r} was renewed and deployed: {self.c.message}",
            "",
            *self._certificate_lines(),
            *self._next_attempt_lines(label="Next renewal"),
            "",
            *self._run_lines(),
        ]
        return self._notice(NoticeKind.RENEWED, headline, lines)

    # --- building blocks -------------------------------------------------------------------------

    def _notice(self, kind: NoticeKind, headline: str, lines: list[str]) -> Notice:
        title = f"[{TITLE_LABEL}] {headline}"
        # The body repeats the title: HTTPS, Slack and SMS subscriptions never show titles.
        body = redact("\n".join([title, *lines[1:]]).rstrip() + "\n")
        return Notice(self.c.name, kind, redact(title), body)

    def _certificate_lines(self) -> list[str]:
        lines = [f"Certificate:  {self.c.name}"]
        if self.c.serial and self.c.not_after:
            days = self.days_left or 0.0
            left = f"{_days(days)} left" if days > 0 else "EXPIRED"
            lines.append(
                f"Current:      serial {self.c.serial}, valid until {_iso(self.c.not_after)}"
                f" ({left})"
            )
        else:
            lines.append("Current:      no stored certificate could be read")
        lines.extend(f"Target:       {text}" for text in _describe_targets(self.targets))
        if self.c.order_url:
            lines.append(f"ACME order:   {self.c.order_url}")
        return lines

    def _next_attempt_lines(self, *, label: str = "Next attempt") -> list[str]:
        failures = self.c.consecutive_failures
        tail = f" ({failures} consecutive failure(s))" if failures else ""
        if self.c.next_renewal is None:
            return [f"{label + ':':<13} at the next scheduled run{tail}"]
        return [f"{label + ':':<13} {_iso(self.c.next_renewal)}{tail}"]

    def _run_lines(self) -> list[str]:
        return [
            f"Run:          {self.run.action}, trigger {self.run.trigger},"
            f" call id {self.run.call_id}, finished {_iso(self.now)}",
        ]


def _describe_targets(targets: Sequence[Target]) -> list[str]:
    described: list[str] = []
    for target in targets:
        match target:
            case ListenerTarget():
                listeners = ", ".join(target.listener_names)
                described.append(f"load balancer {target.load_balancer_id} listener(s) {listeners}")
            case CertificateServiceTarget():
                described.append(f"Certificates-service certificate {target.certificate_id}")
    return described


def _error(error: str | None) -> str:
    text = (error or "no error text was recorded").strip()
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + " [...]"
    return text


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _days(days: float) -> str:
    if days < 1:
        hours = max(round(days * 24), 1)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    whole = int(days)
    return f"{whole} day{'s' if whole != 1 else ''}"


def _iso(value: datetime | None) -> str:
    if value is None:
        return "unknown"
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _day(value: datetime | None) -> str:
    return "unknown" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None
