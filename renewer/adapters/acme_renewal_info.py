"""ACME Renewal Information (RFC 9773) with the standard library: two GETs, no ACME stack.

A scheduled run that finds nothing due still asks the CA for each certificate's renewal window
whenever the last answer's Retry-After has passed — with twice-daily runs and Let's Encrypt's
6-hour Retry-After, almost every run. RFC 9773 makes that question two unauthenticated GETs
(the directory, then ``renewalInfo/<CertID>``), so this module asks it without ``acme``,
``josepy`` and ``requests``, which a cold start would otherwise import for nothing (~0.1 s).
:class:`~renewer.adapters.acme_issuer.AcmeIssuer` uses it too: one implementation.

Every answer is checked here (a directory that is not an object, a window of the wrong types
or inverted, a body that is not JSON or too long) into the typed errors of
:mod:`renewer.errors`; the callers fall back to the lifetime policy on any of them.
"""

from __future__ import annotations

import email.utils
import http.client
import logging
import re
import socket
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random

from renewer import pki
from renewer.adapters import bounded_http
from renewer.clock import Clock, SystemClock
from renewer.deadline import cut_at
from renewer.errors import AcmeProtocolError, AcmeTimeout, CaAnswerInvalid, TransientError
from renewer.model import RenewalInfo
from renewer.policy import select_ari_time
from renewer.untrusted import UnreadableJson, decode_json, json_kind

logger = logging.getLogger(__name__)

ARI_RETRY_MIN = timedelta(minutes=1)
ARI_RETRY_MAX = timedelta(days=1)
ARI_RETRY_DEFAULT = timedelta(hours=6)
# renewalInfo is advisory: without a deadline from the caller, the whole question (both GETs,
# connect, TLS, every byte) may take this long, then the lifetime policy decides.
ARI_TIMEOUT = 10.0
# A directory or a renewalInfo answer is a few hundred bytes; a CA that sends more is not one.
MAX_ANSWER_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class _Json:
    document: object
    answer: bounded_http.Answer


class RenewalInfoClient:
    """Asks one ACME CA for renewal windows; thread-safe (no shared connection state).

    Args:
        directory_url: the CA's ACME directory.
        ca_bundle: PEM file of roots to trust for the CA (the sandbox's Pebble), else the
            system store.
        clock: time source.
        user_agent: sent with each request (RFC 8555 section 6.1 asks clients to).

    """

    def __init__(
        self,
        directory_url: str,
        *,
        ca_bundle: str | None = None,
        clock: Clock | None = None,
        user_agent: str = "oci-acme-renewer/0.1",
    ) -> None:
        self.directory_url = directory_url
        self._ca_bundle = ca_bundle
        self._clock = clock or SystemClock()
        self._user_agent = user_agent
        self._context: ssl.SSLContext | None = None

    def renewal_info(
        self,
        cert_pem: str,
        *,
        now: datetime | None = None,
        rng: Random | None = None,
        deadline: float | None = None,
    ) -> RenewalInfo | None:
        """Ask the CA when ``cert_pem`` should be renewed (RFC 9773 section 4.2).

        Returns None when the CA has no ``renewalInfo``, the certificate has no CertID, or it
        has already expired (section 4.2: clients must not ask then). ``selected_time`` is a
        uniformly random instant in the suggested window; ``retry_after`` is when to ask again
        (the CA's Retry-After clamped to [1 min, 1 day], 6 h when absent). ``deadline`` (a
        ``time.monotonic()`` instant) bounds the whole question, and so does
        :data:`ARI_TIMEOUT` seconds from now in any case. Idempotent: it only reads.

        Raises:
            TransientError: the CA could not be reached or answered 5xx/429
                (:class:`AcmeTimeout`: not completely before the deadline).
            AcmeProtocolError: the CA answered with another error status.
            CaAnswerInvalid: an answer is not what RFC 8555/9773 say (not JSON, not an object,
                a window of the wrong types or inverted, too long).

        """
        now = now or self._clock.now()
        # Advisory: never longer than ARI_TIMEOUT, and never past the caller's deadline.
        own = self._clock.monotonic() + ARI_TIMEOUT
        deadline = own if deadline is None else min(deadline, own)
        leaf = pki.split_chain(cert_pem)[0]
        cert_id = pki.ari_cert_id(leaf)
        if cert_id is None or leaf.not_valid_after_utc <= now:
            return None
        directory = self._get_json(self.directory_url, "directory", deadline).document
        if not isinstance(directory, dict):
            msg = f"the CA's directory is {json_kind(directory)}, not a JSON object"
            raise CaAnswerInvalid(msg)
        base = directory.get("renewalInfo")
        if base is None:
            return None
        if not isinstance(base, str) or not base.startswith(("https://", "http://")):
            msg = f"the CA's directory 'renewalInfo' is {json_kind(base)}, not a URL"
            raise CaAnswerInvalid(msg)
        answer = self._get_json(f"{base.rstrip('/')}/{cert_id}", "renewalInfo", deadline)
        start, end = renewal_window(answer.document)
        retry = parse_retry_after(answer.answer.header("Retry-After"), now=now)
        wait = ARI_RETRY_DEFAULT if retry is None else timedelta(seconds=retry)
        wait = min(max(wait, ARI_RETRY_MIN), ARI_RETRY_MAX)
        document = answer.document
        explanation = document.get("explanationURL") if isinstance(document, dict) else None
        return RenewalInfo(
            window_start=start,
            window_end=end,
            selected_time=select_ari_time(start, end, rng=rng or Random()),  # noqa: S311 - jitter, not crypto
            retry_after=now + wait,
            explanation_url=explanation if isinstance(explanation, str) else None,
        )

    def _tls(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self._ca_bundle)
        return self._context

    def _get_json(self, url: str, what: str, deadline: float) -> _Json:
        monotonic = self._clock.monotonic
        if deadline <= monotonic():
            msg = f"ACME {what}: no time left before the deadline"
            raise AcmeTimeout(msg)
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        with cut_at(deadline, monotonic=monotonic) as cutoff:
            try:
                answer = bounded_http.get(
                    url,
                    until=deadline,
                    cutoff=cutoff,
                    monotonic=monotonic,
                    context=self._tls(),
                    headers=headers,
                    max_body=MAX_ANSWER_BYTES + 1,
                )
            except ValueError as exc:
                msg = f"ACME {what}: the URL is not http(s)"
                raise CaAnswerInvalid(msg) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise _no_answer(what, exc, timed_out=cutoff.fired) from exc
            if cutoff.fired:  # a cut answer may look complete: never trust it
                msg = f"ACME {what}: no complete answer from the ACME server by the deadline"
                raise AcmeTimeout(msg)
        return _Json(document=_decode(answer, what), answer=answer)


