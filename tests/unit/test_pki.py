"""``renewer.pki`` against real keys, CSRs and certificates built with ``cryptography``.

Chains are made here (root -> intermediate -> leaf, EC P-256 unless a test needs otherwise), so
every expected value is written down independently of the code under test.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from renewer import pki
from renewer.errors import ConfigError
from renewer.model import CertificateSpec, CurrentCertificate, KeyType

pytestmark = pytest.mark.unit

NOT_BEFORE = datetime(2026, 11, 1, tzinfo=UTC)
NOT_AFTER = NOT_BEFORE + timedelta(days=90)
# RFC 9773 section 4.1 example.
RFC_AKI = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
RFC_SERIAL = 0x0087654321
RFC_CERT_ID = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
# Fixed AKI for the chains built below: bytes 0..19, base64url "AAECAwQFBgcICQoLDA0ODxAREhM".
LEAF_AKI = bytes(range(20))
LEAF_AKI_B64 = "AAECAwQFBgcICQoLDA0ODxAREhM"
LEAF_SERIAL = 0x1234ABCD  # DER 12 34 AB CD -> base64url "EjSrzQ"


@functools.cache
def key_of(key_type: KeyType) -> pki.PrivateKey:
    """One generated key per type for the whole module (RSA 4096 is slow to make)."""
    return pki.generate_private_key(key_type)


@functools.cache
def _rsa1024() -> rsa.RSAPrivateKey:
    # An RSA size we refuse to issue, on purpose.
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def pem_of(key: pki.PrivateKey) -> str:
    return pki.private_key_to_pem(key)


def name(cn: str | None = None, org: str | None = None) -> x509.Name:
    attributes = []
    if org is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: pki.PrivateKey

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_cert(
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    key: pki.PrivateKey | None = None,
    serial: int = 1,
    dns_names: tuple[str, ...] = (),
    ca: bool = False,
    aki: x509.AuthorityKeyIdentifier | None = None,
) -> Issued:
    """A certificate for ``subject`` signed by ``issuer`` (self-signed when None)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    if aki is not None:
        builder = builder.add_extension(aki, critical=False)
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def aki_of(key_identifier: bytes | None) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier(
        key_identifier=key_identifier, authority_cert_issuer=None, authority_cert_serial_number=None
    )


def chain(
    root_cn: str,
    *,
    leaf_names: tuple[str, ...] = ("example.com",),
    leaf_key: pki.PrivateKey | None = None,
) -> tuple[Issued, Issued, Issued]:
    """(root, intermediate, leaf); the leaf carries LEAF_AKI and LEAF_SERIAL."""
    root = make_cert(name(root_cn), ca=True)
    intermediate = make_cert(name(f"{root_cn} Intermediate"), issuer=root, serial=2, ca=True)
    leaf = make_cert(
        name(leaf_names[0]),
        issuer=intermediate,
        key=leaf_key,
        serial=LEAF_SERIAL,
        dns_names=leaf_names,
        aki=aki_of(LEAF_AKI),
    )
    return root, intermediate, leaf


def fullchain(*certs: Issued) -> str:
    return "".join(c.pem for c in certs)


# --- keys ---------------------------------------------------------------------------------------


GENERATED = [
    (KeyType.EC_P256, ec.EllipticCurvePrivateKey, 256),
    (KeyType.EC_P384, ec.EllipticCurvePrivateKey, 384),
    (KeyType.RSA_2048, rsa.RSAPrivateKey, 2048),
    (KeyType.RSA_3072, rsa.RSAPrivateKey, 3072),
    (KeyType.RSA_4096, rsa.RSAPrivateKey, 4096),
]


@pytest.mark.parametrize(("key_type", "family", "size"), GENERATED)
def test_generated_key_has_the_requested_type(key_type, family, size):
    key = key_of(key_type)

    assert isinstance(key, family)
    assert key.key_size == size
    assert pki.key_type_of(key.public_key()) is key_type


def test_generation_table_covers_every_key_type():
    # A new KeyType must get a row above.
    assert [row[0] for row in GENERATED] == list(KeyType)


def test_rsa_keys_use_exponent_65537():
    key = key_of(KeyType.RSA_2048)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.public_key().public_numbers().e == 65537


@pytest.mark.parametrize(
    ("public_key", "message"),
    [
        (ec.generate_private_key(ec.SECP521R1()).public_key(), "unsupported EC curve secp521r1"),
        (_rsa1024().public_key(), "unsupported RSA key size 1024"),
        (
            ed25519.Ed25519PrivateKey.generate().public_key(),
            "unsupported key type Ed25519PublicKey",
        ),
    ],
    ids=["p521", "rsa1024", "ed25519"],
)
def test_key_type_of_refuses_keys_we_do_not_issue(public_key, message):
    with pytest.raises(ConfigError) as info:
        pki.key_type_of(public_key)
    assert str(info.value) == message


