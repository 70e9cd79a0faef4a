"""The renewal policy: should this certificate be renewed now? Pure functions, no I/O, no clock.

``now`` is always a parameter (the cert-manager rule: the clock is injected), so every answer can
be reproduced in a test. The trigger is an ordered chain of small checks; the first that fires
gives the :class:`~renewer.model.Reason`. A due renewal is held back while the certificate is in
backoff after failures, unless an operator forces it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from renewer.model import (
    CertificateSpec,
    CurrentCertificate,
    Decision,
    FailureHistory,
    Reason,
    RenewalInfo,
    ServedCertificate,
)

if TYPE_CHECKING:
    import random

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Tunables of the policy. The defaults suit a schedule that runs twice a day.

    ``renew_fraction`` is the share of the lifetime left when renewal starts (1/3, as CertMagic
    and certbot do); certificates living less than ``short_lived_threshold`` renew at
    ``short_lived_fraction`` instead, so a 6-day certificate is not left with two days of slack.
    ``backoff`` is the wait after the 1st, 2nd, ... consecutive failure; its last value repeats.
    The defaults are Let's Encrypt's integration guide (1 min, 10 min, 100 min, then daily).
    That backoff protects the CA's failed-validation limit; a failure that never reached the
    CA (a failed self-check: :attr:`FailureHistory.cost_free`) waits ``self_check_backoff``
    instead (1, 2, 5, then every 10 min), so a route that needed minutes to settle (the first
    run after ``terraform apply``) is retried by the next run, not a day later.

    Raises:
        ValueError: a fraction outside (0, 1), a non-positive interval, an empty backoff or a
            negative backoff step.

    """

    check_interval: timedelta = timedelta(hours=12)
    renew_fraction: float = 1 / 3
    short_lived_fraction: float = 1 / 2
    short_lived_threshold: timedelta = timedelta(days=10)
    backoff: tuple[timedelta, ...] = (
        timedelta(minutes=1),
        timedelta(minutes=10),
        timedelta(minutes=100),
        timedelta(days=1),
    )
    self_check_backoff: tuple[timedelta, ...] = (
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=5),
        timedelta(minutes=10),
    )

    def __post_init__(self) -> None:
        if self.check_interval <= timedelta(0):
            raise ValueError(f"check_interval must be positive, got {self.check_interval}")
        for field_name in ("renew_fraction", "short_lived_fraction"):
            value = getattr(self, field_name)
            if not 0 < value < 1:
                raise ValueError(f"{field_name} must be between 0 and 1 exclusive, got {value}")
        if self.short_lived_threshold < timedelta(0):
            raise ValueError(
                f"short_lived_threshold must not be negative, got {self.short_lived_threshold}"
            )
        for field_name in ("backoff", "self_check_backoff"):
            waits = getattr(self, field_name)
            if not waits:
                raise ValueError(f"{field_name} must hold at least one wait")
            if any(step < timedelta(0) for step in waits):
                raise ValueError(f"{field_name} waits must not be negative")


def decide(
    *,
    spec: CertificateSpec,
    current: CurrentCertificate | None,
    now: datetime,
    ari: RenewalInfo | None = None,
    failures: FailureHistory = FailureHistory(),  # noqa: B008 - frozen value, safe to share
    force: bool = False,
    config: PolicyConfig = PolicyConfig(),  # noqa: B008 - frozen value, safe to share
    served: ServedCertificate | None = None,
) -> Decision:
    """Decide whether to renew the certificate of ``spec`` at ``now``.

    Args:
        spec: what the operator asked for.
        current: the newest certificate held for ``spec``, or None when there is none.
        now: the instant to decide for; timezone-aware.
        ari: the last RFC 9773 renewal information fetched for ``current``, if any.
        failures: consecutive failed attempts; a due renewal waits out their backoff.
        force: renew regardless, also during backoff (an operator's manual retry).
        config: the policy's tunables.
        served: with nothing held (``current`` None), a valid certificate a target already
            serves for every configured name: it is adopted — renewed in its own lifetime
            window (:attr:`Reason.ADOPTED` until then) rather than at once, so deploying over a
            fleet does not re-issue everything on day one (Let's Encrypt: 50 new certificates
            per registered domain per week, 300 new orders per account per 3 hours).

    Returns:
        ``renew=True`` with the reason it is due and ``next_check=None``; or ``renew=False``
        with :attr:`Reason.BACKING_OFF` (``next_check`` is the end of the backoff) or
        :attr:`Reason.NOT_DUE` (``next_check`` is the planned renewal time).

    Raises:
        ValueError: ``now`` is naive.

    """
    _require_aware(now, "now")
    if force:
        # Let's Encrypt asks clients to back off, but an operator's forced run is how a human
        # retries early after fixing the cause, so it is never held back.
        return Decision(renew=True, reason=Reason.FORCED, message="renewal forced by an operator")

    due: tuple[Reason, str] | None
    if current is None and served is not None and _covers(served.certificate, spec):
        due = _adopted_due(served, now, config)
        if due is None:
            return _adopted(served, now, config)
    elif current is None:
        due = _missing(spec)
    else:
        due = _first_due(_Input(spec=spec, current=current, now=now, ari=ari, config=config))
        if due is None:
            return _not_due(current, ari, config)

    reason, message = due
    until = backoff_until(failures, config)
    if until is not None and now < until:
        count = failures.consecutive_failures
        return Decision(
            renew=False,
            reason=Reason.BACKING_OFF,
            message=(
                f"{reason} ({message}), but backing off after {count} consecutive "
                f"failure{'s' if count != 1 else ''} until {_iso(until)}"
                f" ({backoff_kind(failures)})"
            ),
            next_check=until,
        )
    return Decision(renew=True, reason=reason, message=message)


