"""The run journal and the notification state, as JSON objects in the private state bucket.

* :class:`ObjectStorageRunJournal` — ``RunJournal``: one record per run under
  ``journal/YYYY/MM/DD/<start>-<call id>.json`` (names from :mod:`renewer.operations.journal`),
  pruned on write by age and count; read newest first for ``status``.
* :class:`ObjectStorageNoticeStates` — ``NoticeStates``: ``notifications/<certificate>.json``,
  what operators were last told about each certificate.

Both live in the state bucket the renewer already may ``manage objects`` in: no new policy.
The object calls are :class:`renewer.adapters.oci_object_storage.Bucket`'s (translated errors;
a 404 ``ObjectNotFound`` — a record pruned or never written — reads as absent). Object bodies
are never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from renewer import naming
from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import JsonObjects
from renewer.errors import ConfigError
from renewer.operations.journal import (
    JOURNAL_PREFIX,
    certificate_entries,
    expired,
    journal_names,
)

logger = logging.getLogger(__name__)

NOTICE_PREFIX = "notifications/"
MAX_PRUNE_PER_WRITE = 100  # a first write over a long-neglected journal spreads its deletes


class ObjectStorageRunJournal:
    """``RunJournal`` in the state bucket (see the module docstring).

    ``write`` replaces an object of the same name (a retried write is harmless), then deletes
    records older than ``retention_days`` and the oldest beyond ``max_records`` — at most
    :data:`MAX_PRUNE_PER_WRITE` per write — and returns their names. Objects under
    ``journal/`` whose names are not journal records are never deleted. ``recent`` and
    ``history`` read newest first; a record pruned meanwhile or unreadable is skipped.
    ``history`` reads at most ``scan`` records.

    Raises :class:`~renewer.errors.ConfigError` for a missing bucket or policy (404) and
    :class:`~renewer.errors.TransientError` for throttling, 5xx and network failures.
    Thread-safe: no state besides the shared SDK client.
    """

    def __init__(
        self,
        clients: OciClients,
        *,
        namespace: str,
        bucket: str,
        retention_days: int,
        max_records: int,
        scan: int = 500,
    ) -> None:
        if retention_days < 1 or max_records < 1 or scan < 1:
            msg = "journal retention_days, max_records and scan must be at least 1"
            raise ConfigError(msg)
        self._objects = JsonObjects(clients, namespace=namespace, bucket=bucket)
        self._retention_days = retention_days
        self._max_records = max_records
        self._scan = scan

    def write(self, object_name: str, record: Mapping[str, object], *, now: datetime) -> list[str]:
        """Store ``record`` as ``object_name``; prune; return what was pruned."""
        if not object_name.startswith(JOURNAL_PREFIX):
            msg = f"journal object {object_name!r} must be under {JOURNAL_PREFIX}"
            raise ConfigError(msg)
        self._objects.put(object_name, record)
        doomed = expired(
            self._objects.names(JOURNAL_PREFIX),
            now=now,
            retention_days=self._retention_days,
            max_records=self._max_records,
        )
        # Never the record just written, whatever the clocks say.
        doomed = [name for name in doomed if name != object_name][:MAX_PRUNE_PER_WRITE]
        for name in doomed:
            self._objects.delete(name)
        logger.info(
            "journal written object=%s bucket=%s pruned=%d",
            object_name,
            self._objects.bucket,
            len(doomed),
        )
        return doomed

    def recent(self, limit: int) -> list[dict[str, object]]:
        """The ``limit`` newest records, newest first."""
        records: list[dict[str, object]] = []
        for name in self._newest_first():
            if len(records) >= limit:
                break
            record = self._objects.get(name)
            if record is not None:
                records.append(record)
        return records

    def history(self, name: str, *, limit: int) -> list[dict[str, object]]:
        """Certificate ``name``'s ``limit`` newest entries, newest first."""
        naming.check_certificate_name(name)
        entries: list[dict[str, object]] = []
        for object_name in self._newest_first()[: self._scan]:
            if len(entries) >= limit:
                break
            record = self._objects.get(object_name)
            if record is not None:
                entries.extend(certificate_entries(record, name))
        return entries[:limit]

    def _newest_first(self) -> list[str]:
        return journal_names(self._objects.names(JOURNAL_PREFIX))[::-1]


class ObjectStorageNoticeStates:
    """``NoticeStates`` in the state bucket: ``notifications/<certificate>.json``.

    ``load`` returns None when absent (or not a JSON object, warned); ``save`` replaces
    (idempotent; the last writer wins — the certificate's lease already keeps two runs apart).
    Raises like :class:`ObjectStorageRunJournal`, and ConfigError for an invalid certificate
    name before any request. Thread-safe.
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str) -> None:
        self._objects = JsonObjects(clients, namespace=namespace, bucket=bucket)

    def load(self, name: str) -> dict[str, object] | None:
        """The stored document of certificate ``name``, or None."""
        return self._objects.get(_notice_object(name))

    def save(self, name: str, document: Mapping[str, object]) -> None:
        """Replace the document of certificate ``name``."""
        self._objects.put(_notice_object(name), document)


def _notice_object(name: str) -> str:
    return f"{NOTICE_PREFIX}{naming.check_certificate_name(name)}.json"