@pytest.mark.parametrize("key_type", list(KeyType))
def test_private_key_pem_round_trips(key_type):
    key = key_of(key_type)

    pem = pem_of(key)
    loaded = pki.load_private_key(pem)

    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")  # unencrypted PKCS#8
    assert type(loaded) is type(key)
    assert loaded.private_numbers() == key.private_numbers()


def test_load_private_key_accepts_traditional_openssl_pem():
    key = key_of(KeyType.EC_P256)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")

    assert pki.load_private_key(pem).private_numbers() == key.private_numbers()


def _encrypted_pem() -> str:
    return (
        key_of(KeyType.EC_P256)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
        .decode("ascii")
    )


def _ed25519_pem() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


def _rsa1024_pem() -> str:
    return (
        _rsa1024()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode("ascii")
    )


NOT_A_KEY = "not a key: SECRET-VALUE-7f3a9c"
FAKE_PEM = "-----BEGIN PRIVATE KEY-----\nU0VDUkVULVZBTFVFLTdmM2E5Yw==\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (NOT_A_KEY, "stored private key is not an unencrypted PEM private key"),
        (FAKE_PEM, "stored private key is not an unencrypted PEM private key"),
        ("clé secrète", "stored private key is not an unencrypted PEM private key"),
        (_encrypted_pem(), "stored private key is not an unencrypted PEM private key"),
        (_ed25519_pem(), "stored private key has unsupported type Ed25519PrivateKey"),
        (_rsa1024_pem(), "unsupported RSA key size 1024"),
    ],
    ids=["garbage", "bad-pem-body", "non-ascii", "encrypted", "ed25519", "rsa1024"],
)
def test_load_private_key_refuses_without_quoting_the_input(pem, message):
    with pytest.raises(ConfigError) as info:
        pki.load_private_key(pem)

    text = str(info.value)
    assert text == message
    assert pem not in text
    body_lines = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    assert body_lines
    for line in body_lines:
        assert line not in text


# --- key_for ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reuse_key", "previous_type", "spec_type", "reused"),
    [
        (True, KeyType.EC_P256, KeyType.EC_P256, True),
        (True, KeyType.RSA_2048, KeyType.RSA_2048, True),
        (True, KeyType.EC_P256, KeyType.EC_P384, False),
        (True, KeyType.RSA_2048, KeyType.EC_P256, False),
        (False, KeyType.EC_P256, KeyType.EC_P256, False),
        (False, KeyType.EC_P384, KeyType.EC_P256, False),
    ],
)
def test_key_for_reuses_only_when_asked_and_same_type(reuse_key, previous_type, spec_type, reused):
    previous = key_of(previous_type)
    spec = CertificateSpec(
        name="site", dns_names=("example.com",), key_type=spec_type, reuse_key=reuse_key
    )

    key = pki.key_for(spec, pem_of(previous))

    assert pki.key_type_of(key.public_key()) is spec_type
    same = pem_of(key) == pem_of(previous)
    assert same is reused


@pytest.mark.parametrize("reuse_key", [True, False])
def test_key_for_without_a_previous_key_makes_a_fresh_one(reuse_key):
    spec = CertificateSpec(
        name="site", dns_names=("example.com",), key_type=KeyType.EC_P384, reuse_key=reuse_key
    )

    first = pki.key_for(spec, None)
    second = pki.key_for(spec, None)

    assert pki.key_type_of(first.public_key()) is KeyType.EC_P384
    assert pem_of(first) != pem_of(second)


def test_key_for_ignores_an_unreadable_previous_key_when_not_reusing():
    spec = CertificateSpec(
        name="site", dns_names=("example.com",), key_type=KeyType.EC_P256, reuse_key=False
    )

    key = pki.key_for(spec, NOT_A_KEY)

    assert pki.key_type_of(key.public_key()) is KeyType.EC_P256


def test_key_for_refuses_a_key_type_left_at_auto():
    # ``auto`` is chosen by the orchestrator from the targets first (renewer.key_choice).
    spec = CertificateSpec(name="site", dns_names=("example.com",))

    with pytest.raises(ConfigError, match="not chosen"):
        pki.key_for(spec, None)


# --- make_csr -----------------------------------------------------------------------------------


def load_csr(pem: bytes) -> x509.CertificateSigningRequest:
    return x509.load_pem_x509_csr(pem)


def test_csr_carries_every_name_in_the_san_in_order():
    names = ("example.com", "www.example.com", "api.example.com")
    key = key_of(KeyType.EC_P256)

    csr = load_csr(pki.make_csr(key, names))

    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == list(names)
    assert san.critical is False
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.com"
    assert csr.public_key() == key.public_key()
    assert csr.is_signature_valid


