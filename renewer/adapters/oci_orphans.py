"""The state bucket's part in retiring certificates that left the configuration.

:class:`ObjectStorageOrphanRecords` is :class:`renewer.orphans.OrphanRecords` over the private
state bucket: it lists the state objects (``state/<name>.json``) and the orphan records
(``orphans/<name>.json``, :func:`renewer.naming.orphan_record_object`), reads and writes the
records, and deletes a retired certificate's state and record. Object names that are not a
certificate's (another shape, an invalid name) are ignored: they are not ours to judge.

Two ListObjects per run (all pages); everything else only for orphans. Bodies are JSON
documents of names, dates and OCIDs only.
"""

from __future__ import annotations

import logging

from renewer import naming
from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import Bucket, JsonObjects

logger = logging.getLogger(__name__)

_STATE = "state/"
_RECORDS = "orphans/"
_SUFFIX = ".json"


class ObjectStorageOrphanRecords:
    """:class:`renewer.orphans.OrphanRecords` on the state bucket. Thread-safe (no state).

    Raises ConfigError (a missing bucket or policy) and TransientError (throttling, 5xx) as
    :class:`~renewer.adapters.oci_object_storage.Bucket` does.
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str) -> None:
        self._bucket = Bucket(clients, namespace=namespace, bucket=bucket)
        self._objects = JsonObjects(clients, namespace=namespace, bucket=bucket)

    def state_names(self) -> frozenset[str]:
        """Certificate names that have a state object."""
        return _names(self._bucket.names(_STATE), _STATE)

    def record_names(self) -> frozenset[str]:
        """Certificate names that have an orphan record."""
        return _names(self._bucket.names(_RECORDS), _RECORDS)

    def load_state(self, name: str) -> dict[str, object] | None:
        """The state document of ``name``; None when absent or not a JSON object."""
        return self._objects.get(naming.state_object(name))

    def load_record(self, name: str) -> dict[str, object] | None:
        """The orphan record of ``name``; None when absent or not a JSON object."""
        return self._objects.get(naming.orphan_record_object(name))

    def save_record(self, name: str, record: dict[str, object]) -> None:
        """Write the orphan record of ``name`` (replacing it)."""
        self._objects.put(naming.orphan_record_object(name), record)

    def delete_state(self, name: str) -> None:
        """Delete the state object and the revocation record of ``name``; no-op when absent."""
        self._bucket.delete(naming.state_object(name))
        self._bucket.delete(naming.revocations_object(name))

    def delete_record(self, name: str) -> None:
        """Delete the orphan record of ``name``; no-op when absent."""
        self._bucket.delete(naming.orphan_record_object(name))


def _names(objects: list[str], prefix: str) -> frozenset[str]:
    names = set()
    for object_name in objects:
        if not (object_name.startswith(prefix) and object_name.endswith(_SUFFIX)):
            continue
        name = object_name[len(prefix) : -len(_SUFFIX)]
        if naming.CERT_NAME_RE.fullmatch(name):
            names.add(name)
    return frozenset(names)
