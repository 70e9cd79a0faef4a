"""An in-memory ``CertificateStore`` with the version semantics of the Vault adapter.

``tests/contract/test_vault_adapters.py`` runs the same suite against this fake and against
``renewer.adapters.oci_vault.VaultCertificateStore`` on the emulator, so the two cannot drift.
Not modelled here: the 25 KB content limit and secret ownership tags (adapter-only checks).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from renewer import naming
from renewer.errors import ConfigError
from renewer.model import StoredCertificate

MAX_ACTIVE_VERSIONS = 30
MAX_KEEP = MAX_ACTIVE_VERSIONS - 1

CURRENT, PREVIOUS, DEPRECATED = "CURRENT", "PREVIOUS", "DEPRECATED"


@dataclass
class _Version:
    certificate: StoredCertificate
    stage: str
    pending_deletion: bool = False


class InMemoryCertificateStore:
    """``CertificateStore`` in a dict, with Vault's stages and limits.

    Each ``put`` of a new serial adds a version that becomes CURRENT (the old CURRENT becomes
    PREVIOUS, the old PREVIOUS DEPRECATED); a ``put`` of the CURRENT serial writes nothing. At
    most 30 versions are in active use. ``prune`` schedules DEPRECATED versions beyond the newest
    ``keep`` (1..29); a scheduled version can no longer be read. ``writes`` records
    ``(name, version)`` for every version added. ``unusable`` (a message) makes ``check`` raise
    ConfigError, as a wrong vault or key does. Thread-safe.
    """

    def __init__(self, *, prefix: str = naming.DEFAULT_PREFIX) -> None:
        self.unusable: str | None = None
        self.checks = 0
        self._prefix = naming.check_prefix(prefix)
        self._secrets: dict[str, dict[int, _Version]] = {}
        self._lock = threading.Lock()
        self.writes: list[tuple[str, int]] = []

    def _secret(self, name: str) -> str:
        return naming.secret_name(name, prefix=self._prefix)

    def check(self) -> None:
        self.checks += 1
        if self.unusable is not None:
            raise ConfigError(self.unusable)

    def latest(self, name: str) -> StoredCertificate | None:
        with self._lock:
            versions = self._secrets.get(self._secret(name), {})
            current = [v.certificate for v in versions.values() if v.stage == CURRENT]
            return current[0] if current else None

    def get(self, name: str, version: int) -> StoredCertificate:
        secret = self._secret(name)
        with self._lock:
            if secret not in self._secrets:
                msg = f"secret {secret} does not exist, so it has no version {version}"
                raise ConfigError(msg)
            found = self._secrets[secret].get(version)
            if found is None or found.pending_deletion:
                msg = f"version {version} of secret {secret} does not exist"
                raise ConfigError(msg)
            return found.certificate

    def put(self, name: str, certificate: StoredCertificate) -> StoredCertificate:
        secret = self._secret(name)
        with self._lock:
            versions = self._secrets.setdefault(secret, {})
            for held in versions.values():
                if held.stage == CURRENT and held.certificate.serial_hex == certificate.serial_hex:
                    return held.certificate
            if sum(not v.pending_deletion for v in versions.values()) >= MAX_ACTIVE_VERSIONS:
                msg = (
                    f"secret {secret} already has {MAX_ACTIVE_VERSIONS} versions in active use;"
                    " prune old versions"
                )
                raise ConfigError(msg)
            for held in versions.values():
                if held.stage == PREVIOUS:
                    held.stage = DEPRECATED
                elif held.stage == CURRENT:
                    held.stage = PREVIOUS
            number = max(versions, default=0) + 1
            stored = dataclasses.replace(certificate, version=number)
            versions[number] = _Version(stored, CURRENT)
            self.writes.append((name, number))
            return stored

    def prune(self, name: str, *, keep: int) -> list[int]:
        if not 1 <= keep <= MAX_KEEP:
            msg = f"keep={keep} is out of range: keep 1 to {MAX_KEEP} certificate versions"
            raise ConfigError(msg)
        with self._lock:
            versions = self._secrets.get(self._secret(name), {})
            active = sorted(
                (n for n, v in versions.items() if not v.pending_deletion), reverse=True
            )
            doomed = sorted(n for n in active[keep:] if versions[n].stage == DEPRECATED)
            for number in doomed:
                versions[number].pending_deletion = True
            return doomed
