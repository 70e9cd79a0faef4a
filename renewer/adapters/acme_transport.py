"""The ACME wire layer over the ``acme`` library: what the library lacks, and error translation.

Three gaps in ``acme`` 5.x are closed here:

* ``replaces`` (RFC 9773 section 5): ``messages.NewOrder`` has no such field, so renewals could
  not tell the CA which certificate they replace, and would lose the rate-limit exemption.
* badNonce: the library retries exactly once and throws away the ``Replay-Nonce`` that came with
  the error; two rejections in a row failed whole orders. We keep every nonce the server sends
  (RFC 8555 section 6.5: errors carry one too) and retry a bounded number of times.
* Problem documents lose their HTTP status and ``Retry-After``; we attach both so rate limits can
  be honoured.
* Time: the library's timeout bounds one socket read. An :class:`AcmeNetwork` with a deadline
  cuts its connections when the deadline passes (:mod:`renewer.deadline`), so a CA that accepts
  and never answers, or trickles its answer, cannot hold a run past it: :class:`AcmeTimeout`.

:func:`translate` maps library and transport exceptions to :mod:`renewer.errors`. No other
module of the package catches ``acme`` or ``requests`` exception types.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from josepy import errors as jose_errors
from josepy import json_util

from renewer.adapters.acme_renewal_info import parse_retry_after
from renewer.deadline import bound_session
from renewer.errors import (
    AcmeProtocolError,
    AcmeServerError,
    AcmeTimeout,
    AcmeUnreachable,
    CaAnswerInvalid,
    RateLimited,
    RenewerError,
    TransientError,
)

logger = logging.getLogger(__name__)

ERROR_PREFIX = "urn:ietf:params:acme:error:"
# Problem types that say "try again later" rather than "you are wrong".
_TRANSIENT_PROBLEMS = frozenset({"badNonce", "serverInternal"})
# Re-signing attempts after badNonce, per request. Pebble's PEBBLE_WFE_NONCEREJECT=50 rejects
# half of all nonces, retries included: a request then fails with probability 2^-(n+1), and an
# order makes about ten requests. 15 keeps that under 2 in 10,000 orders (5 failed about one
# order in ten); against a CA that rejects every nonce it costs 16 quick POSTs, within the
# deadline like every request.
BAD_NONCE_RETRIES = 15


class NewOrder(messages.NewOrder):
    """RFC 8555 newOrder payload plus RFC 9773's ``replaces`` (the ARI CertID being renewed)."""

    replaces: str | None = json_util.field("replaces", omitempty=True)


class AcmeNetwork(acme_client.ClientNetwork):
    """``ClientNetwork`` that keeps nonces, retries badNonce with bounds, ends by a deadline.

    Args (beyond the library's):
        bad_nonce_retries: how many times one POST is re-signed with a fresh nonce after a
            ``badNonce`` problem (Pebble rejects 5 % of good nonces by default; Let's Encrypt
            asks clients to simply retry).
        deadline: a ``time.monotonic()`` instant. No request starts after it, every connection
            is cut when it passes (total time, not per read), and a request that had not
            completed by then raises :class:`AcmeTimeout`. None: only the library's timeout.
    """

    def __init__(
        self,
        *args: Any,  # noqa: ANN401 - the library's signature
        bad_nonce_retries: int = BAD_NONCE_RETRIES,
        deadline: float | None = None,
        **kwargs: Any,  # noqa: ANN401
    ) -> None:
        super().__init__(*args, **kwargs)
        self._bad_nonce_retries = bad_nonce_retries
        self.deadline = deadline
        bound_session(self.session, lambda: self.deadline)

    def _send_request(
        self,
        method: str,
        url: str,
        *args: Any,  # noqa: ANN401 - the library's signature
        **kwargs: Any,  # noqa: ANN401
    ) -> requests.Response:
        deadline = self.deadline
        if deadline is not None and time.monotonic() >= deadline:
            msg = f"ACME {method} {url} not sent: the deadline has passed"
            raise AcmeTimeout(msg)
        try:
            response = super()._send_request(method, url, *args, **kwargs)
        except requests.exceptions.RequestException as exc:
            if deadline is not None and time.monotonic() >= deadline:
                msg = f"the ACME server did not answer {method} {url} before the deadline"
                raise AcmeTimeout(msg) from exc
            raise
        if deadline is not None and time.monotonic() >= deadline:
            # Also an answer cut at the deadline that looked complete (no Content-Length).
            msg = f"the ACME server did not finish answering {method} {url} before the deadline"
            raise AcmeTimeout(msg)
        if not response.ok and self.REPLAY_NONCE_HEADER in response.headers:
            # The library only stores nonces of successful responses; keeping this one saves a
            # HEAD newNonce round-trip on every retried request.
            with contextlib.suppress(acme_errors.BadNonce):
                self._add_nonce(response)
        return response

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as problem:
            # messages.Error is mutable on purpose (it is an exception); keep what the
            # library drops so rateLimited can be honoured.
            problem.http_status = response.status_code
            problem.retry_after = retry_after_seconds(response)
            raise

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:  # noqa: ANN401 - the library's signature
        """POST a JWS; on ``badNonce`` re-sign with a fresh nonce, at most N more times."""
        attempt = 0
        while True:
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as problem:
                if problem_type(problem) != "badNonce" or attempt >= self._bad_nonce_retries:
                    raise
                attempt += 1
                logger.debug("acme badNonce retry attempt=%d", attempt)


