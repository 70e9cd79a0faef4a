"""The renewer's configuration: one JSON document, validated before anything else happens.

The document lives inline in the function's configuration (``RENEWER_CONFIG``) or as an object in
the private bucket; either way it is parsed here into frozen values. Every problem is reported at
once, each naming the JSON path of the field and the fix, so an operator fixes them in one pass.
Unknown keys are errors (a typo must not silently disable something). A problem never repeats
the value (one pasted into the wrong field may be a key): it describes it — its type, its length,
that it is not an OCID — with :mod:`renewer.untrusted`, which also decodes the text within bounds.
DNS names are checked by :mod:`renewer.hostnames`. Pure: no I/O.

Example (every optional key shown with its default)::

    {
      "acme": {
        "directoryUrl": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "contact": ["ops@example.com"],
        "termsOfServiceAgreed": true,
        "eab": null,            # {"keyId": "...", "hmacKeySecretId": "ocid1.vaultsecret..."}
        # or, instead of directoryUrl + eab, the CAs to try in order (issue 17; renewer.ca_choice):
        # "cas": ["https://...", {"directoryUrl": "https://...", "eab": {...},
        #                         "profile": null, "preferredChain": null}],
        "selfCheck": true
      },
      "oci": {
        "compartmentId": "ocid1.compartment.oc1..",
        "vaultId": "ocid1.vault.oc1..", "keyId": "ocid1.key.oc1..",
        "challengeBucket": "acme-challenges", "stateBucket": "acme-state",
        "namespace": null,                  # looked up when null
        "namePrefix": "acme"
      },
      "renewal": {"retention": 10, "keepPreviousBundles": 1, "verifyTls": true,
                  "orphanGraceDays": 30, "revokeOnRemoval": false,
                  "rateLimits": "auto"},   # "off", or {"ordersPerAccount": 300,
                  # "orderWindowMinutes": 180, "certificatesPerDomain": 50, "domainWindowDays": 7}
      "operations": {
        "metrics": null,        # off; {"enabled": true, "namespace": "acme_renewer",
                                #       "compartmentId": null (= oci.compartmentId)}
        "notifications": null,  # off; {"topicId": "ocid1.onstopic...", "onSuccess": false,
                                #       "expiryWarningDays": 14}
        "journal": {"enabled": true, "retentionDays": 90, "maxRecords": 1000}
      },
      "certificates": [
        {"name": "shop", "dnsNames": ["shop.example.com", "www.shop.example.com"],
         "keyType": "auto", "profile": null, "preferredChain": null, "reuseKey": false,
         "cas": null,          # this certificate's own CA list (same form as acme.cas)
         "targets": [{"loadBalancerId": "ocid1.loadbalancer.oc1..", "listeners": ["https"]},
                     {"certificateId": "ocid1.certificate.oc1.."}]}
      ]
    }
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from renewer import hostnames, naming
from renewer.dns_names import ChallengeType
from renewer.errors import ConfigError
from renewer.model import (
    CaSpec,
    CertificateServiceTarget,
    CertificateSpec,
    KeyType,
    ListenerTarget,
    Target,
)
from renewer.rate_limits import Limits
from renewer.untrusted import (
    UnreadableJson,
    decode_json,
    describe,
    json_kind,
    key_name,
    quote,
    shown_choice,
)

__all__ = [
    "AcmeSettings",
    "Config",
    "ExternalAccountBindingRef",
    "JournalSettings",
    "ManagedCertificate",
    "MetricsSettings",
    "NotificationSettings",
    "OciResources",
    "OperationsSettings",
    "RenewalSettings",
    "json_kind",
    "load_config",
    "parse_config",
]

T = TypeVar("T")

# keyType "auto": the renewer chooses per run a key type the targets' clients can use
# (renewer.key_choice): ECDSA P-256 where every target serves it, else RSA 2048.
KEY_TYPE_AUTO = "auto"
MAX_CAS = 5  # a fallback list: the first CA and a few others; more only delays a failing run
MAX_NAMES = 100  # Let's Encrypt's classic profile; tlsserver/shortlived allow 25 (the CA says so)
# Vault keeps 30 secret versions in active use; 3 stay free for a renewal's pending-order record,
# its certificate and the last record (renewer.adapters.oci_vault), so 27 certificates at most.
MAX_RETENTION = 27
# OCI caps an inline configuration at 4 KB; an object holding hundreds of certificates stays far
# below this. The cap bounds the work a wrong object (a log, an image) can cause.
MAX_CONFIG_CHARS = 1_000_000
# Problems listed in one error; the rest are counted. A list of 20,000 bad items is still one
# readable message, and a bounded log line.
MAX_PROBLEMS = 50
_EMAIL = re.compile(r"[^@\s:]+@[^@\s:]+\.[^@\s:]+")
_PROFILE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_BUCKET = re.compile(r"[A-Za-z0-9_.-]{1,256}")
_BACKEND_SET = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_LISTENER = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_EAB_KEY_ID = re.compile(r"[!-~]{1,256}")  # printable ASCII without spaces
_OS_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_CHAIN_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")  # one line of text: an issuer's CN
_OCID = re.compile(r"ocid1\.([a-z0-9]+)\.[a-z0-9-]*\.[a-z0-9-]*\.[A-Za-z0-9._-]+")
# A DNS zone's resource type has a hyphen (ocid1.dns-zone.oc1..<id>), which _OCID does not take.
_DNS_ZONE_OCID = re.compile(r"ocid1\.dns-zone\.[a-z0-9-]*\.[a-z0-9-]*\.[A-Za-z0-9._-]+")
# OCI Monitoring: "starts with an alphabetical character and includes only alphanumeric
# characters and underscores"; custom metrics may not use the prefixes oci_ and oracle_.
_METRIC_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,255}")
_RESERVED_NAMESPACE_PREFIXES = ("oci_", "oracle_")
DEFAULT_METRIC_NAMESPACE = "acme_renewer"
DEFAULT_EXPIRY_WARNING_DAYS = 14
DEFAULT_JOURNAL_DAYS = 90
DEFAULT_JOURNAL_RECORDS = 1000
# A certificate removed from the configuration is retired after this grace (renewer.orphans):
# long enough to notice and undo a mistaken removal; at most a year.
DEFAULT_ORPHAN_GRACE_DAYS = 30
MAX_ORPHAN_GRACE_DAYS = 365


@dataclass(frozen=True, slots=True)
class ExternalAccountBindingRef:
    """EAB key id plus the OCID of the Vault secret holding the HMAC key (never the key)."""

    key_id: str
    hmac_key_secret_id: str


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    """Where and how to talk ACME."""

    directory_url: str
    contact: tuple[str, ...]
    terms_of_service_agreed: bool
    eab: ExternalAccountBindingRef | None
    self_check: bool
    # The CAs to try in order (issue 17); the first is ``directory_url`` with ``eab``. Every
    # certificate without its own ``cas`` uses this list.
    cas: tuple[CaSpec, ...] = ()

    def all_cas(self) -> tuple[CaSpec, ...]:
        """The global list; today's single-CA form is the list of one."""
        if self.cas:
            return self.cas
        eab = self.eab
        return (
            CaSpec(
                self.directory_url,
                eab.key_id if eab else None,
                eab.hmac_key_secret_id if eab else None,
            ),
        )


