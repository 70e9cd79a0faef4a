"""Object Storage adapters: the http-01 challenge store, the per-certificate lease, the state.

Three ports over one SDK family, each bound to one bucket:

* :class:`ObjectStorageChallengeStore` — the distributed http-01 solver (CertMagic's
  ``distributedSolver``): key authorizations are written to the challenge bucket, and the token
  server behind the load balancer's port 80 serves them.
* :class:`ObjectStorageLease` — CertMagic's ``Locker`` on Object Storage: a conditional create
  (``If-None-Match: *``) takes a lease, an expired one is taken over by compare-and-swap on its
  ETag (``If-Match``), and release deletes it only while it is still ours (wire facts 4.1).
* :class:`ObjectStorageStateRepository` — derived per-certificate state as JSON objects.

Every SDK call runs inside :func:`~renewer.adapters.oci_clients.translate`, so OCI's answers
become :mod:`renewer.errors` with the ``opc-request-id``. The only ``ServiceError`` caught here
are the outcomes these adapters expect and handle: 412 ``IfNoneMatchFailed`` / ``IfMatchFailed``
on conditional requests and 404 ``ObjectNotFound``; anything else (a 404 ``BucketNotFound``,
which is also how OCI answers a missing policy) goes through ``translate`` unchanged.

Object bodies are data, not log material: logs name tokens, objects and buckets, never a key
authorization or a state document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from oci.exceptions import ServiceError

from renewer import naming
from renewer.adapters.oci_clients import OciClients, translate
from renewer.clock import Clock
from renewer.errors import ConfigError, TransientError
from renewer.ports import ChallengeSweep, LeaseHandle

logger = logging.getLogger(__name__)

# Outcomes of a request that the adapters expect and handle (status, OCI error code).
_IF_NONE_MATCH_FAILED = (412, "IfNoneMatchFailed")
_IF_MATCH_FAILED = (412, "IfMatchFailed")
_OBJECT_NOT_FOUND = (404, "ObjectNotFound")
# A lease that disappears between a refused create and the read that follows was released;
# creating it again is worth a few rounds, not a loop.
_ACQUIRE_ROUNDS = 3
_TEXT = "text/plain"
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class _Refused:
    """OCI refused a request in a way the caller expects (a failed condition, no object)."""

    status: int
    code: str
    request_id: str | None


@dataclass(frozen=True, slots=True)
class _Object:
    body: bytes
    etag: str


class Bucket:
    """The object calls of one bucket, translated; expected refusals come back as values.

    Shared by every Object Storage adapter (challenges, leases, state, the run journal).
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str) -> None:
        for label, value in (("namespace", namespace), ("bucket", bucket)):
            if not value or value != value.strip():
                msg = f"Object Storage {label} {value!r} is empty or has surrounding spaces"
                raise ConfigError(msg)
        self._client = clients.object_storage
        self.namespace = namespace
        self.name = bucket

    def put(
        self,
        object_name: str,
        body: bytes,
        *,
        content_type: str,
        expected: Collection[tuple[int, str]] = (),
        **conditions: str,
    ) -> str | _Refused:
        """Write ``object_name``; returns its new ETag, or the expected refusal."""
        answer = self._call(
            f"write object {object_name!r} to bucket {self.name!r}",
            expected,
            self._client.put_object,
            object_name,
            body,
            content_type=content_type,
            **conditions,
        )
        if isinstance(answer, _Refused):
            return answer
        return _etag(answer, object_name)

    def get(self, object_name: str) -> _Object | None:
        """The object's body and ETag, or None when there is no such object."""
        answer = self._call(
            f"read object {object_name!r} from bucket {self.name!r}",
            (_OBJECT_NOT_FOUND,),
            self._client.get_object,
            object_name,
        )
        if isinstance(answer, _Refused):
            return None
        return _Object(body=answer.data.content, etag=_etag(answer, object_name))

    def delete(self, object_name: str, **conditions: str) -> _Refused | None:
        """Delete ``object_name``; None when deleted, the refusal when absent or not matching."""
        answer = self._call(
            f"delete object {object_name!r} from bucket {self.name!r}",
            (_OBJECT_NOT_FOUND, _IF_MATCH_FAILED),
            self._client.delete_object,
            object_name,
            **conditions,
        )
        return answer if isinstance(answer, _Refused) else None

    def list_one(self, prefix: str) -> None:
        """Read-only: list at most one object under ``prefix`` (proves bucket and policy)."""
        self._call(
            f"list objects in bucket {self.name!r} of namespace {self.namespace!r}",
            (),
            self._client.list_objects,
            prefix=prefix,
            limit=1,
        )

    def names(self, prefix: str, *, page_size: int = 1000) -> list[str]:
        """Every object name under ``prefix``, all pages (ListObjects answers 1000 at most)."""
        return [str(s.name) for s in self.summaries(prefix, fields="name", page_size=page_size)]

    def summaries(
        self, prefix: str, *, fields: str = "name,timeCreated", page_size: int = 1000
    ) -> list[Any]:
        """Every ``ObjectSummary`` under ``prefix`` with ``fields``, all pages."""
        found: list[Any] = []
        start: str | None = None
        while True:
            kwargs: dict[str, Any] = {"prefix": prefix, "fields": fields, "limit": page_size}
            if start is not None:
                kwargs["start"] = start
            page = self._call(
                f"list objects {prefix}* in bucket {self.name!r}",
                (),
                self._client.list_objects,
                **kwargs,
            ).data
            found.extend(page.objects or [])
            start = page.next_start_with
            if not start:
                return found

    def _call(
        self,
        action: str,
        expected: Collection[tuple[int, str]],
        operation: Callable[..., Any],
        *args: object,
        **kwargs: object,
    ) -> Any:  # noqa: ANN401 - an SDK response, or a _Refused
        with translate(action):
            try:
                return operation(self.namespace, self.name, *args, **kwargs)
            except ServiceError as exc:
                if (exc.status, exc.code) not in expected:
                    raise  # -> translate: ConfigError / TransientError with the request id
                return _Refused(exc.status, exc.code, exc.request_id)


