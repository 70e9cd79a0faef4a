"""Issued certificates and ACME accounts kept in OCI Vault secrets; the EAB HMAC key read from one.

One secret per certificate (``<prefix>-<name>``, :func:`renewer.naming.secret_name`): every secret
version is one issued certificate, so the Vault's version history is the rollback history
(ARCHITECTURE section 3) — except the versions named ``pending-order-*``, which hold an ACME
order in progress (its key, URL and names) so that a run killed before STORE is finished by the
next one with the same order (:meth:`VaultCertificateStore.save_pending`).
One secret per ACME directory holds that directory's account key and URL
(:func:`renewer.naming.account_secret_name`). Both are JSON documents, versioned by a ``format``
field, base64-encoded as Vault's ``BASE64`` secret content.

OCI facts this module relies on (``shared/reference/oci-wire-facts.md`` section 3):

* a secret bundle holds at most 25 KB; the content is checked against that *before* any call;
* a secret keeps at most 30 versions in active use (and 30 pending deletion), so old versions
  are scheduled for deletion (:meth:`VaultCertificateStore.prune`);
* only a ``DEPRECATED`` version can be scheduled for deletion ("You can only delete a secret
  version if the secret version rotation state is marked as DEPRECATED", SDK docs). A new
  CURRENT version turns the old CURRENT into PREVIOUS and the old PREVIOUS into DEPRECATED, so
  the CURRENT and the PREVIOUS version always survive a prune;
* ``CreateSecret`` honours ``opc-retry-token`` for 24 h: the same token and body return the
  first answer instead of a second secret. ``UpdateSecret`` takes no retry token;
* secret names are unique within a vault, and a secret pending deletion still holds its name;
* changes are asynchronous: a secret is ``CREATING`` after CreateSecret and ``UPDATING`` after
  UpdateSecret (the SDK's ``create_secret_and_wait_for_state``/``update_secret_and_wait_for_state``
  wait them out), and a change meanwhile is answered ``409 IncorrectState``. Every write here
  (a new version, a version deletion in the prune loop, the retry after LimitExceeded, a put
  right after the pending-order record) waits with backoff for the secret to settle and tries
  again, bounded by the run's deadline (:mod:`renewer.adapters.oci_lifecycle`): a
  TransientError when it passes, never a ConfigError. A write whose answer is still
  ``UPDATING`` is waited out before its version number is read (it may not be visible before);
  a secret found ``CREATING``/``UPDATING`` by a lookup is waited for too;
* ``UpdateSecret`` may add a ``PENDING`` version, which leaves CURRENT as it is (an older
  PENDING one becomes DEPRECATED); ``CreateSecret`` only accepts ``CURRENT``; the newest version
  carries the ``LATEST`` stage, readable with ``GetSecretBundle(stage=LATEST)``; version names are
  unique within a secret; a deletion is scheduled 1 to 30 days ahead.

Ownership (rule 2): secrets this module creates carry the freeform tag
``managed-by: oci-acme-renewer``; it never adds versions to, or prunes, a secret without it.
Secret content never reaches a log line, an exception message or a ``repr`` (rule 3).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import oci
from cryptography.hazmat.primitives import serialization

from renewer import naming, pki
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_lifecycle import (
    BUSY_STATES,
    Backoff,
    is_busy_conflict,
    wait_until_settled,
)
from renewer.clock import Clock, SystemClock
from renewer.errors import ConfigError, TransientError
from renewer.model import KeyType, PendingOrder, StoredCertificate
from renewer.ports import AccountRecord

logger = logging.getLogger(__name__)

FORMAT = 1
MAX_CONTENT_BYTES = 25 * 1024  # "The maximum allowable size for a secret bundle is 25 KB"
MAX_ACTIVE_VERSIONS = 30  # "30 secret versions in active use ... for each secret"
MANAGED_BY_TAG = "managed-by"
MANAGED_BY = "oci-acme-renewer"

# Vault keeps 30 versions in active use. A renewal writes a pending-order version and then the
# certificate version, and the last pending-order version stays PENDING until the next renewal
# writes its own (a new CURRENT does not move PENDING), so 3 versions above the kept
# certificates must stay free: at most 27 certificate versions are kept.
MAX_KEEP_CERTIFICATES = MAX_ACTIVE_VERSIONS - 3
SHORT_DELETION_WINDOW = timedelta(days=1, hours=1)  # OCI: 1 to 30 days ahead
PENDING_KIND = "pending-order"
PENDING_VERSION_PREFIX = "pending-order-"

_ACTIVE = "ACTIVE"
_CURRENT = "CURRENT"
_PENDING = "PENDING"
_LATEST = "LATEST"
_DEPRECATED = "DEPRECATED"
_PROTECTED_STAGES = frozenset({"CURRENT", "PENDING", "PREVIOUS", "LATEST"})
_GONE_STATES = frozenset({"DELETED"})
_DELETION_STATES = frozenset({"SCHEDULING_DELETION", "PENDING_DELETION"})
_CERTIFICATE_DESCRIPTION = "ACME certificate "
_NOT_FOUND = 404
_POLICY_CODES = frozenset({"NotAuthorizedOrNotFound", "RelatedResourceNotAuthorizedOrNotFound"})
_BASE64URL_KEY = re.compile(r"[A-Za-z0-9_-]+")


# ------------------------------------------------------------------------------ secret access


@dataclass(frozen=True, slots=True)
class _Bundle:
    """One secret version as read: its number and decoded content (secret: not in repr)."""

    version: int
    content: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Found:
    secret_id: str
    owned: bool


class _Secrets:
    """Named secrets of one vault: lookup with an OCID cache, create-or-update, bundle reads.

    Thread-safe: the cache is guarded by a lock, and the SDK clients may be shared between
    threads. Writes to one secret are not serialized here; callers hold the certificate's lease.
    """

    def __init__(
        self,
        clients: OciClients,
        *,
        compartment_id: str,
        vault_id: str,
        key_id: str,
        clock: Clock | None = None,
    ) -> None:
        self._clients = clients
        self._clock = clock or SystemClock()
        self.compartment_id = compartment_id
        self.vault_id = vault_id
        self.key_id = key_id
        self._found: dict[str, _Found] = {}
        self._lock = threading.Lock()
        self._checked = False

    # -- the vault and the key, read-only

    def check(self) -> None:
        """Read the vault and the key; ConfigError unless a secret can be created with them.

        Two reads (KMS GetVault, then GetKey at the vault's management endpoint), made once per
        instance: a wrong ``keyId`` would otherwise be noticed only by ``CreateSecret``, after
        an ACME order was spent. Needs ``read vaults``/``read keys`` (``use`` includes them).
        """
        if self._checked:
            return
        with translate(f"read vault {self.vault_id} (oci.vaultId)"):
            vault = self._clients.kms_vault.get_vault(self.vault_id).data
        if vault.lifecycle_state != "ACTIVE":
            msg = (
                f"vault {self.vault_id} (oci.vaultId) is {vault.lifecycle_state}, not ACTIVE:"
                " name an active vault"
            )
            raise ConfigError(msg)
        management = self._clients.kms_management(vault.management_endpoint)
        with translate(f"read master encryption key {self.key_id} (oci.keyId)"):
            key = management.get_key(self.key_id).data
        problems = []
        if key.vault_id != self.vault_id:
            problems.append(f"belongs to vault {key.vault_id}, not oci.vaultId {self.vault_id}")
        if key.key_shape is None or key.key_shape.algorithm != "AES":
            algorithm = key.key_shape.algorithm if key.key_shape else "unknown"
            problems.append(f"is an {algorithm} key; Vault secrets need a symmetric AES key")
        if key.lifecycle_state != "ENABLED":
            problems.append(f"is {key.lifecycle_state}, not ENABLED")
        if problems:
            msg = (
                f"master encryption key {self.key_id} (oci.keyId) {'; '.join(problems)}:"
                " name an enabled AES key of the configured vault"
            )
            raise ConfigError(msg)
        self._checked = True

    # -- lookup

    def find(self, secret_name: str) -> _Found | None:
        """The usable secret named ``secret_name`` in the vault, or None when there is none.

        Raises:
            TransientError: the secret exists but is still being created or updated.
            ConfigError: the secret is (scheduled for) deletion or FAILED; it still holds the
                name, so nothing can be stored under it until an operator acts.

        """
        with self._lock:
            cached = self._found.get(secret_name)
        if cached is not None:
            return cached
        with translate(f"look up Vault secret {secret_name} in vault {self.vault_id}"):
            summaries = oci.pagination.list_call_get_all_results(
                self._clients.vaults.list_secrets,
                self.compartment_id,
                name=secret_name,
                vault_id=self.vault_id,
            ).data
        candidates = [
            s
            for s in summaries
            if s.secret_name == secret_name and s.lifecycle_state not in _GONE_STATES
        ]
        active = [s for s in candidates if s.lifecycle_state == _ACTIVE]
        if active:
            summary = active[0]
            found = _Found(summary.id, _owned(summary.freeform_tags))
            with self._lock:
                self._found[secret_name] = found
            logger.debug("vault secret found name=%s id=%s", secret_name, found.secret_id)
            return found
        if not candidates:
            return None
        state, secret_id = candidates[0].lifecycle_state, candidates[0].id
        if state in BUSY_STATES:
            secret = self._settled(secret_name, secret_id)
            state = secret.lifecycle_state
            if state == _ACTIVE:
                found = _Found(secret_id, _owned(secret.freeform_tags))
                with self._lock:
                    self._found[secret_name] = found
                return found
        msg = (
            f"Vault secret {secret_name} ({secret_id}) is {state}, and a secret keeps its name"
            " until it is deleted: cancel the deletion (oci vault secret cancel-secret-deletion)"
            " or use another name prefix"
        )
        raise ConfigError(msg)

    def forget(self, secret_name: str) -> None:
        """Drop the cached OCID of ``secret_name`` (it was deleted or replaced meanwhile)."""
        with self._lock:
            self._found.pop(secret_name, None)

    def owned(self, secret_name: str) -> _Found | None:
        """Like :meth:`find`, but ConfigError for a secret this renewer did not create."""
        found = self.find(secret_name)
        if found is not None and not found.owned:
            msg = (
                f"Vault secret {secret_name} ({found.secret_id}) exists but was not created by"
                f" this renewer (no freeform tag {MANAGED_BY_TAG}={MANAGED_BY}); it is left"
                " alone: rename or delete it, tag it, or use another name prefix"
            )
            raise ConfigError(msg)
        return found

    # -- reads

    def bundle(
        self, secret_name: str, *, version: int | None = None, stage: str = _CURRENT
    ) -> _Bundle | None:
        """The ``stage`` version of ``secret_name`` (or version ``version``); None: no secret.

        A cached OCID answering 404 is looked up again once (the secret may have been deleted
        and re-created while this process stayed warm).

        Raises:
            ConfigError: the version does not exist, or is not readable (translated 404).

        """
        found = self.find(secret_name)
        if found is None:
            return None
        try:
            return self._read(secret_name, found.secret_id, version, stage)
        except ConfigError as exc:
            if exc.oci_status != _NOT_FOUND:
                raise
            self.forget(secret_name)
            fresh = self.find(secret_name)
            if fresh is None:
                return None
            if fresh.secret_id == found.secret_id:
                raise
            return self._read(secret_name, fresh.secret_id, version, stage)

    def _read(self, secret_name: str, secret_id: str, version: int | None, stage: str) -> _Bundle:
        selector: dict[str, Any] = (
            {"stage": stage} if version is None else {"version_number": version}
        )
        what = f"the {stage} version" if version is None else f"version {version}"
        with translate(f"read {what} of Vault secret {secret_name}"):
            data = self._clients.secrets.get_secret_bundle(secret_id, **selector).data
        return _Bundle(data.version_number, _decode_bundle(data, secret_name))

    # -- writes

    def write(
        self,
        secret_name: str,
        content: bytes,
        *,
        metadata: dict[str, str],
        description: str,
        retry_token: str,
        previous_version: int | None,
    ) -> int:
        """Store ``content`` as the new CURRENT version (creating the secret); its number.

        ``retry_token`` de-duplicates a create retried by the SDK or by a re-run (24 h).
        """
        found = self.owned(secret_name)
        if found is None:
            return self._create(
                secret_name,
                content,
                metadata=metadata,
                description=description,
                retry_token=retry_token,
                version_name=None,
            )
        secret = self._update(
            secret_name, found, content, metadata=metadata, stage=_CURRENT, version_name=None
        )
        if secret.lifecycle_state in BUSY_STATES:
            # The new version may only be visible once the secret is ACTIVE again.
            secret = self._settled(secret_name, found.secret_id)
        number = secret.current_version_number
        if number is not None and (previous_version is None or number > previous_version):
            return int(number)
        # OCI may answer while the secret is still UPDATING, with the old version number.
        return self._newest_version(secret_name, found.secret_id)

    def write_pending(
        self,
        secret_name: str,
        content: bytes,
        *,
        version_name: str,
        metadata: dict[str, str],
        description: str,
        retry_token: str,
    ) -> None:
        """Add ``content`` as a PENDING version named ``version_name`` (CURRENT on a create).

        A PENDING version leaves CURRENT (and PREVIOUS) as they are. ``CreateSecret`` only
        accepts CURRENT, so a secret that does not exist yet is created with ``content`` as its
        CURRENT version 1 (readers tell it from a certificate by its content). ``metadata`` is
        only set on a create: the secret's metadata describes its CURRENT certificate.
        """
        found = self.owned(secret_name)
        if found is None:
            self._create(
                secret_name,
                content,
                metadata=metadata,
                description=description,
                retry_token=retry_token,
                version_name=version_name,
            )
            return
        try:
            self._update(
                secret_name,
                found,
                content,
                metadata=None,
                stage=_PENDING,
                version_name=version_name,
            )
        except ConfigError as exc:
            # Version names are unique per secret: an UpdateSecret the SDK retried after its
            # answer was lost is refused as a duplicate, and the version is already there.
            if exc.oci_code != "Conflict" or not self._newest_is_named(
                secret_name, found.secret_id, version_name
            ):
                raise

    def _create(
        self,
        secret_name: str,
        content: bytes,
        *,
        metadata: dict[str, str],
        description: str,
        retry_token: str,
        version_name: str | None,
    ) -> int:
        details = oci.vault.models.CreateSecretDetails(
            compartment_id=self.compartment_id,
            vault_id=self.vault_id,
            key_id=self.key_id,
            secret_name=secret_name,
            description=description,
            metadata=metadata,
            freeform_tags={MANAGED_BY_TAG: MANAGED_BY},
            secret_content=_content(content, stage=_CURRENT, version_name=version_name),
        )
        with self._explained(f"create Vault secret {secret_name}", creating=True):
            secret = self._clients.vaults.create_secret(details, opc_retry_token=retry_token).data
        with self._lock:
            self._found[secret_name] = _Found(secret.id, owned=True)
        return int(secret.current_version_number or 1)

    def _update(
        self,
        secret_name: str,
        found: _Found,
        content: bytes,
        *,
        metadata: dict[str, str] | None,
        stage: str,
        version_name: str | None,
    ) -> Any:  # noqa: ANN401 - SDK Secret
        details = oci.vault.models.UpdateSecretDetails(
            metadata=metadata,
            secret_content=_content(content, stage=stage, version_name=version_name),
        )
        action = f"add a version to Vault secret {secret_name}"
        try:
            return self._change(
                secret_name,
                found.secret_id,
                action,
                lambda: self._clients.vaults.update_secret(found.secret_id, details).data,
            )
        except ConfigError as exc:
            # 30 versions in use: closed pending-order records are the only versions that can
            # always go (failed attempts leave one each until the next renewal prunes them).
            if exc.oci_code != "LimitExceeded" or not self.drop_closed_pending(
                secret_name, found.secret_id
            ):
                raise
        return self._change(
            secret_name,
            found.secret_id,
            action,
            lambda: self._clients.vaults.update_secret(found.secret_id, details).data,
        )

    def _newest_is_named(self, secret_name: str, secret_id: str, version_name: str) -> bool:
        with translate(f"list the versions of Vault secret {secret_name}"):
            versions = self._clients.vaults.list_secret_versions(
                secret_id, limit=1, sort_by="VERSION_NUMBER", sort_order="DESC"
            ).data
        return bool(versions) and versions[0].name == version_name

    def drop_closed_pending(self, secret_name: str, secret_id: str) -> list[int]:
        """Schedule the deletion of every DEPRECATED pending-order version; their numbers.

        A DEPRECATED pending-order record is never the open one (the open record is the newest
        version, which is CURRENT or PENDING), so it can always go; it is deleted after the
        shortest window OCI allows (1 day): it only ever held a key that is either in a
        certificate version or was never used.
        """
        doomed = [
            int(v.version_number)
            for v in self.versions(secret_name, secret_id)
            if v.time_of_deletion is None and _is_pending_version(v) and _deletable(v)
        ]
        for number in sorted(doomed):
            self.schedule_deletion(secret_name, secret_id, number, short=True)
        return sorted(doomed)

    def _newest_version(self, secret_name: str, secret_id: str) -> int:
        with translate(f"list the versions of Vault secret {secret_name}"):
            versions = self._clients.vaults.list_secret_versions(
                secret_id, limit=1, sort_by="VERSION_NUMBER", sort_order="DESC"
            ).data
        if not versions:
            msg = f"Vault secret {secret_name} lists no versions yet; try again in a minute"
            raise TransientError(msg, retry_after=60.0)
        return int(versions[0].version_number)

    def versions(self, secret_name: str, secret_id: str) -> list[Any]:
        """Every version summary of the secret (all pages), pending deletion included."""
        with translate(f"list the versions of Vault secret {secret_name}"):
            return list(
                oci.pagination.list_call_get_all_results(
                    self._clients.vaults.list_secret_versions, secret_id
                ).data
            )

    def schedule_deletion(
        self, secret_name: str, secret_id: str, number: int, *, short: bool = False
    ) -> None:
        """Schedule version ``number`` for deletion after OCI's default window (30 days).

        ``short``: after the shortest window OCI accepts (1 day, plus an hour for clock skew).
        """
        details = oci.vault.models.ScheduleSecretVersionDeletionDetails(
            time_of_deletion=datetime.now(UTC) + SHORT_DELETION_WINDOW if short else None
        )
        try:
            self._change(
                secret_name,
                secret_id,
                f"schedule version {number} of Vault secret {secret_name}",
                lambda: self._clients.vaults.schedule_secret_version_deletion(
                    secret_id, number, details
                ),
            )
        except ConfigError as exc:
            # "Already pending deletion": an attempt whose answer was lost (an SDK retry, or a
            # 409 retried here after the first call had in fact been taken) did it.
            if exc.oci_code != "Conflict" or not self._pending_deletion(
                secret_name, secret_id, number
            ):
                raise

    def _pending_deletion(self, secret_name: str, secret_id: str, number: int) -> bool:
        with translate(f"read version {number} of Vault secret {secret_name}"):
            version = self._clients.vaults.get_secret_version(secret_id, number).data
        return version.time_of_deletion is not None

    # -- asynchronous changes

    def _deadline(self) -> float | None:
        return self._clients.deadline()

    def _settled(self, secret_name: str, secret_id: str) -> Any:  # noqa: ANN401 - SDK Secret
        """The secret once it has left CREATING/UPDATING/...; TransientError at the deadline."""

        def read() -> Any:  # noqa: ANN401 - SDK Secret
            with translate(f"read Vault secret {secret_name}"):
                return self._clients.vaults.get_secret(secret_id).data

        return wait_until_settled(
            read,
            lambda secret: secret.lifecycle_state,
            clock=self._clock,
            deadline=self._deadline(),
            what=f"wait for Vault secret {secret_name} to be ACTIVE",
        )

    def _change(
        self, secret_name: str, secret_id: str, action: str, call: Callable[[], Any]
    ) -> Any:  # noqa: ANN401 - SDK answers
        """``call()`` (a write to the secret); a 409 IncorrectState waits and tries again.

        The secret is still applying an earlier change: wait (with backoff) until it has
        settled, then repeat, until the run's deadline (TransientError).
        """
        backoff = Backoff(self._clock, self._deadline(), action)
        while True:
            try:
                with self._explained(action):
                    return call()
            except TransientError as exc:
                if not is_busy_conflict(exc):
                    raise
                logger.info(
                    "vault_retry secret=%s reason=conflict code=%s", secret_name, exc.oci_code
                )
                backoff.pause(f"OCI answered 409 {exc.oci_code}")
                self._settled(secret_name, secret_id)

    # -- errors

    @contextlib.contextmanager
    def _explained(self, action: str, *, creating: bool = False) -> Iterator[None]:
        """``translate(action)``, plus the fix for the write failures operators actually hit."""
        try:
            with translate(action):
                yield
        except ConfigError as error:
            hint = _write_hint(error, self, creating=creating)
            if hint is None:
                raise
            explained = ConfigError(f"{error}; {hint}")
            explained.oci_status, explained.oci_code = error.oci_status, error.oci_code
            raise explained from error


def _write_hint(error: ConfigError, secrets: _Secrets, *, creating: bool) -> str | None:
    code = error.oci_code
    if code in _POLICY_CODES:
        return (
            "the function's dynamic group needs 'manage secret-family' in the compartment"
            f" {secrets.compartment_id}, 'use vaults' for vault {secrets.vault_id} and"
            f" 'use keys' for key {secrets.key_id} (a symmetric AES key of that vault)"
        )
    if code == "LimitExceeded":
        return (
            f"a secret keeps at most {MAX_ACTIVE_VERSIONS} versions in active use and"
            f" {MAX_ACTIVE_VERSIONS} pending deletion: prune old versions (keep at most"
            f" {MAX_KEEP_CERTIFICATES} certificates) or wait for scheduled deletions to complete"
        )
    if code == "Conflict" and creating:
        # Names are unique per vault, but the lookup only sees the configured compartment.
        return (
            f"a secret of that name already exists in vault {secrets.vault_id}, outside"
            f" compartment {secrets.compartment_id} or not ACTIVE; delete it or use another"
            " name prefix"
        )
    return None


def _owned(tags: dict[str, str] | None) -> bool:
    return (tags or {}).get(MANAGED_BY_TAG) == MANAGED_BY


def _content(content: bytes, *, stage: str, version_name: str | None) -> Any:  # noqa: ANN401 - SDK model
    return oci.vault.models.Base64SecretContentDetails(
        content_type="BASE64",
        content=base64.b64encode(content).decode("ascii"),
        stage=stage,
        name=version_name,
    )


def _is_pending_version(summary: Any) -> bool:  # noqa: ANN401 - SDK SecretVersionSummary
    return (summary.name or "").startswith(PENDING_VERSION_PREFIX)


def _deletable(summary: Any) -> bool:  # noqa: ANN401 - SDK SecretVersionSummary
    stages = set(summary.stages or [])
    return _DEPRECATED in stages and not _PROTECTED_STAGES & stages


def pending_version_name(order_url: str) -> str:
    """The Vault version name of the pending-order record of ``order_url`` (unique per order)."""
    return PENDING_VERSION_PREFIX + hashlib.sha256(order_url.encode()).hexdigest()[:24]


def _decode_bundle(data: Any, secret_name: str) -> bytes:  # noqa: ANN401 - SDK SecretBundle
    content = getattr(data.secret_bundle_content, "content", None)
    if not isinstance(content, str):
        msg = f"Vault secret {secret_name} has no BASE64 content"
        raise ConfigError(msg)
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"Vault secret {secret_name}: the bundle content is not valid base64"
        raise ConfigError(msg) from exc


def _retry_token(*parts: str) -> str:
    # OCI retry tokens are at most 64 characters: a SHA-256 in hex is exactly that.
    return hashlib.sha256("\n".join(("create-secret", *parts)).encode()).hexdigest()


# ------------------------------------------------------------------------------ documents


def _dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _load(raw: bytes, *, secret_name: str, holds: str) -> dict[str, Any]:
    """Parse a document this renewer wrote; ConfigError naming the secret (never its content)."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        document = None
    if not isinstance(document, dict) or "format" not in document:
        msg = (
            f"Vault secret {secret_name} does not hold {holds} written by this renewer (a JSON"
            " document with a 'format' field); restore a version this renewer wrote, or use"
            " another name prefix"
        )
        raise ConfigError(msg)
    version = document["format"]
    if version != FORMAT:
        shown = version if isinstance(version, int) else "unknown"
        msg = (
            f"Vault secret {secret_name} has format {shown}; this renewer reads format {FORMAT}"
            " (was it written by a newer release?)"
        )
        raise ConfigError(msg)
    return document


def _text(document: dict[str, Any], key: str, secret_name: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        msg = f"Vault secret {secret_name}: field {key!r} is missing or not a string"
        raise ConfigError(msg)
    return value


def _optional_text(document: dict[str, Any], key: str, secret_name: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        msg = f"Vault secret {secret_name}: field {key!r} is not a string"
        raise ConfigError(msg)
    return value


def _time(document: dict[str, Any], key: str, secret_name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_text(document, key, secret_name))
    except ValueError as exc:
        msg = f"Vault secret {secret_name}: field {key!r} is not an RFC 3339 time"
        raise ConfigError(msg) from exc
    if moment.tzinfo is None:
        msg = f"Vault secret {secret_name}: field {key!r} has no time zone"
        raise ConfigError(msg)
    return moment.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def certificate_document(certificate: StoredCertificate) -> bytes:
    """The secret content of one certificate version: compact JSON, format 1 (secret!)."""
    return _dump(
        {
            "format": FORMAT,
            "fullchain": certificate.fullchain_pem,
            "privateKey": certificate.private_key_pem,
            "serial": certificate.serial_hex,
            "notBefore": _rfc3339(certificate.not_before),
            "notAfter": _rfc3339(certificate.not_after),
            "dnsNames": list(certificate.dns_names),
            "keyType": certificate.key_type.value,
            "profile": certificate.profile,
            "ariCertId": certificate.ari_cert_id,
            "accountUrl": certificate.account_url,
            "orderUrl": certificate.order_url,
            "directoryUrl": certificate.directory_url,
        }
    )


def pending_order_document(order: PendingOrder) -> bytes:
    """The secret content of a pending-order record: compact JSON, format 1 (secret!).

    ``"kind": "pending-order"`` tells it from a certificate document (which has no ``kind``).
    """
    return _dump(
        {
            "format": FORMAT,
            "kind": PENDING_KIND,
            "privateKey": order.private_key_pem,
            "orderUrl": order.order_url,
            "accountUrl": order.account_url,
            "dnsNames": list(order.dns_names),
            "keyType": order.key_type.value,
            "profile": order.profile,
            "createdAt": _rfc3339(order.created_at),
        }
    )


def parse_version_document(
    raw: bytes, *, version: int, secret_name: str
) -> StoredCertificate | PendingOrder:
    """A version's content: a certificate, or a pending-order record (by its ``kind``)."""
    document = _load(raw, secret_name=secret_name, holds="a certificate")
    kind = document.get("kind")
    if kind == PENDING_KIND:
        return PendingOrder(
            order_url=_text(document, "orderUrl", secret_name),
            account_url=_text(document, "accountUrl", secret_name),
            private_key_pem=_text(document, "privateKey", secret_name),
            dns_names=_names(document, secret_name),
            key_type=_key_type(document, secret_name),
            profile=_optional_text(document, "profile", secret_name),
            created_at=_time(document, "createdAt", secret_name),
            version=version,
        )
    if kind is not None:
        msg = (
            f"Vault secret {secret_name}: version {version} is of an unknown kind (was it"
            " written by a newer release?)"
        )
        raise ConfigError(msg)
    return _certificate(document, version=version, secret_name=secret_name)


def parse_certificate_document(raw: bytes, *, version: int, secret_name: str) -> StoredCertificate:
    """The inverse of :func:`certificate_document`; ConfigError names the secret and field.

    A pending-order record is not a certificate: ConfigError saying so.
    """
    parsed = parse_version_document(raw, version=version, secret_name=secret_name)
    if isinstance(parsed, PendingOrder):
        msg = (
            f"version {version} of Vault secret {secret_name} is the record of an ACME order"
            " that was in progress, not a certificate; pick a certificate version"
        )
        raise ConfigError(msg)
    return parsed


def _names(document: dict[str, Any], secret_name: str) -> tuple[str, ...]:
    names = document.get("dnsNames")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        msg = f"Vault secret {secret_name}: field 'dnsNames' must be a list of names"
        raise ConfigError(msg)
    return tuple(names)


def _key_type(document: dict[str, Any], secret_name: str) -> KeyType:
    try:
        return KeyType(_text(document, "keyType", secret_name))
    except ValueError as exc:
        msg = f"Vault secret {secret_name}: field 'keyType' is not a known key type"
        raise ConfigError(msg) from exc


def _certificate(document: dict[str, Any], *, version: int, secret_name: str) -> StoredCertificate:
    names, key_type = _names(document, secret_name), _key_type(document, secret_name)
    return StoredCertificate(
        version=version,
        fullchain_pem=_text(document, "fullchain", secret_name),
        private_key_pem=_text(document, "privateKey", secret_name),
        serial_hex=_text(document, "serial", secret_name),
        not_before=_time(document, "notBefore", secret_name),
        not_after=_time(document, "notAfter", secret_name),
        dns_names=names,
        key_type=key_type,
        profile=_optional_text(document, "profile", secret_name),
        ari_cert_id=_optional_text(document, "ariCertId", secret_name),
        account_url=_optional_text(document, "accountUrl", secret_name),
        order_url=_optional_text(document, "orderUrl", secret_name),
        directory_url=_optional_text(document, "directoryUrl", secret_name),
    )


def _certificate_metadata(certificate: StoredCertificate) -> dict[str, str]:
    """What operators see in the console beside the secret: nothing secret, strings only."""
    metadata = {
        "format": str(FORMAT),
        "serial": certificate.serial_hex,
        "notBefore": _rfc3339(certificate.not_before),
        "notAfter": _rfc3339(certificate.not_after),
        "dnsNames": ",".join(certificate.dns_names),
        "keyType": certificate.key_type.value,
        "profile": certificate.profile,
        "ariCertId": certificate.ari_cert_id,
        "accountUrl": certificate.account_url,
        "orderUrl": certificate.order_url,
        "directoryUrl": certificate.directory_url,
    }
    return {key: value for key, value in metadata.items() if value is not None}


# ------------------------------------------------------------------------------ the stores


class VaultCertificateStore:
    """:class:`renewer.ports.CertificateStore` on OCI Vault: one secret per certificate name.

    The secret ``<prefix>-<name>`` is created in ``vault_id`` (compartment ``compartment_id``,
    encrypted with the symmetric ``key_id``) by the first write; every certificate :meth:`put`
    adds a version that becomes CURRENT. A version's content is a JSON document (format 1) with
    the full chain, the private key and the certificate's metadata; the non-secret metadata is
    also the secret's ``metadata`` for the console.

    Pending orders (:meth:`save_pending`): right after an ACME order is created, its private key,
    URL, account, names, key type and profile are added as a version named
    ``pending-order-<digest of the order URL>`` with the stage PENDING, which leaves CURRENT
    alone. A secret that does not exist yet is created with the record as its CURRENT version 1
    (``CreateSecret`` accepts nothing else). The record is *open* while it is the newest version
    (:meth:`load_pending` reads the ``LATEST`` stage); the certificate :meth:`put` after it
    closes it. Certificate versions therefore do not count 1, 2, 3: each issuance takes two
    version numbers.

    Contract:

    * :meth:`latest` reads the CURRENT version (what an operator promotes for a rollback), None
      when the secret does not exist or its CURRENT version is a pending-order record.
    * :meth:`put` is idempotent: when the CURRENT version already has the certificate's serial
      it is returned and nothing is written (a re-run after a crash between STORE and DEPLOY
      adds no version). A create carries an ``opc-retry-token`` derived from the vault, the
      secret name and the serial, so a retried or re-run create never makes a second secret.
      An ``UpdateSecret`` retried by the SDK after a lost answer may add a second version with
      the same certificate, which is harmless. The 25 KB limit is checked before any call.
    * :meth:`get` raises ConfigError for a version that does not exist, is pending deletion or
      is a pending-order record.
    * :meth:`prune` counts certificate versions: it schedules the deletion of DEPRECATED
      certificate versions beyond the newest ``keep`` (CURRENT and PREVIOUS always stay) after
      OCI's default 30-day window, and of every DEPRECATED pending-order record (closed: the
      open one is never DEPRECATED) after 1 day. ``keep`` above 27 is kept at 27, logged: three
      versions must stay free for the next renewal's record and certificate and the last
      record, which stays PENDING. A re-run is a no-op.
    * A write refused because 30 versions are in use first drops closed pending-order records
      and tries once more (failed attempts between two renewals leave one record each).

    Errors: ConfigError (missing vault/key/policy, foreign or unreadable content, limits),
    TransientError (throttling, 5xx, timeouts; a secret still CREATING). Writes only touch
    secrets tagged ``managed-by: oci-acme-renewer``. Safe to share between threads for
    different certificate names; writes to one name are serialized by the caller's lease.
    """

    def __init__(
        self,
        clients: OciClients,
        *,
        compartment_id: str,
        vault_id: str,
        key_id: str,
        prefix: str = naming.DEFAULT_PREFIX,
    ) -> None:
        self._prefix = naming.check_prefix(prefix)
        self._secrets = _Secrets(
            clients, compartment_id=compartment_id, vault_id=vault_id, key_id=key_id
        )

    def __repr__(self) -> str:
        return (
            f"VaultCertificateStore(vault_id={self._secrets.vault_id!r}, prefix={self._prefix!r})"
        )

    def _name(self, name: str) -> str:
        return naming.secret_name(name, prefix=self._prefix)

    def check(self) -> None:
        """Read-only: ConfigError unless the vault and key can hold a new secret (once)."""
        self._secrets.check()

    def latest(self, name: str) -> StoredCertificate | None:
        """The CURRENT version of certificate ``name``, or None when it was never stored.

        Raises:
            ConfigError: the content is not a certificate document of this renewer (the message
                names the secret, never the content), or the secret cannot be read.

        """
        secret = self._name(name)
        found = self._secrets.bundle(secret)
        if found is None:
            return None
        parsed = parse_version_document(found.content, version=found.version, secret_name=secret)
        return parsed if isinstance(parsed, StoredCertificate) else None

    def get(self, name: str, version: int) -> StoredCertificate:
        """Version ``version`` of certificate ``name`` (the source of a rollback).

        Raises:
            ConfigError: no such secret, or the version does not exist, is pending deletion or
                is a pending-order record.

        """
        secret = self._name(name)
        try:
            found = self._secrets.bundle(secret, version=version)
        except ConfigError as exc:
            if exc.oci_status != _NOT_FOUND:
                raise
            msg = f"version {version} of secret {secret} does not exist ({exc})"
            raise ConfigError(msg) from exc
        if found is None:
            msg = f"secret {secret} does not exist, so it has no version {version}"
            raise ConfigError(msg)
        return parse_certificate_document(found.content, version=found.version, secret_name=secret)

    def put(self, name: str, certificate: StoredCertificate) -> StoredCertificate:
        """Store ``certificate`` as the new CURRENT version; returns it with ``version`` set.

        Raises:
            ConfigError: the content would exceed 25 KB (nothing is sent), the secret belongs to
                someone else, the policies or the vault/key are wrong, or 30 versions are in use.

        """
        secret = self._name(name)
        content = certificate_document(certificate)
        _check_size(content, f"certificate {name}")
        found = self._secrets.bundle(secret)
        current = (
            None
            if found is None
            else parse_version_document(found.content, version=found.version, secret_name=secret)
        )
        if isinstance(current, StoredCertificate) and current.serial_hex == certificate.serial_hex:
            logger.info(
                "vault certificate already stored cert=%s secret=%s version=%d serial=%s",
                name,
                secret,
                current.version,
                current.serial_hex,
            )
            return current
        version = self._secrets.write(
            secret,
            content,
            metadata=_certificate_metadata(certificate),
            description=_description(name),
            retry_token=_retry_token(self._secrets.vault_id, secret, certificate.serial_hex),
            previous_version=None if found is None else found.version,
        )
        logger.info(
            "vault certificate stored cert=%s secret=%s version=%d serial=%s not_after=%s",
            name,
            secret,
            version,
            certificate.serial_hex,
            _rfc3339(certificate.not_after),
        )
        return dataclasses.replace(certificate, version=version)

    def save_pending(self, name: str, order: PendingOrder) -> None:
        """Record ``order`` (key included) as the open pending order of certificate ``name``.

        Raises:
            ConfigError: over 25 KB (nothing is sent), a foreign secret, policies, limits.

        """
        secret = self._name(name)
        content = pending_order_document(order)
        _check_size(content, f"certificate {name} (its pending order)")
        version_name = pending_version_name(order.order_url)
        self._secrets.write_pending(
            secret,
            content,
            version_name=version_name,
            metadata={"format": str(FORMAT), "pendingOrder": order.order_url},
            description=_description(name),
            retry_token=_retry_token(self._secrets.vault_id, secret, version_name),
        )
        logger.info(
            "vault pending order recorded cert=%s secret=%s version_name=%s order=%s",
            name,
            secret,
            version_name,
            order.order_url,
        )

    def load_pending(self, name: str) -> PendingOrder | None:
        """The open pending order of certificate ``name`` (the newest version), or None.

        A newest version that cannot be read or parsed is logged and treated as no open order:
        it must not block ordering anew.

        Raises:
            ConfigError / TransientError: the secret cannot be looked up.

        """
        secret = self._name(name)
        try:
            found = self._secrets.bundle(secret, stage=_LATEST)
            if found is None:
                return None
            parsed = parse_version_document(
                found.content, version=found.version, secret_name=secret
            )
        except ConfigError as exc:
            logger.warning(
                "vault pending order unreadable cert=%s secret=%s error=%s; ordering anew",
                name,
                secret,
                exc,
            )
            return None
        return parsed if isinstance(parsed, PendingOrder) else None

    def prune(self, name: str, *, keep: int) -> list[int]:
        """Schedule deletion of certificate versions beyond ``keep`` and of closed records.

        The newest ``keep`` certificate versions in active use are kept (at most 27, see the
        class); CURRENT, PENDING and PREVIOUS versions are never scheduled (OCI only deletes
        DEPRECATED ones), so with ``keep=1`` the previous certificate still survives for a
        rollback. Closed pending-order records go after 1 day. Versions already pending deletion
        are left as they are. Returns the versions scheduled now (ascending); [] when there is
        no secret or nothing to do.

        Raises:
            ConfigError: ``keep`` outside 1..30, or the secret belongs to someone else.

        """
        kept = _check_keep(keep, name)
        secret = self._name(name)
        found = self._secrets.owned(secret)
        if found is None:
            return []
        versions = self._secrets.versions(secret, found.secret_id)
        active = sorted(
            (v for v in versions if v.time_of_deletion is None),
            key=lambda v: int(v.version_number),
            reverse=True,
        )
        certificates = [v for v in active if not _is_pending_version(v)]
        old = sorted(int(v.version_number) for v in certificates[kept:] if _deletable(v))
        closed = sorted(
            int(v.version_number) for v in active if _is_pending_version(v) and _deletable(v)
        )
        for number in old:
            self._secrets.schedule_deletion(secret, found.secret_id, number)
        for number in closed:
            self._secrets.schedule_deletion(secret, found.secret_id, number, short=True)
        doomed = sorted(old + closed)
        if doomed:
            logger.info(
                "vault versions scheduled for deletion cert=%s secret=%s versions=%s"
                " pending_orders=%s",
                name,
                secret,
                ",".join(map(str, old)) or "-",
                ",".join(map(str, closed)) or "-",
            )
        return doomed

    def leaf_fingerprints(self, name: str) -> frozenset[str]:
        """SHA-256 fingerprints of the leaves of the readable certificate versions of ``name``.

        :class:`renewer.ports.StoredLeaves`: pending-order records and versions pending
        deletion are skipped; a version that cannot be read or parsed is logged and proves
        nothing. One list call, then one read per certificate version.

        Raises:
            ConfigError / TransientError: the secret or its versions cannot be listed.

        """
        secret = self._name(name)
        found = self._secrets.find(secret)
        if found is None:
            return frozenset()
        fingerprints: set[str] = set()
        for summary in self._secrets.versions(secret, found.secret_id):
            if summary.time_of_deletion is not None or _is_pending_version(summary):
                continue
            number = int(summary.version_number)
            try:
                read = self._secrets.bundle(secret, version=number)
                parsed = (
                    None
                    if read is None
                    else parse_version_document(read.content, version=number, secret_name=secret)
                )
                if isinstance(parsed, StoredCertificate):
                    leaf = pki.split_chain(parsed.fullchain_pem)[0]
                    fingerprints.add(
                        hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
                    )
            except ConfigError as exc:
                logger.warning(
                    "vault version unreadable cert=%s secret=%s version=%d error=%s",
                    name,
                    secret,
                    number,
                    type(exc).__name__,
                )
        return frozenset(fingerprints)

    def history(self, name: str) -> list[StoredVersion]:
        """Every certificate version of ``name``, newest first: what ``rollback`` accepts.

        Read-only (the status/history views and rollback's up-front check). Pending-order
        records are left out (they hold no certificate, so rollback refuses them); versions
        pending deletion are listed with ``pending_deletion`` set and no certificate (Secrets
        refuses to read them, and rollback cannot use them). A version that cannot be read or
        parsed is listed with ``unreadable`` set. One list call, then one read per version.

        Raises:
            ConfigError / TransientError: the secret or its versions cannot be listed.

        """
        secret = self._name(name)
        found = self._secrets.find(secret)
        if found is None:
            return []
        listed: list[StoredVersion] = []
        for summary in self._secrets.versions(secret, found.secret_id):
            if _is_pending_version(summary):
                continue
            number = int(summary.version_number)
            stages = tuple(sorted(str(stage) for stage in summary.stages or ()))
            if summary.time_of_deletion is not None:
                listed.append(StoredVersion(number, stages, pending_deletion=True))
                continue
            try:
                read = self._secrets.bundle(secret, version=number)
                parsed = (
                    None
                    if read is None
                    else parse_version_document(read.content, version=number, secret_name=secret)
                )
            except ConfigError as exc:
                logger.warning(
                    "vault version unreadable cert=%s secret=%s version=%d error=%s",
                    name,
                    secret,
                    number,
                    type(exc).__name__,
                )
                listed.append(StoredVersion(number, stages, unreadable=True))
                continue
            if isinstance(parsed, StoredCertificate):
                listed.append(StoredVersion(number, stages, certificate=parsed))
        return sorted(listed, key=lambda v: v.version, reverse=True)

    # -- retirement (renewer.orphans): certificates that left the configuration

    def managed_names(self) -> frozenset[str]:
        """Read-only: the certificate names whose ACTIVE secret of ours is in the vault.

        One paged ListSecrets of the compartment and vault: a secret counts when its name is
        ``<prefix>-<certificate name>``, it carries the ``managed-by`` tag and its description
        says it holds that certificate (the ACME account secrets share the prefix; they are not
        certificates and are never retired here; a longer prefix's secret names another name).
        """
        head = f"{self._prefix}-"
        with translate(f"list the Vault secrets of vault {self._secrets.vault_id}"):
            summaries = oci.pagination.list_call_get_all_results(
                self._secrets._clients.vaults.list_secrets,  # noqa: SLF001 - same module
                self._secrets.compartment_id,
                vault_id=self._secrets.vault_id,
                lifecycle_state=_ACTIVE,
            ).data
        names = set()
        for summary in summaries:
            secret_name = str(summary.secret_name or "")
            name = secret_name[len(head) :]
            if (
                secret_name.startswith(head)
                and naming.CERT_NAME_RE.fullmatch(name)
                and _owned(summary.freeform_tags)
                # The description names the certificate: "acme-x-shop" of a stack with the
                # prefix "acme-x" is not certificate "x-shop" of the prefix "acme".
                and (summary.description or "").startswith(f"{_CERTIFICATE_DESCRIPTION}{name}:")
            ):
                names.add(name)
        return frozenset(names)

    def certificates(self, name: str) -> list[StoredCertificate]:
        """Read-only: the readable certificate versions of ``name``, newest first.

        What a retirement with ``revokeOnRemoval`` revokes (:mod:`renewer.orphans`).

        Raises:
            ConfigError / TransientError: the secret or its versions cannot be listed.

        """
        return [v.certificate for v in self.history(name) if v.certificate is not None]

    def schedule_secret_deletion(self, name: str) -> str:
        """Schedule the deletion of certificate ``name``'s whole secret (OCI's default window).

        Only a secret of ours (the ``managed-by`` tag) is touched. Idempotent: a secret already
        pending deletion is left as it is. Returns ``scheduled``, ``pending`` (it already was)
        or ``absent`` (there is no such secret).

        Raises:
            ConfigError: the secret is not ours, or OCI refused (policies: ``manage
                secret-family`` includes SECRET_DELETE).
            TransientError: throttling, 5xx, the deadline.

        """
        secret = self._name(name)
        with translate(f"look up Vault secret {secret} in vault {self._secrets.vault_id}"):
            summaries = oci.pagination.list_call_get_all_results(
                self._secrets._clients.vaults.list_secrets,  # noqa: SLF001 - same module
                self._secrets.compartment_id,
                name=secret,
                vault_id=self._secrets.vault_id,
            ).data
        matching = [s for s in summaries if s.secret_name == secret]
        if any(s.lifecycle_state in _DELETION_STATES for s in matching):
            return "pending"
        live = [s for s in matching if s.lifecycle_state not in _GONE_STATES]
        if not live:
            return "absent"
        found = self._secrets.owned(secret)
        if found is None:  # pragma: no cover - listed a moment ago
            return "absent"
        clients = self._secrets._clients  # noqa: SLF001 - same module
        details = oci.vault.models.ScheduleSecretDeletionDetails(time_of_deletion=None)
        self._secrets._change(  # noqa: SLF001 - same module
            secret,
            found.secret_id,
            f"schedule the deletion of Vault secret {secret}",
            lambda: clients.vaults.schedule_secret_deletion(found.secret_id, details),
        )
        self._secrets.forget(secret)
        logger.warning(
            "vault secret scheduled for deletion cert=%s secret=%s id=%s window=oci-default",
            name,
            secret,
            found.secret_id,
        )
        return "scheduled"


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One Vault version of a certificate secret, as :meth:`VaultCertificateStore.history` saw it.

    ``certificate`` is None when the version is pending deletion or unreadable (its private key
    is never shown: callers take serial, dates and names only).
    """

    version: int
    stages: tuple[str, ...]
    certificate: StoredCertificate | None = field(default=None, repr=False)
    pending_deletion: bool = False
    unreadable: bool = False


def _description(name: str) -> str:
    return (
        f"{_CERTIFICATE_DESCRIPTION}{name}: each version is one issued certificate, or (named"
        " pending-order-*) an order in progress"
    )


def _check_size(content: bytes, what: str) -> None:
    encoded_size = 4 * ((len(content) + 2) // 3)
    if encoded_size > MAX_CONTENT_BYTES:
        msg = (
            f"{what}: its Vault secret content would be {encoded_size} bytes"
            f" (base64), over the {MAX_CONTENT_BYTES}-byte (25 KB) secret bundle limit;"
            " choose a smaller key type (ecdsa-p256) or a shorter chain"
        )
        raise ConfigError(msg)


def _check_keep(keep: int, name: str) -> int:
    if not 1 <= keep <= MAX_ACTIVE_VERSIONS:
        msg = (
            f"keep={keep} is out of range: keep 1 to {MAX_KEEP_CERTIFICATES} certificate"
            f" versions (a Vault secret holds at most {MAX_ACTIVE_VERSIONS} in active use, and"
            " each renewal needs room for its pending-order record and its certificate)"
        )
        raise ConfigError(msg)
    if keep > MAX_KEEP_CERTIFICATES:
        logger.warning(
            "vault retention capped cert=%s retention=%d kept=%d reason=%s",
            name,
            keep,
            MAX_KEEP_CERTIFICATES,
            "30 versions in use per secret, 3 needed for the next renewal",
        )
        return MAX_KEEP_CERTIFICATES
    return keep


class VaultAccountStore:
    """:class:`renewer.ports.AccountStore` on OCI Vault: one secret per ACME directory.

    The secret is ``<prefix>-account-<directory host and path>``; its CURRENT version is a JSON
    document ``{"format": 1, "directoryUrl", "privateKey", "accountUrl"}``. :meth:`save` creates
    the secret or adds a version, and writes nothing when the stored record is already equal
    (idempotent). :meth:`load` returns None when there is no secret, and ConfigError when the
    secret holds another directory's account (two URLs that map to one name) or foreign content.
    Old account versions are few (one per key change or registration) and are not pruned.
    Thread-safe like :class:`VaultCertificateStore`.
    """

    def __init__(
        self,
        clients: OciClients,
        *,
        compartment_id: str,
        vault_id: str,
        key_id: str,
        prefix: str = naming.DEFAULT_PREFIX,
    ) -> None:
        self._prefix = naming.check_prefix(prefix)
        self._secrets = _Secrets(
            clients, compartment_id=compartment_id, vault_id=vault_id, key_id=key_id
        )

    def __repr__(self) -> str:
        return f"VaultAccountStore(vault_id={self._secrets.vault_id!r}, prefix={self._prefix!r})"

    def load(self, directory_url: str) -> AccountRecord | None:
        """The account stored for ``directory_url``, or None."""
        secret = naming.account_secret_name(directory_url, prefix=self._prefix)
        found = self._secrets.bundle(secret)
        if found is None:
            return None
        document = _load(found.content, secret_name=secret, holds="an ACME account")
        stored_for = _text(document, "directoryUrl", secret)
        if stored_for != directory_url:
            msg = (
                f"Vault secret {secret} holds the ACME account of {stored_for}, not of"
                f" {directory_url}; use another name prefix for one of the two directories"
            )
            raise ConfigError(msg)
        return AccountRecord(
            private_key_pem=_text(document, "privateKey", secret),
            account_url=_optional_text(document, "accountUrl", secret),
        )

    def save(self, directory_url: str, record: AccountRecord) -> None:
        """Store ``record`` for ``directory_url`` as the CURRENT version; no-op when unchanged."""
        secret = naming.account_secret_name(directory_url, prefix=self._prefix)
        current = self.load(directory_url)
        if current == record:
            logger.debug("acme account unchanged secret=%s", secret)
            return
        content = _dump(
            {
                "format": FORMAT,
                "directoryUrl": directory_url,
                "privateKey": record.private_key_pem,
                "accountUrl": record.account_url,
            }
        )
        metadata = {"format": str(FORMAT), "directoryUrl": directory_url}
        if record.account_url:
            metadata["accountUrl"] = record.account_url
        version = self._secrets.write(
            secret,
            content,
            metadata=metadata,
            description=f"ACME account key for {directory_url}",
            # A digest of the document: the same save retried gets the same token.
            retry_token=_retry_token(
                self._secrets.vault_id, secret, hashlib.sha256(content).hexdigest()
            ),
            previous_version=None,
        )
        logger.info(
            "acme account stored secret=%s version=%d account_url=%s",
            secret,
            version,
            record.account_url,
        )


# ------------------------------------------------------------------------------ EAB


def read_eab_hmac_key(clients: OciClients, secret_id: str) -> str:
    """The External Account Binding HMAC key held by Vault secret ``secret_id``, base64url.

    The secret holds the key as the CA shows it (base64url text; whitespace and ``=`` padding
    are ignored, ``+``/``/`` are accepted for ``-``/``_``) or the raw key bytes; either way the
    base64url text is returned (RFC 8555 section 7.3.4 keys are used base64url-decoded). The key
    is never logged or put into a message.

    Raises:
        ConfigError: the secret is missing or unreadable, empty, or not a key (the message
            names the OCID, never the content).
        TransientError: throttling, 5xx, timeouts.

    """
    with translate(f"read the EAB HMAC key from Vault secret {secret_id}"):
        data = clients.secrets.get_secret_bundle(secret_id, stage="CURRENT").data
    raw = _decode_bundle(data, secret_id)
    try:
        text: str | None = "".join(raw.decode("ascii").split())
    except UnicodeDecodeError:
        text = None
    if text is None or not text.isprintable():
        # Not text: the raw key bytes.
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    key = text.rstrip("=").replace("+", "-").replace("/", "_")
    if not key:
        msg = f"Vault secret {secret_id} (the EAB HMAC key) is empty; store the key from the CA"
        raise ConfigError(msg)
    if not _BASE64URL_KEY.fullmatch(key):
        msg = (
            f"Vault secret {secret_id} does not hold an EAB HMAC key: expected the base64url"
            " text the CA shows (or the raw key bytes)"
        )
        raise ConfigError(msg)
    return key