NAME_64 = "a" * 60 + ".com"
NAME_65 = "a" * 61 + ".com"


@pytest.mark.parametrize(
    ("first", "common_names"),
    [(NAME_64, [NAME_64]), (NAME_65, [])],
    ids=["64-chars-is-cn", "65-chars-no-cn"],
)
def test_csr_common_name_only_when_it_fits(first, common_names):
    names = (first, "example.com")

    csr = load_csr(pki.make_csr(key_of(KeyType.EC_P256), names))

    cns = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    assert cns == common_names
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == [first, "example.com"]


@pytest.mark.parametrize(
    ("key_type", "hash_name"),
    [
        (KeyType.EC_P256, "sha256"),
        (KeyType.EC_P384, "sha384"),
        (KeyType.RSA_2048, "sha256"),
        (KeyType.RSA_4096, "sha256"),
    ],
)
def test_csr_signature_hash_matches_the_key(key_type, hash_name):
    csr = load_csr(pki.make_csr(key_of(key_type), ("example.com",)))

    assert csr.signature_hash_algorithm is not None
    assert csr.signature_hash_algorithm.name == hash_name
    assert csr.is_signature_valid


@pytest.mark.parametrize("names", [(), []], ids=["tuple", "list"])
def test_csr_needs_at_least_one_name(names):
    with pytest.raises(ConfigError, match="at least one DNS name"):
        pki.make_csr(key_of(KeyType.EC_P256), names)


# --- split_chain / dns_names_of -----------------------------------------------------------------


def test_split_chain_keeps_the_order_leaf_first():
    root, intermediate, leaf = chain("Example Root")

    certs = pki.split_chain("junk before\n" + fullchain(leaf, intermediate, root) + "trailer\n")

    assert certs == [leaf.cert, intermediate.cert, root.cert]


def test_split_chain_accepts_crlf_line_endings():
    _, intermediate, leaf = chain("Example Root")
    crlf = fullchain(leaf, intermediate).replace("\n", "\r\n")

    assert pki.split_chain(crlf) == [leaf.cert, intermediate.cert]


