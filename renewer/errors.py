"""The exception hierarchy. Every error raised on purpose derives from :class:`RenewerError`.

Messages never contain key material, secret contents or raw request bodies: the function runtime
returns ``str(exc)`` to the caller, and logs keep it forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from renewer.model import CaFailure


class RenewerError(Exception):
    """Root of every error this package raises on purpose.

    When the error translates an OCI service answer, ``oci_status`` and ``oci_code`` carry its
    HTTP status and error code (so adapters can tell a 412 from a 404 without the SDK's types).
    """

    oci_status: int | None = None
    oci_code: str | None = None
    # The CAs an order passed over because they failed on their side before this error
    # (renewer.ca_issuers), first choice first; the orchestrator backs each off.
    ca_failures: tuple[CaFailure, ...] = ()


class ConfigError(RenewerError):
    """Bad or missing settings, or a CA/tenancy that cannot serve them. Not retryable.

    The message names the setting and how to fix it.
    """


class TransientError(RenewerError):
    """Worth retrying later: network failures, timeouts, 5xx, rate limits.

    ``retry_after`` is the number of seconds the server asked us to wait, when it said so.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AcmeUnreachable(TransientError):
    """The ACME server could not be reached, or its answer was cut off or a bare 5xx page.

    The CA's side, not ours (renewer.ca_choice falls back to the next configured CA); told
    apart from an OCI service's :class:`TransientError` while an order is running.
    """


class CaUnavailable(TransientError):
    """Every CA configured for a certificate failed on its side (issue 17).

    ``ca_failures`` names each CA with its error type; ``retry_after`` is the shortest wait
    the CAs asked for when every one of them said.
    """


class AcmeTimeout(TransientError):
    """An order did not reach the wanted state before the deadline."""


class AcmeProtocolError(RenewerError):
    """The CA answered with an RFC 8555 problem document (section 6.7).

    ``problem_type`` is the short type (``rateLimited``, ``rejectedIdentifier``, ``unauthorized``,
    ...), ``detail`` the CA's human text, ``status`` the HTTP status when known.
    """

    def __init__(
        self,
        message: str,
        *,
        problem_type: str,
        detail: str = "",
        status: int | None = None,
        subproblems: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.problem_type = problem_type
        self.detail = detail
        self.status = status
        # (identifier, type, detail) for each subproblem (RFC 8555 section 6.7.1).
        self.subproblems = subproblems


class RateLimited(AcmeProtocolError, TransientError):
    """``rateLimited``: wait at least ``retry_after`` seconds before asking again."""

    def __init__(
        self,
        message: str,
        *,
        detail: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        AcmeProtocolError.__init__(
            self, message, problem_type="rateLimited", detail=detail, status=status
        )
        self.retry_after = retry_after


class AcmeServerError(AcmeProtocolError, TransientError):
    """The CA failed on its side (``serverInternal``, 5xx) or kept rejecting nonces. Retryable."""

    def __init__(
        self, message: str, *, problem_type: str, detail: str = "", status: int | None = None
    ) -> None:
        AcmeProtocolError.__init__(
            self, message, problem_type=problem_type, detail=detail, status=status
        )
        self.retry_after = None


@dataclass(frozen=True, slots=True)
class IdentifierFailure:
    """One identifier whose authorization the CA refused, with the CA's reason."""

    identifier: str
    problem_type: str
    detail: str


class ChallengeFailed(AcmeProtocolError):
    """The CA could not validate some identifiers; ``failures`` lists each with its detail."""

    def __init__(self, failures: tuple[IdentifierFailure, ...]) -> None:
        lines = "; ".join(f"{f.identifier}: {f.problem_type}: {f.detail}" for f in failures)
        first = failures[0] if failures else IdentifierFailure("", "unknown", "")
        super().__init__(
            f"validation failed for {len(failures)} identifier(s): {lines}",
            problem_type=first.problem_type,
            detail=first.detail,
        )
        self.failures = failures


class DeploymentError(RenewerError):
    """A target could not be switched: work request FAILED, or the read-back did not match.

    ``work_request_id`` is the OCI work request, when there was one; ``opc_request_id`` the
    request id OCI support asks for; ``error_codes`` the failed work request's ``errorCode``s
    (``BAD_INPUT``: the change itself was refused; ``INTERNAL_ERROR``: OCI's side failed).
    """

    def __init__(
        self,
        message: str,
        *,
        work_request_id: str | None = None,
        opc_request_id: str | None = None,
        error_codes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.work_request_id = work_request_id
        self.opc_request_id = opc_request_id
        self.error_codes = error_codes


class SelfCheckFailed(RenewerError):
    """The http-01 self-check could not read the key authorization through the public path.

    Raised before the CA is asked to validate, so no failed authorization is counted against the
    account. ``url`` is the URL that was fetched; ``observed`` what came back instead.
    """

    def __init__(self, url: str, observed: str) -> None:
        super().__init__(
            f"self-check failed for {url}: {observed}; the CA would fetch the same URL, so check"
            " that port 80 of that name reaches the token server (in redirect mode: that the"
            " rule set's pre-authenticated request is live) and the challenge bucket"
        )
        self.url = url
        self.observed = observed


class CaAnswerInvalid(AcmeProtocolError):
    """The CA answered, but the answer is not what RFC 8555 / RFC 9773 say it must be.

    A directory that is not an object or lacks ``newNonce``/``newAccount``/``newOrder``, an order
    without ``authorizations`` or ``Location``, a renewalInfo window of the wrong types or
    inverted, a certificate download that is not a PEM chain, or a certificate whose key, names
    or validity do not match the order (``problem_type`` ``certificateMismatch``). Never a
    configuration error: the CA (or something between it and us) is at fault, so the renewal is
    retried later with the usual backoff. The message names the answer and the field, and never
    quotes more of the answer than a type name.
    """

    def __init__(self, message: str, *, problem_type: str = "malformedResponse") -> None:
        super().__init__(message, problem_type=problem_type)


class UnknownCertificateVersion(ConfigError):
    """The certificate store has no readable version with that number (revoke, rollback)."""


class RevocationError(AcmeProtocolError):
    """The CA refused a revokeCert request (RFC 8555 section 7.6); a subclass says why."""


class AlreadyRevoked(RevocationError):
    """``alreadyRevoked``: the CA had revoked this certificate before. Nothing more to do."""


class RevocationUnauthorized(RevocationError):
    """``unauthorized``: the signing key may not revoke this certificate.

    With the account key: the account neither issued the certificate nor holds authorizations
    for all its names (or no account is stored for the CA). The certificate's own key
    (``signWith: certificateKey``) is always authorized.
    """


class CertificateUnknownToCa(RevocationError):
    """The CA does not know the certificate: issued by another CA, or its serial is unknown."""