def renewal_window_start(
    current: CurrentCertificate,
    config: PolicyConfig = PolicyConfig(),  # noqa: B008 - frozen value, safe to share
) -> datetime:
    """Return the instant the lifetime-based renewal window of ``current`` opens.

    That is ``not_after`` minus ``renew_fraction`` of the lifetime, or minus
    ``short_lived_fraction`` of it when the lifetime is shorter than ``short_lived_threshold``.
    """
    lifetime = current.lifetime
    fraction = (
        config.short_lived_fraction
        if lifetime < config.short_lived_threshold
        else config.renew_fraction
    )
    return current.not_after - lifetime * fraction


def backoff_until(
    failures: FailureHistory,
    config: PolicyConfig = PolicyConfig(),  # noqa: B008 - frozen value, safe to share
) -> datetime | None:
    """Return the end of the backoff after ``failures``, or None when there is nothing to wait for.

    The n-th consecutive failure waits ``config.backoff[n - 1]`` (``self_check_backoff`` when
    the last failure cost the CA nothing); past the end of the tuple its last value repeats. A
    history that counts failures but lacks ``last_failure_at`` has no backoff: trying again
    records a proper failure, whereas waiting would wait forever.
    """
    if failures.consecutive_failures <= 0 or failures.last_failure_at is None:
        return None
    waits = config.self_check_backoff if failures.cost_free else config.backoff
    step = min(failures.consecutive_failures, len(waits)) - 1
    return failures.last_failure_at + waits[step]


def backoff_kind(failures: FailureHistory) -> str:
    """Which backoff ``failures`` wait out, in words for reports."""
    if failures.cost_free:
        return "the last failure was the self-check, which costs the CA nothing: short backoff"
    return "the CA's failure backoff"


def select_ari_time(
    window_start: datetime, window_end: datetime, *, rng: random.Random
) -> datetime:
    """Pick a uniformly random instant in ``[window_start, window_end]`` (RFC 9773 section 4.2).

    Call this once per fetched ARI answer and keep the result as
    :attr:`RenewalInfo.selected_time`. A window that ends at or before its start yields
    ``window_start``.
    """
    if window_end <= window_start:
        return window_start
    # Whole microseconds (datetime's resolution) keep the draw exact and both ends reachable.
    span = (window_end - window_start) // _MICROSECOND
    return window_start + rng.randint(0, span) * _MICROSECOND


def ari_fetch_due(ari: RenewalInfo | None, now: datetime) -> bool:
    """Tell whether to ask the CA for renewal information again: none known, or Retry-After passed.

    Raises:
        ValueError: ``now`` is naive.

    """
    _require_aware(now, "now")
    return ari is None or now >= ari.retry_after


# --- the trigger chain -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Input:
    """What every check after :func:`_missing` sees: a certificate is known to exist."""

    spec: CertificateSpec
    current: CurrentCertificate
    now: datetime
    ari: RenewalInfo | None
    config: PolicyConfig


_Check = Callable[[_Input], tuple[Reason, str] | None]


def _first_due(inp: _Input) -> tuple[Reason, str] | None:
    for check in _CHAIN:
        hit = check(inp)
        if hit is not None:
            return hit
    return None


def _not_due(
    current: CurrentCertificate, ari: RenewalInfo | None, config: PolicyConfig
) -> Decision:
    # Renewal is planned for whichever comes first; ARI can only bring it forward.
    lifetime_start = renewal_window_start(current, config)
    if ari is not None and ari.selected_time < lifetime_start:
        return Decision(
            renew=False,
            reason=Reason.NOT_DUE,
            message=f"renewal planned at {_iso(ari.selected_time)} by ARI",
            next_check=ari.selected_time,
        )
    return Decision(
        renew=False,
        reason=Reason.NOT_DUE,
        message=(
            f"renewal planned at {_iso(lifetime_start)} by lifetime "
            f"(expires {_iso(current.not_after)})"
        ),
        next_check=lifetime_start,
    )


def _covers(certificate: CurrentCertificate, spec: CertificateSpec) -> bool:
    return {_normalize_name(n) for n in spec.dns_names} <= {
        _normalize_name(n) for n in certificate.dns_names
    }


