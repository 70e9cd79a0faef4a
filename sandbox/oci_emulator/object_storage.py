"""Object Storage as the ``oci`` SDK sees it: namespace, buckets, objects, PARs.

Operations (``ObjectStorageClient`` of oci 2.189.0; paths, headers, query parameters and JSON field
names read from ``object_storage_client.py`` and ``models/``, see wire facts section 4):

* ``GET /n`` GetNamespace: a JSON string.
* ``GET /n/{ns}/b?compartmentId=`` ListBuckets (``limit``/``page``, ``opc-next-page``) and
  ``GET /n/{ns}/b/{bucket}`` GetBucket (``fields=approximateCount,approximateSize``): read-only,
  the buckets come from the fixture (``buckets: [{"name", "compartment", "public"}]``;
  ``compartment`` is a compartment OCID or a fixture compartment name, the tenancy when absent).
* ``PUT|GET|HEAD|DELETE /n/{ns}/b/{bucket}/o/{object}`` PutObject, GetObject, HeadObject,
  DeleteObject. Object names are percent-decoded, so ``a/b`` sent raw or as ``a%2Fb`` (oci 2.189.0
  strict-encodes object names, 2.120.0 does not) is the same object. PUT stores the body, its
  ``Content-Type`` (``application/octet-stream`` when absent, as the SDK docstring says), the
  ``opc-meta-*`` headers and ``Content-Language|Encoding|Disposition``/``Cache-Control``, and
  answers 200 with ``etag``, ``last-modified`` and ``opc-content-md5``. GET and HEAD answer those
  headers plus ``content-type`` and exactly one ``content-length``; DELETE answers 204.
* Conditions: PUT ``if-none-match: *`` -> 412 ``IfNoneMatchFailed`` when the object exists;
  ``if-match: <etag>`` on PUT/DELETE/GET/HEAD -> 412 ``IfMatchFailed`` when it differs;
  ``if-none-match: <etag>`` on GET/HEAD -> 304 without a body (SDK docstrings); a ``Content-MD5``
  that does not match the body -> 400 ``UnmatchedContentMD5`` (put_object docstring).
* ``GET /n/{ns}/b/{bucket}/o`` ListObjects: sorted by name; ``prefix``, ``start`` (>=), ``end`` (<),
  ``startAfter`` (>), ``limit`` (at most 1000), ``fields`` (comma-separated, case-insensitive, name
  always included), ``delimiter`` (only ``/``) with ``prefixes``, and ``nextStartWith`` when more
  remain (what ``oci.pagination`` feeds back as ``start``).
* ``POST|GET /n/{ns}/b/{bucket}/p`` and ``GET|DELETE .../p/{parId}``: Create, List, Get and Delete
  PreauthenticatedRequest. Create answers ``PreauthenticatedRequest`` (with ``accessUri``); Get and
  List answer ``PreauthenticatedRequestSummary`` (no ``accessUri``: OCI shows it only once).
* ``GET|HEAD /p/{token}/n/{ns}/b/{bucket}/o/{object}`` (no signature): reads through a PAR, within
  its scope and before ``timeExpires``; ``GET /p/{token}/n/{ns}/b/{bucket}/o/`` lists the bucket
  when the PAR is ``AnyObjectRead``/``AnyObjectReadWrite`` with ``bucketListingAction:
  ListObjects``.
  Emulator operation names: ``PreauthenticatedGetObject``, ``PreauthenticatedHeadObject``,
  ``PreauthenticatedListObjects`` (OCI has no API operation for these).

Error answers and where they come from: 404 ``BucketNotFound`` with OCI's own message ("Either
the bucket named '<b>' does not exist in the namespace '<ns>' or you are not authorized to access
it", quoted from real answers in oracle/oci-python-sdk#484 and oracle/oci-cli#262), which OCI gives
both when the bucket is missing and when the caller may not use it, so a policy denial on a bucket
or its objects is answered as BucketNotFound, not NotAuthorizedOrNotFound (ListBuckets, which has
no bucket, keeps the core's NotAuthorizedOrNotFound); 404 ``NamespaceNotFound`` with the message of
a real answer (oracle/oci-cli#554) for any namespace but the emulator's; 404 ``ObjectNotFound``
(Object Storage's V2ErrorCode enum, wire facts 4.1); 401 ``NotAuthenticated`` (the server
pipeline) for an unsigned request.

State (``state.section("objectstorage")``, JSON: it is saved to and reloaded from the state file)::

    {"namespace": "...",
     "buckets": {"<bucket>": {"name", "id", "namespace", "compartmentId", "createdBy",
                              "timeCreated", "etag", "publicAccessType",
                              "objects": {"<name>": {"body" (base64), "size", "md5", "etag",
                                                     "contentType", "created", "modified",
                                                     "headers"}},
                              "pars": {"<par id>": {"id", "token", "name", "accessType",
                                                    "objectName", "bucketListingAction",
                                                    "timeExpires", "expires", "timeCreated"}}}}}

Assumptions (not documented OCI facts):

* ObjectNotFound's message text ("The object '<o>' does not exist in bucket '<b>' with namespace
  '<ns>'"), and the messages of every other error except BucketNotFound's.
* ``PreauthenticatedRequestNotFound`` (404) for Get/DeletePreauthenticatedRequest of an unknown id:
  the code comes from a public copy of Object Storage's V2ErrorCode enum, as IfMatchFailed and
  IfNoneMatchFailed do (wire facts 4.1); which condition maps to it is our reading.
* Reads through a PAR that is unknown, deleted, expired, for another bucket or namespace, out of
  its scope, or of a write-only access type answer 404 ``NotAuthorizedOrNotFound``; an in-scope
  object that does not exist answers 404 ``ObjectNotFound``.
* ``if-match`` on PUT of an object that does not exist -> 412 ``IfMatchFailed`` (DELETE answers
  404 ``ObjectNotFound`` first); ``if-match: *``
  matches any existing object; ``if-none-match`` on PUT other than ``*`` -> 400
  ``InvalidParameter``; ``if-none-match: *`` on GET/HEAD of an existing object -> 304 (RFC 7232).
* Every other 400 uses ``InvalidParameter``: bad ``limit``/``fields``/``delimiter``/``page``, a
  missing ``compartmentId``, and an invalid CreatePreauthenticatedRequest body (missing name,
  unknown accessType, an Object* access type without objectName, ``ListObjects`` listing on a
  non-AnyObjectRead* PAR, ``timeExpires`` missing, unparsable or not in the future).
* ListObjects counts prefixes toward ``limit``; ``nextStartWith`` is the first name not yet
  returned (after a prefix, the first name outside it); ``prefixes`` is present only when a
  ``delimiter`` is given; a ``limit`` above 1000 is lowered to 1000.
* An overwrite is a new object: ``timeCreated`` and ``timeModified`` both become the PUT time.
* On a versioned bucket, ``if-none-match: *`` and ``if-match`` look at the latest version only:
  a previous version or a delete marker is not "the resource" (OCI's docs say a deleted object's
  latest version is the delete marker and the object reads as absent; the put_object docstring's
  "fail if the resource already exists" names no version). So a lease deleted and taken again
  succeeds, and an ``if-match`` with a previous version's etag fails 412 ``IfMatchFailed``. The
  same as Amazon S3 documents for conditional writes on versioned buckets; OCI's docs are silent.
* ListObjectVersions answers every version in one page, always with ``versionId`` and
  ``isDeleteMarker`` (the OCI CLI's output shows both); a delete marker has no size or etag.
* PAR ids are 64 base64 characters (they may contain ``/`` and ``+``: the docs' example id does) and
  tokens 64 URL-safe base64 characters, as in the docs' example; an object-level ``accessUri`` ends
  with the object name percent-encoded (``/`` as ``%2F``); the read path accepts both encodings.
  ``fullPath`` is the emulator's endpoint + ``accessUri``; ``bucketListingAction`` defaults to
  ``Deny`` for every access type; an Any* PAR's ``objectName`` acts as a name prefix (SDK model
  docstring) and is not part of its ``accessUri`` (docs). Expired PARs stay listed until deleted.
* Versioning (a fixture bucket with ``"versioning": "Enabled"``; OCI's "Using Object Versioning"
  page): every PUT makes a new latest version with its own ``version-id`` (answered on PUT, GET and
  HEAD) and keeps the replaced one as a previous version; a DELETE without ``versionId`` keeps the
  latest as a previous version and adds a delete marker, after which the object does not exist
  (GET/HEAD 404) until the next PUT; ``GET /n/{ns}/b/{bucket}/objectversions``
  (ListObjectVersions, ``prefix``) lists every version, newest first per name, with
  ``versionId`` and ``isDeleteMarker``. Conditions are judged against the latest version only
  (see the assumptions). GetBucket reports ``versioning``.
* Not emulated: ``Range`` (the whole object is answered), reading or deleting a previous version
  by ``versionId``, versioning ``Suspended``, lifecycle rules, storage tiers other than
  ``Standard``, SSE-C headers, anonymous reads of public buckets (``publicAccessType`` is only
  reported), writes through PARs, and bucket CRUD.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sandbox.oci_emulator.core import (
    DEFAULT_TENANCY,
    OciError,
    Reply,
    Request,
    Route,
    invalid,
    new_etag,
    new_ocid,
    not_found,
    now,
    rfc3339,
)
from sandbox.oci_emulator.server import Emulator

SERVICE = "objectstorage"
DEFAULT_NAMESPACE = "emulatorns"
MAX_LIST = 1000  # ListObjects/ListBuckets answer at most 1000 entries (SDK docstrings)
STORAGE_TIER = "Standard"
DEFAULT_CONTENT_TYPE = "application/octet-stream"  # put_object docstring
STORED_HEADERS = ("content-language", "content-encoding", "content-disposition", "cache-control")
# ListObjects ``fields`` (SDK list_objects docstring), lower-cased -> JSON name.
OBJECT_FIELDS = {
    field.lower(): field
    for field in (
        "name",
        "size",
        "etag",
        "timeCreated",
        "md5",
        "timeModified",
        "storageTier",
        "archivalState",
    )
}
ACCESS_TYPES = (
    "ObjectRead",
    "ObjectWrite",
    "ObjectReadWrite",
    "AnyObjectWrite",
    "AnyObjectRead",
    "AnyObjectReadWrite",
)
BUCKET_LEVEL = frozenset({"AnyObjectWrite", "AnyObjectRead", "AnyObjectReadWrite"})
READABLE = frozenset({"ObjectRead", "ObjectReadWrite", "AnyObjectRead", "AnyObjectReadWrite"})
LISTABLE = frozenset({"AnyObjectRead", "AnyObjectReadWrite"})
LISTING_ACTIONS = ("Deny", "ListObjects")

JSON = dict[str, Any]


# ---------------------------------------------------------------------- errors


def bucket_not_found(namespace: str, bucket: str) -> OciError:
    """OCI's answer for a missing bucket and for one the caller may not use."""
    return OciError(
        404,
        "BucketNotFound",
        f"Either the bucket named '{bucket}' does not exist in the namespace '{namespace}' "
        "or you are not authorized to access it",
    )


