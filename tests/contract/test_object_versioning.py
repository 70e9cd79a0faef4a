"""Object Storage versioning and conditional writes: the real SDK against the emulator.

The state bucket Terraform creates is versioned (``terraform/storage.tf``), and the renewer's
lease and state live in it, written with ``if-none-match: *`` / ``if-match``. Sources: OCI's
"Using Object Versioning" (an overwrite keeps the replaced object as a previous version; a delete
without a version id keeps it and adds a delete marker, and the object reads as deleted; an
upload after a delete marker becomes the latest version), the SDK's ``put_object`` docstrings
(``if_none_match="*"`` "fail if the resource already exists"), ``ListObjectVersions`` and its
``ObjectVersionSummary`` model. Where OCI's docs are silent (which version a condition is judged
against) the emulator judges the latest version, which is marked assumed in docs/oci-emulator.md,
and the renewer's lease is shown to work under it. Each lease cycle leaves previous versions
behind — the growth the lifecycle rules in ``terraform/storage.tf`` bound.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import ObjectStorageLease
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    NAMESPACE,
    Clients,
    RunningEmulator,
    renewer_oci_clients,
)
from tests.support.fakes import FakeClock

pytestmark = pytest.mark.integration

VERSIONED = "acme-state"
PLAIN = "acme-challenges"
OBJECT = "leases/shop.json"


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "buckets": [
            {"name": VERSIONED, "compartment": COMPARTMENT, "versioning": "Enabled"},
            {"name": PLAIN, "compartment": COMPARTMENT},
        ],
    }


def put(clients: Clients, body: str, bucket: str = VERSIONED, **conditions: str) -> Any:
    return clients.object_storage.put_object(
        NAMESPACE, bucket, OBJECT, body.encode(), content_type="text/plain", **conditions
    )


def versions(clients: Clients, bucket: str = VERSIONED) -> list[Any]:
    return clients.object_storage.list_object_versions(
        NAMESPACE, bucket, prefix="leases/", fields="name,etag,size"
    ).data.items


def status_of(call: Any) -> int:
    try:
        call()
    except oci.exceptions.ServiceError as exc:
        return int(exc.status)
    return 200


def test_the_bucket_reports_its_versioning(clients: Clients):
    storage = clients.object_storage
    assert storage.get_bucket(NAMESPACE, VERSIONED).data.versioning == "Enabled"
    assert storage.get_bucket(NAMESPACE, PLAIN).data.versioning == "Disabled"


def test_an_overwrite_keeps_the_previous_version_and_each_version_has_its_id(clients: Clients):
    first = put(clients, "one")
    second = put(clients, "two", if_match=first.headers["etag"])

    listed = versions(clients)
    assert [v.version_id for v in listed] == [
        second.headers["version-id"],
        first.headers["version-id"],
    ]
    assert [v.etag for v in listed] == [second.headers["etag"], first.headers["etag"]]
    assert [v.is_delete_marker for v in listed] == [False, False]
    read = clients.object_storage.get_object(NAMESPACE, VERSIONED, OBJECT)
    assert (read.data.content, read.headers["version-id"]) == (
        b"two",
        second.headers["version-id"],
    )


def test_conditions_are_judged_against_the_latest_version_only(clients: Clients):
    first = put(clients, "one")
    put(clients, "two")

    # A previous version's etag is not the object's: compare-and-swap with it fails.
    assert status_of(lambda: put(clients, "three", if_match=first.headers["etag"])) == 412
    # The object exists (its latest version): a conditional create fails.
    assert status_of(lambda: put(clients, "three", if_none_match="*")) == 412
    assert [v.size for v in versions(clients)] == [3, 3]  # nothing was written


def test_after_a_delete_the_object_is_absent_and_a_conditional_create_succeeds(clients: Clients):
    created = put(clients, "one", if_none_match="*")
    deleted = clients.object_storage.delete_object(
        NAMESPACE, VERSIONED, OBJECT, if_match=created.headers["etag"]
    )

    assert deleted.headers["is-delete-marker"] == "true"
    head = lambda: clients.object_storage.head_object(NAMESPACE, VERSIONED, OBJECT)  # noqa: E731
    assert status_of(head) == 404
    assert status_of(lambda: put(clients, "x", if_match=created.headers["etag"])) == 412
    again = put(clients, "two", if_none_match="*")  # the delete marker is not the object

    listed = versions(clients)
    assert [(v.version_id, v.is_delete_marker) for v in listed] == [
        (again.headers["version-id"], False),
        (deleted.headers["version-id"], True),
        (created.headers["version-id"], False),
    ]
    assert listed[1].etag is None  # a delete marker has no content


def test_a_plain_bucket_keeps_no_version(clients: Clients):
    first = put(clients, "one", bucket=PLAIN)
    put(clients, "two", bucket=PLAIN, if_match=first.headers["etag"])
    clients.object_storage.delete_object(NAMESPACE, PLAIN, OBJECT)

    assert "version-id" not in first.headers
    assert versions(clients, PLAIN) == []


def test_the_renewers_lease_works_on_a_versioned_bucket_and_leaves_previous_versions(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    clients: OciClients = renewer_oci_clients(emulator, tmp_path, monkeypatch)
    clock = FakeClock()
    lease = ObjectStorageLease(clients, namespace=NAMESPACE, bucket=VERSIONED, clock=clock)

    for run in range(3):  # three runs: acquire, release
        handle = lease.acquire("shop", holder=f"run-{run}", ttl=timedelta(minutes=10))
        assert handle is not None
        assert lease.acquire("shop", holder="other", ttl=timedelta(minutes=10)) is None
        lease.release(handle)

    listed = clients.object_storage.list_object_versions(
        NAMESPACE, VERSIONED, prefix="leases/"
    ).data.items
    # Every acquire is a version and every release a delete marker: 6 entries, kept forever
    # unless a lifecycle rule deletes previous versions (terraform/storage.tf).
    assert [v.is_delete_marker for v in listed] == [True, False] * 3
    assert lease.current("shop") is None
