"""Object Storage contract: the real ``oci`` SDK against the emulator, with both signers.

Every test that takes ``clients`` runs twice: signed with an operator's API key and with a
function's resource-principal token. PAR reads and unsigned requests go through plain ``urllib``,
as a CA's validator or the load balancer would.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import oci
import pytest

from sandbox.oci_emulator import object_storage
from sandbox.oci_emulator.app import build_emulator
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    NAMESPACE,
    Clients,
    RunningEmulator,
    assert_clean_model,
    make_clients,
)

pytestmark = pytest.mark.integration

BUCKET = "acme-challenges"
OTHER_BUCKET = "renewer-state"
BINARY = bytes(range(256)) * 5 + b"\x00\xff\r\n"
AWKWARD_NAMES = (
    ".well-known/acme-challenge/tok-1_A",
    "dir/sub dir/with space.txt",
    "ünïcödé/ファイル.bin",
    "100%/a+b=c&d?.txt",
    "trailing/",
)


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    """The contract tenancy plus two buckets (one named by compartment name)."""
    return {
        **BASE_FIXTURE,
        "buckets": [
            {"name": BUCKET, "compartment": COMPARTMENT, "public": False},
            {"name": OTHER_BUCKET, "compartment": "apps"},
        ],
    }


# ---------------------------------------------------------------------- helpers


def put(clients: Clients, name: str, body: bytes = b"x", **kwargs: Any) -> oci.response.Response:
    return clients.object_storage.put_object(NAMESPACE, BUCKET, name, body, **kwargs)


def get_body(clients: Clients, name: str, bucket: str = BUCKET) -> bytes:
    return clients.object_storage.get_object(NAMESPACE, bucket, name).data.content


def service_error(call: Any, *args: Any, **kwargs: Any) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call(*args, **kwargs)
    return caught.value


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, Any]:
    """An unsigned request: status, body and headers (errors included)."""
    request = urllib.request.Request(url, method=method)  # noqa: S310 - loopback http
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers


def error_code(body: bytes) -> str:
    return str(json.loads(body)["code"])


def in_hours(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def create_par(clients: Clients, **details: Any) -> Any:
    details.setdefault("name", "par")
    details.setdefault("time_expires", in_hours(1))
    model = oci.object_storage.models.CreatePreauthenticatedRequestDetails(**details)
    par = clients.object_storage.create_preauthenticated_request(NAMESPACE, BUCKET, model).data
    assert_clean_model(par)
    return par


def list_names(clients: Clients, **kwargs: Any) -> list[str]:
    listing = clients.object_storage.list_objects(NAMESPACE, BUCKET, **kwargs).data
    assert_clean_model(listing)
    return [o.name for o in listing.objects]


# ---------------------------------------------------------------------- namespace and buckets


def test_namespace_is_the_fixtures(clients: Clients):
    assert clients.object_storage.get_namespace().data == NAMESPACE
    assert clients.object_storage.get_namespace(compartment_id=COMPARTMENT).data == NAMESPACE


def test_buckets_can_be_inspected(clients: Clients):
    bucket = clients.object_storage.get_bucket(
        NAMESPACE, BUCKET, fields=["approximateCount", "approximateSize"]
    )
    assert_clean_model(bucket.data)
    assert bucket.data.name == BUCKET
    assert bucket.data.namespace == NAMESPACE
    assert bucket.data.compartment_id == COMPARTMENT
    assert bucket.data.public_access_type == "NoPublicAccess"
    assert bucket.data.id.startswith("ocid1.bucket.")
    assert bucket.data.approximate_count == 0
    assert bucket.headers["etag"] == bucket.data.etag

    buckets = clients.object_storage.list_buckets(NAMESPACE, COMPARTMENT).data
    assert_clean_model(buckets)
    assert [b.name for b in buckets] == [BUCKET, OTHER_BUCKET]  # by name; "apps" resolved
    assert clients.object_storage.list_buckets(NAMESPACE, "ocid1.compartment.oc1..none").data == []


def test_list_buckets_paginates(clients: Clients):
    everything = oci.pagination.list_call_get_all_results(
        clients.object_storage.list_buckets, NAMESPACE, COMPARTMENT, limit=1
    ).data
    assert [b.name for b in everything] == [BUCKET, OTHER_BUCKET]


# ---------------------------------------------------------------------- objects


def test_put_get_head_delete_round_trip(clients: Clients):
    store = clients.object_storage
    written = put(clients, "blob.bin", BINARY, content_type="application/octet-stream")
    md5 = base64.b64encode(hashlib.md5(BINARY).digest()).decode()  # noqa: S324
    assert written.status == 200
    assert written.headers["opc-content-md5"] == md5
    assert written.headers["etag"]
    assert written.headers["last-modified"].endswith("GMT")

    got = store.get_object(NAMESPACE, BUCKET, "blob.bin")
    assert got.data.content == BINARY
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["etag"] == written.headers["etag"]
    assert got.headers["content-length"] == str(len(BINARY))
    assert got.headers["last-modified"] == written.headers["last-modified"]
    assert got.headers["opc-content-md5"] == md5

    head = store.head_object(NAMESPACE, BUCKET, "blob.bin")
    assert head.data is None
    assert head.headers["content-length"] == str(len(BINARY))
    assert head.headers["etag"] == written.headers["etag"]
    assert head.headers["content-type"] == "application/octet-stream"

    assert store.delete_object(NAMESPACE, BUCKET, "blob.bin").status == 204
    assert service_error(store.get_object, NAMESPACE, BUCKET, "blob.bin").code == "ObjectNotFound"
    assert service_error(store.head_object, NAMESPACE, BUCKET, "blob.bin").status == 404


def test_content_type_metadata_and_empty_bodies(clients: Clients):
    store = clients.object_storage
    put(clients, "token", b"key-authorization", content_type="text/plain")
    assert store.get_object(NAMESPACE, BUCKET, "token").headers["content-type"] == "text/plain"
    # Without content_type the SDK's signer sends application/json (wire facts 4.1).
    put(clients, "state.json", b"{}")
    assert store.head_object(NAMESPACE, BUCKET, "state.json").headers["content-type"] == (
        "application/json"
    )
    put(clients, "lease", b"", opc_meta={"holder": "run-1", "expires": "1700000000"})
    head = store.head_object(NAMESPACE, BUCKET, "lease")
    assert head.headers["opc-meta-holder"] == "run-1"
    assert head.headers["opc-meta-expires"] == "1700000000"
    assert head.headers["content-length"] == "0"
    assert get_body(clients, "lease") == b""


def test_overwrite_changes_the_etag(clients: Clients):
    first = put(clients, "state.json", b"one").headers["etag"]
    second = put(clients, "state.json", b"two").headers["etag"]
    assert first != second
    assert get_body(clients, "state.json") == b"two"


def test_content_md5_is_checked(clients: Clients):
    good = base64.b64encode(hashlib.md5(b"abc").digest()).decode()  # noqa: S324
    put(clients, "checked", b"abc", content_md5=good)
    error = service_error(put, clients, "checked", b"abd", content_md5=good)
    assert (error.status, error.code) == (400, "UnmatchedContentMD5")
    assert get_body(clients, "checked") == b"abc"


def test_awkward_names_round_trip_through_list_and_get(clients: Clients):
    for index, name in enumerate(AWKWARD_NAMES):
        put(clients, name, f"body {index}".encode())
    assert list_names(clients) == sorted(AWKWARD_NAMES)
    for index, name in enumerate(AWKWARD_NAMES):
        assert get_body(clients, name) == f"body {index}".encode()


def test_raw_and_encoded_slashes_name_the_same_object(clients: Clients):
    name = ".well-known/acme-challenge/abc"
    put(clients, name, b"strict")  # oci 2.189.0 sends .well-known%2Facme-challenge%2Fabc
    raw = clients.object_storage.get_object(
        NAMESPACE, BUCKET, name, enable_strict_url_encoding=False
    )  # as oci 2.120.0 did: raw slashes
    assert raw.data.content == b"strict"
    put(clients, name, b"raw", enable_strict_url_encoding=False)
    assert get_body(clients, name) == b"raw"
    assert list_names(clients) == [name]


def test_if_none_match_star_creates_only_once(clients: Clients):
    put(clients, "lease", b"mine", if_none_match="*")
    error = service_error(put, clients, "lease", b"theirs", if_none_match="*")
    assert (error.status, error.code) == (412, "IfNoneMatchFailed")
    assert get_body(clients, "lease") == b"mine"


def test_if_match_is_compare_and_swap(clients: Clients):
    store = clients.object_storage
    etag = put(clients, "lease", b"v1").headers["etag"]
    error = service_error(put, clients, "lease", b"v2", if_match="not-the-etag")
    assert (error.status, error.code) == (412, "IfMatchFailed")
    assert get_body(clients, "lease") == b"v1"

    newer = put(clients, "lease", b"v2", if_match=etag).headers["etag"]
    assert newer != etag
    assert get_body(clients, "lease") == b"v2"

    missing = service_error(put, clients, "absent", b"x", if_match=etag)
    assert (missing.status, missing.code) == (412, "IfMatchFailed")

    stale = service_error(store.delete_object, NAMESPACE, BUCKET, "lease", if_match=etag)
    assert (stale.status, stale.code) == (412, "IfMatchFailed")
    assert store.delete_object(NAMESPACE, BUCKET, "lease", if_match=newer).status == 204
    assert list_names(clients) == []


def test_conditional_reads(clients: Clients):
    store = clients.object_storage
    etag = put(clients, "state.json", b"{}").headers["etag"]
    assert store.get_object(NAMESPACE, BUCKET, "state.json", if_match=etag).status == 200
    stale = service_error(store.get_object, NAMESPACE, BUCKET, "state.json", if_match="old")
    assert (stale.status, stale.code) == (412, "IfMatchFailed")
    unchanged = service_error(
        store.head_object, NAMESPACE, BUCKET, "state.json", if_none_match=etag
    )
    assert unchanged.status == 304


# ---------------------------------------------------------------------- listing


def test_list_filters_and_fields(clients: Clients):
    names = ["a/1", "a/2", "b/1", "b/2", "c"]
    for name in names:
        put(clients, name, name.encode())
    assert list_names(clients) == names
    assert list_names(clients, prefix="b/") == ["b/1", "b/2"]
    assert list_names(clients, start="a/2") == ["a/2", "b/1", "b/2", "c"]
    assert list_names(clients, end="b/1") == ["a/1", "a/2"]
    assert list_names(clients, start_after="b/1") == ["b/2", "c"]

    page = clients.object_storage.list_objects(NAMESPACE, BUCKET, limit=2).data
    assert [o.name for o in page.objects] == ["a/1", "a/2"]
    assert page.next_start_with == "b/1"
    last = clients.object_storage.list_objects(NAMESPACE, BUCKET, start="c", limit=2).data
    assert last.next_start_with is None

    bare = clients.object_storage.list_objects(NAMESPACE, BUCKET, prefix="c").data.objects[0]
    assert (bare.size, bare.etag, bare.time_created) == (None, None, None)

    fields = "name,size,etag,timeCreated,md5,timeModified,storageTier"
    full = clients.object_storage.list_objects(NAMESPACE, BUCKET, prefix="c", fields=fields)
    assert_clean_model(full.data)
    summary = full.data.objects[0]
    assert summary.size == 1
    assert summary.md5 == base64.b64encode(hashlib.md5(b"c").digest()).decode()  # noqa: S324
    assert summary.storage_tier == "Standard"
    assert (
        summary.etag == clients.object_storage.head_object(NAMESPACE, BUCKET, "c").headers["etag"]
    )
    assert summary.time_created is not None
    assert summary.time_modified is not None


def test_list_with_delimiter_rolls_up_prefixes(clients: Clients):
    for name in ["a/1", "a/b/2", "b/1", "top"]:
        put(clients, name)
    listing = clients.object_storage.list_objects(NAMESPACE, BUCKET, delimiter="/").data
    assert_clean_model(listing)
    assert [o.name for o in listing.objects] == ["top"]
    assert listing.prefixes == ["a/", "b/"]
    nested = clients.object_storage.list_objects(NAMESPACE, BUCKET, prefix="a/", delimiter="/")
    assert [o.name for o in nested.data.objects] == ["a/1"]
    assert nested.data.prefixes == ["a/b/"]


def test_pagination_helper_collects_every_page(clients: Clients):
    names = [f"obj-{i:03d}" for i in range(23)] + [f"dir{i}/x" for i in range(3)]
    for name in reversed(names):
        put(clients, name)
    everything = oci.pagination.list_call_get_all_results(
        clients.object_storage.list_objects, NAMESPACE, BUCKET, limit=4, fields="name,size"
    ).data
    assert [o.name for o in everything.objects] == sorted(names)
    rolled = oci.pagination.list_call_get_all_results(
        clients.object_storage.list_objects, NAMESPACE, BUCKET, limit=2, delimiter="/"
    ).data
    assert sorted(rolled.prefixes) == ["dir0/", "dir1/", "dir2/"]
    assert len(rolled.objects) == 23


def test_bad_list_parameters_are_400(clients: Clients):
    store = clients.object_storage
    for kwargs in ({"delimiter": "|"}, {"fields": "name,colour"}, {"limit": 0}):
        error = service_error(store.list_objects, NAMESPACE, BUCKET, **kwargs)
        assert (error.status, error.code) == (400, "InvalidParameter"), kwargs


# ---------------------------------------------------------------------- errors


def test_missing_namespace_bucket_and_object(clients: Clients):
    store = clients.object_storage
    no_bucket = service_error(store.get_object, NAMESPACE, "nope", "x")
    assert (no_bucket.status, no_bucket.code) == (404, "BucketNotFound")
    assert "nope" in no_bucket.message
    assert service_error(store.list_objects, NAMESPACE, "nope").code == "BucketNotFound"
    assert service_error(store.get_bucket, NAMESPACE, "nope").code == "BucketNotFound"
    no_object = service_error(store.get_object, NAMESPACE, BUCKET, "nothing")
    assert (no_object.status, no_object.code) == (404, "ObjectNotFound")
    assert service_error(store.delete_object, NAMESPACE, BUCKET, "nothing").code == "ObjectNotFound"
    no_ns = service_error(store.list_objects, "someone-else", BUCKET)
    assert (no_ns.status, no_ns.code) == (404, "NamespaceNotFound")


def test_unsigned_requests_to_signed_paths_are_401(emulator: RunningEmulator):
    for path in ("/n", f"/n/{NAMESPACE}/b/{BUCKET}/o/x", f"/n/{NAMESPACE}/b/{BUCKET}/o"):
        status, body, headers = fetch(emulator.endpoint + path)
        assert (status, error_code(body)) == (401, "NotAuthenticated"), path
        assert headers["opc-request-id"]


class RecordingAuthorizer:
    """A policy engine that records every question and answers ``allow``."""

    def __init__(self, *, allow: bool) -> None:
        self.allow = allow
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def allows(self, principal: Any, operation: str, compartment_id: str, target: dict) -> bool:
        assert principal is not None
        self.calls.append((operation, compartment_id, target))
        return self.allow


def enforce(emulator: RunningEmulator, *, allow: bool) -> RecordingAuthorizer:
    recorder = RecordingAuthorizer(allow=allow)
    emulator.emulator.authorizer = recorder
    emulator.emulator.authorization_enabled = True
    return recorder


def test_every_bucket_operation_asks_the_policies(clients: Clients, emulator: RunningEmulator):
    recorder = enforce(emulator, allow=True)
    store = clients.object_storage
    put(clients, "x")
    store.get_object(NAMESPACE, BUCKET, "x")
    store.head_object(NAMESPACE, BUCKET, "x")
    store.list_objects(NAMESPACE, BUCKET)
    store.get_bucket(NAMESPACE, BUCKET)
    par = create_par(clients, access_type="ObjectRead", object_name="x")
    store.get_preauthenticated_request(NAMESPACE, BUCKET, par.id)
    store.list_preauthenticated_requests(NAMESPACE, BUCKET)
    store.delete_preauthenticated_request(NAMESPACE, BUCKET, par.id)
    store.delete_object(NAMESPACE, BUCKET, "x")
    put(clients, "x", b"again")
    store.list_buckets(NAMESPACE, COMPARTMENT)
    bucket = {"bucket_name": BUCKET}
    on_x = {**bucket, "object_name": "x"}
    assert recorder.calls == [
        ("PutObject", COMPARTMENT, {**on_x, "object_exists": "false"}),
        ("GetObject", COMPARTMENT, on_x),
        ("HeadObject", COMPARTMENT, on_x),
        ("ListObjects", COMPARTMENT, bucket),
        ("GetBucket", COMPARTMENT, bucket),
        ("CreatePreauthenticatedRequest", COMPARTMENT, bucket),
        ("GetPreauthenticatedRequest", COMPARTMENT, bucket),
        ("ListPreauthenticatedRequests", COMPARTMENT, bucket),
        ("DeletePreauthenticatedRequest", COMPARTMENT, bucket),
        ("DeleteObject", COMPARTMENT, on_x),
        ("PutObject", COMPARTMENT, {**on_x, "object_exists": "false"}),
        ("ListBuckets", COMPARTMENT, {}),
    ]
    put(clients, "x", b"overwrite")
    assert recorder.calls[-1] == ("PutObject", COMPARTMENT, {**on_x, "object_exists": "true"})


def test_a_denied_caller_cannot_tell_a_bucket_exists(clients: Clients, emulator: RunningEmulator):
    enforce(emulator, allow=False)
    store = clients.object_storage
    denied = service_error(store.get_object, NAMESPACE, BUCKET, "x")
    missing = service_error(store.get_object, NAMESPACE, "nope", "x")
    assert (denied.status, denied.code) == (missing.status, missing.code) == (404, "BucketNotFound")
    assert service_error(put, clients, "x").code == "BucketNotFound"
    listing = service_error(store.list_buckets, NAMESPACE, COMPARTMENT)
    assert (listing.status, listing.code) == (404, "NotAuthorizedOrNotFound")


# ---------------------------------------------------------------------- pre-authenticated requests


def test_par_create_get_list_delete(clients: Clients):
    store = clients.object_storage
    expires = in_hours(2)
    bucket_par = create_par(
        clients,
        name="challenges",
        access_type="AnyObjectRead",
        bucket_listing_action="ListObjects",
        time_expires=expires,
    )
    assert bucket_par.access_uri.startswith("/p/")
    assert bucket_par.access_uri.endswith(f"/n/{NAMESPACE}/b/{BUCKET}/o/")
    assert bucket_par.object_name is None
    assert bucket_par.bucket_listing_action == "ListObjects"
    assert abs((bucket_par.time_expires - expires).total_seconds()) < 0.01
    assert bucket_par.full_path.endswith(bucket_par.access_uri)

    object_par = create_par(
        clients, name="one", access_type="ObjectRead", object_name="dir/token one"
    )
    assert object_par.access_uri.endswith(f"/n/{NAMESPACE}/b/{BUCKET}/o/dir%2Ftoken%20one")
    assert object_par.object_name == "dir/token one"

    fetched = store.get_preauthenticated_request(NAMESPACE, BUCKET, object_par.id).data
    assert_clean_model(fetched)
    assert isinstance(fetched, oci.object_storage.models.PreauthenticatedRequestSummary)
    assert (fetched.id, fetched.name, fetched.access_type) == (object_par.id, "one", "ObjectRead")

    listed = store.list_preauthenticated_requests(NAMESPACE, BUCKET).data
    assert_clean_model(listed)
    assert [p.id for p in listed] == [bucket_par.id, object_par.id]
    only = store.list_preauthenticated_requests(NAMESPACE, BUCKET, object_name_prefix="dir/").data
    assert [p.id for p in only] == [object_par.id]

    assert store.delete_preauthenticated_request(NAMESPACE, BUCKET, object_par.id).status == 204
    gone = service_error(store.get_preauthenticated_request, NAMESPACE, BUCKET, object_par.id)
    assert (gone.status, gone.code) == (404, "PreauthenticatedRequestNotFound")
    assert [p.id for p in store.list_preauthenticated_requests(NAMESPACE, BUCKET).data] == [
        bucket_par.id
    ]


def test_par_create_rejects_bad_details(clients: Clients):
    bad = (
        {"access_type": "ObjectRead"},  # no objectName
        {"access_type": "AnyObjectRead", "time_expires": in_hours(-1)},
        {"access_type": "ObjectRead", "object_name": "x", "bucket_listing_action": "ListObjects"},
    )
    for details in bad:
        error = service_error(create_par, clients, **details)
        assert (error.status, error.code) == (400, "InvalidParameter"), details


def test_bucket_par_reads_any_object_without_a_signature(
    clients: Clients, emulator: RunningEmulator
):
    put(clients, ".well-known/acme-challenge/tok", b"key-auth", content_type="text/plain")
    put(clients, "other", BINARY)
    par = create_par(clients, access_type="AnyObjectRead")
    base = emulator.endpoint + par.access_uri

    status, body, headers = fetch(base + ".well-known/acme-challenge/tok")
    assert (status, body, headers["content-type"]) == (200, b"key-auth", "text/plain")
    encoded = fetch(base + quote(".well-known/acme-challenge/tok", safe=""))
    assert encoded[:2] == (200, b"key-auth")
    assert fetch(base + "other")[:2] == (200, BINARY)

    head_status, head_body, head_headers = fetch(base + "other", method="HEAD")
    assert (head_status, head_body) == (200, b"")
    assert head_headers["content-length"] == str(len(BINARY))

    missing_status, missing_body, _ = fetch(base + "absent")
    assert (missing_status, error_code(missing_body)) == (404, "ObjectNotFound")
    listing_status, listing_body, _ = fetch(base)  # bucketListingAction defaults to Deny
    assert (listing_status, error_code(listing_body)) == (404, "NotAuthorizedOrNotFound")


def test_head_through_a_par_sends_one_content_length(clients: Clients, emulator: RunningEmulator):
    put(clients, "sized", b"12345")
    par = create_par(clients, access_type="ObjectRead", object_name="sized")
    url = urlsplit(emulator.endpoint + par.access_uri)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        connection.request("HEAD", url.path)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert response.msg.get_all("Content-Length") == ["5"]


def test_object_par_reads_only_its_object(clients: Clients, emulator: RunningEmulator):
    put(clients, "dir/mine", b"mine")
    put(clients, "dir/theirs", b"theirs")
    par = create_par(clients, access_type="ObjectRead", object_name="dir/mine")
    assert fetch(emulator.endpoint + par.access_uri)[:2] == (200, b"mine")
    prefix = par.access_uri.rsplit("/o/", 1)[0] + "/o/"
    assert fetch(emulator.endpoint + prefix + "dir/mine")[:2] == (200, b"mine")
    status, body, _ = fetch(emulator.endpoint + prefix + "dir/theirs")
    assert (status, error_code(body)) == (404, "NotAuthorizedOrNotFound")
    other_bucket = prefix.replace(f"/b/{BUCKET}/", f"/b/{OTHER_BUCKET}/")
    assert fetch(emulator.endpoint + other_bucket + "dir/mine")[0] == 404


def test_prefix_scoped_par_and_listing(clients: Clients, emulator: RunningEmulator):
    for name in ("public/a", "public/b", "private/c"):
        put(clients, name, name.encode())
    par = create_par(
        clients,
        access_type="AnyObjectRead",
        object_name="public/",
        bucket_listing_action="ListObjects",
    )
    base = emulator.endpoint + par.access_uri
    assert fetch(base + "public/a")[:2] == (200, b"public/a")
    assert fetch(base + "private/c")[0] == 404
    status, body, _ = fetch(base + "?fields=name,size")
    assert status == 200
    assert json.loads(body)["objects"] == [
        {"name": "public/a", "size": 8},
        {"name": "public/b", "size": 8},
    ]


def test_write_only_par_cannot_read(clients: Clients, emulator: RunningEmulator):
    put(clients, "upload", b"x")
    par = create_par(clients, access_type="AnyObjectWrite")
    assert fetch(emulator.endpoint + par.access_uri + "upload")[0] == 404


def test_expired_par_is_404(
    clients: Clients, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
):
    put(clients, "tok", b"key-auth")
    par = create_par(clients, access_type="AnyObjectRead", time_expires=in_hours(1))
    url = emulator.endpoint + par.access_uri + "tok"
    assert fetch(url)[0] == 200
    later = object_storage.now() + 2 * 3600
    monkeypatch.setattr(object_storage, "now", lambda: later)  # the emulator's clock
    status, body, _ = fetch(url)
    assert (status, error_code(body)) == (404, "NotAuthorizedOrNotFound")


def test_deleted_par_is_404(clients: Clients, emulator: RunningEmulator):
    put(clients, "tok", b"key-auth")
    par = create_par(clients, access_type="ObjectRead", object_name="tok")
    assert fetch(emulator.endpoint + par.access_uri)[0] == 200
    clients.object_storage.delete_preauthenticated_request(NAMESPACE, BUCKET, par.id)
    status, body, _ = fetch(emulator.endpoint + par.access_uri)
    assert (status, error_code(body)) == (404, "NotAuthorizedOrNotFound")
    for forged in ("/p/x", "/p/%C3%BC"):  # an unknown token, a non-ASCII one
        status, body, _ = fetch(emulator.endpoint + par.access_uri.replace("/p/", forged, 1))
        assert (status, error_code(body)) == (404, "NotAuthorizedOrNotFound"), forged


# ---------------------------------------------------------------------- persistence


@pytest.mark.parametrize("signer_kind", ["api_key", "resource_principal"])
def test_state_survives_a_restart(
    signer_kind: str,
    fixture_data: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    state_path = str(tmp_path / "state.json")
    first, tenancy = build_emulator(fixture=fixture_data, state_path=state_path)
    with first:
        running = RunningEmulator(first, tenancy)
        clients = make_clients(running, signer_kind, tmp_path / "first", monkeypatch)
        put(clients, "dir/blob", BINARY, content_type="image/png", opc_meta={"k": "v"})
        etag = clients.object_storage.head_object(NAMESPACE, BUCKET, "dir/blob").headers["etag"]
        par = create_par(clients, access_type="AnyObjectRead")

    second, tenancy = build_emulator(fixture={**fixture_data, "buckets": []}, state_path=state_path)
    with second:
        running = RunningEmulator(second, tenancy)
        clients = make_clients(running, signer_kind, tmp_path / "second", monkeypatch)
        got = clients.object_storage.get_object(NAMESPACE, BUCKET, "dir/blob")
        assert got.data.content == BINARY
        assert got.headers["etag"] == etag
        assert got.headers["content-type"] == "image/png"
        assert got.headers["opc-meta-k"] == "v"
        assert list_names(clients) == ["dir/blob"]
        assert fetch(second.endpoint + par.access_uri + "dir/blob")[:2] == (200, BINARY)
        assert [
            p.id
            for p in clients.object_storage.list_preauthenticated_requests(NAMESPACE, BUCKET).data
        ] == [par.id]
