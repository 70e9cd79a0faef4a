"""The run journal and the notification states: the Object Storage adapters and their in-memory
doubles held to one contract (``params=["fake", "emulator"]``), then the adapters alone (what
lands where, foreign objects, paging, errors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from renewer.adapters.oci_journal import ObjectStorageNoticeStates, ObjectStorageRunJournal
from renewer.errors import ConfigError
from renewer.operations.journal import object_name
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    NAMESPACE,
    RunningEmulator,
    renewer_oci_clients,
)
from tests.support.fakes_operations import InMemoryNoticeStates, InMemoryRunJournal

pytestmark = pytest.mark.integration

STATE = "acme-state"
NOW = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "buckets": [{"name": STATE, "compartment": COMPARTMENT}],
        "authorization": True,
        "policies": [
            {
                "name": "renewer",
                "statements": [
                    "Allow dynamic-group renewer-dg to manage objects in compartment apps"
                    f" where target.bucket.name = '{STATE}'"
                ],
            }
        ],
    }


@pytest.fixture
def clients(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return renewer_oci_clients(emulator, tmp_path, monkeypatch)


def record(call: str, *names: str, outcome: str = "renewed") -> dict[str, Any]:
    return {
        "call_id": call,
        "trigger": "schedule",
        "action": "renew",
        "started_at": "x",
        "certificates": [{"name": name, "outcome": outcome} for name in names],
    }


@pytest.fixture(params=["fake", "emulator"])
def make_journal(request: pytest.FixtureRequest):
    def make(*, retention_days: int = 90, max_records: int = 1000):
        if request.param == "fake":
            return InMemoryRunJournal(retention_days=retention_days, max_records=max_records)
        clients = request.getfixturevalue("clients")
        return ObjectStorageRunJournal(
            clients,
            namespace=NAMESPACE,
            bucket=STATE,
            retention_days=retention_days,
            max_records=max_records,
        )

    return make


@pytest.fixture(params=["fake", "emulator"])
def states(request: pytest.FixtureRequest):
    if request.param == "fake":
        return InMemoryNoticeStates()
    return ObjectStorageNoticeStates(
        request.getfixturevalue("clients"), namespace=NAMESPACE, bucket=STATE
    )


# ----------------------------------------------------------------------------------- contract


def test_records_are_listed_newest_first(make_journal):
    journal = make_journal()
    for hours in (3, 1, 2):
        name = object_name(NOW - timedelta(hours=hours), f"call{hours}")
        assert journal.write(name, record(f"call{hours}", "shop"), now=NOW) == []
    assert [r["call_id"] for r in journal.recent(10)] == ["call1", "call2", "call3"]
    assert [r["call_id"] for r in journal.recent(2)] == ["call1", "call2"]
    assert journal.recent(0) == []


def test_a_certificates_history_spans_records(make_journal):
    journal = make_journal()
    journal.write(object_name(NOW - timedelta(hours=2), "a"), record("a", "shop", "blog"), now=NOW)
    journal.write(object_name(NOW - timedelta(hours=1), "b"), record("b", "blog"), now=NOW)
    journal.write(object_name(NOW, "c"), record("c", "shop", outcome="failed"), now=NOW)
    shop = journal.history("shop", limit=10)
    assert [(e["call_id"], e["outcome"]) for e in shop] == [("c", "failed"), ("a", "renewed")]
    assert [e["call_id"] for e in journal.history("blog", limit=1)] == ["b"]
    assert journal.history("none", limit=5) == []


def test_writing_prunes_by_age_and_count(make_journal):
    journal = make_journal(retention_days=30, max_records=3)
    old = object_name(NOW - timedelta(days=31), "old")
    journal.write(old, record("old", "shop"), now=NOW - timedelta(days=31))
    for index in range(3):
        name = object_name(NOW - timedelta(minutes=10 - index), f"r{index}")
        journal.write(name, record(f"r{index}", "shop"), now=NOW)
    assert [r["call_id"] for r in journal.recent(10)] == ["r2", "r1", "r0"]  # "old" aged out
    pruned = journal.write(object_name(NOW, "r3"), record("r3", "shop"), now=NOW)
    assert pruned == [object_name(NOW - timedelta(minutes=10), "r0")]
    assert [r["call_id"] for r in journal.recent(10)] == ["r3", "r2", "r1"]


def test_rewriting_a_record_replaces_it(make_journal):
    journal = make_journal()
    name = object_name(NOW, "same")
    journal.write(name, record("same", "shop"), now=NOW)
    journal.write(name, record("same", "shop", outcome="failed"), now=NOW)
    (only,) = journal.recent(5)
    assert only["certificates"][0]["outcome"] == "failed"


def test_the_record_just_written_survives_any_clock(make_journal):
    journal = make_journal(retention_days=1)
    name = object_name(NOW - timedelta(days=10), "late")
    assert journal.write(name, record("late", "shop"), now=NOW) == []
    assert len(journal.recent(5)) == 1


def test_notice_states_round_trip(states):
    assert states.load("shop") is None
    states.save("shop", {"status": "failing", "expiry_warned": False})
    states.save("shop", {"status": "ok"})
    assert states.load("shop") == {"status": "ok"}
    assert states.load("blog") is None


# ----------------------------------------------------------------------- the adapters alone


def test_where_records_and_states_land(emulator, clients):
    journal = ObjectStorageRunJournal(
        clients, namespace=NAMESPACE, bucket=STATE, retention_days=90, max_records=10
    )
    journal.write(object_name(NOW, "01HZ"), record("01HZ", "shop"), now=NOW)
    ObjectStorageNoticeStates(clients, namespace=NAMESPACE, bucket=STATE).save("shop", {"a": 1})
    names = sorted(
        o.name for o in clients.object_storage.list_objects(NAMESPACE, STATE).data.objects
    )
    assert names == [
        "journal/2026/05/01/20260501T030000000Z-01HZ.json",
        "notifications/shop.json",
    ]


def test_foreign_and_unreadable_objects_are_skipped_never_deleted(emulator, clients):
    storage = clients.object_storage
    storage.put_object(NAMESPACE, STATE, "journal/README.txt", b"hands off")
    broken = object_name(NOW - timedelta(days=400), "broken")
    storage.put_object(NAMESPACE, STATE, object_name(NOW - timedelta(hours=1), "junk"), b"{nope")
    journal = ObjectStorageRunJournal(
        clients, namespace=NAMESPACE, bucket=STATE, retention_days=90, max_records=10
    )
    journal.write(object_name(NOW, "good"), record("good", "shop"), now=NOW)
    assert [r["call_id"] for r in journal.recent(10)] == ["good"]
    storage.put_object(NAMESPACE, STATE, broken, b"{}")
    journal.write(object_name(NOW, "again"), record("again", "shop"), now=NOW)
    names = {o.name for o in storage.list_objects(NAMESPACE, STATE).data.objects}
    assert "journal/README.txt" in names
    assert broken not in names  # aged out by its name


def test_listing_pages_past_a_thousand_names(emulator, clients):
    storage = clients.object_storage
    for index in range(1005):
        name = object_name(NOW - timedelta(seconds=2000 - index), f"bulk{index}")
        storage.put_object(NAMESPACE, STATE, name, b'{"call_id": "bulk"}')
    journal = ObjectStorageRunJournal(
        clients, namespace=NAMESPACE, bucket=STATE, retention_days=90, max_records=1000
    )
    pruned = journal.write(object_name(NOW, "last"), record("last", "shop"), now=NOW)
    assert len(pruned) == 6  # 1006 records, 1000 kept: the listing saw every page
    assert journal.recent(1)[0]["call_id"] == "last"


def test_a_missing_bucket_or_policy_is_a_config_error(clients):
    journal = ObjectStorageRunJournal(
        clients, namespace=NAMESPACE, bucket="not-ours", retention_days=90, max_records=10
    )
    with pytest.raises(ConfigError, match="opc-request-id"):
        journal.write(object_name(NOW, "x"), record("x", "shop"), now=NOW)
    with pytest.raises(ConfigError):
        ObjectStorageNoticeStates(clients, namespace=NAMESPACE, bucket=STATE).load("Not Valid")
