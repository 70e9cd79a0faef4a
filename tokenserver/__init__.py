"""The http-01 token server: serves ACME key authorizations from the challenge bucket.

It runs as an OCI Container Instance in the backend set that the load balancer's port-80
listener routes ``/.well-known/acme-challenge/`` to, and answers the CA's validation requests
with the objects the renewer wrote to the challenge bucket. Deliberately independent of the
``renewer`` package: its image holds this package and the ``oci`` SDK only.

In-process::

    from tokenserver import Settings, TokenServer
    with TokenServer(Settings(bucket="acme-challenges", port=0, host="127.0.0.1")) as server:
        ...  # server.port

As a process: ``python -m tokenserver`` (configured by environment; see
:mod:`tokenserver.settings`). docs/token-server.md has the operator's view.
"""

from __future__ import annotations

import importlib
from typing import Any

# Exported lazily: ``python -m tokenserver.healthcheck`` (the image's HEALTHCHECK, every 30 s)
# must not pay for importing the OCI SDK (~0.5 s, ~50 MB) that the server modules need.
_EXPORTS = {
    "TokenServer": "tokenserver.server",
    "Settings": "tokenserver.settings",
    "SettingsError": "tokenserver.settings",
    "ObjectStorageTokens": "tokenserver.store",
    "StorageError": "tokenserver.store",
    "StorageUnavailable": "tokenserver.store",
}
__all__ = [
    "ObjectStorageTokens",
    "Settings",
    "SettingsError",
    "StorageError",
    "StorageUnavailable",
    "TokenServer",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - whatever the exported name is
    if name not in _EXPORTS:
        msg = f"module 'tokenserver' has no attribute {name!r}"
        raise AttributeError(msg)
    return getattr(importlib.import_module(_EXPORTS[name]), name)
