"""Which key type a certificate gets: one its targets' TLS clients can use. Pure; no I/O.

OCI facts (docs/oci-emulator.md "Cipher suites and protocols"; SDK docstrings of
``SSLCipherSuite`` and ``SSLConfigurationDetails``): a listener with no cipher suite named uses
``oci-default-ssl-cipher-suite-v1``, whose ciphers are all RSA-authenticated; one with no
protocols named speaks TLSv1.2 only; "RSA-based ciphers require RSA certificates and
ECDSA-based ciphers require ECDSA certificates". TLS 1.3 ciphersuites do not name the
certificate's key (RFC 8446 section 4.2.3): a TLS 1.3 handshake serves any key type. The
Certificates service imports RSA 2048/4096 and ECDSA P-256/P-384 keys only.

A key type *serves* a listener when, for every protocol the listener enables that some key
could serve with its suite, the suite has a cipher of that protocol the key can authenticate
(TLS 1.3: any TLS 1.3 cipher). Protocols no key could serve (TLSv1.1 with a suite of TLS 1.2-only
ciphers) are the listener's own problem and do not count against a key.

``keyType: auto`` (:func:`choose_key_type`) keeps the stored certificate's key type while every
target serves it (no renewal only to change the key), else takes ECDSA P-256 when every listener
target serves it and no Certificates-service certificate is among the targets (the listeners
and services using one are not known to the renewer), else RSA 2048, which every predefined
suite serves. An explicit key type that a target cannot serve is refused (ConfigError naming
the listener, its suite and the fix) before anything is ordered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from renewer.errors import ConfigError
from renewer.model import KeyType, ListenerTls

DEFAULT_SUITE = "oci-default-ssl-cipher-suite-v1"
DEFAULT_PROTOCOLS = ("TLSv1.2",)
PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
ECDSA_SUITE_HINT = "oci-modern-ssl-cipher-suite-v1"

# SDK docstring of SSLCipherSuite.ciphers, "TLSv1.3 ciphers".
TLS13_CIPHERS = frozenset(
    {
        "TLS_AES_128_GCM_SHA256",
        "TLS_AES_256_GCM_SHA384",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256",
        "TLS_AES_128_CCM_8_SHA256",
    }
)
_TLS13 = tuple(sorted(TLS13_CIPHERS - {"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"}))
_HTTP2 = (
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-AES128-GCM-SHA256",
)
_MODERN = (
    "AES128-GCM-SHA256", "AES128-SHA256", "AES256-GCM-SHA384", "AES256-SHA256",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-AES256-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-SHA384",
)  # fmt: skip
_SHA1 = (
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES128-SHA",
    "ECDHE-RSA-AES256-SHA", "AES128-SHA", "AES256-SHA",
)  # fmt: skip
_TLS12_13_WIDER = (
    *_TLS13,
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "AES128-GCM-SHA256",
    "AES128-SHA256", "AES256-GCM-SHA384", "AES256-SHA256",
)  # fmt: skip

# The predefined suites by name (SDK docstring of SSLCipherSuite). Only what the key choice
# needs is exact here: which authentication each cipher needs and which TLS versions it is for
# (the emulator's sandbox/oci_emulator/cipher_suites.py holds the verbatim lists; a contract
# test checks both against the SDK).
PREDEFINED: Mapping[str, tuple[str, ...]] = {
    DEFAULT_SUITE: (
        "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES256-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-SHA384",
    ),
    "oci-modern-ssl-cipher-suite-v1": _MODERN,
    "oci-compatible-ssl-cipher-suite-v1": (*_MODERN, *_SHA1),
    "oci-wider-compatible-ssl-cipher-suite-v1": (*_MODERN, *_SHA1, "DES-CBC3-SHA"),
    "oci-default-http2-ssl-cipher-suite-v1": _HTTP2,
    "oci-default-http2-tls-13-ssl-cipher-suite-v1": _TLS13,
    "oci-default-http2-tls-12-13-ssl-cipher-suite-v1": (*_HTTP2, *_TLS13),
    "oci-tls-13-recommended-ssl-cipher-suite-v1": _TLS13,
    "oci-tls-12-13-wider-ssl-cipher-suite-v1": _TLS12_13_WIDER,
    "oci-tls-11-12-13-wider-ssl-cipher-suite-v1": (*_TLS12_13_WIDER, *_SHA1),
}  # fmt: skip

# Certificates service: the key types an imported certificate may have.
SERVICE_KEY_TYPES = frozenset(
    {KeyType.RSA_2048, KeyType.RSA_4096, KeyType.EC_P256, KeyType.EC_P384}
)
_ECDSA_AUTH = ("ECDHE-ECDSA-", "ECDH-ECDSA-")
_RSA_AUTH = ("ECDHE-RSA-", "DHE-RSA-")
_RSA_KEY_EXCHANGE = ("AES", "CAMELLIA", "DES-CBC3-", "SEED-", "IDEA-", "RC4-")  # no kx prefix
_TLS12_ONLY = ("GCM", "SHA256", "SHA384", "CHACHA20", "CCM")


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """The key type a certificate gets, and why (shown by ``plan`` and the report)."""

    key_type: KeyType
    reason: str


def listener_tls(
    load_balancer_id: str,
    listener: str,
    *,
    suite: str | None,
    protocols: Sequence[str] | None,
    custom_suites: Mapping[str, Sequence[str]],
) -> ListenerTls:
    """A listener's TLS settings as OCI applies them (defaults filled in, suite resolved).

    ``custom_suites``: the load balancer's ``sslCipherSuites`` (name -> ciphers); a name that is
    neither custom nor predefined (``oci-customized-ssl-cipher-suite``) has unknown ciphers.
    """
    name = suite or DEFAULT_SUITE
    named = {p for p in protocols or () if p in PROTOCOLS}
    ciphers = custom_suites.get(name)
    resolved = tuple(ciphers) if ciphers is not None else PREDEFINED.get(name)
    ordered = [p for p in PROTOCOLS if p in named]
    return ListenerTls(
        load_balancer_id=load_balancer_id,
        listener=listener,
        suite=name,
        protocols=tuple(ordered) if ordered else DEFAULT_PROTOCOLS,
        ciphers=resolved,
    )


def _for_protocol(cipher: str, protocol: str) -> bool:
    if cipher in TLS13_CIPHERS:
        return protocol == "TLSv1.3"
    if protocol == "TLSv1.3":
        return False
    return protocol == "TLSv1.2" or not any(part in cipher for part in _TLS12_ONLY)


def _authenticates(cipher: str, key_type: KeyType) -> bool:
    if cipher in TLS13_CIPHERS:
        return True
    if key_type in (KeyType.EC_P256, KeyType.EC_P384):
        return cipher.startswith(_ECDSA_AUTH)
    return cipher.startswith(_RSA_AUTH) or cipher.startswith(_RSA_KEY_EXCHANGE)


def unserved_protocols(tls: ListenerTls, key_type: KeyType) -> tuple[str, ...]:
    """The listener's protocols a key of ``key_type`` cannot serve but another key could.

    Empty when the suite's ciphers are unknown (nothing can be said).
    """
    if tls.ciphers is None:
        return ()
    other = KeyType.RSA_2048 if key_type in (KeyType.EC_P256, KeyType.EC_P384) else KeyType.EC_P256
    missing = []
    for protocol in tls.protocols:
        usable = [c for c in tls.ciphers if _for_protocol(c, protocol)]
        mine = any(_authenticates(c, key_type) for c in usable)
        if not mine and any(_authenticates(c, other) for c in usable):
            missing.append(protocol)
    return tuple(missing)


def _describe(tls: ListenerTls) -> str:
    return (
        f"listener {tls.listener!r} of load balancer {tls.load_balancer_id} (cipher suite"
        f" {tls.suite!r}, protocols {', '.join(tls.protocols)})"
    )


def choose_key_type(
    certificate: str,
    requested: KeyType | None,
    listeners: Sequence[ListenerTls],
    service_certificates: Sequence[str],
    *,
    current: KeyType | None = None,
) -> KeyChoice:
    """The key type for ``certificate`` (see the module docstring).

    ``requested``: the configured ``keyType`` (None: ``auto``); ``listeners``: the TLS settings
    of every listener target; ``service_certificates``: the OCIDs of its Certificates-service
    targets; ``current``: the key type of the stored certificate, if any.

    Raises:
        ConfigError: an explicit key type a listener cannot serve or the Certificates service
            does not import; it names the certificate's ``keyType``, the target and the fix.

    """
    field = f"keyType of certificate {certificate!r}"
    if requested is not None:
        refusal = unserved(requested, listeners, service_certificates)
        if refusal is not None:
            problem, fix = refusal
            msg = (
                f"{field} is {requested.value}, {problem}. Set keyType to 'auto' (or a key type"
                f" every target serves), or {fix}; nothing was ordered"
            )
            raise ConfigError(msg)
        return KeyChoice(requested, f"configured keyType {requested.value}")
    if current is not None and _serves_all(current, listeners, service_certificates):
        return KeyChoice(current, f"auto: the stored {current.value} key is served by every target")
    if service_certificates:
        return KeyChoice(
            KeyType.RSA_2048,
            f"auto: rsa-2048 for Certificates-service certificate {service_certificates[0]}"
            " (the listeners and services using it are not known to the renewer; every OCI"
            " suite serves RSA)",
        )
    for tls in listeners:
        missing = unserved_protocols(tls, KeyType.EC_P256)
        if missing:
            return KeyChoice(
                KeyType.RSA_2048,
                f"auto: rsa-2048, as {_describe(tls)} has no ECDSA cipher for {', '.join(missing)}",
            )
    unknown = [tls for tls in listeners if tls.ciphers is None]
    if unknown:
        return KeyChoice(
            KeyType.RSA_2048,
            f"auto: rsa-2048, as the ciphers of {_describe(unknown[0])} are not published",
        )
    return KeyChoice(KeyType.EC_P256, "auto: ecdsa-p256, as every listener's suite serves ECDSA")


def unserved(
    key_type: KeyType, listeners: Sequence[ListenerTls], service_certificates: Sequence[str]
) -> tuple[str, str] | None:
    """Why a key of ``key_type`` cannot be served by the targets, and the fix; None: it can.

    ``(problem, fix)``: the problem names the Certificates-service certificate that does not
    import the key type, or the listener, its suite and its protocols without a cipher for it;
    the fix is what to change on that target. Callers say what else could be changed.
    """
    if service_certificates and key_type not in SERVICE_KEY_TYPES:
        allowed = ", ".join(sorted(k.value for k in SERVICE_KEY_TYPES))
        return (
            f"which the Certificates service does not import (certificate"
            f" {service_certificates[0]} takes {allowed})",
            "target a load-balancer listener instead of that certificate",
        )
    for tls in listeners:
        missing = unserved_protocols(tls, key_type)
        if missing:
            fix = (
                f"give the listener a suite with ECDSA ciphers (e.g. {ECDSA_SUITE_HINT})"
                if key_type in (KeyType.EC_P256, KeyType.EC_P384)
                else "give the listener a suite with RSA ciphers"
            )
            return (
                f"but {_describe(tls)} has no cipher for it in {', '.join(missing)}: its"
                " clients could not connect",
                fix,
            )
    return None


def _serves_all(
    key_type: KeyType, listeners: Sequence[ListenerTls], service_certificates: Sequence[str]
) -> bool:
    if service_certificates and key_type not in SERVICE_KEY_TYPES:
        return False
    if any(tls.ciphers is None for tls in listeners) and key_type not in (
        KeyType.RSA_2048,
        KeyType.RSA_3072,
        KeyType.RSA_4096,
    ):
        return False
    return not any(unserved_protocols(tls, key_type) for tls in listeners)


def offers(tls: ListenerTls) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """What the listener's clients offer: per enabled protocol, the suite's ciphers for it.

    ``(protocol, ciphers)`` for every protocol some cipher of the suite is for (ciphers None
    when the suite's ciphers are not known: the client's defaults). VERIFY handshakes with each.
    """
    result: list[tuple[str, tuple[str, ...] | None]] = []
    for protocol in tls.protocols:
        if tls.ciphers is None:
            result.append((protocol, None))
            continue
        usable = tuple(c for c in tls.ciphers if _for_protocol(c, protocol))
        if usable:
            result.append((protocol, usable))
    return tuple(result)
