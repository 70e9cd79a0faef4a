"""Credentials for driving the emulator with the real ``oci`` SDK, both ways OCI offers.

* :func:`api_key_config` — an operator's OCI config (user, tenancy, fingerprint, key file), as
  ``oci.config.from_file`` would return it;
* :func:`resource_principal_env` — the environment an OCI Function gets (RPST + session key +
  region, RP version 2.2), so ``oci.auth.signers.get_resource_principals_signer()`` works offline.
  Values are file paths, as in a real function container.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.oci_emulator.auth import fingerprint
from sandbox.oci_emulator.core import Principal
from sandbox.oci_emulator.server import Emulator

REGION = "us-phoenix-1"


def _write_private_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def api_key_config(emulator: Emulator, principal: Principal, directory: Path) -> dict[str, str]:
    """Register a new API key for ``principal``; return an OCI SDK config dict using it."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = directory / f"{principal.id.rsplit('.', 1)[-1][:12]}-api-key.pem"
    _write_private_key(key, key_file)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    emulator.authenticator.register_api_key(principal, public_pem)
    return {
        "user": principal.id,
        "tenancy": principal.tenancy,
        "fingerprint": fingerprint(key.public_key()),
        "key_file": str(key_file),
        "region": REGION,
    }


def resource_principal_env(
    emulator: Emulator, principal: Principal, directory: Path, *, ttl: float = 3600
) -> dict[str, str]:
    """The OCI_RESOURCE_PRINCIPAL_* variables for ``principal`` (token and key as files)."""
    directory.mkdir(parents=True, exist_ok=True)
    session_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem_path = directory / "rp-private.pem"
    rpst_path = directory / "rpst"
    _write_private_key(session_key, pem_path)
    rpst_path.write_text(
        emulator.authenticator.issue_rpst(principal, session_key.public_key(), ttl=ttl)
    )
    return {
        "OCI_RESOURCE_PRINCIPAL_VERSION": "2.2",
        "OCI_RESOURCE_PRINCIPAL_RPST": str(rpst_path),
        "OCI_RESOURCE_PRINCIPAL_PRIVATE_PEM": str(pem_path),
        "OCI_RESOURCE_PRINCIPAL_REGION": REGION,
    }
