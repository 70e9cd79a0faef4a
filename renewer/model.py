"""Values of the renewal domain: frozen, slotted dataclasses and stable string enums. No I/O.

Names follow RFC 8555 (identifier, order, authorization, challenge) and RFC 9773 (renewal
information, CertID, suggested window). Every ``datetime`` here is timezone-aware UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from renewer.dns_names import ChallengeType


class KeyType(enum.StrEnum):
    """Key algorithm of a certificate's private key. Values are the configuration spelling."""

    EC_P256 = "ecdsa-p256"
    EC_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"


class Reason(enum.StrEnum):
    """Why the policy decided what it did. Stable across releases: logs and reports carry them."""

    MISSING = "Missing"
    EXPIRED = "Expired"
    NAMES_CHANGED = "NamesChanged"
    KEY_TYPE_CHANGED = "KeyTypeChanged"
    PROFILE_CHANGED = "ProfileChanged"
    FORCED = "Forced"
    ARI_WINDOW_OPEN = "AriWindowOpen"
    RENEWAL_WINDOW = "RenewalWindow"
    NOT_DUE = "NotDue"
    BACKING_OFF = "BackingOff"
    ADOPTED = "Adopted"  # nothing held, but a target serves a valid certificate: its window


@dataclass(frozen=True, slots=True)
class ServedCertificate:
    """A valid certificate a target serves that the renewer does not hold (issue 13 §4).

    Found only when nothing is stored for the spec: it covers every configured name, is within
    its validity and chains to a trusted root. ``where`` names the target (load balancer and
    listener); ``issuer`` is the leaf's issuer common name.
    """

    certificate: CurrentCertificate
    issuer: str
    where: str


@dataclass(frozen=True, slots=True)
class CaSpec:
    """One ACME CA a certificate may be issued by (issue 17): one entry of an ordered CA list.

    ``directory_url`` is the CA's RFC 8555 directory; ``eab_key_id`` and
    ``eab_hmac_key_secret_id`` the External Account Binding key id and the OCID of the Vault
    secret holding its HMAC key (never the key), both None without EAB. ``profile`` and
    ``preferred_chain``, when set, replace the certificate's for orders at this CA (profile and
    root names are each CA's own).
    """

    directory_url: str
    eab_key_id: str | None = None
    eab_hmac_key_secret_id: str | None = None
    profile: str | None = None
    preferred_chain: str | None = None


