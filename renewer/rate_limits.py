"""The CA's limits on new issuance, and a plan that spreads a fleet's first issuances under them.

Let's Encrypt (https://letsencrypt.org/docs/rate-limits/, 2025):

* **new orders per account**: 300 per 3 hours;
* **new certificates per registered domain**: 50 per 7 days;
* a renewal that names the certificate it replaces (ARI ``replaces``, RFC 9773 §5) is exempt
  from both.

A fleet whose certificates are all due at once (a first deployment, a change of CA) would hit
them: 200 new names under one registered domain take four weeks at 50 a week. :func:`plan` is
pure: given the orders wanted now, the issuance history (:class:`IssuanceLog`, what the state
records) and the clock, it answers which orders go now and when each of the others fits —
never more than the limits allow inside any sliding window, renewals with ``replaces`` always
now. A deferred certificate is not a failure: the run reports when it will be ordered.

:class:`IssuanceGate` connects the plan to a run: before a new order without ``replaces`` the
renewal asks it, and it reads the log from the state bucket (:class:`IssuanceLogStore`, one small
object), plans that one order, and either records it with a conditional write (another run's
concurrent write makes it read and plan again) or answers when it fits — the run then reports
the certificate ``deferred`` (``RateLimited``) with that instant, and a later run orders it.
An order is counted when it is placed, not when the certificate is issued: the CA counts new
orders, and counting a failed one too errs on the safe side.

The registered domain is the last two labels of a name (``a.shop.example.com`` ->
``example.com``). Without the Public Suffix List that groups ``a.example.co.uk`` and
``b.other.co.uk`` under ``co.uk``: never fewer names per group than the CA counts, so the plan
errs on the safe side (assumed; documented in docs/fleet.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit

from renewer.errors import TransientError

logger = logging.getLogger(__name__)

LETS_ENCRYPT_HOSTS = ("acme-v02.api.letsencrypt.org",)


@dataclass(frozen=True, slots=True)
class Limits:
    """The CA's limits; defaults are Let's Encrypt's."""

    orders_per_account: int = 300
    order_window: timedelta = timedelta(hours=3)
    certificates_per_domain: int = 50
    domain_window: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.orders_per_account < 1 or self.certificates_per_domain < 1:
            msg = "rate limits must allow at least one order"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Issuance:
    """One new order the CA counted: when, and the registered domains of its names."""

    at: datetime
    domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OrderWanted:
    """An order a run would place now. ``renewal``: it carries ARI ``replaces`` (exempt)."""

    name: str
    dns_names: tuple[str, ...]
    renewal: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """What goes now (in the order given) and, for the others, the earliest time it fits."""

    now: tuple[str, ...]
    later: Mapping[str, datetime] = field(default_factory=dict)


def registered_domain(dns_name: str) -> str:
    """The last two labels of ``dns_name`` (lower case, no trailing dot, no ``*.``)."""
    labels = dns_name.strip().rstrip(".").lower().removeprefix("*.").split(".")
    return ".".join(labels[-2:])


def domains_of(dns_names: Iterable[str]) -> tuple[str, ...]:
    """The distinct registered domains of ``dns_names``, sorted."""
    return tuple(sorted({registered_domain(n) for n in dns_names}))


def plan(
    wanted: Sequence[OrderWanted], history: Sequence[Issuance], *, now: datetime, limits: Limits
) -> Plan:
    """Admit orders under ``limits`` given what the CA already counted (``history``).

    Orders are admitted in the order given (the caller puts the most urgent first). A renewal
    is always admitted and counts nothing. A first issuance is admitted when, counting it, the
    account's orders in the last ``order_window`` and every one of its registered domains'
    certificates in the last ``domain_window`` stay within the limits; otherwise ``later``
    holds the earliest instant at which enough of the counted issuances have left their windows
    (assuming nothing else is ordered meanwhile: the next run plans again).
    """
    counted = [h for h in history if h.at > now - max(limits.order_window, limits.domain_window)]
    admitted: list[str] = []
    later: dict[str, datetime] = {}
    for order in wanted:
        if order.renewal:
            admitted.append(order.name)
            continue
        domains = domains_of(order.dns_names)
        account = sorted(h.at for h in counted if h.at > now - limits.order_window)
        waits = []
        if len(account) >= limits.orders_per_account:
            # The oldest entries must leave the window until one slot is free.
            waits.append(account[len(account) - limits.orders_per_account] + limits.order_window)
        for domain in domains:
            per_domain = sorted(
                h.at for h in counted if domain in h.domains and h.at > now - limits.domain_window
            )
            if len(per_domain) >= limits.certificates_per_domain:
                excess = len(per_domain) - limits.certificates_per_domain
                waits.append(per_domain[excess] + limits.domain_window)
        if waits:
            later[order.name] = max(waits)
            continue
        admitted.append(order.name)
        counted.append(Issuance(now, domains))
    return Plan(tuple(admitted), later)


