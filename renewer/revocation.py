"""What a revocation means and how it is planned. Pure: no I/O, stdlib only (+ the model).

RFC 8555 section 7.6 lets the subscriber revoke a certificate, signed either with the ACME
account key of an account that may act for it or with the certificate's own private key; the
request carries an RFC 5280 section 5.3.1 reason code. The reasons a subscriber may give are
the ones Let's Encrypt and the CA/Browser Forum Baseline Requirements (7.2.2) accept from
subscribers: ``unspecified`` (0), ``keyCompromise`` (1), ``affiliationChanged`` (3),
``superseded`` (4) and ``cessationOfOperation`` (5). The others (``cACompromise``,
``certificateHold``, ``removeFromCRL``, ``privilegeWithdrawn``, ``aACompromise``) are the CA's
to give and are refused here with a message saying so, before anything happens.

The rule that shapes the plan (ARCHITECTURE rule 1, and the issue's "the listener never serves
a revoked certificate"): nothing is revoked while a target may still serve it. So

* revoking the newest stored version (what every target serves) first issues a replacement,
  deploys and verifies it — a fresh key for ``keyCompromise`` (``reuseKey`` ignored), the
  configured key policy otherwise;
* ``keyCompromise`` of an older version whose key the newest version still uses (``reuseKey``)
  also replaces first, with a fresh key: the key, not the serial, is what leaked;
* anything else revokes an older version after a normal run has made sure every target serves
  the newest version (idempotent: no order, no write when they already do).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from renewer.untrusted import shown_choice

__all__ = [
    "REFUSED_REASONS",
    "RevocationPlan",
    "RevocationReason",
    "SignWith",
    "parse_reason",
    "parse_sign_with",
    "plan_revocation",
]


class RevocationReason(enum.StrEnum):
    """A subscriber's revocation reason (RFC 5280 section 5.3.1 names); ``code`` is the number."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"

    @property
    def code(self) -> int:
        """The CRLReason code sent as ``reason`` in the revokeCert request."""
        return _CODES[self]


_CODES = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
}

# RFC 5280 reasons a subscriber does not give (the CA does); refused with this explanation.
REFUSED_REASONS = {
    "cACompromise": "the CA's own key was compromised: only the CA says so",
    "certificateHold": "a hold is not allowed for publicly trusted TLS certificates",
    "removeFromCRL": "only a CA lifts a hold",
    "privilegeWithdrawn": "the CA withdraws a privilege, the subscriber does not",
    "aACompromise": "an attribute authority's key: not a TLS subscriber's reason",
}


class SignWith(enum.StrEnum):
    """Which key signs the revokeCert request (RFC 8555 section 7.6)."""

    ACCOUNT = "account"  # the ACME account key of the configured CA (``kid``)
    CERTIFICATE_KEY = "certificateKey"  # the certificate's own private key (``jwk``)


def parse_reason(value: object) -> tuple[RevocationReason | None, str | None]:
    """``(reason, None)`` or ``(None, problem)``: the problem names the field and the fix."""
    if isinstance(value, str):
        try:
            return RevocationReason(value), None
        except ValueError:
            pass
        if value in REFUSED_REASONS:
            return None, (
                f"reason {value} is refused: {REFUSED_REASONS[value]}; use one of"
                f" {', '.join(r.value for r in RevocationReason)}"
            )
    return None, (
        f"reason {shown_choice(value)} is unknown: use one of"
        f" {', '.join(r.value for r in RevocationReason)} (RFC 5280 reason names)"
    )


def parse_sign_with(value: object) -> tuple[SignWith | None, str | None]:
    """``(sign_with, None)`` or ``(None, problem)``."""
    try:
        return SignWith(str(value)) if isinstance(value, str) else SignWith(""), None
    except ValueError:
        return None, (
            f"signWith {shown_choice(value)} is unknown: use {SignWith.ACCOUNT.value} (the"
            f" default) or {SignWith.CERTIFICATE_KEY.value} (the certificate's own key, when"
            " the account is in doubt)"
        )


@dataclass(frozen=True, slots=True)
class RevocationPlan:
    """What a revocation will do, in order, decided before anything happens.

    ``replace``: a replacement is issued, deployed and verified first; ``fresh_key``: with a new
    key whatever ``reuseKey`` says. ``steps`` are sentences for the report, the log and a dry run.
    """

    name: str
    version: int
    serial: str
    reason: RevocationReason
    sign_with: SignWith
    replace: bool
    fresh_key: bool
    steps: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready mapping with stable keys (names, numbers and sentences: no secret)."""
        return {
            "version": self.version,
            "serial": self.serial,
            "reason": self.reason.value,
            "reasonCode": self.reason.code,
            "signWith": self.sign_with.value,
            "replace": self.replace,
            "freshKey": self.fresh_key,
            "steps": list(self.steps),
        }


def plan_revocation(
    *,
    name: str,
    version: int,
    serial: str,
    latest_version: int | None,
    latest_serial: str | None,
    shares_key_with_latest: bool,
    reason: RevocationReason,
    sign_with: SignWith,
    ca: str,
) -> RevocationPlan:
    """Plan revoking version ``version`` (serial ``serial``) of certificate ``name``.

    Args:
        name: the configured certificate.
        version: the store version to revoke.
        serial: its certificate's serial.
        latest_version: the newest store version (what the targets serve), None if none.
        latest_serial: its serial.
        shares_key_with_latest: whether the newest version uses the same key as ``version``.
        reason: the revocation reason.
        sign_with: which key signs the request.
        ca: the CA's directory URL, for the sentences.

    """
    is_latest = latest_serial is not None and latest_serial == serial
    key_at_risk = reason is RevocationReason.KEY_COMPROMISE and shares_key_with_latest
    replace = is_latest or key_at_risk
    fresh_key = replace and reason is RevocationReason.KEY_COMPROMISE
    steps: list[str] = []
    if replace:
        why = (
            "it is the version every target serves"
            if is_latest
            else f"the newest version ({latest_version}) uses the same, compromised key"
        )
        key = (
            "a fresh key (reuseKey ignored: the key is compromised)"
            if fresh_key
            else "the configured key policy"
        )
        steps += [
            f"issue a replacement for {name} ({why}) with {key}",
            f"store it, deploy it to every target of {name} and verify each listener serves it",
        ]
    else:
        steps.append(
            f"make sure every target of {name} serves the newest version"
            f" ({latest_version}), not version {version} (deploys only where one does not)"
        )
    signer = (
        "the certificate's own private key"
        if sign_with is SignWith.CERTIFICATE_KEY
        else "the ACME account key"
    )
    steps.append(
        f"revoke serial {serial} (version {version}) at {ca} with reason {reason.value}"
        f" ({reason.code}), signed with {signer}"
    )
    return RevocationPlan(
        name=name,
        version=version,
        serial=serial,
        reason=reason,
        sign_with=sign_with,
        replace=replace,
        fresh_key=fresh_key,
        steps=tuple(steps),
    )


@dataclass(frozen=True, slots=True)
class RevokedVersion:
    """One revoked certificate of a certificate name: serial, Vault version, reason, when."""

    serial: str
    version: int
    reason: str
    revoked_at: datetime

    def to_dict(self) -> dict[str, object]:
        """JSON-ready mapping."""
        return {
            "serial": self.serial,
            "version": self.version,
            "reason": self.reason,
            "revoked_at": self.revoked_at.astimezone(UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
