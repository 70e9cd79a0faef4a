"""Credentials for driving the emulator with the real ``oci`` SDK, both ways OCI offers.

* ``api_key_config*`` — an operator's OCI config (user, tenancy, fingerprint, key file), as
  ``oci.config.from_file`` would return it;
* ``resource_principal_env*`` — the environment an OCI Function gets (RPST + session key + region,
  RP version 2.2), so ``oci.auth.signers.get_resource_principals_signer()`` works offline. Values
  are file paths, as in a real function container.

The plain functions talk to an in-process :class:`Emulator`; the ``*_remote`` ones to an emulator
in another process, through its admin API (the demo, end-to-end tests). Private keys are made
here and never sent: the emulator only learns public keys.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.oci_emulator.auth import fingerprint
from sandbox.oci_emulator.core import Principal
from sandbox.oci_emulator.server import ADMIN_PREFIX, Emulator

REGION = "us-phoenix-1"


def _new_key(path: Path) -> rsa.RSAPrivateKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return key


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _config(user: str, tenancy: str, key: rsa.RSAPrivateKey, key_file: Path) -> dict[str, str]:
    return {
        "user": user,
        "tenancy": tenancy,
        "fingerprint": fingerprint(key.public_key()),
        "key_file": str(key_file),
        "region": REGION,
    }


def _rp_env(directory: Path, issue: Callable[[rsa.RSAPrivateKey], str]) -> dict[str, str]:
    pem_path, rpst_path = directory / "rp-private.pem", directory / "rpst"
    session_key = _new_key(pem_path)
    rpst_path.write_text(issue(session_key))
    return {
        "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
        "OCI_RESOURCE_PRINCIPAL_RPST": str(rpst_path),
        "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": str(pem_path),
        "OCI_RESOURCE_PRINCIPAL_REGION": REGION,
    }


def api_key_config(emulator: Emulator, principal: Principal, directory: Path) -> dict[str, str]:
    """Register a new API key for ``principal``; return an OCI SDK config dict using it."""
    key_file = directory / f"{principal.id.rsplit('.', 1)[-1][:12]}-api-key.pem"
    key = _new_key(key_file)
    emulator.authenticator.register_api_key(principal, _public_pem(key))
    return _config(principal.id, principal.tenancy, key, key_file)


def resource_principal_env(
    emulator: Emulator, principal: Principal, directory: Path, *, ttl: float = 3600
) -> dict[str, str]:
    """The OCI_RESOURCE_PRINCIPAL_* variables for ``principal`` (token and key as files)."""
    return _rp_env(
        directory,
        lambda key: emulator.authenticator.issue_rpst(principal, key.public_key(), ttl=ttl),
    )


def _admin_post(endpoint: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the emulator's own loopback endpoint
        f"{endpoint}{ADMIN_PREFIX}{what}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        answer: dict[str, Any] = json.load(response)
    return answer


def api_key_config_remote(endpoint: str, principal_name: str, directory: Path) -> dict[str, str]:
    """Like :func:`api_key_config`, for an emulator at ``endpoint`` and a fixture principal."""
    key_file = directory / f"{principal_name}-api-key.pem"
    key = _new_key(key_file)
    answer = _admin_post(
        endpoint,
        "credentials/api-key",
        {"principal": principal_name, "publicKeyPem": _public_pem(key)},
    )
    return _config(answer["user"], answer["tenancy"], key, key_file)


def resource_principal_env_remote(
    endpoint: str, principal_name: str, directory: Path, *, ttl: float = 3600
) -> dict[str, str]:
    """Like :func:`resource_principal_env`, for an emulator at ``endpoint``."""
    return _rp_env(
        directory,
        lambda key: str(
            _admin_post(
                endpoint,
                "credentials/resource-principal",
                {"principal": principal_name, "sessionPublicKeyPem": _public_pem(key), "ttl": ttl},
            )["rpst"]
        ),
    )
