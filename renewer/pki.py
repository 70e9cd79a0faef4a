"""Keys, CSRs and certificate parsing, on ``cryptography`` only. Pure functions, no I/O.

Nothing here logs or formats key material into a message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from renewer.errors import ConfigError
from renewer.model import CertificateSpec, CurrentCertificate, KeyType, StoredCertificate

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_CURVES: dict[KeyType, type[ec.EllipticCurve]] = {
    KeyType.EC_P256: ec.SECP256R1,
    KeyType.EC_P384: ec.SECP384R1,
}
_RSA_BITS: dict[KeyType, int] = {
    KeyType.RSA_2048: 2048,
    KeyType.RSA_3072: 3072,
    KeyType.RSA_4096: 4096,
}
_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)
# RFC 5280 ub-common-name: a longer first name cannot be the CN, so the CSR carries SANs only.
_MAX_CN_LENGTH = 64
_P256_BITS = 256


def generate_private_key(key_type: KeyType) -> PrivateKey:
    """Return a new private key of ``key_type``."""
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type]())
    return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[key_type])


def private_key_to_pem(key: PrivateKey) -> str:
    """Serialize ``key`` as unencrypted PKCS#8 PEM (it is only ever stored inside Vault)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_private_key(pem: str) -> PrivateKey:
    """Parse a PEM private key of a supported type.

    Raises:
        ConfigError: not a PEM private key, or not EC P-256/P-384 or RSA 2048/3072/4096.
            The message never quotes the input.

    """
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        msg = "stored private key is not an unencrypted PEM private key"
        raise ConfigError(msg) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        msg = f"stored private key has unsupported type {type(key).__name__}"
        raise ConfigError(msg)
    key_type_of(key.public_key())
    return key


def key_type_of(public_key: object) -> KeyType:
    """Map a public key to its :class:`KeyType`.

    Raises:
        ConfigError: the key is of a type or size we do not issue.

    """
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        for key_type, curve in _CURVES.items():
            if isinstance(public_key.curve, curve):
                return key_type
        msg = f"unsupported EC curve {public_key.curve.name}"
        raise ConfigError(msg)
    if isinstance(public_key, rsa.RSAPublicKey):
        for key_type, bits in _RSA_BITS.items():
            if public_key.key_size == bits:
                return key_type
        msg = f"unsupported RSA key size {public_key.key_size}"
        raise ConfigError(msg)
    msg = f"unsupported key type {type(public_key).__name__}"
    raise ConfigError(msg)


def key_for(spec: CertificateSpec, previous_key_pem: str | None) -> PrivateKey:
    """The key for the next certificate of ``spec``: a fresh one, unless reuse is configured.

    A previous key is reused only when ``spec.reuse_key`` is set and the key still has the
    spec's key type; otherwise a new key is generated. ``spec.key_type`` must be resolved
    (``auto`` is chosen by the orchestrator first, :mod:`renewer.key_choice`).

    Raises:
        ConfigError: the spec's key type is still ``auto``.

    """
    if spec.key_type is None:
        msg = f"internal: the key type of {spec.name} was not chosen before ordering"
        raise ConfigError(msg)
    if spec.reuse_key and previous_key_pem is not None:
        previous = load_private_key(previous_key_pem)
        if key_type_of(previous.public_key()) == spec.key_type:
            return previous
    return generate_private_key(spec.key_type)


def make_csr(key: PrivateKey, dns_names: Sequence[str]) -> bytes:
    """Build a PEM CSR for ``dns_names`` signed by ``key``.

    All names go into the subjectAltName extension (what CAs validate); the first name is also
    the subject CN when it fits, which keeps older TLS stacks and dashboards readable.
    """
    if not dns_names:
        msg = "a CSR needs at least one DNS name"
        raise ConfigError(msg)
    subject: list[x509.NameAttribute[str]] = []
    if len(dns_names[0]) <= _MAX_CN_LENGTH:
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0]))
    # ECDSA signs with the hash that matches the curve size (P-384 with SHA-384, as CAs expect).
    big_curve = isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > _P256_BITS
    algorithm = hashes.SHA384() if big_curve else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(subject))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
        .sign(key, algorithm)
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def split_chain(fullchain_pem: str) -> list[x509.Certificate]:
    """Parse a PEM bundle into certificates, leaf first (RFC 8555 section 7.4.2 order).

    Raises:
        ConfigError: no certificate could be parsed.

    """
    blocks = _PEM_CERT.findall(fullchain_pem)
    if not blocks:
        msg = "no PEM certificate found in the chain"
        raise ConfigError(msg)
    try:
        return [x509.load_pem_x509_certificate(b.encode("ascii")) for b in blocks]
    except ValueError as exc:
        msg = "a certificate in the chain is not valid PEM/DER"
        raise ConfigError(msg) from exc