def object_not_found(namespace: str, bucket: str, name: str) -> OciError:
    """404 ObjectNotFound for a name the bucket does not hold."""
    return OciError(
        404,
        "ObjectNotFound",
        f"The object '{name}' does not exist in bucket '{bucket}' with namespace '{namespace}'",
    )


def namespace_not_found() -> OciError:
    """404 NamespaceNotFound for any namespace but the emulator's one."""
    return OciError(
        404,
        "NamespaceNotFound",
        "You do not have authorization to perform this request, "
        "or the requested resource could not be found.",
    )


def par_not_found(par_id: str, bucket: str) -> OciError:
    """404 PreauthenticatedRequestNotFound for an unknown PAR id."""
    return OciError(
        404,
        "PreauthenticatedRequestNotFound",
        f"There is no pre-authenticated request with id '{par_id}' in bucket '{bucket}'",
    )


def if_match_failed(sent: str) -> OciError:
    """412 IfMatchFailed: the object is absent or its entity tag differs from ``sent``."""
    return OciError(
        412,
        "IfMatchFailed",
        f"The If-Match header is '{sent}' but the object is absent or has another entity tag",
    )


def if_none_match_failed() -> OciError:
    """412 IfNoneMatchFailed: ``If-None-Match: *`` and the object exists."""
    return OciError(
        412,
        "IfNoneMatchFailed",
        "The If-None-Match header is '*' but there is an existing object with this name",
    )