def _etag(response: Any, object_name: str) -> str:  # noqa: ANN401 - an SDK response
    etag = response.headers.get("etag")
    if not etag:
        msg = f"Object Storage answered without an ETag for {object_name!r}"
        raise TransientError(msg)
    return str(etag)


class ObjectStorageChallengeStore:
    """``ChallengeStore`` on an Object Storage bucket: ``.well-known/acme-challenge/<token>``.

    ``present`` writes the key authorization as ``text/plain`` (the token server serves the
    object's bytes as they are); writing the same token again overwrites it, so it is
    idempotent. ``clean_up`` deletes the object, and an object that is already gone (404
    ObjectNotFound) is success, so it is safe after a failed or partial ``present`` and safe to
    repeat.

    Both methods validate the token (``[A-Za-z0-9_-]+``, :func:`renewer.naming.challenge_object`)
    before any request: anything else raises :class:`~renewer.errors.ConfigError` and nothing is
    sent. Other errors: :class:`~renewer.errors.TransientError` (throttling, 5xx, network — after
    the client's bounded retries) and :class:`~renewer.errors.ConfigError` (a missing bucket or a
    missing policy, which OCI answers alike: 404 BucketNotFound).

    Thread-safe: no state besides the shared SDK client.
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str) -> None:
        self._bucket = Bucket(clients, namespace=namespace, bucket=bucket)

    def check(self) -> None:
        """Read-only: ConfigError (naming the bucket) unless the challenge bucket can be used.

        One ListObjects under the challenge prefix (``manage objects`` includes the
        OBJECT_INSPECT it needs): a wrong bucket name, namespace or policy is found before an
        ACME order is spent, instead of at the first ``present``.
        """
        try:
            self._bucket.list_one(naming.challenge_object("x").removesuffix("x"))
        except ConfigError as exc:
            msg = f"the challenge bucket (oci.challengeBucket) cannot be used: {exc}"
            raise ConfigError(msg) from exc

    def present(self, token: str, key_authorization: str) -> None:
        """Publish ``key_authorization`` for ``token`` (overwrites; idempotent)."""
        object_name = naming.challenge_object(token)
        self._bucket.put(object_name, key_authorization.encode(), content_type=_TEXT)
        logger.debug(
            "challenge presented token=%s object=%s bucket=%s",
            token,
            object_name,
            self._bucket.name,
        )

    def clean_up(self, token: str) -> None:
        """Delete what ``present`` wrote for ``token``; no-op when it is already gone."""
        object_name = naming.challenge_object(token)
        refused = self._bucket.delete(object_name)
        logger.debug(
            "challenge cleaned token=%s object=%s bucket=%s already_gone=%s",
            token,
            object_name,
            self._bucket.name,
            refused is not None,
        )

    def sweep(self, *, created_before: datetime) -> ChallengeSweep:
        """``ChallengeSweeper``: delete challenge objects created before ``created_before``.

        One ListObjects (``name,timeCreated``, all pages) under the challenge prefix, then one
        DeleteObject per object older than the cutoff (404: already gone, success). Objects
        whose name is not a valid token object are not ours to judge and are left alone; so is
        an object without a creation time. Nothing else in the bucket is listed or touched.
        """
        prefix = naming.CHALLENGE_PREFIX
        cutoff = created_before.astimezone(UTC)
        removed: list[str] = []
        younger = 0
        for summary in self._bucket.summaries(prefix):
            object_name = str(summary.name)
            token = object_name.removeprefix(prefix)
            created = getattr(summary, "time_created", None)
            if not isinstance(created, datetime) or not _is_token_object(object_name, token):
                continue
            created = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
            if created >= cutoff:
                younger += 1
                continue
            self._bucket.delete(object_name)
            removed.append(token)
        if removed or younger:
            logger.info(
                "challenges swept bucket=%s removed=%d younger=%d cutoff=%s",
                self._bucket.name,
                len(removed),
                younger,
                _rfc3339(cutoff),
            )
        return ChallengeSweep(removed=tuple(removed), younger=younger)


def _is_token_object(object_name: str, token: str) -> bool:
    try:
        return naming.challenge_object(token) == object_name
    except ConfigError:
        return False


@dataclass(frozen=True, slots=True)
class _LeaseRecord:
    """The JSON document of a lease object."""

    holder: str
    acquired_at: datetime
    expires_at: datetime

    @classmethod
    def starting(cls, holder: str, now: datetime, ttl: timedelta) -> _LeaseRecord:
        # Microseconds, as written: a record read back compares equal to the one written.
        now = now.astimezone(UTC)
        return cls(holder, now, now + ttl)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "holder": self.holder,
                "acquiredAt": _rfc3339(self.acquired_at),
                "expiresAt": _rfc3339(self.expires_at),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def parse(cls, body: bytes) -> _LeaseRecord | None:
        """The record in ``body``, or None when it is not a lease document."""
        try:
            data = json.loads(body)
            holder = data["holder"]
            acquired_at = _parse_rfc3339(data["acquiredAt"])
            expires_at = _parse_rfc3339(data["expiresAt"])
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(holder, str) or acquired_at is None or expires_at is None:
            return None
        return cls(holder, acquired_at, expires_at)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


@dataclass(frozen=True, slots=True)
class _CurrentLease:
    record: _LeaseRecord | None  # None: the object is not a readable lease document
    etag: str


class ObjectStorageLease:
    """``Lease`` on Object Storage: one JSON object per certificate, ``leases/<name>.json``.

    The object holds ``{"holder", "acquiredAt", "expiresAt"}`` (RFC 3339, UTC).

    ``acquire`` creates it with ``If-None-Match: *``. When it exists, it is read: a lease of
    another holder that has not expired (by the injected clock, read after the lease was read)
    means None; an expired lease, or one whose JSON is unreadable (logged as a warning), is taken
    over with ``If-Match: <its ETag>`` — of several runs taking over the same stale lease,
    exactly one wins and the others get None. A live lease of the *same* holder is refreshed and
    a new handle returned (its ``expires_at`` moves; a handle from before no longer releases it).
    That is also what makes a retried create safe: when the SDK retries a create whose first
    answer was lost, the retry is refused, and the lease read back is our own. So holder ids must
    be unique per run (the invocation's call id, say): two runs sharing one would both hold it.

    ``release`` deletes the object with ``If-Match: <handle.tag>``: if it changed since (another
    run took it over after our lease expired, or we refreshed it: 412) or it is gone (404),
    nothing happens but a warning. Calling it again is therefore always safe.

    The adapter does not know the function's timeout: callers pass a ``ttl`` longer than the
    function timeout plus the client's retry budget, so a lease never expires under a run that
    is still working. Expiry is judged by the caller's clock, so the runs sharing a bucket need
    clocks that roughly agree (NTP-synchronized hosts do; OCI Functions are).

    Raises :class:`~renewer.errors.ConfigError` for an invalid certificate name, holder or
    ``ttl`` (before any request) and for a missing bucket or policy;
    :class:`~renewer.errors.TransientError` for throttling, 5xx and network failures.

    Thread-safe: no state besides the shared SDK client; concurrency is settled by the
    conditional requests, not by this object.
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str, clock: Clock) -> None:
        self._bucket = Bucket(clients, namespace=namespace, bucket=bucket)
        self._clock = clock

    def acquire(self, name: str, *, holder: str, ttl: timedelta) -> LeaseHandle | None:
        """Take the lease for ``name`` for ``ttl``, or None if another holder has it."""
        object_name = naming.lease_object(name)
        if not holder:
            msg = "a lease holder id must not be empty; use one unique id per run"
            raise ConfigError(msg)
        if ttl <= timedelta(0):
            msg = f"lease ttl must be positive (and longer than the function timeout), not {ttl}"
            raise ConfigError(msg)
        for _ in range(_ACQUIRE_ROUNDS):
            record = _LeaseRecord.starting(holder, self._clock.now(), ttl)
            tag = self._write(object_name, record, if_none_match="*")
            if tag is not None:
                logger.debug("lease acquired name=%s holder=%s", name, holder)
                return _handle(name, record, tag)
            current = self._read(object_name)
            if current is None:
                continue  # released between our create and our read: create again
            if current.record == record:
                return _handle(name, record, current.etag)  # our own create, answer lost
            return self._take_over(name, object_name, current, holder=holder, ttl=ttl)
        logger.info("lease contended name=%s holder=%s rounds=%d", name, holder, _ACQUIRE_ROUNDS)
        return None

    def release(self, handle: LeaseHandle) -> None:
        """Delete the lease if it is still the one ``handle`` holds; otherwise do nothing."""
        object_name = naming.lease_object(handle.name)
        refused = self._bucket.delete(object_name, if_match=handle.tag)
        if refused is None:
            logger.debug("lease released name=%s holder=%s", handle.name, handle.holder)
        elif refused.code == _IF_MATCH_FAILED[1]:
            logger.warning(
                "lease not released name=%s holder=%s reason=no-longer-ours"
                " expired_at=%s opc_request_id=%s",
                handle.name,
                handle.holder,
                _rfc3339(handle.expires_at),
                refused.request_id,
            )
        else:
            logger.warning(
                "lease not released name=%s holder=%s reason=already-gone opc_request_id=%s",
                handle.name,
                handle.holder,
                refused.request_id,
            )

    def current(self, name: str) -> LeaseHandle | None:
        """Read-only: the stored lease of ``name`` (one GetObject), or None (none, unreadable)."""
        current = self._read(naming.lease_object(name))
        if current is None or current.record is None:
            return None
        return _handle(name, current.record, current.etag)

    def remove_expired(self, name: str) -> LeaseHandle | None:
        """Delete the lease of ``name`` if it expired (``If-Match`` its ETag); what was removed.

        For runs that take no lease: one read, and one conditional delete only when the lease
        has expired by the injected clock. None when there is no lease, it is live or
        unreadable (left to the next ``acquire``), or it changed between the read and the delete.
        """
        object_name = naming.lease_object(name)
        current = self._read(object_name)
        if current is None or current.record is None:
            return None
        record = current.record
        if record.expires_at > self._clock.now():
            return None
        refused = self._bucket.delete(object_name, if_match=current.etag)
        if refused is not None:
            logger.debug("expired lease not removed name=%s reason=%s", name, refused.code)
            return None
        logger.info(
            "expired lease removed name=%s previous_holder=%s previous_expires_at=%s",
            name,
            record.holder,
            _rfc3339(record.expires_at),
        )
        return _handle(name, record, current.etag)

    def _take_over(
        self,
        name: str,
        object_name: str,
        current: _CurrentLease,
        *,
        holder: str,
        ttl: timedelta,
    ) -> LeaseHandle | None:
        now = self._clock.now()
        previous = current.record
        if previous is None:
            logger.warning(
                "lease unreadable name=%s object=%s bucket=%s: treating it as expired",
                name,
                object_name,
                self._bucket.name,
            )
        elif previous.holder != holder and previous.expires_at > now:
            logger.debug(
                "lease held name=%s holder=%s expires_at=%s",
                name,
                previous.holder,
                _rfc3339(previous.expires_at),
            )
            return None
        record = _LeaseRecord.starting(holder, now, ttl)
        tag = self._write(object_name, record, if_match=current.etag)
        if tag is None:
            # Another run swapped it first, unless the refused write was a retry of our own.
            after = self._read(object_name)
            if after is None or after.record != record:
                logger.debug("lease takeover lost name=%s holder=%s", name, holder)
                return None
            tag = after.etag
        if previous is not None and previous.holder != holder:
            logger.info(
                "lease taken over name=%s holder=%s previous_holder=%s previous_expires_at=%s",
                name,
                holder,
                previous.holder,
                _rfc3339(previous.expires_at),
            )
        return _handle(name, record, tag)

    def _write(self, object_name: str, record: _LeaseRecord, **condition: str) -> str | None:
        answer = self._bucket.put(
            object_name,
            record.to_json(),
            content_type=_JSON,
            # If-Match on a lease deleted meanwhile: 412 IfMatchFailed in the emulator; whether
            # OCI answers that or 404 ObjectNotFound is unconfirmed, and both mean "lost".
            expected=(_IF_NONE_MATCH_FAILED, _IF_MATCH_FAILED, _OBJECT_NOT_FOUND),
            **condition,
        )
        return None if isinstance(answer, _Refused) else answer

    def _read(self, object_name: str) -> _CurrentLease | None:
        found = self._bucket.get(object_name)
        if found is None:
            return None
        return _CurrentLease(_LeaseRecord.parse(found.body), found.etag)


