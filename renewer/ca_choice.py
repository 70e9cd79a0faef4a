"""Which CA to order from, and when to fall back to the next one (issue 17). Pure: no I/O.

A certificate names an ordered list of CAs (:class:`~renewer.model.CaSpec`; one entry is
today's single CA). An order goes to the first CA that is not backing off; when that CA fails
**on its side** the next one is tried in the same run. Only the CA's side counts, because only
then can another CA do better:

- CA side (fall back): the CA cannot be reached or its answer is cut off
  (:class:`~renewer.errors.AcmeUnreachable`); a 5xx or ``serverInternal``/``badNonce``
  (:class:`~renewer.errors.AcmeServerError`); ``rateLimited``
  (:class:`~renewer.errors.RateLimited`); an answer that breaks RFC 8555
  (:class:`~renewer.errors.CaAnswerInvalid`); an order the CA made invalid with no reason or
  with a server-side one (``orderInvalid``); an identifier refused for ``caa`` only (the
  domain's CAA records authorize other CAs, maybe the next one).
- ours (never fall back; another CA would fail the same way): a failed self-check, a
  validation the CA could not make (``unauthorized``, ``connection``, ``dns``,
  ``incorrectResponse``...), a configuration error (:class:`~renewer.errors.ConfigError`),
  any other problem document (``badCSR``, ``rejectedIdentifier``, ``malformed``...), the
  run's own deadline (:class:`~renewer.errors.AcmeTimeout`), and anything not ours to name
  (a bug, an OCI failure while publishing a challenge).

A CA that failed on its side is skipped for this certificate until its own backoff ends
(:func:`next_backoff`: the renewal backoff table, at least the CA's ``Retry-After``), recorded
in the certificate's state object (:class:`CaBackoff`). When every CA is backing off the list
is tried in order anyway: the certificate's own backoff already spaced the attempt. A
certificate from a fallback CA is not renewed early: at its next normal renewal the list is
tried from the top again, so the first CA takes it back once healthy, and no run flaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from renewer.errors import (
    AcmeProtocolError,
    AcmeServerError,
    AcmeTimeout,
    AcmeUnreachable,
    CaAnswerInvalid,
    ChallengeFailed,
    RateLimited,
)
from renewer.model import CaFailure, CaSpec, CertificateSpec, FailureHistory, StoredCertificate
from renewer.policy import PolicyConfig
from renewer.policy import backoff_until as table_backoff_until

if TYPE_CHECKING:
    from renewer.settings import Config

__all__ = [
    "CA_SIDE_PROBLEMS",
    "CaBackoff",
    "ca_failure",
    "ca_host",
    "ca_order",
    "find_ca",
    "is_ca_side",
    "issuing_ca",
    "next_backoff",
    "origin",
    "preferred_chain_for",
    "profile_for",
    "record",
]

# Problem types (RFC 8555 section 6.7, and ours for answers without one) that say the CA
# failed, not the request: another CA may succeed.
CA_SIDE_PROBLEMS = frozenset(
    {
        "rateLimited",
        "serverInternal",
        "badNonce",  # only after every re-signed retry (acme_transport): the CA's nonces
        "orderInvalid",  # all authorizations valid, the order invalid without a reason
        "malformedResponse",
        "certificateMismatch",
        "unexpectedResponse",
    }
)
# Validation failures that name this CA only: the domain's CAA records authorize others.
_CA_SPECIFIC_VALIDATION = frozenset({"caa"})
_HTTP_SERVER_ERROR = 500


def is_ca_side(error: BaseException) -> bool:
    """Whether ``error`` is the CA's failure, so the next CA may be tried (module docstring)."""
    if isinstance(error, AcmeTimeout):
        return False  # the run's deadline: no other CA has more time
    if isinstance(error, AcmeUnreachable | RateLimited | AcmeServerError | CaAnswerInvalid):
        return True
    if isinstance(error, ChallengeFailed):
        kinds = {failure.problem_type for failure in error.failures}
        return bool(kinds) and kinds <= (_CA_SPECIFIC_VALIDATION | {"serverInternal"})
    if isinstance(error, AcmeProtocolError):
        return error.problem_type in CA_SIDE_PROBLEMS or (
            error.status is not None and error.status >= _HTTP_SERVER_ERROR
        )
    return False


def ca_failure(directory_url: str, error: BaseException) -> CaFailure:
    """What is recorded of a CA-side ``error`` at ``directory_url`` (no message: it is the CA's)."""
    problem = error.problem_type if isinstance(error, AcmeProtocolError) else None
    retry_after = getattr(error, "retry_after", None)
    return CaFailure(
        directory_url=directory_url,
        error_type=type(error).__name__,
        problem_type=problem,
        retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
    )


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, lower case: what identifies a CA's server."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def ca_host(directory_url: str | None) -> str | None:
    """The host (with a non-default port) of a directory URL: how reports name a CA."""
    if directory_url is None:
        return None
    return urlsplit(directory_url).netloc.lower() or None