@dataclass(frozen=True, slots=True)
class OciResources:
    """The tenancy resources the renewer uses."""

    compartment_id: str
    vault_id: str
    key_id: str
    challenge_bucket: str
    state_bucket: str
    namespace: str | None
    name_prefix: str
    # The token backend set (Terraform's "<prefix>-tokens") the renewer routes the challenge
    # path to on each target load balancer's port-80 listener; None: the route is not managed.
    challenge_backend_set: str | None = None


@dataclass(frozen=True, slots=True)
class RenewalSettings:
    """Retention and verification knobs."""

    retention: int
    keep_previous_bundles: int
    verify_tls: bool
    # A certificate that left the configuration is retired this many days after a run first
    # noticed it (renewer.orphans); revoke what it left behind first (off: issue 17).
    orphan_grace_days: int = DEFAULT_ORPHAN_GRACE_DAYS
    revoke_on_removal: bool = False
    # The CA's limits on first issuances (renewer.rate_limits): "auto" (Let's Encrypt's for its
    # production directory, none elsewhere), "off", or explicit limits.
    rate_limits: Limits | str = "auto"


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    """Custom metrics posted to OCI Monitoring after each run (off unless configured).

    ``compartment_id`` None means the configuration's ``oci.compartmentId``.
    """

    enabled: bool = False
    namespace: str = DEFAULT_METRIC_NAMESPACE
    compartment_id: str | None = None


@dataclass(frozen=True, slots=True)
class NotificationSettings:
    """Messages published to an OCI Notifications topic (off unless a topic is configured)."""

    topic_id: str | None = None
    on_success: bool = False
    expiry_warning_days: int = DEFAULT_EXPIRY_WARNING_DAYS

    @property
    def enabled(self) -> bool:
        """Whether a topic is configured."""
        return self.topic_id is not None


@dataclass(frozen=True, slots=True)
class JournalSettings:
    """The run journal in the private state bucket (on by default)."""

    enabled: bool = True
    retention_days: int = DEFAULT_JOURNAL_DAYS
    max_records: int = DEFAULT_JOURNAL_RECORDS


@dataclass(frozen=True, slots=True)
class OperationsSettings:
    """What each run reports to operators: metrics, notifications, the run journal."""

    metrics: MetricsSettings = MetricsSettings()
    notifications: NotificationSettings = NotificationSettings()
    journal: JournalSettings = JournalSettings()


@dataclass(frozen=True, slots=True)
class ManagedCertificate:
    """One configured certificate: what to issue and where to deploy it."""

    spec: CertificateSpec
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    acme: AcmeSettings
    oci: OciResources
    renewal: RenewalSettings
    certificates: tuple[ManagedCertificate, ...]
    operations: OperationsSettings = OperationsSettings()

    def certificate(self, name: str) -> ManagedCertificate:
        """The configured certificate ``name``; ConfigError listing the known names."""
        for managed in self.certificates:
            if managed.spec.name == name:
                return managed
        known = ", ".join(m.spec.name for m in self.certificates) or "none"
        # A configured name matches naming.CERT_NAME_RE; anything else is described, not shown.
        shown = quote(name) if naming.CERT_NAME_RE.fullmatch(name) else describe(name)
        msg = f"no certificate named {shown} is configured (configured: {known})"
        raise ConfigError(msg)


