"""The status and history views (renewer.operations.status): every class of drift, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from renewer.operations.status import (
    Observation,
    ServedCertificate,
    VersionEntry,
    history_view,
    rollback_refusal,
    status_view,
    unknown_version_message,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)
LB = "ocid1.loadbalancer.oc1.phx.lb"
HELD = VersionEntry(
    version=5, stages=("CURRENT", "LATEST"), serial="aa", not_after=NOW + timedelta(days=60)
)
OLDER = VersionEntry(
    version=3, stages=("PREVIOUS",), serial="bb", not_after=NOW + timedelta(days=2)
)


def listener(name: str, serial: str | None, *, error: str | None = None) -> Observation:
    base = Observation(kind="listener", id=LB, listener=name, port=443, bundle=f"b-{serial}")
    if error is not None:
        return base.failed(error)
    served = ServedCertificate(serial or "", "CA", "shop", NOW + timedelta(days=5), "ECDSA_P256")
    return base.with_served(served)


def test_a_listener_on_the_held_version_agrees_and_another_serial_is_drift():
    view = status_view([HELD, OLDER], [listener("a", "aa"), listener("b", "bb")], now=NOW)

    agreeing, drifting = view["targets"]  # type: ignore[misc]
    assert view["held"] == {
        "version": 5,
        "serial": "aa",
        "not_after": "2027-01-30T00:00:00Z",
        "days_left": 60.0,
        "key_type": None,
        "issuer": None,
        "ca": None,
    }
    assert (agreeing["drift"], agreeing["note"]) == (False, "serves the held version 5")
    assert drifting["drift"] is True
    assert drifting["note"] == "serves serial bb, not the held version 5 (aa)"
    assert drifting["served"]["days_left"] == 5.0
    assert view["drift"] is True


def test_nothing_held_yet_and_an_unobserved_target_are_drift_not_silence():
    view = status_view([], [listener("a", "cc"), listener("b", None, error="refused")], now=NOW)

    served, unobserved = view["targets"]  # type: ignore[misc]
    assert view["held"] is None
    assert served["drift"] is True
    assert "none held yet" in served["note"]
    assert (unobserved["drift"], unobserved["served"]) == (True, None)
    assert unobserved["note"] == "not observed: refused"


def test_history_says_where_each_version_is_served_and_whether_rollback_takes_it():
    deleted = VersionEntry(version=1, pending_deletion=True)
    expired = VersionEntry(version=2, serial="dd", not_after=NOW - timedelta(seconds=1))
    rows = history_view(
        [OLDER, deleted, HELD, expired], [listener("a", "aa"), listener("b", "aa")], now=NOW
    )

    assert [r["version"] for r in rows] == [5, 3, 2, 1]
    assert rows[0]["deployed_at"] == [f"{LB}/a", f"{LB}/b"]
    assert [r["rollback"] for r in rows] == [True, True, False, False]
    assert [r["note"] for r in rows] == [None, None, "expired", "pending deletion in Vault"]
    assert rollback_refusal(VersionEntry(version=4, unreadable=True), now=NOW) == "cannot be read"


def test_the_unknown_version_message_lists_the_versions_and_the_history_command():
    message = unknown_version_message("shop", 9, [HELD, OLDER])

    assert "version 9 is not a stored certificate version of 'shop' (stored: 3, 5)" in message
    assert "python -m renewer history shop" in message
