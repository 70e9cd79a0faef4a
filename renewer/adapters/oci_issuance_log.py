"""The issuance log (:mod:`renewer.rate_limits`) as one object in the private state bucket.

``issuances/<account>.json``, where ``<account>`` names the ACME directory's host (the CA counts
per account, and this renewer keeps one account per directory). Written only with a condition:
``if-match`` the ETag read, or ``if-none-match: *`` when there was none — two runs that admit
an order at once cannot both win, the loser reads again (the lease discipline of
:class:`~renewer.adapters.oci_object_storage.ObjectStorageLease`). An unreadable log is an
empty log (logged): it is derived data, and the CA still enforces its own limits.
"""

from __future__ import annotations

import hashlib
import json
import logging
from urllib.parse import urlsplit

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import Bucket
from renewer.rate_limits import IssuanceLog

logger = logging.getLogger(__name__)

_CONDITION_FAILED = ((412, "IfMatchFailed"), (412, "IfNoneMatchFailed"))


def issuance_log_object(directory_url: str) -> str:
    """The log's object name for the account of ``directory_url``."""
    host = (urlsplit(directory_url).hostname or "ca").lower()
    digest = hashlib.sha256(directory_url.encode()).hexdigest()[:12]
    return f"issuances/{host}-{digest}.json"


class ObjectStorageIssuanceLog:
    """:class:`~renewer.rate_limits.IssuanceLogStore` on the state bucket. Thread-safe."""

    def __init__(
        self, clients: OciClients, *, namespace: str, bucket: str, directory_url: str
    ) -> None:
        self._bucket = Bucket(clients, namespace=namespace, bucket=bucket)
        self.object_name = issuance_log_object(directory_url)

    def load(self) -> tuple[IssuanceLog, str | None]:
        """The stored log and its ETag; an empty log and None when there is none."""
        found = self._bucket.get(self.object_name)
        if found is None:
            return IssuanceLog(), None
        try:
            document = json.loads(found.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            logger.warning("issuance log unreadable object=%s: counted as empty", self.object_name)
            document = None
        return IssuanceLog.parse(document), found.etag

    def save(self, log: IssuanceLog, tag: str | None) -> bool:
        """Write ``log`` if the object is still at ``tag`` (None: absent); False if not."""
        condition = {"if_match": tag} if tag is not None else {"if_none_match": "*"}
        body = json.dumps(log.to_document(), sort_keys=True).encode()
        answer = self._bucket.put(
            self.object_name,
            body,
            content_type="application/json",
            expected=_CONDITION_FAILED,
            **condition,
        )
        return isinstance(answer, str)