@dataclass(frozen=True, slots=True)
class IssuanceLog:
    """The issuance history as the state records it (one JSON document per account).

    Only what the limits need: when, and which registered domains. Entries older than the
    longest window are dropped on every write.
    """

    entries: tuple[Issuance, ...] = ()

    def record(self, at: datetime, dns_names: Iterable[str], limits: Limits) -> IssuanceLog:
        """A new log: these entries and one more first issuance, pruned to the windows."""
        horizon = at - max(limits.order_window, limits.domain_window)
        kept = tuple(e for e in self.entries if e.at > horizon)
        return IssuanceLog((*kept, Issuance(at, domains_of(dns_names))))

    def to_document(self) -> dict[str, object]:
        """The JSON form stored in the state bucket."""
        return {
            "issuances": [
                {"at": e.at.isoformat(), "domains": list(e.domains)} for e in self.entries
            ]
        }

    @classmethod
    def parse(cls, document: Mapping[str, object] | None) -> IssuanceLog:
        """Read :meth:`to_document`'s form; anything unreadable is skipped (never fatal)."""
        if not document:
            return cls()
        raw = document.get("issuances")
        entries = []
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, dict):
                continue
            try:
                at = datetime.fromisoformat(str(item["at"]))
            except (KeyError, ValueError):
                continue
            domains = item.get("domains")
            if at.tzinfo is None or not isinstance(domains, list):
                continue
            entries.append(Issuance(at, tuple(str(d) for d in domains)))
        return cls(tuple(entries))


class IssuanceLogStore(Protocol):
    """Where the issuance log lives (the state bucket): one object, written conditionally."""

    def load(self) -> tuple[IssuanceLog, str | None]:
        """The log and its version tag (None: no log stored yet)."""
        ...

    def save(self, log: IssuanceLog, tag: str | None) -> bool:
        """Replace the log if it is still at ``tag`` (None: only if absent); False if not."""
        ...


class RateLimited(Exception):
    """A first issuance held back by the CA's limits until ``fits_at``."""

    def __init__(self, name: str, fits_at: datetime, limits: Limits) -> None:
        super().__init__(
            f"new order held back: the CA's limits ({limits.orders_per_account} new orders per"
            f" account per {_hours(limits.order_window)}, {limits.certificates_per_domain} new"
            f" certificates per registered domain per {_hours(limits.domain_window)}) are"
            f" reached; it fits from {fits_at.isoformat(timespec='seconds')} and the first run"
            " after that orders it"
        )
        self.name = name
        self.fits_at = fits_at


class IssuanceGate:
    """Admits first issuances one at a time under ``limits``, recording each in ``store``.

    Thread-safe: a run's workers are serialized by a lock, concurrent runs by the store's
    conditional write (read, plan, write-if-unchanged; ``attempts`` tries).
    """

    def __init__(
        self,
        store: IssuanceLogStore,
        limits: Limits,
        now: Callable[[], datetime],
        *,
        attempts: int = 5,
    ) -> None:
        self._store = store
        self.limits = limits
        self._now = now
        self._attempts = attempts
        self._lock = threading.Lock()

    def admit(self, name: str, dns_names: Sequence[str], *, renewal: bool) -> None:
        """Record a new order of ``name`` now, or raise :class:`RateLimited`.

        A renewal (ARI ``replaces``) is exempt: nothing is read or written.

        Raises:
            RateLimited: the order does not fit now; ``fits_at`` says when it does.
            TransientError: the log kept changing under this run (or could not be written).

        """
        if renewal:
            return
        with self._lock:
            for _ in range(self._attempts):
                log, tag = self._store.load()
                now = self._now()
                wanted = OrderWanted(name, tuple(dns_names))
                answer = plan([wanted], log.entries, now=now, limits=self.limits)
                if name in answer.later:
                    logger.info(
                        "rate_limited cert=%s fits_at=%s", name, answer.later[name].isoformat()
                    )
                    raise RateLimited(name, answer.later[name], self.limits)
                if self._store.save(log.record(now, dns_names, self.limits), tag):
                    return
            msg = (
                f"the issuance log changed under this run {self._attempts} times; the order of"
                f" {name!r} is left for the next run"
            )
            raise TransientError(msg)


def limits_for(setting: Limits | str, directory_url: str) -> Limits | None:
    """The limits a configuration's ``rateLimits`` means for ``directory_url`` (None: none).

    ``"auto"``: Let's Encrypt's for its production directory, none for any other CA (staging's
    are a hundred times higher, and other CAs publish their own); ``"off"``: none.
    """
    if isinstance(setting, Limits):
        return setting
    if setting == "auto" and urlsplit(directory_url).hostname in LETS_ENCRYPT_HOSTS:
        return Limits()
    return None


def _hours(window: timedelta) -> str:
    days, rest = divmod(window, timedelta(days=1))
    if days and not rest:
        return f"{days} days"
    return f"{window.total_seconds() / 3600:g} h"