# ---------------------------------------------------------------------- small helpers


def _timestamp(epoch: float) -> str:
    """An epoch as OCI's RFC 3339 timestamp."""
    return rfc3339(datetime.fromtimestamp(epoch, UTC))


def _http_date(epoch: float) -> str:
    """An epoch as an HTTP date (``last-modified``)."""
    return email.utils.formatdate(epoch, usegmt=True)


def _md5(body: bytes) -> str:
    """Base64 MD5 of a body, the form of ``opc-content-md5``, ``Content-MD5`` and ``md5``."""
    return base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - OCI's checksum


def _etag_matches(sent: str, etag: str) -> bool:
    """Whether a conditional header value names ``etag`` (quotes and ``*`` tolerated)."""
    value = sent.strip()
    return value == "*" or value.strip('"') == etag


def _parse_time(value: object) -> float:
    """An RFC 3339 timestamp (naive means UTC) as epoch seconds; ValueError when it is not one."""
    if not isinstance(value, str):
        raise TypeError
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _limit(request: Request, maximum: int = MAX_LIST) -> int:
    """The ``limit`` query parameter: 1 or more, lowered to ``maximum``."""
    text = request.arg("limit")
    if text is None:
        return maximum
    try:
        value = int(text)
    except ValueError as exc:
        raise invalid(f"limit must be an integer, not '{text}'.") from exc
    if value < 1:
        raise invalid(f"limit must be at least 1, not {value}.")
    return min(value, maximum)