def load_config(text: str) -> Config:
    """Parse and validate a configuration document (JSON text).

    Raises:
        ConfigError: listing every problem, one per line, each with its JSON path and the fix.

    """
    if len(text) > MAX_CONFIG_CHARS:
        msg = (
            f"the configuration is {len(text):,} characters long; at most {MAX_CONFIG_CHARS:,}"
            " are accepted — is this the configuration document?"
        )
        raise ConfigError(msg)
    try:
        document = decode_json(text)
    except UnreadableJson as exc:
        msg = f"the configuration is not valid JSON: it {exc}"
        raise ConfigError(msg) from None
    return parse_config(document)


def parse_config(document: object) -> Config:
    """Validate an already-decoded configuration document (see :func:`load_config`)."""
    check = _Checker()
    root = check.mapping(
        document,
        "$",
        required={"acme", "oci", "certificates"},
        optional={"renewal", "operations"},
    )
    config = None
    if root is not None:
        acme = _acme(check, root.get("acme"), "acme")
        oci = _oci(check, root.get("oci"), "oci")
        renewal = _renewal(check, root.get("renewal", {}), "renewal")
        certificates = _certificates(check, root.get("certificates"), "certificates")
        operations = _operations(check, root.get("operations", {}), "operations")
        if acme and oci and renewal and certificates is not None and operations:
            _check_one_account_per_ca(check, acme, certificates)
            config = Config(acme, oci, renewal, _with_cas(certificates, acme), operations)
    if check.problems or config is None:
        count = check.count
        lines = "\n".join(f"- {p}" for p in check.problems)
        if count > len(check.problems):
            lines += f"\n- ... and {count - len(check.problems):,} more"
        msg = f"the configuration has {count:,} problem{'s' if count != 1 else ''}:\n{lines}"
        raise ConfigError(msg)
    return config


def _check_one_account_per_ca(
    check: _Checker, acme: AcmeSettings, certificates: tuple[ManagedCertificate, ...]
) -> None:
    """Refuse one CA directory with two different EAB bindings: there is one account per CA."""
    first: dict[str, tuple[str, tuple[str | None, str | None]]] = {}
    lists = [("acme.cas" if acme.cas else "acme", acme.all_cas())]
    lists += [(f"certificates[{i}].cas", m.spec.cas) for i, m in enumerate(certificates)]
    for where, cas in lists:
        for index, ca in enumerate(cas):
            eab = (ca.eab_key_id, ca.eab_hmac_key_secret_id)
            path = f"{where}[{index}].eab" if where != "acme" else "acme.eab"
            seen = first.setdefault(ca.directory_url, (path, eab))
            if seen[1] != eab:
                check.fail(
                    path,
                    f"differs from {seen[0]} for the same CA directory; one ACME account is kept"
                    " per CA, so give every entry of that directory the same eab (or none)",
                )


def _with_cas(
    certificates: tuple[ManagedCertificate, ...], acme: AcmeSettings
) -> tuple[ManagedCertificate, ...]:
    """Each certificate with its CA list: its own ``cas``, else the global ``acme`` list."""
    default = acme.all_cas()
    return tuple(
        m if m.spec.cas else ManagedCertificate(dataclasses.replace(m.spec, cas=default), m.targets)
        for m in certificates
    )


