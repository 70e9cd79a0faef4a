"""``AcmeRevoker``: one RFC 8555 revokeCert request (section 7.6), and its typed refusals.

The request is a JWS over ``{"certificate": <DER, base64url>, "reason": <RFC 5280 code>}`` sent
to the directory's ``revokeCert`` URL, signed in one of the two ways the RFC allows:

* with the ACME **account key** (``kid`` = the account URL): the account stored for the
  configured directory (:class:`~renewer.ports.AccountStore`, the one that issued our
  certificates). The CA accepts it when that account issued the certificate or holds valid
  authorizations for all its names; Pebble accepts only the issuing account;
* with the **certificate's own private key** (``jwk`` = its public key): always authorized, and
  the way to go when the account is in doubt (lost, deactivated, or suspected compromised too).
  Let's Encrypt additionally blocks the key for future issuance when ``keyCompromise`` is
  proven this way.

A success is HTTP 200 with an empty body. The CA's refusals become typed errors:
``alreadyRevoked`` -> :class:`AlreadyRevoked`, ``unauthorized``/``accountDoesNotExist`` ->
:class:`RevocationUnauthorized`, a certificate the CA does not know (Boulder: ``malformed``
with 404; Pebble: ``malformed`` "Unable to find specified certificate") ->
:class:`CertificateUnknownToCa`; every other problem stays an
:class:`~renewer.errors.AcmeProtocolError` (``badRevocationReason``...), and transport trouble
a :class:`~renewer.errors.TransientError`, as for orders (:func:`acme_transport.translate`).

Only this module and ``acme_issuer`` speak ACME with a key; it never creates an account.
"""

from __future__ import annotations

import logging

from acme import client as acme_client
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy import jwa, jwk

from renewer import pki
from renewer.adapters import acme_answers as answers
from renewer.adapters.acme_transport import AcmeNetwork, translate
from renewer.clock import Clock, SystemClock
from renewer.errors import (
    AcmeProtocolError,
    AlreadyRevoked,
    CaAnswerInvalid,
    CertificateUnknownToCa,
    ConfigError,
    RevocationUnauthorized,
)
from renewer.ports import AccountStore

logger = logging.getLogger(__name__)

_NOT_FOUND = 404
# Pebble's and Boulder's wording for a certificate they never issued (or forgot).
_UNKNOWN_CERTIFICATE_WORDS = ("unable to find", "not found", "unknown", "unrecognized issuer")


