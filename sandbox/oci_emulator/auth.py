"""Request authentication as OCI does it: draft-cavage HTTP signatures over a fixed header list.

Two kinds of key id are understood:

* API keys: ``<tenancy>/<user>/<fingerprint>``, registered with their public key;
* security tokens: ``ST$<jwt>``, where the JWT is a resource-principal session token (RPST) that
  *this emulator* issued (:meth:`Authenticator.issue_rpst`) and signed with its own key. The
  token's ``jwk`` claim is the session public key the request must be signed with; its
  ``res_*`` claims say which resource it is.

The SDK never verifies the RPST itself (it decodes it unverified), so a token that the emulator did
not sign is our own rule, not OCI's wire behaviour: it is how the emulator keeps one test's
credentials from being forged by another. Failures are 401 NotAuthenticated, as OCI answers.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import hashlib
import json
import re
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox.oci_emulator.core import OciError, Principal, Request, StateStore

# [SDK oci/signer.py] which headers each method signs; put_object/upload_part sign the short list.
SIGNED_GET = ("date", "(request-target)", "host")
SIGNED_BODY = (*SIGNED_GET, "content-length", "content-type", "x-content-sha256")
MAX_CLOCK_SKEW = 300.0  # seconds; OCI rejects requests whose date is off by more than 5 minutes
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def unauthenticated(why: str) -> OciError:
    """401 NotAuthenticated with the reason (OCI's message is similar and as terse)."""
    return OciError(
        401,
        "NotAuthenticated",
        "The required information to complete authentication was not provided or was"
        f" incorrect: {why}",
    )


def fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """OCI's key fingerprint: MD5 of the DER public key, colon-separated hex."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der).hexdigest()  # noqa: S324 - OCI's fingerprint format, not security
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwk_of(public_key: rsa.RSAPublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        "kid": "sessionKey",
    }


def _public_key_from_jwk(jwk: dict[str, Any]) -> rsa.RSAPublicKey:
    n = int.from_bytes(_b64url_decode(str(jwk["n"])), "big")
    e = int.from_bytes(_b64url_decode(str(jwk["e"])), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def _principal_to_json(principal: Principal) -> dict[str, Any]:
    return {
        "kind": principal.kind,
        "id": principal.id,
        "tenancy": principal.tenancy,
        "compartment": principal.compartment,
        "groups": sorted(principal.groups),
    }


def _principal_from_json(data: dict[str, Any]) -> Principal:
    return Principal(
        kind=str(data["kind"]),
        id=str(data["id"]),
        tenancy=str(data["tenancy"]),
        compartment=data.get("compartment"),
        groups=frozenset(data.get("groups", [])),
    )


@functools.cache
def _token_signing_key() -> rsa.RSAPrivateKey:
    # One per process: RSA generation is ~0.1 s, and test suites start hundreds of emulators.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Authenticator:
    """Verifies request signatures and issues resource-principal tokens.

    Registered API keys (public halves only) and the key that signs security tokens live in the
    emulator's state (section ``auth``), so a restarted emulator keeps accepting the credentials
    it handed out. Thread-safe. ``check_date`` can be turned off for replayed requests.
    """

    def __init__(self, state: StateStore | None = None, *, check_date: bool = True) -> None:
        self._state = state or StateStore()
        self._check_date = check_date
        # PEM -> key object, so each PEM is parsed once.
        self._public_keys: dict[str, rsa.RSAPublicKey] = {}
        self._private_keys: dict[str, rsa.RSAPrivateKey] = {}

    # ------------------------------------------------------------------ registration

    def register_api_key(self, principal: Principal, public_key_pem: str) -> str:
        """Register a user's API key; returns its key id ``tenancy/user/fingerprint``."""
        public_key = self._public_key(public_key_pem)
        key_id = f"{principal.tenancy}/{principal.id}/{fingerprint(public_key)}"
        with self._state.lock:
            self._section().setdefault("apiKeys", {})[key_id] = {
                "publicKeyPem": public_key_pem,
                "principal": _principal_to_json(principal),
            }
            self._state.save()
        return key_id

    def _section(self) -> dict[str, Any]:
        return self._state.section("auth")

    def _public_key(self, pem: str) -> rsa.RSAPublicKey:
        key = self._public_keys.get(pem)
        if key is None:
            loaded = serialization.load_pem_public_key(pem.encode())
            if not isinstance(loaded, rsa.RSAPublicKey):
                msg = "OCI API keys are RSA keys"
                raise TypeError(msg)
            key = self._public_keys[pem] = loaded
        return key

    @property
    def _token_key(self) -> rsa.RSAPrivateKey:
        with self._state.lock:
            pem = self._section().get("tokenKey")
            if pem is None:
                pem = (
                    _token_signing_key()
                    .private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                    .decode()
                )
                self._section()["tokenKey"] = pem
                self._state.save()
        key = self._private_keys.get(pem)
        if key is None:
            loaded = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                msg = "the stored token-signing key is not an RSA key"
                raise TypeError(msg)
            key = self._private_keys[pem] = loaded
        return key

    def issue_rpst(
        self, principal: Principal, session_public_key: rsa.RSAPublicKey, *, ttl: float = 3600
    ) -> str:
        """A resource-principal session token for ``principal``, bound to the session key.

        Carries the claims the SDK reads (``res_tenant``, ``res_compartment``, ``exp``, ``iat``)
        plus ``res_id``, ``res_type`` and our ``groups`` claim (dynamic-group membership).
        """
        issued = int(time.time())
        claims = {
            "sub": principal.id,
            "iss": "authService.oracle.com",
            "ttype": "res",
            "res_type": principal.id.split(".")[1] if principal.id.count(".") > 1 else "resource",
            "res_id": principal.id,
            "res_tenant": principal.tenancy,
            "res_compartment": principal.compartment or principal.tenancy,
            "groups": sorted(principal.groups),
            "iat": issued,
            "exp": issued + int(ttl),
            "jwk": json.dumps(_jwk_of(session_public_key)),
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": "emulator"}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = self._token_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"

    # ------------------------------------------------------------------ verification

    def authenticate(self, request: Request) -> Principal:
        """The principal that signed ``request``.

        Raises:
            OciError: 401 NotAuthenticated for a missing, malformed, unknown or wrong signature,
                a body that does not match ``x-content-sha256``, or a stale ``date``.

        """
        header = request.header("authorization")
        if not header or not header.startswith("Signature "):
            raise unauthenticated("missing Signature authorization header")
        params = dict(_PARAM.findall(header))
        for name in ("keyId", "signature", "headers"):
            if name not in params:
                raise unauthenticated(f"authorization header has no {name}")
        if params.get("algorithm", "rsa-sha256") != "rsa-sha256":
            raise unauthenticated("only rsa-sha256 signatures are accepted")
        signed = params["headers"].split()
        self._check_signed_headers(request, signed)
        public_key, principal = self._key_for(params["keyId"])
        signing_string = self._signing_string(request, signed)
        try:
            public_key.verify(
                base64.b64decode(params["signature"]),
                signing_string.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError) as exc:
            raise unauthenticated("signature does not verify") from exc
        return principal

    def _check_signed_headers(self, request: Request, signed: list[str]) -> None:
        required = SIGNED_BODY if request.method in ("POST", "PUT", "PATCH") else SIGNED_GET
        # Object Storage PutObject/UploadPart sign only the short list (streamed bodies).
        if request.method == "PUT" and "x-content-sha256" not in signed:
            required = SIGNED_GET
        missing = [h for h in required if h not in signed]
        if missing:
            raise unauthenticated(f"signature does not cover {', '.join(missing)}")
        for name in signed:
            if name != "(request-target)" and request.header(name) is None:
                raise unauthenticated(f"signed header {name} is absent")
        if "x-content-sha256" in signed:
            digest = base64.b64encode(hashlib.sha256(request.body).digest()).decode()
            if request.header("x-content-sha256") != digest:
                raise unauthenticated("x-content-sha256 does not match the body")
        if "content-length" in signed and request.header("content-length") != str(
            len(request.body)
        ):
            raise unauthenticated("content-length does not match the body")
        if self._check_date:
            sent = email.utils.parsedate_to_datetime(request.header("date") or "")
            if abs(sent.timestamp() - time.time()) > MAX_CLOCK_SKEW:
                raise unauthenticated("date is more than 5 minutes off")

    @staticmethod
    def _signing_string(request: Request, signed: list[str]) -> str:
        lines = []
        for name in signed:
            if name == "(request-target)":
                target = request.raw_path + (
                    f"?{request.query_string}" if request.query_string else ""
                )
                lines.append(f"(request-target): {request.method.lower()} {target}")
            else:
                lines.append(f"{name}: {request.header(name)}")
        return "\n".join(lines)

    def _key_for(self, key_id: str) -> tuple[rsa.RSAPublicKey, Principal]:
        if key_id.startswith("ST$"):
            return self._session_key(key_id[3:])
        with self._state.lock:
            entry = self._section().get("apiKeys", {}).get(key_id)
        if entry is None:
            raise unauthenticated("unknown keyId")
        return self._public_key(entry["publicKeyPem"]), _principal_from_json(entry["principal"])

    def _session_key(self, token: str) -> tuple[rsa.RSAPublicKey, Principal]:
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            self._token_key.public_key().verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            claims = json.loads(_b64url_decode(claims_b64))
            session_key = _public_key_from_jwk(json.loads(claims["jwk"]))
        except (ValueError, KeyError, InvalidSignature, TypeError) as exc:
            raise unauthenticated("security token is not one this service issued") from exc
        if float(claims.get("exp", 0)) < time.time():
            raise unauthenticated("security token expired")
        principal = Principal(
            kind="resource",
            id=str(claims["res_id"]),
            tenancy=str(claims["res_tenant"]),
            compartment=str(claims["res_compartment"]),
            groups=frozenset(claims.get("groups", [])),
        )
        return session_key, principal
