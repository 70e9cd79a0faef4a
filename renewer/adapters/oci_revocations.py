"""The revocations of each certificate, recorded durably in the state bucket.

``revocations/<name>.json`` (:func:`renewer.naming.revocations_object`) holds one entry per
revoked serial: the Vault version, the reason and when. The revoke action writes it right after
the CA accepted (or reported ``alreadyRevoked``); ``rollback`` refuses a revoked version by it
(the run journal records revocations too, but it expires; Let's Encrypt runs no OCSP, so the
CA cannot be asked cheaply). A retirement (:mod:`renewer.orphans`) deletes it with the state.

Writes are read-modify-write under the object's ETag (``If-Match``, or ``If-None-Match: *``
for the first), retried a few times when another writer got there first: two revocations of
one certificate never lose each other's entry. Bodies hold serials, versions, reasons and dates.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from renewer import naming
from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import Bucket
from renewer.errors import TransientError
from renewer.revocation import RevokedVersion

logger = logging.getLogger(__name__)

SCHEMA = 1
_ROUNDS = 3
_PRECONDITION = ((412, "IfNoneMatchFailed"), (412, "IfMatchFailed"), (404, "ObjectNotFound"))


class ObjectStorageRevocationRecords:
    """Revocations per certificate name on the state bucket. Thread-safe (no state).

    Raises ConfigError (a missing bucket or policy) and TransientError (throttling, 5xx; or
    other writers winning every round) as the other Object Storage adapters do.
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str) -> None:
        self._bucket = Bucket(clients, namespace=namespace, bucket=bucket)

    def revoked(self, name: str) -> dict[str, RevokedVersion]:
        """The recorded revocations of ``name`` by serial (lower-case hex); {} when none."""
        found = self._bucket.get(naming.revocations_object(name))
        return {} if found is None else _parse(found.body)

    def record(self, name: str, revoked: RevokedVersion) -> None:
        """Add ``revoked`` to the record of ``name`` (idempotent for the same serial)."""
        object_name = naming.revocations_object(name)
        for _ in range(_ROUNDS):
            found = self._bucket.get(object_name)
            entries = {} if found is None else _parse(found.body)
            if revoked.serial.lower() in entries:
                return
            entries[revoked.serial.lower()] = revoked
            body = json.dumps(
                {"schema": SCHEMA, "revoked": [e.to_dict() for e in entries.values()]},
                sort_keys=True,
            ).encode()
            condition = {"if_none_match": "*"} if found is None else {"if_match": found.etag}
            answer = self._bucket.put(
                object_name,
                body,
                content_type="application/json",
                expected=_PRECONDITION,
                **condition,
            )
            if isinstance(answer, str):
                logger.info(
                    "revocation recorded cert=%s serial=%s version=%d reason=%s",
                    name,
                    revoked.serial,
                    revoked.version,
                    revoked.reason,
                )
                return
        msg = f"could not record the revocation of {name} (the record kept changing); try again"
        raise TransientError(msg)

    def delete(self, name: str) -> None:
        """Delete the record of ``name``; no-op when absent."""
        self._bucket.delete(naming.revocations_object(name))


def _parse(body: bytes) -> dict[str, RevokedVersion]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    entries = document.get("revoked") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        logger.warning("revocations unreadable: treated as none recorded")
        return {}
    parsed: dict[str, RevokedVersion] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        serial, version = entry.get("serial"), entry.get("version")
        reason, when = entry.get("reason"), entry.get("revoked_at")
        if not (isinstance(serial, str) and isinstance(version, int) and isinstance(when, str)):
            continue
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            continue
        parsed[serial.lower()] = RevokedVersion(
            serial.lower(), version, reason if isinstance(reason, str) else "unspecified", moment
        )
    return parsed