class AcmeRevoker:
    """Revokes certificates at one ACME directory.

    Args:
        directory_url: the CA's RFC 8555 directory (the one the certificates came from).
        accounts: where the account key and URL of that directory are stored.
        ca_bundle: a PEM file to trust for the ACME server instead of the system store.
        clock: time source for the deadline.
        network_timeout: seconds for one socket operation; the request as a whole ends by the
            caller's deadline.
        user_agent: sent to the CA.

    """

    def __init__(
        self,
        *,
        directory_url: str,
        accounts: AccountStore,
        ca_bundle: str | None = None,
        clock: Clock | None = None,
        network_timeout: float = 30.0,
        user_agent: str = "oci-acme-renewer/0.1",
    ) -> None:
        self.directory_url = directory_url
        self._accounts = accounts
        self._verify: str | bool = ca_bundle or True
        self._clock = clock or SystemClock()
        self._timeout = network_timeout
        self._user_agent = user_agent

    def revoke(
        self,
        fullchain_pem: str,
        reason_code: int,
        *,
        certificate_key_pem: str | None,
        deadline: float,
    ) -> str:
        """Revoke the leaf of ``fullchain_pem`` with RFC 5280 ``reason_code``.

        Args:
            fullchain_pem: the certificate (leaf first; only the leaf is sent).
            reason_code: the CRLReason code.
            certificate_key_pem: sign with this key (the certificate's own) instead of the
                account key; secret, never logged.
            deadline: a ``time.monotonic()`` instant; no request goes past it.

        Returns:
            Who signed: the account URL, or ``"certificate key"``.

        Raises:
            AlreadyRevoked, RevocationUnauthorized, CertificateUnknownToCa: the CA refused.
            AcmeProtocolError: any other problem document.
            TransientError / AcmeTimeout: network or server trouble, deadline reached.
            ConfigError: the certificate or the key is unreadable.

        """
        leaf = _leaf(fullchain_pem)
        directory = self._directory(deadline)
        if certificate_key_pem is not None:
            key, alg = _certificate_jwk(certificate_key_pem)
            net = self._network(key, alg, deadline)
            signer = "certificate key"
        else:
            key, account_url = self._account()
            net = self._network(key, jwa.ES256, deadline)
            net.account = messages.RegistrationResource(
                body=messages.Registration(), uri=account_url
            )
            signer = account_url
        client = acme_client.ClientV2(directory, net)
        try:
            with translate("revokeCert"):
                client.revoke(leaf, reason_code)
        except AcmeProtocolError as exc:
            raise _refusal(exc, signer) from exc
        logger.info(
            "acme certificate revoked serial=%s reason=%d signer=%s",
            pki.serial_hex(leaf),
            reason_code,
            signer,
        )
        return signer

    def _network(self, key: jwk.JWK, alg: jwa.JWASignature, deadline: float) -> AcmeNetwork:
        net = AcmeNetwork(
            key=key,
            alg=alg,
            verify_ssl=self._verify,
            user_agent=self._user_agent,
            timeout=self._timeout,
            deadline=deadline,
        )
        net.session.verify = self._verify
        return net

    def _directory(self, deadline: float) -> messages.Directory:
        with translate("directory"):
            net = AcmeNetwork(
                key=None,
                alg=jwa.ES256,
                verify_ssl=self._verify,
                user_agent=self._user_agent,
                timeout=self._timeout,
                deadline=deadline,
            )
            net.session.verify = self._verify
            directory = answers.directory(net.get(self.directory_url))
        if not isinstance(directory.to_partial_json().get("revokeCert"), str):
            msg = f"the CA's directory at {self.directory_url} has no revokeCert URL"
            raise CaAnswerInvalid(msg)
        return directory

    def _account(self) -> tuple[jwk.JWKEC, str]:
        record = self._accounts.load(self.directory_url)
        if record is None or not record.account_url:
            msg = (
                f"no ACME account is stored for {self.directory_url}, so the account key cannot"
                ' sign the revocation; sign with the certificate key ("signWith":'
                ' "certificateKey", CLI --sign-with certificateKey)'
            )
            raise RevocationUnauthorized(msg, problem_type="unauthorized")
        loaded = pki.load_private_key(record.private_key_pem)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigError("the stored ACME account key must be an EC P-256 key")
        return jwk.JWKEC(key=loaded), record.account_url


def _leaf(fullchain_pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(fullchain_pem.encode())
    except ValueError as exc:
        raise ConfigError("the stored certificate is not a readable PEM certificate") from exc


def _certificate_jwk(key_pem: str) -> tuple[jwk.JWK, jwa.JWASignature]:
    """The certificate key as a JWK and the JWS algorithm RFC 7518 pairs with it."""
    key = pki.load_private_key(key_pem)
    if isinstance(key, rsa.RSAPrivateKey):
        return jwk.JWKRSA(key=key), jwa.RS256
    if isinstance(key, ec.EllipticCurvePrivateKey):
        alg = {"secp256r1": jwa.ES256, "secp384r1": jwa.ES384, "secp521r1": jwa.ES512}.get(
            key.curve.name
        )
        if alg is not None:
            return jwk.JWKEC(key=key), alg
    msg = "the certificate's key cannot sign a JWS (RSA or EC P-256/P-384/P-521 expected)"
    raise ConfigError(msg)


def _refusal(exc: AcmeProtocolError, signer: str) -> AcmeProtocolError:
    """The typed error for the CA's refusal ``exc`` (the message keeps the CA's detail)."""
    kind, detail, status = exc.problem_type, exc.detail, exc.status
    if kind == "alreadyRevoked":
        return AlreadyRevoked(
            f"{exc}; the certificate is revoked already: nothing more to do",
            problem_type=kind,
            detail=detail,
            status=status,
        )
    if kind in ("unauthorized", "accountDoesNotExist"):
        hint = (
            "; the account may not revoke it (another account issued it?): sign with the"
            ' certificate key ("signWith": "certificateKey")'
            if signer != "certificate key"
            else "; the key does not match the certificate"
        )
        return RevocationUnauthorized(
            f"{exc}{hint}", problem_type=kind, detail=detail, status=status
        )
    lowered = detail.lower()
    if kind == "malformed" and (
        status == _NOT_FOUND or any(word in lowered for word in _UNKNOWN_CERTIFICATE_WORDS)
    ):
        return CertificateUnknownToCa(
            f"{exc}; the CA does not know this certificate (issued by another CA, or by this"
            " CA before a reset)",
            problem_type=kind,
            detail=detail,
            status=status,
        )
    return exc