@dataclass(frozen=True, slots=True)
class CertificateSpec:
    """What the operator asked for: one certificate, identified by ``name``.

    ``dns_names`` keeps the configured order; the first name becomes the CSR's common name when it
    fits (64 characters). ``profile`` is an ACME profile name (draft-ietf-acme-profiles) or None
    for the CA's default. ``preferred_chain`` is the issuer common name of the chain to choose
    among the CA's alternates. ``reuse_key`` keeps the previous private key across renewals.
    ``key_type`` None is the configuration's ``auto``: the renewer chooses one the targets'
    clients can use (:mod:`renewer.key_choice`); the orchestrator resolves it before the policy,
    the key and the order see the spec.
    """

    name: str
    dns_names: tuple[str, ...]
    key_type: KeyType | None = None
    profile: str | None = None
    preferred_chain: str | None = None
    reuse_key: bool = False
    # How the CA validates the names (renewer.dns_names); dns-01 writes its records into the OCI
    # DNS zone ``dns_zone_id``.
    challenge: ChallengeType = ChallengeType.HTTP_01
    dns_zone_id: str | None = None
    # The CAs to order from, first choice first (renewer.ca_choice); empty: the issuer's own CA.
    cas: tuple[CaSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class CurrentCertificate:
    """The newest certificate we hold for a spec, as parsed from its PEM plus stored metadata.

    ``profile`` cannot be read from the certificate itself; it is what the order asked for and
    is recorded beside the certificate. ``ari_cert_id`` is the RFC 9773 CertID.
    """

    serial_hex: str
    not_before: datetime
    not_after: datetime
    dns_names: frozenset[str]
    key_type: KeyType
    ari_cert_id: str | None = None
    profile: str | None = None

    @property
    def lifetime(self) -> timedelta:
        """Validity period as the certificate states it."""
        return self.not_after - self.not_before


@dataclass(frozen=True, slots=True)
class RenewalInfo:
    """An ACME Renewal Information answer (RFC 9773 section 4.2) plus our chosen instant.

    ``selected_time`` is a uniformly random instant inside the suggested window, chosen once when
    the answer is fetched and kept until the next fetch, so that re-evaluating the policy does not
    re-roll the dice on every run (which would bias renewals early). ``retry_after`` is when the
    CA wants to be asked again.
    """

    window_start: datetime
    window_end: datetime
    selected_time: datetime
    retry_after: datetime
    explanation_url: str | None = None


@dataclass(frozen=True, slots=True)
class FailureHistory:
    """Consecutive failed attempts for one certificate; reset by a success.

    ``cost_free``: the last failure never reached the CA (the http-01 self-check failed before
    any challenge was answered), so it spent none of the CA's failed-validation allowance and
    the short backoff applies (:func:`renewer.policy.backoff_until`).
    """

    consecutive_failures: int = 0
    last_failure_at: datetime | None = None
    cost_free: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer. ``renew`` is what to do; ``reason`` is the stable why.

    ``next_check`` is the planned renewal time (``NotDue``: the ARI selected time or the start of
    the lifetime window, whichever is earlier) or the end of a backoff (``BackingOff``); None
    when renewal is due now. With ARI, a run up to one check interval before it already renews.
    """

    renew: bool
    reason: Reason
    message: str
    next_check: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """What a CA returned for one order: the chosen chain (leaf first) and where it came from."""

    fullchain_pem: str
    order_url: str
    account_url: str
    serial_hex: str
    not_before: datetime
    not_after: datetime
    issuer: str
    alternate_chains: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    # The directory of the CA that issued it (None: the issuer's only CA), and the CAs tried
    # before it that failed on their side (renewer.ca_choice), first choice first.
    directory_url: str | None = None
    passed_over: tuple[CaFailure, ...] = ()


@dataclass(frozen=True, slots=True)
class CaFailure:
    """A CA that failed on its side in one attempt (renewer.ca_choice): which, when, and why.

    ``error_type`` is the renewer error's class name; ``problem_type`` the ACME problem type
    when there was one; ``retry_after`` the seconds the CA asked us to wait, when it said so.
    """

    directory_url: str
    error_type: str
    problem_type: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class StoredCertificate:
    """One issued certificate as kept in the certificate store (one Vault secret version).

    ``private_key_pem`` is secret: left out of ``repr``, never logged, never in a report.
    ``version`` is the store's version number (the Vault secret version), the handle for rollback.
    """

    version: int
    fullchain_pem: str
    private_key_pem: str = field(repr=False)
    serial_hex: str
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    key_type: KeyType
    profile: str | None = None
    ari_cert_id: str | None = None
    account_url: str | None = None
    order_url: str | None = None
    # The directory of the CA that issued it (issue 17); None for versions stored before it
    # was recorded (renewer.ca_choice.issuing_ca then matches the account URL's origin).
    directory_url: str | None = None


@dataclass(frozen=True, slots=True)
class PendingOrder:
    """An ACME order that was created but whose certificate is not stored yet.

    Written to the certificate store right after newOrder, before any challenge is answered, so
    that a run killed anywhere between the order and STORE is finished by the next run with the
    same order (no second order, no second certificate counted against the CA's duplicate
    limit). ``private_key_pem`` is the key the order's CSR is made from: secret, left out of
    ``repr``, kept only where certificates' keys are kept. ``version`` is the store's version
    number of the record (0 before it is stored).
    """

    order_url: str
    account_url: str
    private_key_pem: str = field(repr=False)
    dns_names: tuple[str, ...]
    key_type: KeyType
    profile: str | None
    created_at: datetime
    version: int = 0


@dataclass(frozen=True, slots=True)
class ListenerTarget:
    """Deploy to these HTTPS listeners of one classic OCI Load Balancer."""

    load_balancer_id: str
    listener_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CertificateServiceTarget:
    """Deploy as a new imported version of an OCI Certificates-service certificate.

    Listeners that reference it through ``certificateIds`` follow its CURRENT version.
    ``load_balancer_ids``: load balancers (besides those of the configuration's listener
    targets) whose listeners VERIFY looks through for ones referencing the certificate.
    """

    certificate_id: str
    load_balancer_ids: tuple[str, ...] = ()


Target = ListenerTarget | CertificateServiceTarget


@dataclass(frozen=True, slots=True)
class ListenerTls:
    """What an HTTPS listener's clients can negotiate, as OCI applies its settings.

    ``suite`` is the cipher suite in effect (``oci-default-ssl-cipher-suite-v1`` when none is
    named); ``protocols`` the TLS versions (TLSv1.2 alone when none are named); ``ciphers`` the
    suite's ciphers, None when they are not known (``oci-customized-ssl-cipher-suite``).
    """

    load_balancer_id: str
    listener: str
    suite: str
    protocols: tuple[str, ...]
    ciphers: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class DeployedTarget:
    """What a deployment did to one target, for the report and for retiring old bundles."""

    target: Target
    bundle_name: str | None  # LB certificate bundle name; None for a Certificates-service target
    changed: bool  # False when the target already served this certificate (idempotent re-run)
    work_requests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One certificate to order: the names, a CSR for them, and the optional extras.

    ``replaces`` is the ARI CertID of the certificate being renewed (same account only);
    ``preferred_chain`` the issuer CN of the root to prefer among alternate chains.
    ``challenge`` is the challenge to answer; ``dns_zone_id`` the OCI DNS zone of dns-01.
    """

    dns_names: tuple[str, ...]
    csr_pem: bytes
    profile: str | None = None
    replaces: str | None = None
    preferred_chain: str | None = None
    challenge: ChallengeType = ChallengeType.HTTP_01
    dns_zone_id: str | None = None
    # The CAs to try, first choice first (empty: the issuer's only CA), and the directory of
    # the CA that issued the certificate ``replaces`` names: only that CA is sent ``replaces``.
    cas: tuple[CaSpec, ...] = ()
    replaces_ca: str | None = None