def _fields(text: str | None) -> list[str]:
    """ListObjects ``fields``: the JSON names to include, ``name`` always first."""
    wanted = ["name"]
    for part in (text or "").split(","):
        key = part.strip().lower()
        if not key:
            continue
        if key not in OBJECT_FIELDS:
            raise invalid(
                f"fields: '{part.strip()}' is not one of {', '.join(OBJECT_FIELDS.values())}."
            )
        if OBJECT_FIELDS[key] not in wanted:
            wanted.append(OBJECT_FIELDS[key])
    return wanted


def _object_summary(name: str, record: JSON, fields: list[str]) -> JSON:
    """An ``ObjectSummary`` with the requested fields (only archives have ``archivalState``)."""
    values = {
        "name": name,
        "size": record["size"],
        "etag": record["etag"],
        "md5": record["md5"],
        "timeCreated": _timestamp(record["created"]),
        "timeModified": _timestamp(record["modified"]),
        "storageTier": STORAGE_TIER,
    }
    return {field: values[field] for field in fields if field in values}


def _versioned(bucket: JSON) -> bool:
    return bucket.get("versioning") == "Enabled"


def _version_id() -> str:
    """A version id: opaque, unique (OCI's look like UUIDs; the format is not documented)."""
    return str(uuid.uuid4())


def _previous(bucket: JSON, name: str) -> list[JSON]:
    """The previous versions (and delete markers) of ``name``, newest first."""
    versions: list[JSON] = bucket.setdefault("previous", {}).setdefault(name, [])
    return versions


def _version_summary(name: str, record: JSON) -> JSON:
    if record.get("deleteMarker"):
        return {
            "name": name,
            "versionId": record["versionId"],
            "isDeleteMarker": True,
            "timeModified": _timestamp(record["modified"]),
        }
    return {
        "name": name,
        "size": record["size"],
        "md5": record["md5"],
        "etag": record["etag"],
        "timeCreated": _timestamp(record["created"]),
        "timeModified": _timestamp(record["modified"]),
        "storageTier": STORAGE_TIER,
        "versionId": record.get("versionId", "null"),
        "isDeleteMarker": False,
    }


def _object_headers(record: JSON) -> dict[str, str]:
    """The headers GetObject and HeadObject answer for an object."""
    return {
        "content-type": record["contentType"],
        "etag": record["etag"],
        "last-modified": _http_date(record["modified"]),
        "opc-content-md5": record["md5"],
        **({"version-id": record["versionId"]} if "versionId" in record else {}),
        **record["headers"],
    }