def find_ca(cas: Sequence[CaSpec], url: str | None) -> CaSpec | None:
    """The entry of ``cas`` for ``url``: its directory URL, else the CA on the same origin.

    Account and order URLs live on the CA's own server, so a certificate stored before the
    directory URL was recorded is still traced to its CA by its account URL.
    """
    if url is None:
        return None
    for ca in cas:
        if ca.directory_url == url:
            return ca
    for ca in cas:
        if origin(ca.directory_url) == origin(url):
            return ca
    return None


def issuing_ca(stored: StoredCertificate | None, cas: Sequence[CaSpec]) -> CaSpec | None:
    """The configured CA that issued ``stored`` (None: unknown, or no longer configured)."""
    if stored is None:
        return None
    return find_ca(cas, stored.directory_url) or find_ca(cas, stored.account_url)


def profile_for(spec: CertificateSpec, ca: CaSpec | None) -> str | None:
    """The profile to ask ``ca`` for: the CA entry's own, else the certificate's."""
    return ca.profile if ca is not None and ca.profile is not None else spec.profile


def preferred_chain_for(spec: CertificateSpec, ca: CaSpec | None) -> str | None:
    """The chain to prefer at ``ca``: the CA entry's own, else the certificate's."""
    if ca is not None and ca.preferred_chain is not None:
        return ca.preferred_chain
    return spec.preferred_chain


@dataclass(frozen=True, slots=True)
class CaBackoff:
    """One CA's side failures for one certificate, as kept in its state object.

    ``failures`` counts consecutive CA-side failures at that CA; ``until`` is when it may be
    asked again (the renewal backoff table after ``failures``, at least its Retry-After).
    """

    failures: int
    last_failure_at: datetime
    until: datetime

    def to_document(self) -> dict[str, object]:
        """JSON-ready mapping (UTC ISO 8601)."""
        return {
            "failures": self.failures,
            "last_failure_at": self.last_failure_at.isoformat(),
            "until": self.until.isoformat(),
        }

    @classmethod
    def parse(cls, value: object) -> CaBackoff | None:
        """Leniently parse :meth:`to_document`'s output; None when damaged (derived data)."""
        if not isinstance(value, Mapping):
            return None
        count, at, until = value.get("failures"), value.get("last_failure_at"), value.get("until")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return None
        try:
            when = datetime.fromisoformat(str(at))
            end = datetime.fromisoformat(str(until))
        except ValueError:
            return None
        if when.tzinfo is None or end.tzinfo is None:
            return None
        return cls(count, when, end)


def next_backoff(
    previous: CaBackoff | None,
    failure: CaFailure,
    now: datetime,
    config: PolicyConfig = PolicyConfig(),  # noqa: B008 - frozen value, safe to share
) -> CaBackoff:
    """The backoff after ``failure`` at a CA whose previous backoff was ``previous``."""
    count = (previous.failures if previous is not None else 0) + 1
    until = table_backoff_until(FailureHistory(count, now), config) or now
    if failure.retry_after is not None and failure.retry_after > 0:
        until = max(until, now + timedelta(seconds=failure.retry_after))
    return CaBackoff(count, now, until)


def record(
    backoffs: Mapping[str, CaBackoff],
    *,
    failures: Sequence[CaFailure],
    succeeded: str | None,
    now: datetime,
    config: PolicyConfig = PolicyConfig(),  # noqa: B008 - frozen value, safe to share
) -> dict[str, CaBackoff]:
    """``backoffs`` after one attempt: each CA-side failure backs its CA off; a success clears.

    Entries of CAs not touched by the attempt stay as they were.
    """
    updated = dict(backoffs)
    for failure in failures:
        updated[failure.directory_url] = next_backoff(
            updated.get(failure.directory_url), failure, now, config
        )
    if succeeded is not None:
        updated.pop(succeeded, None)
    return updated


def ca_order(
    cas: Sequence[CaSpec], backoffs: Mapping[str, CaBackoff], now: datetime
) -> tuple[CaSpec, ...]:
    """The CAs to try now, first choice first: the list minus the CAs still backing off.

    When every CA is backing off, the whole list in order: the certificate's own backoff has
    spaced this attempt already, and an order somewhere beats none.
    """
    ready = tuple(
        ca for ca in cas if (entry := backoffs.get(ca.directory_url)) is None or entry.until <= now
    )
    return ready or tuple(cas)


def configured_cas(config: Config) -> tuple[CaSpec, ...]:
    """Every CA the configuration names, once per directory URL, the global list first.

    One ACME account (and one EAB binding) per directory: the first entry that names a
    directory decides its EAB (:mod:`renewer.settings` refuses two different ones).
    """
    seen: dict[str, CaSpec] = {}
    for ca in (*config.acme.all_cas(), *(c for m in config.certificates for c in m.spec.cas)):
        seen.setdefault(ca.directory_url, ca)
    return tuple(seen.values())
