"""The Load Balancing service's SSL cipher suites, as the data plane enforces them.

Sources (docs/oci-emulator.md "Cipher suites and protocols"):

* the predefined suites and their ciphers: the SDK docstring of
  ``oci.load_balancer.models.SSLCipherSuite`` (copied here verbatim, order and typos included:
  ``DH-DSS-DES-CBC3-SHAv`` is how the SDK spells it), also OCI's page "Predefined Load Balancer
  Cipher Suites";
* a listener without ``cipherSuiteName`` uses ``oci-default-ssl-cipher-suite-v1``, and one
  without ``protocols`` speaks TLSv1.2 only: the SDK docstring of ``SSLConfigurationDetails``;
* which ciphers are TLS 1.3 ciphers: the SDK docstring of ``SSLCipherSuite.ciphers``;
* "RSA-based ciphers require RSA certificates and ECDSA-based ciphers require ECDSA
  certificates": the SDK docstring of ``SSLConfigurationDetails.cipherSuiteName``.

How the suite becomes OpenSSL configuration (what the emulator does, see :func:`openssl_ciphers`):
the TLS 1.2-and-older names are OpenSSL cipher names, so they are given to ``set_ciphers`` as
they are (names this OpenSSL does not have, such as ``RC4-SHA``, are skipped, as OpenSSL itself
skips them); a suite with none of them gets a cipher no handshake can use, so every TLS <= 1.2
handshake fails. TLS 1.3 ciphersuites are configured apart from ``set_ciphers`` in OpenSSL and
Python's ``ssl`` cannot set them: when a suite names at least one TLS 1.3 cipher, TLS 1.3 is
offered with OpenSSL's default ciphersuites (``TLS_AES_256_GCM_SHA384``,
``TLS_CHACHA20_POLY1305_SHA256``, ``TLS_AES_128_GCM_SHA256``); a suite with none cannot speak TLS
1.3 (assumed: the stricter reading of "Clients cannot perform an SSL handshake if there is an
incompatible configuration"). TLS 1.3 ciphersuites do not name the certificate's key type (RFC
8446 section 4.2.3), so any key serves TLS 1.3.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

DEFAULT_SUITE = "oci-default-ssl-cipher-suite-v1"
# GET may answer it for listeners that predate cipher suites; its ciphers are not published.
CUSTOMIZED_SUITE = "oci-customized-ssl-cipher-suite"
DEFAULT_PROTOCOLS = ("TLSv1.2",)
PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

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

_DEFAULT = (
    "DHE-RSA-AES128-GCM-SHA256 DHE-RSA-AES128-SHA256 DHE-RSA-AES256-GCM-SHA384"
    " DHE-RSA-AES256-SHA256 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA256"
    " ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-SHA384"
)
_MODERN = (
    "AES128-GCM-SHA256 AES128-SHA256 AES256-GCM-SHA384 AES256-SHA256 DHE-RSA-AES128-GCM-SHA256"
    " DHE-RSA-AES128-SHA256 DHE-RSA-AES256-GCM-SHA384 DHE-RSA-AES256-SHA256"
    " ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES128-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384"
    " ECDHE-ECDSA-AES256-SHA384 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA256"
    " ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-SHA384"
)
_COMPATIBLE = (
    "AES128-GCM-SHA256 AES128-SHA AES128-SHA256 AES256-GCM-SHA384 AES256-SHA AES256-SHA256"
    " DHE-RSA-AES128-GCM-SHA256 DHE-RSA-AES128-SHA256 DHE-RSA-AES256-GCM-SHA384"
    " DHE-RSA-AES256-SHA256 ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES128-SHA"
    " ECDHE-ECDSA-AES128-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES256-SHA"
    " ECDHE-ECDSA-AES256-SHA384 ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA"
    " ECDHE-RSA-AES128-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-AES256-SHA"
    " ECDHE-RSA-AES256-SHA384"
)
_WIDER_COMPATIBLE = (
    "AES128-GCM-SHA256 AES128-SHA AES128-SHA256 AES256-GCM-SHA384 AES256-SHA AES256-SHA256"
    " CAMELLIA128-SHA CAMELLIA256-SHA DES-CBC3-SHA DH-DSS-AES128-GCM-SHA256 DH-DSS-AES128-SHA"
    " DH-DSS-AES128-SHA256 DH-DSS-AES256-GCM-SHA384 DH-DSS-AES256-SHA DH-DSS-AES256-SHA256"
    " DH-DSS-CAMELLIA128-SHA DH-DSS-CAMELLIA256-SHA DH-DSS-DES-CBC3-SHAv DH-DSS-SEED-SHA"
    " DH-RSA-AES128-GCM-SHA256 DH-RSA-AES128-SHA DH-RSA-AES128-SHA256 DH-RSA-AES256-GCM-SHA384"
    " DH-RSA-AES256-SHA DH-RSA-AES256-SHA256 DH-RSA-CAMELLIA128-SHA DH-RSA-CAMELLIA256-SHA"
    " DH-RSA-DES-CBC3-SHA DH-RSA-SEED-SHA DHE-DSS-AES128-GCM-SHA256 DHE-DSS-AES128-SHA"
    " DHE-DSS-AES128-SHA256 DHE-DSS-AES256-GCM-SHA384 DHE-DSS-AES256-SHA DHE-DSS-AES256-SHA256"
    " DHE-DSS-CAMELLIA128-SHA DHE-DSS-CAMELLIA256-SHA DHE-DSS-DES-CBC3-SHA DHE-DSS-SEED-SHA"
    " DHE-RSA-AES128-GCM-SHA256 DHE-RSA-AES128-SHA DHE-RSA-AES128-SHA256"
    " DHE-RSA-AES256-GCM-SHA384 DHE-RSA-AES256-SHA DHE-RSA-AES256-SHA256"
    " DHE-RSA-CAMELLIA128-SHA DHE-RSA-CAMELLIA256-SHA DHE-RSA-DES-CBC3-SHA DHE-RSA-SEED-SHA"
    " ECDH-ECDSA-AES128-GCM-SHA256 ECDH-ECDSA-AES128-SHA ECDH-ECDSA-AES128-SHA256"
    " ECDH-ECDSA-AES256-GCM-SHA384 ECDH-ECDSA-AES256-SHA ECDH-ECDSA-AES256-SHA384"
    " ECDH-ECDSA-DES-CBC3-SHA ECDH-ECDSA-RC4-SHA ECDH-RSA-AES128-GCM-SHA256 ECDH-RSA-AES128-SHA"
    " ECDH-RSA-AES128-SHA256 ECDH-RSA-AES256-GCM-SHA384 ECDH-RSA-AES256-SHA"
    " ECDH-RSA-AES256-SHA384 ECDH-RSA-DES-CBC3-SHA ECDH-RSA-RC4-SHA"
    " ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES128-SHA256"
    " ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES256-SHA ECDHE-ECDSA-AES256-SHA384"
    " ECDHE-ECDSA-DES-CBC3-SHA ECDHE-ECDSA-RC4-SHA ECDHE-RSA-AES128-GCM-SHA256"
    " ECDHE-RSA-AES128-SHA ECDHE-RSA-AES128-SHA256 ECDHE-RSA-AES256-GCM-SHA384"
    " ECDHE-RSA-AES256-SHA ECDHE-RSA-AES256-SHA384 ECDHE-RSA-DES-CBC3-SHA ECDHE-RSA-RC4-SHA"
    " IDEA-CBC-SHA KRB5-DES-CBC3-MD5 KRB5-DES-CBC3-SHA KRB5-IDEA-CBC-MD5 KRB5-IDEA-CBC-SHA"
    " KRB5-RC4-MD5 KRB5-RC4-SHA PSK-3DES-EDE-CBC-SHA PSK-AES128-CBC-SHA PSK-AES256-CBC-SHA"
    " PSK-RC4-SHA RC4-MD5 RC4-SHA SEED-SHA"
)
_HTTP2 = (
    "ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-RSA-AES128-GCM-SHA256"
    " ECDHE-ECDSA-AES128-GCM-SHA256 DHE-RSA-AES256-GCM-SHA384 DHE-RSA-AES128-GCM-SHA256"
)
_TLS13 = "TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256"
_TLS12_13_WIDER = (
    f"{_TLS13} ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-RSA-AES128-GCM-SHA256"
    " ECDHE-ECDSA-AES128-SHA256 ECDHE-RSA-AES128-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384"
    " ECDHE-RSA-AES256-GCM-SHA384 ECDHE-ECDSA-AES256-SHA384 ECDHE-RSA-AES256-SHA384"
    " AES128-GCM-SHA256 AES128-SHA256 AES256-GCM-SHA384 AES256-SHA256"
)
_TLS11_12_13_WIDER = (
    f"{_TLS12_13_WIDER} ECDHE-ECDSA-AES128-SHA ECDHE-RSA-AES128-SHA ECDHE-RSA-AES256-SHA"
    " ECDHE-ECDSA-AES256-SHA AES128-SHA AES256-SHA"
)

# The SDK docstring of SSLCipherSuite, suite by suite, in its order.
PREDEFINED: Mapping[str, tuple[str, ...]] = {
    "oci-default-ssl-cipher-suite-v1": tuple(_DEFAULT.split()),
    "oci-modern-ssl-cipher-suite-v1": tuple(_MODERN.split()),
    "oci-compatible-ssl-cipher-suite-v1": tuple(_COMPATIBLE.split()),
    "oci-wider-compatible-ssl-cipher-suite-v1": tuple(_WIDER_COMPATIBLE.split()),
    "oci-default-http2-ssl-cipher-suite-v1": tuple(_HTTP2.split()),
    "oci-default-http2-tls-13-ssl-cipher-suite-v1": tuple(_TLS13.split()),
    "oci-default-http2-tls-12-13-ssl-cipher-suite-v1": tuple(f"{_HTTP2} {_TLS13}".split()),
    "oci-tls-13-recommended-ssl-cipher-suite-v1": tuple(_TLS13.split()),
    "oci-tls-12-13-wider-ssl-cipher-suite-v1": tuple(_TLS12_13_WIDER.split()),
    "oci-tls-11-12-13-wider-ssl-cipher-suite-v1": tuple(_TLS11_12_13_WIDER.split()),
}

# A TLS <= 1.2 cipher a server without a PSK identity can never choose: the list of a suite
# that has no usable TLS <= 1.2 cipher, so that such handshakes fail as they would in OCI.
_UNUSABLE = "PSK-AES128-CBC-SHA"
_LEGACY = frozenset({"TLSv1", "TLSv1.1"})


def protocols_of(ssl_configuration: Mapping[str, Any]) -> tuple[str, ...]:
    """The TLS versions a listener speaks: its ``protocols``, TLSv1.2 alone when none is named."""
    named = [p for p in ssl_configuration.get("protocols") or () if p in PROTOCOLS]
    return tuple(sorted(set(named), key=PROTOCOLS.index)) or DEFAULT_PROTOCOLS


def suite_ciphers(config: Mapping[str, Any], suite_name: str | None) -> tuple[str, ...]:
    """The ciphers of ``suite_name`` on a load balancer (its GetLoadBalancer JSON).

    No name: the default suite. A custom suite comes from the load balancer's
    ``sslCipherSuites``; a predefined one from :data:`PREDEFINED`. ``oci-customized-...`` and a
    name that resolves nowhere are served as the default suite (assumed; the control plane
    refuses references to suites that do not exist).
    """
    name = suite_name or DEFAULT_SUITE
    custom = (config.get("sslCipherSuites") or {}).get(name)
    if custom is not None and name not in PREDEFINED:
        return tuple(custom.get("ciphers") or ())
    return PREDEFINED.get(name, PREDEFINED[DEFAULT_SUITE])


def speaks_tls13(ciphers: Sequence[str]) -> bool:
    """Whether a suite holds a TLS 1.3 cipher (without one, TLS 1.3 is not offered)."""
    return any(c in TLS13_CIPHERS for c in ciphers)


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    return frozenset(str(c["name"]) for c in context.get_ciphers())


def openssl_ciphers(ciphers: Sequence[str], protocols: Sequence[str]) -> str:
    """The ``set_ciphers`` string that enforces a suite's TLS <= 1.2 ciphers.

    Names this OpenSSL lacks are left out; with none left, a cipher no handshake can use.
    ``@SECLEVEL=0`` when TLSv1 or TLSv1.1 is enabled: OpenSSL 3 refuses them at its default
    level, and OCI serves them when a listener enables them.
    """
    usable = [c for c in ciphers if c not in TLS13_CIPHERS and c in _known()]
    text = ":".join(usable) or _UNUSABLE
    return f"{text}:@SECLEVEL=0" if _LEGACY.intersection(protocols) else text


def serves_anything(ciphers: Sequence[str], protocols: Sequence[str]) -> bool:
    """Whether any handshake is possible with this suite and these protocols.

    A TLS 1.3 cipher with TLSv1.3 enabled, or a TLS <= 1.2 cipher this OpenSSL has with an
    older version enabled.
    """
    if "TLSv1.3" in protocols and speaks_tls13(ciphers):
        return True
    older = any(p != "TLSv1.3" for p in protocols)
    return older and any(c not in TLS13_CIPHERS and c in _known() for c in ciphers)