@pytest.mark.parametrize(
    "text",
    ["", "no certificate here", FAKE_PEM, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----"],
    ids=["empty", "text", "private-key-pem", "empty-block"],
)
def test_split_chain_without_a_certificate_is_a_config_error(text):
    with pytest.raises(ConfigError, match="no PEM certificate found"):
        pki.split_chain(text)


def test_split_chain_with_a_broken_certificate_is_a_config_error():
    broken = "-----BEGIN CERTIFICATE-----\nTUlJQm9uZ3VzCg==\n-----END CERTIFICATE-----\n"

    with pytest.raises(ConfigError, match="not valid PEM/DER"):
        pki.split_chain(broken)


def test_dns_names_are_lower_cased():
    leaf = make_cert(name("x"), dns_names=("WWW.Example.COM", "example.com", "Api.Example.Com"))

    assert pki.dns_names_of(leaf.cert) == frozenset(
        {"www.example.com", "example.com", "api.example.com"}
    )


def test_dns_names_of_a_certificate_without_san_is_empty():
    assert pki.dns_names_of(make_cert(name("x")).cert) == frozenset()


# --- ari_cert_id --------------------------------------------------------------------------------


def test_ari_cert_id_matches_the_rfc_9773_example():
    cert = make_cert(name("example.com"), serial=RFC_SERIAL, aki=aki_of(RFC_AKI)).cert

    assert pki.ari_cert_id(cert) == RFC_CERT_ID


@pytest.mark.parametrize(
    ("serial", "encoded"),
    [
        (0x80, "AIA"),  # high bit set: DER needs a leading 00
        (0xFF00, "AP8A"),
        (0x7F, "fw"),  # high bit clear: no padding byte
        (0x0100, "AQA"),
        (LEAF_SERIAL, "EjSrzQ"),
    ],
    ids=["0x80", "0xff00", "0x7f", "0x0100", "0x1234abcd"],
)
def test_ari_cert_id_serial_is_der_integer_content(serial, encoded):
    cert = make_cert(name("example.com"), serial=serial, aki=aki_of(LEAF_AKI)).cert

    assert pki.ari_cert_id(cert) == f"{LEAF_AKI_B64}.{encoded}"


def test_ari_cert_id_serial_part_is_independently_decodable():
    # 19 bytes with the high bit set: DER makes it 20, the most RFC 5280 allows.
    serial = int.from_bytes(b"\x9f" + bytes(17) + b"\x01", "big")
    cert = make_cert(name("example.com"), serial=serial, aki=aki_of(LEAF_AKI)).cert

    cert_id = pki.ari_cert_id(cert)

    assert cert_id is not None
    serial_part = cert_id.split(".")[1]
    der = base64.urlsafe_b64decode(serial_part + "=" * (-len(serial_part) % 4))
    assert der == b"\x00\x9f" + bytes(17) + b"\x01"


def test_ari_cert_id_is_none_without_aki():
    assert pki.ari_cert_id(make_cert(name("example.com")).cert) is None


def test_ari_cert_id_is_none_when_aki_has_no_key_identifier():
    issuer_only = x509.AuthorityKeyIdentifier(
        key_identifier=None,
        authority_cert_issuer=[x509.DirectoryName(name("Example Root"))],
        authority_cert_serial_number=7,
    )
    cert = make_cert(name("example.com"), aki=issuer_only).cert

    assert pki.ari_cert_id(cert) is None


# --- describe -----------------------------------------------------------------------------------


def test_describe_summarizes_the_leaf():
    leaf_key = key_of(KeyType.EC_P384)
    _, intermediate, leaf = chain(
        "Example Root", leaf_names=("WWW.Example.com", "example.com"), leaf_key=leaf_key
    )

    current = pki.describe(fullchain(leaf, intermediate), profile="shortlived")

    assert current == CurrentCertificate(
        serial_hex="1234abcd",
        not_before=NOT_BEFORE,
        not_after=NOT_AFTER,
        dns_names=frozenset({"www.example.com", "example.com"}),
        key_type=KeyType.EC_P384,
        ari_cert_id=f"{LEAF_AKI_B64}.EjSrzQ",
        profile="shortlived",
    )


def test_describe_without_aki_or_profile():
    cert = make_cert(name("example.com"), serial=0xABC, dns_names=("example.com",))

    current = pki.describe(cert.pem)

    assert current.serial_hex == "abc"
    assert current.ari_cert_id is None
    assert current.profile is None
    assert current.key_type is KeyType.EC_P256


# --- top_issuer / select_chain ------------------------------------------------------------------


def test_top_issuer_is_the_issuer_of_the_last_certificate():
    _, intermediate, leaf = chain("Example Root X1")

    assert pki.top_issuer(fullchain(leaf, intermediate)) == "Example Root X1"


def test_top_issuer_of_a_chain_ending_in_the_root_is_the_root():
    root, intermediate, leaf = chain("Example Root X1")

    assert pki.top_issuer(fullchain(leaf, intermediate, root)) == "Example Root X1"


def test_top_issuer_without_cn_is_the_rfc4514_name():
    root = make_cert(name(org="Example Org"), ca=True)
    leaf = make_cert(name("example.com"), issuer=root)

    assert pki.top_issuer(leaf.pem) == "O=Example Org"


@pytest.fixture(scope="module")
def chains() -> dict[str, str]:
    """A default chain to Root A and alternates to Root B (two of them) and Root C."""
    result = {}
    for label, root_cn in [("default", "Root A"), ("b1", "Root B"), ("b2", "Root B")]:
        _, intermediate, leaf = chain(root_cn)
        result[label] = fullchain(leaf, intermediate)
    _, intermediate, leaf = chain("Root C")
    result["c"] = fullchain(leaf, intermediate)
    return result


@pytest.mark.parametrize(
    ("preferred", "expected"),
    [
        (None, "default"),
        ("", "default"),
        ("Root C", "c"),
        ("root c", "c"),
        ("  ROOT C ", "c"),
        ("root b", "b1"),  # first match wins
        ("Root A", "default"),
        ("No Such Root", "default"),
        ("Root", "default"),  # equality, not substring
    ],
)
def test_select_chain(chains, preferred, expected):
    offered = [chains["default"], chains["b1"], chains["b2"], chains["c"]]

    assert pki.select_chain(offered, preferred) == chains[expected]


def test_select_chain_with_only_the_default():
    _, intermediate, leaf = chain("Root A")
    only = fullchain(leaf, intermediate)

    assert pki.select_chain([only], "Root B") == only


@pytest.mark.parametrize(
    ("written", "normal"),
    [("3acfc", "3acfc"), ("03 AC FC", "3acfc"), ("03:ac:fc", "3acfc"), ("0", "0"), ("00", "0")],
)
def test_serials_compare_however_they_are_written(written, normal):
    assert pki.normalize_serial(written) == normal


def test_leaf_and_chain_splits_and_checks_the_serial():
    _root, intermediate, leaf = chain("Root")
    serial = pki.serial_hex(leaf.cert)
    first, rest = pki.leaf_and_chain(fullchain(leaf, intermediate), expected_serial=serial.upper())
    assert first == leaf.pem
    assert rest == intermediate.pem
    assert pki.leaf_and_chain(leaf.pem, expected_serial=serial)[1] == ""
    with pytest.raises(ConfigError, match="not ff"):
        pki.leaf_and_chain(fullchain(leaf, intermediate), expected_serial="ff")
