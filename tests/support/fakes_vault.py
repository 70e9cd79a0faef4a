"""An in-memory ``CertificateStore`` with the version semantics of the Vault adapter.

``tests/contract/test_vault_adapters.py`` runs the same suite against this fake and against
``renewer.adapters.oci_vault.VaultCertificateStore`` on the emulator, so the two cannot drift.
Not modelled here: the 25 KB content limit and secret ownership tags (adapter-only checks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from renewer import naming, pki
from renewer.errors import ConfigError
from renewer.model import PendingOrder, StoredCertificate

MAX_ACTIVE_VERSIONS = 30
MAX_KEEP_CERTIFICATES = MAX_ACTIVE_VERSIONS - 3

CURRENT, PENDING, PREVIOUS, DEPRECATED = "CURRENT", "PENDING", "PREVIOUS", "DEPRECATED"


@dataclass
class _Version:
    content: StoredCertificate | PendingOrder
    stage: str
    pending_deletion: bool = False

    @property
    def is_pending_order(self) -> bool:
        return isinstance(self.content, PendingOrder)


class InMemoryCertificateStore:
    """``CertificateStore`` in a dict, with Vault's stages and limits.

    Each ``put`` of a new serial adds a version that becomes CURRENT (the old CURRENT becomes
    PREVIOUS, the old PREVIOUS DEPRECATED, a PENDING one stays PENDING); a ``put`` of the
    CURRENT serial writes nothing. ``save_pending`` adds a PENDING version (an older PENDING
    one becomes DEPRECATED), or creates the secret with it as CURRENT version 1; the newest
    version, when it is a pending order, is the open one. At most 30 versions are in active
    use; a write that would exceed it first drops the DEPRECATED pending orders. ``prune``
    schedules DEPRECATED certificate versions beyond the newest ``keep`` (1..30, at most 27
    kept) and every DEPRECATED pending order; a scheduled version can no longer be read.
    ``writes`` records ``(name, version)`` for every certificate version added,
    ``pending_writes`` the same for pending orders. ``unusable`` (a message) makes ``check``
    raise ConfigError, as a wrong vault or key does. Thread-safe.
    """

    def __init__(self, *, prefix: str = naming.DEFAULT_PREFIX) -> None:
        self.unusable: str | None = None
        self.checks = 0
        self._prefix = naming.check_prefix(prefix)
        self._secrets: dict[str, dict[int, _Version]] = {}
        self._lock = threading.Lock()
        self.writes: list[tuple[str, int]] = []
        self.pending_writes: list[tuple[str, int]] = []

    def _secret(self, name: str) -> str:
        return naming.secret_name(name, prefix=self._prefix)

    def check(self) -> None:
        self.checks += 1
        if self.unusable is not None:
            raise ConfigError(self.unusable)

    def latest(self, name: str) -> StoredCertificate | None:
        with self._lock:
            versions = self._secrets.get(self._secret(name), {})
            current = [v.content for v in versions.values() if v.stage == CURRENT]
            found = current[0] if current else None
            return found if isinstance(found, StoredCertificate) else None

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
            if not isinstance(found.content, StoredCertificate):
                msg = (
                    f"version {version} of secret {secret} is the record of an ACME order that"
                    " was in progress, not a certificate; pick a certificate version"
                )
                raise ConfigError(msg)
            return found.content

    def leaf_fingerprints(self, name: str) -> frozenset[str]:
        """As the Vault adapter: the leaves of readable certificate versions (SHA-256, hex)."""
        with self._lock:
            versions = self._secrets.get(self._secret(name), {}).values()
            chains = [
                v.content.fullchain_pem
                for v in versions
                if isinstance(v.content, StoredCertificate) and not v.pending_deletion
            ]
        return frozenset(
            hashlib.sha256(
                pki.split_chain(chain)[0].public_bytes(serialization.Encoding.DER)
            ).hexdigest()
            for chain in chains
        )

    def put(self, name: str, certificate: StoredCertificate) -> StoredCertificate:
        secret = self._secret(name)
        with self._lock:
            versions = self._secrets.setdefault(secret, {})
            for held in versions.values():
                if (
                    held.stage == CURRENT
                    and isinstance(held.content, StoredCertificate)
                    and held.content.serial_hex == certificate.serial_hex
                ):
                    return held.content
            self._make_room(secret, versions)
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

    def save_pending(self, name: str, order: PendingOrder) -> None:
        secret = self._secret(name)
        with self._lock:
            versions = self._secrets.get(secret)
            if versions is None:
                versions = self._secrets[secret] = {}
                stage = CURRENT  # CreateSecret accepts CURRENT only
            else:
                self._make_room(secret, versions)
                for held in versions.values():
                    if held.stage == PENDING:
                        held.stage = DEPRECATED
                stage = PENDING
            number = max(versions, default=0) + 1
            versions[number] = _Version(dataclasses.replace(order, version=number), stage)
            self.pending_writes.append((name, number))

    def load_pending(self, name: str) -> PendingOrder | None:
        with self._lock:
            versions = self._secrets.get(self._secret(name), {})
            if not versions:
                return None
            newest = versions[max(versions)]
            content = newest.content
            if newest.pending_deletion or not isinstance(content, PendingOrder):
                return None
            return content

    def prune(self, name: str, *, keep: int) -> list[int]:
        if not 1 <= keep <= MAX_ACTIVE_VERSIONS:
            msg = (
                f"keep={keep} is out of range: keep 1 to {MAX_KEEP_CERTIFICATES} certificate"
                " versions"
            )
            raise ConfigError(msg)
        kept = min(keep, MAX_KEEP_CERTIFICATES)
        with self._lock:
            versions = self._secrets.get(self._secret(name), {})
            active = sorted(
                (n for n, v in versions.items() if not v.pending_deletion), reverse=True
            )
            certificates = [n for n in active if not versions[n].is_pending_order]
            doomed = [n for n in certificates[kept:] if versions[n].stage == DEPRECATED]
            doomed += [
                n
                for n in active
                if versions[n].is_pending_order and versions[n].stage == DEPRECATED
            ]
            for number in doomed:
                versions[number].pending_deletion = True
            return sorted(doomed)

    def stages(self, name: str) -> dict[int, str]:
        """Every version in active use with its stage (for assertions)."""
        with self._lock:
            versions = self._secrets.get(self._secret(name), {})
            return {n: v.stage for n, v in sorted(versions.items()) if not v.pending_deletion}

    def _make_room(self, secret: str, versions: dict[int, _Version]) -> None:
        if sum(not v.pending_deletion for v in versions.values()) < MAX_ACTIVE_VERSIONS:
            return
        for held in versions.values():
            if held.is_pending_order and held.stage == DEPRECATED:
                held.pending_deletion = True
        if sum(not v.pending_deletion for v in versions.values()) >= MAX_ACTIVE_VERSIONS:
            msg = (
                f"secret {secret} already has {MAX_ACTIVE_VERSIONS} versions in active use;"
                " prune old versions"
            )
            raise ConfigError(msg)