def _object_reply(request: Request, record: JSON) -> Reply:
    """GET: body and headers; HEAD: headers with the body's length; 304/412 per conditions."""
    check_read_conditions(request, record)
    headers = _object_headers(record)
    if_none_match = request.header("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, record["etag"]):
        return Reply(
            status=304, headers={"etag": record["etag"], "last-modified": headers["last-modified"]}
        )
    if request.method == "HEAD":
        return Reply(headers={**headers, "content-length": str(record["size"])})
    return Reply(body=base64.b64decode(record["body"]), headers=headers)


def check_read_conditions(request: Request, record: JSON) -> None:
    """GET/HEAD ``if-match``: 412 IfMatchFailed when the object's entity tag differs."""
    if_match = request.header("if-match")
    if if_match is not None and not _etag_matches(if_match, record["etag"]):
        raise if_match_failed(if_match)


def check_write_conditions(request: Request, current: JSON | None) -> None:
    """PUT ``if-match``/``if-none-match`` against the object being replaced (None: absent)."""
    if_match = request.header("if-match")
    if if_match is not None and (current is None or not _etag_matches(if_match, current["etag"])):
        raise if_match_failed(if_match)
    if_none_match = request.header("if-none-match")
    if if_none_match is None:
        return
    if if_none_match.strip() != "*":
        raise invalid("if-none-match: the only valid value on PutObject is '*'.")
    if current is not None:
        raise if_none_match_failed()


def list_page(objects: JSON, request: Request, *, scope: str = "") -> JSON:
    """One ListObjects answer over ``objects`` (name -> record) for the request's query.

    ``scope`` restricts the listing to names starting with it (a prefix-scoped PAR).
    """
    prefix = request.arg("prefix") or ""
    delimiter = request.arg("delimiter")
    if delimiter not in (None, "/"):
        raise invalid(f"delimiter: only '/' is supported, not '{delimiter}'.")
    fields = _fields(request.arg("fields"))
    limit = _limit(request)
    names = sorted(
        name
        for name in objects
        if name.startswith(prefix) and name.startswith(scope) and _in_range(name, request)
    )
    found: list[JSON] = []
    prefixes: list[str] = []
    index = 0
    while index < len(names) and len(found) + len(prefixes) < limit:
        name = names[index]
        group = _common_prefix(name, prefix, delimiter)
        if group is None:
            found.append(_object_summary(name, objects[name], fields))
            index += 1
            continue
        prefixes.append(group)
        while index < len(names) and names[index].startswith(group):
            index += 1
    answer: JSON = {"objects": found}
    if delimiter is not None:
        answer["prefixes"] = prefixes
    if index < len(names):
        answer["nextStartWith"] = names[index]
    return answer


def _in_range(name: str, request: Request) -> bool:
    """``start`` <= name < ``end`` and name > ``startAfter`` (each only when given)."""
    start, end, after = request.arg("start"), request.arg("end"), request.arg("startAfter")
    return (not start or name >= start) and (not end or name < end) and (not after or name > after)


def _common_prefix(name: str, prefix: str, delimiter: str | None) -> str | None:
    """The ``prefixes`` entry ``name`` rolls up into, or None when it is listed itself."""
    if delimiter is None:
        return None
    cut = name.find(delimiter, len(prefix))
    return None if cut < 0 else name[: cut + len(delimiter)]


def _paged(items: list[JSON], request: Request) -> Reply:
    """A JSON list answer paginated by ``limit``/``page`` (an offset) with ``opc-next-page``."""
    limit = _limit(request)
    page = request.arg("page") or "0"
    if not page.isdigit():
        raise invalid(f"page: '{page}' is not a page token this service issued.")
    offset = int(page)
    headers = {}
    if offset + limit < len(items):
        headers["opc-next-page"] = str(offset + limit)
    return Reply(body=items[offset : offset + limit], headers=headers)


# ---------------------------------------------------------------------- the service


class ObjectStorage:
    """The Object Storage service of the emulator (see the module docstring)."""

    name = SERVICE

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    # ------------------------------------------------------------------ state

    @property
    def _state(self) -> JSON:
        """The service's state (looked up each time: loading the state file replaces it)."""
        return self.emulator.state.section(SERVICE)

    @property
    def _namespace(self) -> str:
        return str(self._state.get("namespace", DEFAULT_NAMESPACE))

    @property
    def _buckets(self) -> dict[str, JSON]:
        buckets: dict[str, JSON] = self._state.setdefault("buckets", {})
        return buckets

    def seed(self, fixture: dict[str, Any]) -> None:
        """Set the namespace and create the fixture's buckets (existing ones are kept)."""
        self._state["namespace"] = str(fixture.get("namespace", DEFAULT_NAMESPACE))
        tenancy = str(fixture.get("tenancy", DEFAULT_TENANCY))
        compartments = {str(c["name"]): str(c["id"]) for c in fixture.get("compartments", [])}
        for entry in fixture.get("buckets", []):
            if not entry.get("name"):
                msg = f"bucket {entry!r}: name is required"
                raise ValueError(msg)
            compartment = str(entry.get("compartment") or tenancy)
            versioning = str(entry.get("versioning", "Disabled"))
            if versioning not in ("Disabled", "Enabled"):
                msg = f"bucket {entry['name']!r}: versioning must be Disabled or Enabled"
                raise ValueError(msg)
            bucket = self._new_bucket(
                str(entry["name"]),
                compartments.get(compartment, compartment),
                created_by=str(entry.get("createdBy", tenancy)),
                public=bool(entry.get("public", False)),
            )
            bucket["versioning"] = versioning
            self._buckets.setdefault(bucket["name"], bucket)

    def _new_bucket(self, name: str, compartment: str, *, created_by: str, public: bool) -> JSON:
        return {
            "name": name,
            "id": new_ocid("bucket"),
            "namespace": self._namespace,
            "compartmentId": compartment,
            "createdBy": created_by,
            "timeCreated": _timestamp(now()),
            "etag": new_etag(),
            "publicAccessType": "ObjectRead" if public else "NoPublicAccess",
            "objects": {},
            "pars": {},
        }

    # ------------------------------------------------------------------ routes

    def routes(self) -> list[Route]:
        """Every operation of this service; PAR reads need no signature."""
        bucket = "/n/{namespaceName}/b/{bucketName}"
        obj = bucket + "/o/{objectName+}"
        par_read = "/p/{token}/n/{namespaceName}/b/{bucketName}/o/"
        return [
            Route("GET", "/n", "GetNamespace", self.get_namespace),
            Route("GET", "/n/{namespaceName}/b", "ListBuckets", self.list_buckets),
            Route("GET", bucket, "GetBucket", self.get_bucket),
            Route("GET", bucket + "/o", "ListObjects", self.list_objects),
            Route("GET", bucket + "/objectversions", "ListObjectVersions", self.list_versions),
            Route("PUT", obj, "PutObject", self.put_object),
            Route("GET", obj, "GetObject", self.get_object),
            Route("HEAD", obj, "HeadObject", self.get_object),
            Route("DELETE", obj, "DeleteObject", self.delete_object),
            Route("POST", bucket + "/p", "CreatePreauthenticatedRequest", self.create_par),
            Route("GET", bucket + "/p", "ListPreauthenticatedRequests", self.list_pars),
            Route("GET", bucket + "/p/{parId+}", "GetPreauthenticatedRequest", self.get_par),
            Route(
                "DELETE", bucket + "/p/{parId+}", "DeletePreauthenticatedRequest", self.delete_par
            ),
            Route("GET", par_read, "PreauthenticatedListObjects", self.par_list, signed=False),
            Route(
                "GET",
                par_read + "{objectName+}",
                "PreauthenticatedGetObject",
                self.par_read,
                signed=False,
            ),
            Route(
                "HEAD",
                par_read + "{objectName+}",
                "PreauthenticatedHeadObject",
                self.par_read,
                signed=False,
            ),
        ]

    # ------------------------------------------------------------------ lookups

    def _check_namespace(self, request: Request) -> str:
        """The path's namespace; 404 NamespaceNotFound unless it is the emulator's."""
        namespace = request.params["namespaceName"]
        if namespace != self._namespace:
            raise namespace_not_found()
        return namespace

    def _bucket(self, request: Request, **target: str) -> JSON:
        """The path's bucket, once the caller may use it (404 BucketNotFound otherwise).

        ``target`` adds policy variables beyond ``bucket_name`` (``object_name``...).
        """
        bucket = self._located_bucket(request)
        self._authorize(request, bucket, **target)
        return bucket

    def _located_bucket(self, request: Request) -> JSON:
        """The path's bucket, not yet authorized; 404 NamespaceNotFound or BucketNotFound."""
        namespace = self._check_namespace(request)
        name = request.params["bucketName"]
        bucket: JSON | None = self._buckets.get(name)
        if bucket is None:
            raise bucket_not_found(namespace, name)
        return bucket

    def _authorize(self, request: Request, bucket: JSON, **target: str) -> None:
        """Ask the policies about ``bucket``; a denial is BucketNotFound, as OCI answers it."""
        try:
            self.emulator.authorize(
                request,
                compartment_id=bucket["compartmentId"],
                bucket_name=bucket["name"],
                **target,
            )
        except OciError as exc:  # OCI does not tell "not allowed" from "not there" for buckets
            raise bucket_not_found(bucket["namespace"], bucket["name"]) from exc

    def _object(self, bucket: JSON, name: str) -> JSON:
        """A stored object; 404 ObjectNotFound when the bucket has no such name."""
        record: JSON | None = bucket["objects"].get(name)
        if record is None:
            raise object_not_found(bucket["namespace"], bucket["name"], name)
        return record

    # ------------------------------------------------------------------ namespace and buckets

    def get_namespace(self, request: Request) -> Reply:  # noqa: ARG002 - handler signature
        """GetNamespace: the namespace as a JSON string, whatever ``compartmentId`` says."""
        return Reply(body=self._namespace)

    def list_buckets(self, request: Request) -> Reply:
        """ListBuckets: ``BucketSummary`` list of one compartment, by name, paginated."""
        self._check_namespace(request)
        compartment = request.arg("compartmentId")
        if not compartment:
            raise invalid("compartmentId is required.")
        self.emulator.authorize(request, compartment_id=compartment)
        with_tags = "tags" in (request.arg("fields") or "").split(",")
        summaries = [
            self._bucket_summary(bucket, with_tags=with_tags)
            for _, bucket in sorted(self._buckets.items())
            if bucket["compartmentId"] == compartment
        ]
        return _paged(summaries, request)

    def get_bucket(self, request: Request) -> Reply:
        """GetBucket: the ``Bucket`` model (``approximateCount``/``Size`` when asked)."""
        bucket = self._bucket(request)
        body = {
            **self._bucket_summary(bucket, with_tags=True),
            "id": bucket["id"],
            "metadata": {},
            "publicAccessType": bucket["publicAccessType"],
            "storageTier": STORAGE_TIER,
            "objectEventsEnabled": False,
            "replicationEnabled": False,
            "isReadOnly": False,
            "versioning": bucket.get("versioning", "Disabled"),
        }
        fields = set((request.arg("fields") or "").split(","))
        if "approximateCount" in fields:
            body["approximateCount"] = len(bucket["objects"])
        if "approximateSize" in fields:
            body["approximateSize"] = sum(o["size"] for o in bucket["objects"].values())
        if "autoTiering" in fields:
            body["autoTiering"] = "Disabled"
        return Reply(body=body, headers={"etag": bucket["etag"]})

    @staticmethod
    def _bucket_summary(bucket: JSON, *, with_tags: bool) -> JSON:
        summary = {
            key: bucket[key]
            for key in ("namespace", "name", "compartmentId", "createdBy", "timeCreated", "etag")
        }
        if with_tags:
            summary.update(freeformTags={}, definedTags={})
        return summary

    # ------------------------------------------------------------------ objects

    def put_object(self, request: Request) -> Reply:
        """PutObject: create or replace, honouring the conditional and Content-MD5 headers."""
        bucket = self._located_bucket(request)
        name = request.params["objectName"]
        current = bucket["objects"].get(name)
        # Creating needs OBJECT_CREATE, overwriting OBJECT_OVERWRITE: the policies must know which.
        exists = "true" if current is not None else "false"
        self._authorize(request, bucket, object_name=name, object_exists=exists)
        check_write_conditions(request, current)
        md5 = _md5(request.body)
        sent_md5 = request.header("content-md5")
        if sent_md5 is not None and sent_md5.strip() != md5:
            raise invalid(
                f"The computed MD5 of the request body ({md5}) does not match "
                f"the Content-MD5 header ({sent_md5})",
                code="UnmatchedContentMD5",
            )
        stamp = now()
        etag = new_etag()
        record: JSON = {
            "body": base64.b64encode(request.body).decode(),
            "size": len(request.body),
            "md5": md5,
            "etag": etag,
            "contentType": request.header("content-type") or DEFAULT_CONTENT_TYPE,
            "created": stamp,
            "modified": stamp,
            "headers": {
                key: value
                for key, value in request.headers.items()
                if key.startswith("opc-meta-") or key in STORED_HEADERS
            },
        }
        extra: dict[str, str] = {}
        if _versioned(bucket):
            record["versionId"] = _version_id()
            extra["version-id"] = record["versionId"]
            if current is not None:
                _previous(bucket, name).insert(0, current)
        bucket["objects"][name] = record
        return Reply(
            headers={
                "etag": etag,
                "last-modified": _http_date(stamp),
                "opc-content-md5": md5,
                **extra,
            }
        )

    def get_object(self, request: Request) -> Reply:
        """GetObject and HeadObject (same headers; HEAD without the body)."""
        name = request.params["objectName"]
        bucket = self._bucket(request, object_name=name)
        return _object_reply(request, self._object(bucket, name))

    def delete_object(self, request: Request) -> Reply:
        """DeleteObject: 204; 404 ObjectNotFound first, then ``if-match`` (412 IfMatchFailed)."""
        name = request.params["objectName"]
        bucket = self._bucket(request, object_name=name)
        record = self._object(bucket, name)
        check_read_conditions(request, record)
        del bucket["objects"][name]
        stamp = now()
        if not _versioned(bucket):
            return Reply(status=204, headers={"last-modified": _http_date(stamp)})
        marker = {"versionId": _version_id(), "deleteMarker": True, "modified": stamp}
        _previous(bucket, name)[:0] = [marker, record]
        return Reply(
            status=204,
            headers={
                "last-modified": _http_date(stamp),
                "version-id": marker["versionId"],
                "is-delete-marker": "true",
            },
        )

    def list_objects(self, request: Request) -> Reply:
        """ListObjects (see :func:`list_page`)."""
        bucket = self._bucket(request)
        return Reply(body=list_page(bucket["objects"], request))

    def list_versions(self, request: Request) -> Reply:
        """ListObjectVersions: every version of every name (``prefix``), newest first per name."""
        bucket = self._bucket(request)
        prefix = request.arg("prefix") or ""
        previous: dict[str, list[JSON]] = bucket.get("previous", {})
        names = sorted(n for n in {*bucket["objects"], *previous} if n.startswith(prefix))
        items = []
        for name in names:
            latest = bucket["objects"].get(name)
            chain = ([latest] if latest is not None else []) + previous.get(name, [])
            items += [_version_summary(name, record) for record in chain]
        return Reply(body={"items": items, "prefixes": []})

    # ------------------------------------------------------------------ pre-authenticated requests

    def create_par(self, request: Request) -> Reply:
        """CreatePreauthenticatedRequest: a ``PreauthenticatedRequest`` with its ``accessUri``."""
        bucket = self._bucket(request)
        details = request.json_object()
        access_type, object_name, listing, expires = _validated_par(details)
        token = secrets.token_urlsafe(48)
        par = {
            "id": base64.b64encode(secrets.token_bytes(48)).decode(),
            "token": token,
            "name": details["name"],
            "accessType": access_type,
            "objectName": object_name,
            "bucketListingAction": listing,
            "timeExpires": _timestamp(expires),
            "expires": expires,
            "timeCreated": _timestamp(now()),
        }
        bucket["pars"][par["id"]] = par
        access_uri = f"/p/{token}/n/{bucket['namespace']}/b/{bucket['name']}/o/"
        if access_type not in BUCKET_LEVEL:
            access_uri += quote(str(object_name), safe="")
        body = {
            **_par_summary(par),
            "accessUri": access_uri,
            "fullPath": self.emulator.endpoint + access_uri,
        }
        return Reply(body=body)

    def get_par(self, request: Request) -> Reply:
        """GetPreauthenticatedRequest: the summary (no ``accessUri``)."""
        bucket = self._bucket(request)
        return Reply(body=_par_summary(self._par(bucket, request.params["parId"])))

    def list_pars(self, request: Request) -> Reply:
        """ListPreauthenticatedRequests: summaries by creation, ``objectNamePrefix`` filter."""
        bucket = self._bucket(request)
        prefix = request.arg("objectNamePrefix")
        pars = sorted(bucket["pars"].values(), key=lambda p: (p["timeCreated"], p["id"]))
        summaries = [
            _par_summary(par)
            for par in pars
            if not prefix or str(par["objectName"] or "").startswith(prefix)
        ]
        return _paged(summaries, request)

    def delete_par(self, request: Request) -> Reply:
        """DeletePreauthenticatedRequest: 204; its URL stops working at once."""
        bucket = self._bucket(request)
        par = self._par(bucket, request.params["parId"])
        del bucket["pars"][par["id"]]
        return Reply(status=204)

    @staticmethod
    def _par(bucket: JSON, par_id: str) -> JSON:
        par: JSON | None = bucket["pars"].get(par_id)
        if par is None:
            raise par_not_found(par_id, bucket["name"])
        return par

    # ------------------------------------------------------------------ reads through a PAR

    def par_read(self, request: Request) -> Reply:
        """GET/HEAD of an object through a PAR (unsigned); 404 outside its scope or lifetime."""
        name = request.params["objectName"]
        bucket, par = self._live_par(request)
        if par["accessType"] not in READABLE or not _par_covers(par, name):
            raise not_found()
        return _object_reply(request, self._object(bucket, name))

    def par_list(self, request: Request) -> Reply:
        """ListObjects through a PAR that allows bucket listing."""
        bucket, par = self._live_par(request)
        if par["accessType"] not in LISTABLE or par["bucketListingAction"] != "ListObjects":
            raise not_found()
        return Reply(body=list_page(bucket["objects"], request, scope=par["objectName"] or ""))

    def _live_par(self, request: Request) -> tuple[JSON, JSON]:
        """The bucket and unexpired PAR the path's token names; 404 NotAuthorizedOrNotFound."""
        bucket = self._buckets.get(request.params["bucketName"])
        if request.params["namespaceName"] != self._namespace or bucket is None:
            raise not_found()
        token = request.params["token"].encode()  # bytes: compare_digest refuses non-ASCII str
        for par in bucket["pars"].values():
            if secrets.compare_digest(par["token"].encode(), token):
                if par["expires"] <= now():
                    break
                return bucket, par
        raise not_found()


def _par_covers(par: JSON, name: str) -> bool:
    """Whether ``name`` is within a PAR's scope (its object, its prefix, or the whole bucket)."""
    if par["accessType"] in BUCKET_LEVEL:
        return name.startswith(par["objectName"] or "")
    return bool(name == par["objectName"])


def _par_summary(par: JSON) -> JSON:
    """A ``PreauthenticatedRequestSummary``."""
    return {
        key: par[key]
        for key in (
            "id",
            "name",
            "objectName",
            "bucketListingAction",
            "accessType",
            "timeExpires",
            "timeCreated",
        )
    }


def _validated_par(details: JSON) -> tuple[str, str | None, str, float]:
    """Access type, object name, listing action and expiry (epoch) of a create request; 400 else."""
    name = details.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("name is required.")
    access_type = details.get("accessType")
    if access_type not in ACCESS_TYPES:
        raise invalid(f"accessType must be one of {', '.join(ACCESS_TYPES)}.")
    object_name = details.get("objectName")
    if object_name is not None and not isinstance(object_name, str):
        raise invalid("objectName must be a string.")
    if access_type not in BUCKET_LEVEL and not object_name:
        raise invalid(f"objectName is required for accessType {access_type}.")
    listing = details.get("bucketListingAction") or "Deny"
    if listing not in LISTING_ACTIONS:
        raise invalid(f"bucketListingAction must be one of {', '.join(LISTING_ACTIONS)}.")
    if listing == "ListObjects" and access_type not in LISTABLE:
        raise invalid(f"bucketListingAction ListObjects needs {' or '.join(sorted(LISTABLE))}.")
    try:
        expires = _parse_time(details.get("timeExpires"))
    except (TypeError, ValueError) as exc:
        raise invalid("timeExpires is required, as an RFC 3339 timestamp.") from exc
    if expires <= now():
        raise invalid("timeExpires must be in the future.")
    return access_type, object_name or None, listing, expires
