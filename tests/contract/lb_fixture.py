"""A load balancer for the emulator's seed fixture: HTTPS listeners on certificate bundles."""

from __future__ import annotations

from typing import Any


def https_listener(
    port: int, certificate: str, *, cipher_suite: str | None = "oci-modern-ssl-cipher-suite-v1"
) -> dict[str, Any]:
    """A listener on ``port`` that terminates TLS with the bundle named ``certificate``.

    The tests' certificates are ECDSA, so the suite defaults to one with ECDSA ciphers (OCI's
    default suite has none); None leaves the listener at OCI's default suite.
    """
    ssl: dict[str, Any] = {"certificateName": certificate}
    if cipher_suite is not None:
        ssl["cipherSuiteName"] = cipher_suite
    return {
        "defaultBackendSetName": "app",
        "port": port,
        "protocol": "HTTP",
        "sslConfiguration": ssl,
    }


def load_balancer(
    lb_id: str,
    compartment: str,
    *,
    name: str,
    listeners: dict[str, dict[str, Any]],
    certificates: dict[str, dict[str, str]],
    private_keys: dict[str, str],
) -> dict[str, Any]:
    """One load balancer (work requests of 0.05 s) with a backend set nobody answers."""
    return {
        "id": lb_id,
        "compartmentId": compartment,
        "displayName": name,
        "workRequestSeconds": 0.05,
        "listeners": listeners,
        "certificates": certificates,
        "privateKeys": private_keys,
        "backendSets": {
            "app": {
                "policy": "ROUND_ROBIN",
                "backends": [{"ipAddress": "127.0.0.1", "port": 9}],
                "healthChecker": {"protocol": "TCP"},
            }
        },
    }