def _served_words(served: ServedCertificate, now: datetime) -> str:
    left = (served.certificate.not_after - now).total_seconds() / 86400
    return (
        f"{served.where} serves a valid certificate the renewer does not hold (issuer"
        f" {served.issuer}, serial {served.certificate.serial_hex}, {left:.1f} days left)"
    )


def _adopted_due(
    served: ServedCertificate, now: datetime, config: PolicyConfig
) -> tuple[Reason, str] | None:
    start = renewal_window_start(served.certificate, config)
    if now >= start:
        return (
            Reason.RENEWAL_WINDOW,
            f"{_served_words(served, now)}; its renewal window opened at {_iso(start)}",
        )
    return None


def _adopted(served: ServedCertificate, now: datetime, config: PolicyConfig) -> Decision:
    start = renewal_window_start(served.certificate, config)
    return Decision(
        renew=False,
        reason=Reason.ADOPTED,
        message=(
            f"{_served_words(served, now)}: adopted, renewal planned at {_iso(start)} by its"
            " lifetime (force to renew now)"
        ),
        next_check=start,
    )


def _missing(spec: CertificateSpec) -> tuple[Reason, str]:
    return Reason.MISSING, f"no certificate held yet for {spec.name}"


def _expired(inp: _Input) -> tuple[Reason, str] | None:
    if inp.now >= inp.current.not_after:
        return Reason.EXPIRED, f"certificate expired at {_iso(inp.current.not_after)}"
    return None


def _names_changed(inp: _Input) -> tuple[Reason, str] | None:
    wanted = {_normalize_name(n) for n in inp.spec.dns_names}
    held = {_normalize_name(n) for n in inp.current.dns_names}
    if wanted == held:
        return None
    parts = []
    if added := wanted - held:
        parts.append(f"added {', '.join(sorted(added))}")
    if removed := held - wanted:
        parts.append(f"removed {', '.join(sorted(removed))}")
    return Reason.NAMES_CHANGED, f"names changed: {'; '.join(parts)}"


def _key_type_changed(inp: _Input) -> tuple[Reason, str] | None:
    # None: ``auto`` not resolved (the orchestrator resolves it, keeping a served key type).
    if inp.spec.key_type is not None and inp.spec.key_type != inp.current.key_type:
        return (
            Reason.KEY_TYPE_CHANGED,
            f"key type changed from {inp.current.key_type} to {inp.spec.key_type}",
        )
    return None


def _profile_changed(inp: _Input) -> tuple[Reason, str] | None:
    # Compared as recorded: a certificate issued without a profile and a spec that now names
    # one is a change. None and "" both mean "the CA's default".
    wanted = inp.spec.profile or None
    held = inp.current.profile or None
    if wanted != held:
        return (
            Reason.PROFILE_CHANGED,
            f"profile changed from {held or 'the CA default'} to {wanted or 'the CA default'}",
        )
    return None


def _ari_window_open(inp: _Input) -> tuple[Reason, str] | None:
    # RFC 9773 section 4.2: renew when the selected time has passed, or falls before the next
    # time the client would wake up anyway (the next scheduled run). selected_time was drawn
    # once, when the answer was fetched, and is kept: drawing again on every run would give
    # each run a fresh chance to land early, so renewals would cluster at the window's start
    # (cert-manager checks against a stored time for the same reason).
    ari = inp.ari
    if ari is None:
        return None
    if inp.now >= ari.window_end:
        return Reason.ARI_WINDOW_OPEN, f"ARI suggested window ended at {_iso(ari.window_end)}"
    next_run = inp.now + inp.config.check_interval
    if ari.selected_time <= next_run:
        return (
            Reason.ARI_WINDOW_OPEN,
            f"ARI selected time {_iso(ari.selected_time)} is before the next run at "
            f"{_iso(next_run)}",
        )
    return None


def _renewal_window(inp: _Input) -> tuple[Reason, str] | None:
    # The lifetime backstop applies with or without ARI: ARI may move renewal earlier, never
    # later (CertMagic and certbot do the same), so a silent or wrong CA cannot let it lapse.
    start = renewal_window_start(inp.current, inp.config)
    if inp.now >= start:
        return (
            Reason.RENEWAL_WINDOW,
            f"renewal window opened at {_iso(start)} (expires {_iso(inp.current.not_after)})",
        )
    return None


# The trigger chain for a held certificate, in order; the first check that fires wins
# (cert-manager's NewTriggerPolicyChain). _missing runs before it, on the spec alone.
_CHAIN: tuple[_Check, ...] = (
    _expired,  # the certificate is past notAfter: renew at once
    _names_changed,  # the spec's DNS names differ from the certificate's SANs
    _key_type_changed,  # the spec asks for another key algorithm or size
    _profile_changed,  # the spec asks for another ACME profile than the one issued
    _ari_window_open,  # the CA's ARI window says now (or before the next run)
    _renewal_window,  # the lifetime backstop: less than 1/3 (or 1/2) of the lifetime left
)


def _normalize_name(name: str) -> str:
    # DNS names are case-insensitive, and a trailing dot (the root) names the same host.
    return name.lower().removesuffix(".")


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