class _Checker:
    """Collects problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.count = 0

    def fail(self, path: str, message: str) -> None:
        # Paths are built from known keys and indexes, and messages describe values without
        # echoing them (renewer.untrusted): nothing here can forge a line or leak a secret.
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{path}: {message}")

    def mapping(
        self,
        value: object,
        path: str,
        *,
        required: set[str],
        optional: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.fail(path, f"must be an object, not {json_kind(value)}")
            return None
        unknown = set(value) - required - optional
        for key in sorted(unknown)[:MAX_PROBLEMS]:
            allowed = ", ".join(sorted(required | optional))
            # A key is a name, so it is shown — quoted, escaped and cut (renewer.untrusted).
            self.fail(f"{path}.{key_name(key)}", f"unknown key; the allowed keys are: {allowed}")
        self.count += max(0, len(unknown) - MAX_PROBLEMS)
        for key in sorted(required - set(value)):
            self.fail(f"{path}.{key}", "is required")
        return value

    def typed(self, value: object, path: str, kind: type[T], what: str) -> T | None:
        # bool is an int in Python; a JSON true is never a count.
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.fail(path, f"must be {what}, not {json_kind(value)}")
        return None

    def string(
        self, value: object, path: str, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str | None:
        text = self.typed(value, path, str, "a string")
        if text is None:
            return None
        if pattern is not None and not pattern.fullmatch(text):
            self.fail(path, f"{describe(text)} is not valid{': ' + hint if hint else ''}")
            return None
        return text

    def ocid(self, value: object, path: str, *types: str) -> str | None:
        text = self.typed(value, path, str, "an OCID string")
        if text is None:
            return None
        match = _OCID.fullmatch(text)
        if match is None or match.group(1) not in types:
            expected = " or ".join(f"ocid1.{t}...." for t in types)
            # The resource type of a well-formed OCID is a lower-case word, safe to show.
            found = (
                f"a {match.group(1)} OCID"
                if match is not None
                else f"{describe(text)}, not an OCID"
            )
            self.fail(path, f"is not a {'/'.join(types)} OCID (expected {expected}; found {found})")
            return None
        return text

    def integer(self, value: object, path: str, low: int, high: int) -> int | None:
        number = self.typed(value, path, int, "an integer")
        if number is None:
            return None
        if not low <= number <= high:
            self.fail(path, f"must be between {low} and {high}, not {number}")
            return None
        return number

    def each(
        self,
        value: object,
        path: str,
        parse: Callable[[object, str], T | None],
        *,
        minimum: int,
        maximum: int | None = None,
    ) -> list[T] | None:
        items = self.typed(value, path, list, "a list")
        if items is None:
            return None
        if len(items) < minimum:
            self.fail(path, f"must hold at least {minimum} item{'s' if minimum != 1 else ''}")
        if maximum is not None and len(items) > maximum:
            # Refused before any item is parsed: the work stays bounded by the limit.
            self.fail(path, f"holds {len(items):,} items; at most {maximum} are allowed")
            return None
        parsed = [parse(item, f"{path}[{i}]") for i, item in enumerate(items)]
        return [p for p in parsed if p is not None]


def _acme(check: _Checker, value: object, path: str) -> AcmeSettings | None:
    section = check.mapping(
        value,
        path,
        required=set(),
        optional={"directoryUrl", "cas", "contact", "termsOfServiceAgreed", "eab", "selfCheck"},
    )
    if section is None:
        return None
    cas = _acme_cas(check, section, path)
    contact = check.each(
        section.get("contact", []),
        f"{path}.contact",
        lambda v, p: check.string(v, p, _EMAIL, "use a plain e-mail address like ops@example.com"),
        minimum=0,
    )
    tos = check.typed(
        section.get("termsOfServiceAgreed", True),
        f"{path}.termsOfServiceAgreed",
        bool,
        "true or false",
    )
    self_check = check.typed(
        section.get("selfCheck", True), f"{path}.selfCheck", bool, "true or false"
    )
    if not cas or contact is None or tos is None or self_check is None:
        return None
    first = cas[0]
    eab = (
        ExternalAccountBindingRef(first.eab_key_id, first.eab_hmac_key_secret_id)
        if first.eab_key_id is not None and first.eab_hmac_key_secret_id is not None
        else None
    )
    return AcmeSettings(first.directory_url, tuple(contact), tos, eab, self_check, cas)


def _acme_cas(check: _Checker, section: Mapping[str, Any], path: str) -> tuple[CaSpec, ...] | None:
    """``acme.cas`` (the CA list), or today's single ``acme.directoryUrl`` + ``acme.eab``.

    The single form is the list of one; writing both is refused, so a CA list never silently
    loses its first entry to a leftover ``directoryUrl``.
    """
    if "cas" in section:
        for key in ("directoryUrl", "eab"):
            if key in section:
                check.fail(
                    f"{path}.{key}",
                    "cannot be combined with acme.cas: write the first CA as the first entry of"
                    " acme.cas (with its own eab) and remove this key",
                )
        return _ca_list(check, section["cas"], f"{path}.cas")
    if "directoryUrl" not in section:
        check.fail(
            f"{path}.directoryUrl",
            "is required (or acme.cas, the list of CAs to try in order), e.g."
            " https://acme-v02.api.letsencrypt.org/directory",
        )
        return None
    url = _directory_url(check, section["directoryUrl"], f"{path}.directoryUrl")
    eab_ok, eab = _eab(check, section.get("eab"), f"{path}.eab")
    if url is None or not eab_ok:
        return None
    return (CaSpec(url, eab.key_id if eab else None, eab.hmac_key_secret_id if eab else None),)


def _ca_list(check: _Checker, value: object, path: str) -> tuple[CaSpec, ...] | None:
    """An ordered CA list (``acme.cas`` or a certificate's ``cas``): at least one, no repeats."""
    parsed = check.each(
        value, path, lambda v, p: _ca_entry(check, v, p), minimum=1, maximum=MAX_CAS
    )
    if parsed is None:
        return None
    seen: dict[str, int] = {}
    for index, ca in enumerate(parsed):
        if ca.directory_url in seen:
            check.fail(
                f"{path}[{index}].directoryUrl",
                f"is the same CA as {path}[{seen[ca.directory_url]}]; list each CA once",
            )
        seen.setdefault(ca.directory_url, index)
    if isinstance(value, list) and len(parsed) != len(value):
        return None
    return tuple(parsed) if len(seen) == len(parsed) else None


def _ca_entry(check: _Checker, value: object, path: str) -> CaSpec | None:
    """One CA: a directory URL string, or ``{"directoryUrl", "eab", "profile", ...}``."""
    if isinstance(value, str):
        url = _directory_url(check, value, path)
        return CaSpec(url) if url is not None else None
    section = check.mapping(
        value, path, required={"directoryUrl"}, optional={"eab", "profile", "preferredChain"}
    )
    if section is None:
        return None
    url = _directory_url(check, section.get("directoryUrl"), f"{path}.directoryUrl")
    eab_ok, eab = _eab(check, section.get("eab"), f"{path}.eab")
    profile_ok, profile = _profile(check, section.get("profile"), f"{path}.profile")
    chain_ok, chain = _preferred_chain(
        check, section.get("preferredChain"), f"{path}.preferredChain"
    )
    if url is None or not eab_ok or not profile_ok or not chain_ok:
        return None
    return CaSpec(
        directory_url=url,
        eab_key_id=eab.key_id if eab else None,
        eab_hmac_key_secret_id=eab.hmac_key_secret_id if eab else None,
        profile=profile,
        preferred_chain=chain,
    )


def _directory_url(check: _Checker, value: object, path: str) -> str | None:
    url = check.string(value, path)
    if url is not None and not url.startswith("https://"):
        check.fail(
            path,
            f"must be an https:// ACME directory URL (found {describe(url)} not starting with"
            " https://), e.g. https://acme-staging-v02.api.letsencrypt.org/directory",
        )
        return None
    return url


def _eab(
    check: _Checker, value: object, path: str
) -> tuple[bool, ExternalAccountBindingRef | None]:
    """An EAB reference: (valid, the reference); (True, None) when absent or null."""
    if value is None:
        return True, None
    eab_section = check.mapping(value, path, required={"keyId", "hmacKeySecretId"})
    if eab_section is None:
        return False, None
    key_id = check.string(
        eab_section.get("keyId"),
        f"{path}.keyId",
        _EAB_KEY_ID,
        "the key id your CA gave you: printable characters, no spaces, at most 256",
    )
    secret = check.ocid(
        eab_section.get("hmacKeySecretId"), f"{path}.hmacKeySecretId", "vaultsecret"
    )
    if "hmacKey" in eab_section:
        check.fail(f"{path}.hmacKey", "never put the key here; store it in a Vault secret")
    if key_id and secret:
        return True, ExternalAccountBindingRef(key_id, secret)
    return False, None


def _profile(check: _Checker, value: object, path: str) -> tuple[bool, str | None]:
    """(valid, the profile name); (True, None) when absent or null."""
    if value is None:
        return True, None
    profile = check.string(value, path, _PROFILE, "an ACME profile name such as 'tlsserver'")
    return profile is not None, profile


def _preferred_chain(check: _Checker, value: object, path: str) -> tuple[bool, str | None]:
    """(valid, the chain's root name); (True, None) when absent or null."""
    if value is None:
        return True, None
    chain = check.string(
        value,
        path,
        _CHAIN_NAME,
        "the common name of the chain's root, one line of at most 200 characters, e.g."
        " 'ISRG Root X1'",
    )
    return chain is not None, chain


def _oci(check: _Checker, value: object, path: str) -> OciResources | None:
    section = check.mapping(
        value,
        path,
        required={"compartmentId", "vaultId", "keyId", "challengeBucket", "stateBucket"},
        optional={"namespace", "namePrefix", "challengeBackendSet"},
    )
    if section is None:
        return None
    backend_set = None
    if section.get("challengeBackendSet") is not None:
        backend_set = check.string(
            section["challengeBackendSet"],
            f"{path}.challengeBackendSet",
            _BACKEND_SET,
            "the name of the token server's backend set on the load balancers (letters,"
            " digits, '-', '_', '.'), or null when you route the challenge path yourself",
        )
    bucket_hint = "bucket names use letters, digits, '-', '_' and '.'"
    fields = {
        "compartment": check.ocid(
            section.get("compartmentId"), f"{path}.compartmentId", "compartment", "tenancy"
        ),
        "vault": check.ocid(section.get("vaultId"), f"{path}.vaultId", "vault"),
        "key": check.ocid(section.get("keyId"), f"{path}.keyId", "key"),
        "challenge": check.string(
            section.get("challengeBucket"), f"{path}.challengeBucket", _BUCKET, bucket_hint
        ),
        "state": check.string(
            section.get("stateBucket"), f"{path}.stateBucket", _BUCKET, bucket_hint
        ),
    }
    if fields["challenge"] and fields["challenge"] == fields["state"]:
        check.fail(
            f"{path}.stateBucket",
            "must differ from challengeBucket: the token server may read every challenge object,"
            " and state must stay private",
        )
    namespace = None
    if section.get("namespace") is not None:
        namespace = check.string(
            section["namespace"],
            f"{path}.namespace",
            _OS_NAMESPACE,
            "the tenancy's Object Storage namespace (letters, digits, '-', '_'), or null to look"
            " it up",
        )
    prefix = check.string(section.get("namePrefix", naming.DEFAULT_PREFIX), f"{path}.namePrefix")
    if prefix is not None:
        try:
            naming.check_prefix(prefix)
        except ConfigError as exc:
            check.fail(f"{path}.namePrefix", str(exc))
            prefix = None
    if None in fields.values() or prefix is None or fields["challenge"] == fields["state"]:
        return None
    return OciResources(
        compartment_id=str(fields["compartment"]),
        vault_id=str(fields["vault"]),
        key_id=str(fields["key"]),
        challenge_bucket=str(fields["challenge"]),
        state_bucket=str(fields["state"]),
        namespace=namespace,
        name_prefix=prefix,
        challenge_backend_set=backend_set,
    )


def _renewal(check: _Checker, value: object, path: str) -> RenewalSettings | None:
    section = check.mapping(
        value,
        path,
        required=set(),
        optional={
            "retention",
            "keepPreviousBundles",
            "verifyTls",
            "orphanGraceDays",
            "revokeOnRemoval",
            "rateLimits",
        },
    )
    if section is None:
        return None
    retention = check.integer(section.get("retention", 10), f"{path}.retention", 2, MAX_RETENTION)
    keep = check.integer(
        section.get("keepPreviousBundles", 1), f"{path}.keepPreviousBundles", 0, 10
    )
    verify = check.typed(section.get("verifyTls", True), f"{path}.verifyTls", bool, "true or false")
    grace = check.integer(
        section.get("orphanGraceDays", DEFAULT_ORPHAN_GRACE_DAYS),
        f"{path}.orphanGraceDays",
        1,
        MAX_ORPHAN_GRACE_DAYS,
    )
    revoke = check.typed(
        section.get("revokeOnRemoval", False), f"{path}.revokeOnRemoval", bool, "true or false"
    )
    limits = _rate_limits(check, section.get("rateLimits", "auto"), f"{path}.rateLimits")
    if (
        retention is None
        or keep is None
        or verify is None
        or grace is None
        or revoke is None
        or limits is None
    ):
        return None
    return RenewalSettings(retention, keep, verify, grace, revoke, limits)


def _rate_limits(check: _Checker, value: object, path: str) -> Limits | str | None:
    if value in ("auto", "off"):
        return str(value)
    if not isinstance(value, Mapping):
        check.fail(path, f'must be "auto", "off" or an object of limits, not {json_kind(value)}')
        return None
    keys = ("ordersPerAccount", "orderWindowMinutes", "certificatesPerDomain", "domainWindowDays")
    section = check.mapping(value, path, required=set(), optional=set(keys))
    if section is None:
        return None
    defaults = (300, 180, 50, 7)
    highs = (1_000_000, 60 * 24 * 31, 1_000_000, 366)
    numbers = [
        check.integer(section.get(key, default), f"{path}.{key}", 1, high)
        for key, default, high in zip(keys, defaults, highs, strict=True)
    ]
    orders, minutes, certificates, days = numbers
    if orders is None or minutes is None or certificates is None or days is None:
        return None
    return Limits(orders, timedelta(minutes=minutes), certificates, timedelta(days=days))


def _operations(check: _Checker, value: object, path: str) -> OperationsSettings | None:
    section = check.mapping(
        value, path, required=set(), optional={"metrics", "notifications", "journal"}
    )
    if section is None:
        return None
    metrics = _metrics(check, section.get("metrics"), f"{path}.metrics")
    notifications = _notifications(check, section.get("notifications"), f"{path}.notifications")
    journal = _journal(check, section.get("journal", {}), f"{path}.journal")
    if metrics is None or notifications is None or journal is None:
        return None
    return OperationsSettings(metrics, notifications, journal)


def _metrics(check: _Checker, value: object, path: str) -> MetricsSettings | None:
    if value is None:
        return MetricsSettings()  # not configured: no metrics
    section = check.mapping(
        value, path, required=set(), optional={"enabled", "namespace", "compartmentId"}
    )
    if section is None:
        return None
    enabled = check.typed(section.get("enabled", True), f"{path}.enabled", bool, "true or false")
    namespace = check.string(
        section.get("namespace", DEFAULT_METRIC_NAMESPACE),
        f"{path}.namespace",
        _METRIC_NAMESPACE,
        "a Monitoring namespace starts with a letter and holds letters, digits and '_'"
        " (at most 256), e.g. acme_renewer",
    )
    if namespace is not None and namespace.lower().startswith(_RESERVED_NAMESPACE_PREFIXES):
        check.fail(
            f"{path}.namespace",
            "uses a prefix OCI reserves for its own metrics (oci_, oracle_);"
            " choose another, e.g. acme_renewer",
        )
        namespace = None
    compartment = None
    if section.get("compartmentId") is not None:
        compartment = check.ocid(
            section["compartmentId"], f"{path}.compartmentId", "compartment", "tenancy"
        )
        if compartment is None:
            return None
    if enabled is None or namespace is None:
        return None
    return MetricsSettings(enabled=enabled, namespace=namespace, compartment_id=compartment)


def _notifications(check: _Checker, value: object, path: str) -> NotificationSettings | None:
    if value is None:
        return NotificationSettings()  # not configured: no notifications
    section = check.mapping(
        value, path, required={"topicId"}, optional={"onSuccess", "expiryWarningDays"}
    )
    if section is None:
        return None
    topic = check.ocid(section.get("topicId"), f"{path}.topicId", "onstopic")
    on_success = check.typed(
        section.get("onSuccess", False), f"{path}.onSuccess", bool, "true or false"
    )
    days = check.integer(
        section.get("expiryWarningDays", DEFAULT_EXPIRY_WARNING_DAYS),
        f"{path}.expiryWarningDays",
        1,
        365,
    )
    if topic is None or on_success is None or days is None:
        return None
    return NotificationSettings(topic_id=topic, on_success=on_success, expiry_warning_days=days)


def _journal(check: _Checker, value: object, path: str) -> JournalSettings | None:
    section = check.mapping(
        value, path, required=set(), optional={"enabled", "retentionDays", "maxRecords"}
    )
    if section is None:
        return None
    enabled = check.typed(section.get("enabled", True), f"{path}.enabled", bool, "true or false")
    days = check.integer(
        section.get("retentionDays", DEFAULT_JOURNAL_DAYS),
        f"{path}.retentionDays",
        1,
        3650,
    )
    records = check.integer(
        section.get("maxRecords", DEFAULT_JOURNAL_RECORDS), f"{path}.maxRecords", 1, 100_000
    )
    if enabled is None or days is None or records is None:
        return None
    return JournalSettings(enabled=enabled, retention_days=days, max_records=records)


def _certificates(
    check: _Checker, value: object, path: str
) -> tuple[ManagedCertificate, ...] | None:
    parsed = check.each(value, path, lambda v, p: _certificate(check, v, p), minimum=1)
    if parsed is None:
        return None
    seen: dict[str, int] = {}
    for index, managed in enumerate(parsed):
        name = managed.spec.name
        if name in seen:
            check.fail(f"{path}[{index}].name", f"is already used by {path}[{seen[name]}]")
        seen.setdefault(name, index)
    _check_shared_targets(check, parsed, path)
    return tuple(parsed)


def _check_shared_targets(check: _Checker, parsed: list[ManagedCertificate], path: str) -> None:
    """Refuse two certificates on one listener or one Certificates-service certificate.

    They would take turns replacing each other on every run.
    """
    owners: dict[tuple[str, str], str] = {}
    for index, managed in enumerate(parsed):
        for target_index, target in enumerate(managed.targets):
            keys = (
                [(target.load_balancer_id, listener) for listener in target.listener_names]
                if isinstance(target, ListenerTarget)
                else [(target.certificate_id, "")]
            )
            for key_index, key in enumerate(keys):
                # Paths, not values: a listener name is shown by where it is written.
                here = f"{path}[{index}].targets[{target_index}]"
                here += f".listeners[{key_index}]" if key[1] else ".certificateId"
                owner = owners.get(key)
                if owner is not None and not owner.startswith(f"{path}[{index}]."):
                    check.fail(
                        here,
                        f"is already the target of {owner}; one certificate per listener",
                    )
                owners.setdefault(key, here)


def _certificate(check: _Checker, value: object, path: str) -> ManagedCertificate | None:
    section = check.mapping(
        value,
        path,
        required={"name", "dnsNames", "targets"},
        optional={"keyType", "profile", "preferredChain", "reuseKey", "challenge", "cas"},
    )
    if section is None:
        return None
    challenge = _challenge(check, section.get("challenge"), f"{path}.challenge")
    name = check.string(section.get("name"), f"{path}.name")
    if name is not None:
        try:
            naming.check_certificate_name(name)
        except ConfigError as exc:
            check.fail(f"{path}.name", str(exc))
            name = None
    names = _dns_names(
        check,
        section.get("dnsNames"),
        f"{path}.dnsNames",
        wildcards=challenge is not None and challenge[0].is_dns,
    )
    key_type_ok, key_type = _key_type(check, section.get("keyType", KEY_TYPE_AUTO), path)
    profile = None
    if section.get("profile") is not None:
        profile = check.string(
            section["profile"],
            f"{path}.profile",
            _PROFILE,
            "an ACME profile name such as 'tlsserver'",
        )
    chain = None
    if section.get("preferredChain") is not None:
        chain = check.string(
            section["preferredChain"],
            f"{path}.preferredChain",
            _CHAIN_NAME,
            "the common name of the chain's root, one line of at most 200 characters, e.g."
            " 'ISRG Root X1'",
        )
    reuse = check.typed(section.get("reuseKey", False), f"{path}.reuseKey", bool, "true or false")
    cas: tuple[CaSpec, ...] | None = ()
    if section.get("cas") is not None:
        cas = _ca_list(check, section["cas"], f"{path}.cas")
    targets: list[Target] | None = check.each(
        section.get("targets"), f"{path}.targets", functools.partial(_target, check), minimum=1
    )
    if targets:
        _check_target_overlap(check, targets, f"{path}.targets")
    if (
        name is None
        or names is None
        or not key_type_ok
        or reuse is None
        or challenge is None
        or not targets
        or cas is None
    ):
        return None
    spec = CertificateSpec(
        name=name,
        dns_names=names,
        key_type=key_type,
        profile=profile,
        preferred_chain=chain,
        reuse_key=reuse,
        challenge=challenge[0],
        dns_zone_id=challenge[1],
        cas=cas,
    )
    return ManagedCertificate(spec, tuple(targets))


def _challenge(  # noqa: PLR0911 - one return per way the field can be wrong
    check: _Checker, value: object, path: str
) -> tuple[ChallengeType, str | None] | None:
    """Parse ``challenge``: a challenge type, and the DNS zone for dns-01.

    ``"http-01"`` (default), ``"dns-persist-01"``, or for dns-01 an object
    ``{"type": "dns-01", "zoneId": "<OCI DNS zone OCID>"}`` (the zone its records go to).

    Returns the type and the zone OCID (None but for dns-01).
    """
    choices = ", ".join(c.value for c in ChallengeType)
    if value is None:
        return ChallengeType.HTTP_01, None
    if isinstance(value, Mapping):
        section = check.mapping(value, path, required={"type"}, optional={"zoneId"})
        if section is None:
            return None
        raw = check.string(section.get("type"), f"{path}.type")
        where = f"{path}.type"
    else:
        section, raw, where = {}, check.string(value, path), path
    if raw is None:
        return None
    try:
        kind = ChallengeType(raw)
    except ValueError:
        check.fail(where, f"{shown_choice(raw)} is not one of: {choices}")
        return None
    zone = section.get("zoneId")
    if kind is ChallengeType.DNS_01:
        if zone is None:
            check.fail(
                path,
                'dns-01 writes its TXT records into an OCI DNS zone: write {"type": "dns-01",'
                ' "zoneId": "<the zone\'s OCID>"} (or choose dns-persist-01, which needs no'
                " DNS access at renewal time)",
            )
            return None
        zone_id = check.string(
            zone, f"{path}.zoneId", _DNS_ZONE_OCID, "the OCID of an OCI DNS zone (ocid1.dns-zone.…)"
        )
        return (kind, zone_id) if zone_id is not None else None
    if zone is not None:
        check.fail(f"{path}.zoneId", f"is used by dns-01 only; remove it for {kind.value}")
        return None
    return kind, None


def _key_type(check: _Checker, value: object, path: str) -> tuple[bool, KeyType | None]:
    """``keyType``: (valid, the key type); None for ``auto`` (chosen per run from the targets)."""
    raw = check.string(value, f"{path}.keyType")
    if raw == KEY_TYPE_AUTO:
        return True, None
    if raw is None:
        return False, None
    try:
        return True, KeyType(raw)
    except ValueError:
        choices = ", ".join([KEY_TYPE_AUTO, *(k.value for k in KeyType)])
        check.fail(f"{path}.keyType", f"{shown_choice(raw)} is not one of: {choices}")
        return False, None


def _dns_names(
    check: _Checker, value: object, path: str, *, wildcards: bool = False
) -> tuple[str, ...] | None:
    first: dict[str, str] = {}  # name -> the path that lists it first: one pass, no count()
    repeated = False

    def parse(item: object, item_path: str) -> str | None:
        nonlocal repeated
        name = _dns_name(check, item, item_path, wildcards=wildcards)
        if name is not None and name in first:
            repeated = True
            check.fail(
                item_path,
                f"is listed more than once: it is the same name as {first[name]} (names compare"
                " in lower case, without a trailing dot)",
            )
            return None
        if name is not None:
            first[name] = item_path
        return name

    items = check.each(value, path, parse, minimum=1, maximum=MAX_NAMES)
    if not items or repeated:
        return None
    return tuple(items)


def _dns_name(check: _Checker, value: object, path: str, *, wildcards: bool = False) -> str | None:
    text = check.string(value, path)
    if text is None:
        return None
    try:
        if wildcards:
            return hostnames.check_dns_name(text, allow_wildcard=True)
        return hostnames.check_dns_name(text)
    except ConfigError as exc:
        check.fail(path, str(exc))
        return None


MAX_SERVICE_LOAD_BALANCERS = 50  # VERIFY reads each one: a bound, not an OCI limit


def _target(check: _Checker, value: object, path: str) -> Target | None:
    if isinstance(value, Mapping) and "certificateId" in value:
        return _service_target(check, value, path)
    section = check.mapping(value, path, required={"loadBalancerId", "listeners"})
    if section is None:
        return None
    lb = check.ocid(section.get("loadBalancerId"), f"{path}.loadBalancerId", "loadbalancer")
    listeners = check.each(
        section.get("listeners"),
        f"{path}.listeners",
        lambda v, p: check.string(
            v, p, _LISTENER, "listener names use letters, digits, '-', '_' and '.'"
        ),
        minimum=1,
    )
    if listeners and len(set(listeners)) != len(listeners):
        check.fail(f"{path}.listeners", "lists a listener more than once")
        return None
    if lb is None or not listeners:
        return None
    return ListenerTarget(lb, tuple(listeners))


def _service_target(check: _Checker, value: object, path: str) -> Target | None:
    section = check.mapping(value, path, required={"certificateId"}, optional={"loadBalancerIds"})
    if section is None:
        return None
    ocid = check.ocid(section.get("certificateId"), f"{path}.certificateId", "certificate")
    # Where VERIFY looks for the listeners that use the certificate, besides the load balancers
    # of the listener targets (docs/configuration.md, "Certificates-service targets").
    hints = check.each(
        section.get("loadBalancerIds", []),
        f"{path}.loadBalancerIds",
        lambda v, p: check.ocid(v, p, "loadbalancer"),
        minimum=0,
        maximum=MAX_SERVICE_LOAD_BALANCERS,
    )
    if ocid is None or hints is None:
        return None
    return CertificateServiceTarget(ocid, tuple(dict.fromkeys(hints)))


def _check_target_overlap(check: _Checker, targets: list[Target], path: str) -> None:
    seen: set[tuple[str, str]] = set()
    for index, target in enumerate(targets):
        keys = (
            [(target.load_balancer_id, listener) for listener in target.listener_names]
            if isinstance(target, ListenerTarget)
            else [(target.certificate_id, "")]
        )
        for key in keys:
            if key in seen:
                check.fail(f"{path}[{index}]", "targets the same listener or certificate twice")
            seen.add(key)