def _handle(name: str, record: _LeaseRecord, tag: str) -> LeaseHandle:
    return LeaseHandle(name=name, holder=record.holder, expires_at=record.expires_at, tag=tag)


class ObjectStorageStateRepository:
    """``StateRepository`` on Object Storage: JSON objects ``state/<name>.json``.

    ``load`` returns None when the object does not exist (404 ObjectNotFound), and also when
    it is not a JSON object (logged as a warning): state is derived data, and losing it must
    never cause a duplicate order, because Vault and the load balancer are re-read every run.
    For the same reason ``save`` simply replaces the object, with no conditional header: the
    last writer wins, and the lease already keeps two runs off one certificate. ``save`` is
    idempotent.

    Raises :class:`~renewer.errors.ConfigError` for an invalid certificate name (before any
    request) and for a missing bucket or policy, :class:`~renewer.errors.TransientError` for
    throttling, 5xx and network failures; ``save`` raises ``TypeError``/``ValueError`` for a
    value that is not JSON (a bug in the caller, found before anything is written).

    Thread-safe: no state besides the shared SDK client.
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str) -> None:
        self._bucket = Bucket(clients, namespace=namespace, bucket=bucket)

    def load(self, name: str) -> dict[str, object] | None:
        """The saved state of certificate ``name``, or None."""
        object_name = naming.state_object(name)
        found = self._bucket.get(object_name)
        if found is None:
            return None
        try:
            state = json.loads(found.body)
        except ValueError:
            state = None
        if not isinstance(state, dict):
            logger.warning(
                "state unreadable name=%s object=%s bucket=%s: treating it as absent",
                name,
                object_name,
                self._bucket.name,
            )
            return None
        return state

    def save(self, name: str, state: dict[str, object]) -> None:
        """Replace the saved state of certificate ``name``."""
        object_name = naming.state_object(name)
        body = json.dumps(state, sort_keys=True, allow_nan=False).encode()
        self._bucket.put(object_name, body, content_type=_JSON)
        logger.debug(
            "state saved name=%s object=%s bucket=%s", name, object_name, self._bucket.name
        )


class JsonObjects:
    """JSON documents in one bucket (:class:`Bucket`'s calls); a missing object reads as None.

    The journal, notices and orphan records use it; a document that is not a JSON object is
    warned about and read as None.
    """

    def __init__(self, clients: OciClients, *, namespace: str, bucket: str) -> None:
        self._bucket = Bucket(clients, namespace=namespace, bucket=bucket)
        self.bucket = bucket

    def put(self, name: str, document: Mapping[str, object]) -> None:
        """Write ``document`` as ``name`` (sorted keys, no NaN), replacing it."""
        body = json.dumps(document, sort_keys=True, allow_nan=False).encode()
        self._bucket.put(name, body, content_type="application/json")

    def get(self, name: str) -> dict[str, object] | None:
        """The object as a JSON object; None when absent or not a JSON object (warned)."""
        found = self._bucket.get(name)
        if found is None:
            return None
        try:
            document = json.loads(found.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            logger.warning("unreadable object=%s bucket=%s: ignored", name, self.bucket)
            return None
        return document

    def delete(self, name: str) -> None:
        """Delete ``name``; already gone is fine."""
        self._bucket.delete(name)

    def names(self, prefix: str) -> list[str]:
        """Every object name under ``prefix`` (all pages)."""
        return self._bucket.names(prefix)