def _no_answer(what: str, exc: Exception, *, timed_out: bool) -> TransientError:
    """The error for a request that got no complete answer: said as it happened."""
    if timed_out or isinstance(exc, TimeoutError):
        # The socket timeout is the time left, so it too ends at the deadline.
        msg = f"ACME {what}: no complete answer from the ACME server by the deadline"
        return AcmeTimeout(msg)
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return TransientError(f"ACME {what}: cannot reach the ACME server ({type(exc).__name__})")
    msg = f"ACME {what}: the exchange with the ACME server failed ({type(exc).__name__})"
    return TransientError(msg)


def _decode(answer: bounded_http.Answer, what: str) -> object:
    """The JSON document of a 200 answer; the typed error for any other."""
    status = answer.status
    if status != 200:  # noqa: PLR2004
        retry = parse_retry_after(answer.header("Retry-After"), now=datetime.now(UTC))
        msg = f"ACME {what}: the ACME server answered HTTP {status}"
        if status >= 500 or status == 429:  # noqa: PLR2004
            raise TransientError(msg, retry_after=retry)
        raise AcmeProtocolError(msg, problem_type="unexpectedResponse", status=status)
    if len(answer.body) > MAX_ANSWER_BYTES:
        msg = f"ACME {what}: the ACME server's answer is over {MAX_ANSWER_BYTES:,} bytes"
        raise CaAnswerInvalid(msg)
    try:
        return decode_json(answer.body)
    except UnreadableJson as exc:
        msg = f"ACME {what}: the ACME server's answer is not JSON ({exc})"
        raise CaAnswerInvalid(msg) from exc


def renewal_window(document: object) -> tuple[datetime, datetime]:
    """RFC 9773 section 4.2: ``suggestedWindow`` with RFC 3339 ``start`` before ``end``.

    Raises:
        CaAnswerInvalid: naming the field and what it is (its JSON kind, never its value).

    """
    if not isinstance(document, dict):
        msg = f"the CA's renewalInfo is {json_kind(document)}, not a JSON object"
        raise CaAnswerInvalid(msg)
    window = document.get("suggestedWindow")
    if not isinstance(window, dict):
        msg = f"the CA's renewalInfo 'suggestedWindow' is {json_kind(window)}, not an object"
        raise CaAnswerInvalid(msg)
    bounds = []
    for field in ("start", "end"):
        value = window.get(field)
        when = _rfc3339(value) if isinstance(value, str) else None
        if when is None:
            msg = (
                f"the CA's renewalInfo 'suggestedWindow.{field}' is {json_kind(value)},"
                " not an RFC 3339 time"
            )
            raise CaAnswerInvalid(msg)
        bounds.append(when)
    start, end = bounds
    if end < start:
        msg = "the CA's renewalInfo window ends before it starts"
        raise CaAnswerInvalid(msg)
    return start, end


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)


def _rfc3339(text: str) -> datetime | None:
    """An RFC 3339 date-time (section 5.6), as an aware UTC datetime; None otherwise.

    Any number of fraction digits up to nine (Go's CAs send nanoseconds; microseconds are
    kept), ``t``/``z`` in either case, a space for ``T`` (section 5.6's note); an offset is
    required.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    micro = (fraction or "").ljust(6, "0")[:6]
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        when = datetime.fromisoformat(f"{day}T{clock}.{micro}{zone}")
    except ValueError:  # a month 13, a 25th hour
        return None
    return when.astimezone(UTC)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    # isascii(): str.isdigit() is also true for "²", which float() rejects.
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= 10 else None  # noqa: PLR2004 - 300 years of seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


__all__ = [
    "ARI_RETRY_DEFAULT",
    "ARI_RETRY_MAX",
    "ARI_RETRY_MIN",
    "ARI_TIMEOUT",
    "RenewalInfoClient",
    "parse_retry_after",
    "renewal_window",
]