def dns_names_of(cert: x509.Certificate) -> frozenset[str]:
    """The certificate's DNS subjectAltNames, lower-cased."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(n.lower() for n in san.value.get_values_for_type(x509.DNSName))


def common_name(name: x509.Name) -> str:
    """The first CN of an X.509 name, or its RFC 4514 string when it has none."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        value = cns[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return name.rfc4514_string()


def serial_hex(cert: x509.Certificate) -> str:
    """Serial number as lower-case hex without separators (how OCI and openssl show it)."""
    return f"{cert.serial_number:x}"


def normalize_serial(value: str) -> str:
    """A serial as bare lower-case hex without leading zeros, however it was written.

    OCI shows serials as ``03 AC FC …`` (Certificates service), tools as ``03:ac:fc``; this
    package as ``3acfc``. Compare serials only through this.
    """
    digits = "".join(ch for ch in value.lower() if ch in "0123456789abcdef")
    return digits.lstrip("0") or "0"


def leaf_and_chain(fullchain_pem: str, *, expected_serial: str) -> tuple[str, str]:
    """The leaf PEM and the rest of the chain ("" when the chain is the leaf alone).

    Raises:
        ConfigError: the chain does not parse, or its leaf's serial is not ``expected_serial``
            (a stored document whose metadata and certificate disagree is never deployed).

    """
    certificates = split_chain(fullchain_pem)
    actual = serial_hex(certificates[0])
    if normalize_serial(actual) != normalize_serial(expected_serial):
        msg = f"the chain's leaf has serial {actual}, not {expected_serial}"
        raise ConfigError(msg)
    pems = [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates]
    return pems[0], "".join(pems[1:])


def stored_leaf_and_chain(certificate: StoredCertificate) -> tuple[str, str]:
    """:func:`leaf_and_chain` of a stored version; errors name the version.

    Raises:
        ConfigError: the chain does not parse, or its leaf's serial is not the stored serial.

    """
    try:
        return leaf_and_chain(certificate.fullchain_pem, expected_serial=certificate.serial_hex)
    except ConfigError as exc:
        msg = f"stored certificate version {certificate.version}: {exc}"
        raise ConfigError(msg) from exc


def ari_cert_id(cert: x509.Certificate) -> str | None:
    """RFC 9773 section 4.1 CertID: base64url(AKI keyIdentifier) "." base64url(serial DER).

    Returns None for a certificate without an Authority Key Identifier (self-signed or
    otherwise not from an ACME CA), which cannot be asked about.
    """
    try:
        aki = cert.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    except x509.ExtensionNotFound:
        return None
    key_id = (
        aki.value.key_identifier if isinstance(aki.value, x509.AuthorityKeyIdentifier) else None
    )
    if not key_id:
        return None
    serial = cert.serial_number
    # The serial is a DER INTEGER: big-endian two's complement, so leave room for the sign bit.
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
    return f"{_b64url(key_id)}.{_b64url(serial_bytes)}"


def describe(fullchain_pem: str, *, profile: str | None = None) -> CurrentCertificate:
    """Summarize the leaf of ``fullchain_pem`` for the renewal policy."""
    leaf = split_chain(fullchain_pem)[0]
    return CurrentCertificate(
        serial_hex=serial_hex(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        dns_names=dns_names_of(leaf),
        key_type=key_type_of(leaf.public_key()),
        ari_cert_id=ari_cert_id(leaf),
        profile=profile,
    )


def top_issuer(fullchain_pem: str) -> str:
    """Issuer CN of the topmost certificate of a chain: the root it chains to.

    This is what operators name as the preferred chain (certbot's ``--preferred-chain`` rule).
    """
    return common_name(split_chain(fullchain_pem)[-1].issuer)


def select_chain(chains: Sequence[str], preferred_issuer: str | None) -> str:
    """Choose among the default chain (first) and the CA's alternates.

    The first chain whose topmost issuer CN equals ``preferred_issuer`` (case-insensitive, as a
    human would type it) wins; without a match, or without a preference, the default chain.
    """
    if preferred_issuer:
        wanted = preferred_issuer.strip().casefold()
        for chain in chains:
            if top_issuer(chain).casefold() == wanted:
                return chain
    return chains[0]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def leaf_public_key_der(fullchain_pem: str) -> bytes:
    """The DER SubjectPublicKeyInfo of the first certificate of ``fullchain_pem``.

    Two certificates with equal values certify the same key (the revoke action's
    ``keyCompromise`` check). Raises ConfigError for text that is not a PEM certificate.
    """
    try:
        leaf = x509.load_pem_x509_certificate(fullchain_pem.encode())
    except ValueError as exc:
        raise ConfigError("the stored certificate is not a readable PEM certificate") from exc
    return leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