def problem_type(problem: messages.Error) -> str:
    """Short problem type (``rateLimited``), also for types the library does not list."""
    typ = str(problem.typ)
    return typ.removeprefix(ERROR_PREFIX)


def retry_after_seconds(response: requests.Response) -> float | None:
    """The ``Retry-After`` header as seconds from now (delta-seconds or HTTP-date), or None."""
    return parse_retry_after(response.headers.get("Retry-After"), now=datetime.now(UTC))


def from_problem(problem: messages.Error, *, action: str) -> AcmeProtocolError:
    """Our typed error for an RFC 8555 problem document returned while doing ``action``."""
    kind = problem_type(problem)
    detail = str(problem.detail or problem.title or "")
    status: int | None = getattr(problem, "http_status", None)
    message = f"ACME {action} failed: {kind}: {detail}".rstrip(": ")
    subproblems = tuple(
        (
            str(sub.identifier.value) if sub.identifier is not None else "",
            problem_type(sub),
            str(sub.detail or ""),
        )
        for sub in (problem.subproblems or ())
    )
    if subproblems:
        message += " (" + "; ".join(f"{i}: {t}: {d}" for i, t, d in subproblems) + ")"
    if kind == "rateLimited":
        retry_after: float | None = getattr(problem, "retry_after", None)
        if retry_after is not None:
            message += f"; retry after {retry_after:.0f} s"
        return RateLimited(message, detail=detail, status=status, retry_after=retry_after)
    if kind in _TRANSIENT_PROBLEMS or (status is not None and status >= 500):  # noqa: PLR2004
        return AcmeServerError(message, problem_type=kind, detail=detail, status=status)
    return AcmeProtocolError(
        message, problem_type=kind, detail=detail, status=status, subproblems=subproblems
    )


@contextlib.contextmanager
def translate(action: str) -> Iterator[None]:
    """Turn ``acme``/``requests`` exceptions raised inside the block into :mod:`renewer.errors`.

    ``action`` names the protocol step (``newOrder``, ``finalize``...) for the message. Our own
    errors pass through unchanged.
    """
    try:
        yield
    except RenewerError:
        raise
    except messages.Error as problem:
        raise from_problem(problem, action=action) from problem
    except requests.exceptions.RequestException as exc:
        raise _request_error(exc, action) from exc
    except acme_errors.ConflictError as exc:
        msg = f"ACME {action}: unexpected conflict at {exc.location}"
        raise AcmeProtocolError(msg, problem_type="conflict", status=409) from exc
    except acme_errors.ClientError as exc:
        raise _client_error(exc, action) from exc
    except (jose_errors.DeserializationError, ValueError) as exc:
        # The shape of each answer is checked by acme_answers; this is the library's own.
        msg = f"ACME {action}: malformed response from the ACME server ({type(exc).__name__})"
        raise CaAnswerInvalid(msg) from exc


def _request_error(exc: requests.exceptions.RequestException, action: str) -> RenewerError:
    """A transport failure; an answer that did arrive is never "cannot reach"."""
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return CaAnswerInvalid(f"ACME {action}: the ACME server's answer is not JSON")
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        msg = f"ACME {action}: the ACME server's answer was cut off or undecodable"
        return AcmeUnreachable(msg)
    return AcmeUnreachable(f"ACME {action}: cannot reach the ACME server ({type(exc).__name__})")


def _client_error(exc: acme_errors.ClientError, action: str) -> RenewerError:
    """The library's ClientError, with the response or with a sentence.

    A response: a non-JSON error body (a proxy's 502 page). A sentence: an answer missing a
    header the library needs. A NonceError: a missing or malformed Replay-Nonce.
    """
    if isinstance(exc, acme_errors.NonceError):
        msg = f"ACME {action}: the ACME server sent no usable Replay-Nonce header"
        return CaAnswerInvalid(msg)
    response = exc.args[0] if exc.args else None
    if isinstance(response, tuple):
        response = response[0]
    if isinstance(response, str):
        return CaAnswerInvalid(f"ACME {action}: the ACME server's answer is unusable ({response})")
    status = getattr(response, "status_code", None)
    if status is None:  # nothing says what went wrong: try again later
        msg = f"ACME {action}: the ACME server's answer is unusable ({type(exc).__name__})"
        return TransientError(msg)
    msg = f"ACME {action}: unexpected response from the ACME server (HTTP {status})"
    if status >= 500:  # noqa: PLR2004
        return AcmeUnreachable(msg)
    return AcmeProtocolError(msg, problem_type="unexpectedResponse", status=status)
