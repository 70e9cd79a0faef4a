"""Operations end to end: a real renewal (Pebble, the emulated tenancy under least-privilege IAM)
followed by :meth:`Operations.after_run` through the real SDK — datapoints in the emulated
Monitoring, messages on the emulated topic, records in the state bucket. No fakes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import oci
import pytest

from renewer.operations import Operations, RunInfo
from renewer.operations_wiring import build_operations
from renewer.report import Outcome, RenewalReport
from renewer.settings import parse_config
from sandbox.oci_emulator.faults import FaultRule
from sandbox.world import (
    COMPARTMENT,
    HTTPS_LISTENER,
    LB_ID,
    METRICS_NAMESPACE,
    NAMESPACE,
    STATE_BUCKET,
    TOPIC_ID,
    SandboxWorld,
)

pytestmark = pytest.mark.e2e

BUDGET = 120.0
STREAM = {"certificateName": "shop", "loadBalancerId": LB_ID, "listener": HTTPS_LISTENER}


def operations(world: SandboxWorld, **sections: Any) -> Operations:
    document = world.config_document()
    document["operations"] = {
        "metrics": {"namespace": METRICS_NAMESPACE},
        "notifications": {"topicId": TOPIC_ID},
        **sections,
    }
    return build_operations(parse_config(document), oci=world.oci_settings())


def run(world: SandboxWorld, ops: Operations, **options: Any) -> tuple[RenewalReport, Any]:
    report = world.service().run(budget_s=BUDGET, **options)
    call = f"call-{uuid.uuid4().hex[:10]}"
    return report, ops.after_run(report, RunInfo("schedule", call, "renew"))


def posted(world: SandboxWorld, name: str, **dimensions: str) -> list[dict[str, Any]]:
    found = world.emulator.services["monitoring"].posted(name=name)  # type: ignore[attr-defined]
    return [m for m in found if all(m["dimensions"].get(k) == v for k, v in dimensions.items())]


def messages(world: SandboxWorld) -> list[dict[str, Any]]:
    return world.emulator.services["notifications"].published(topicId=TOPIC_ID)  # type: ignore[attr-defined]


def operator_storage(world: SandboxWorld) -> Any:
    """An Object Storage client signed as the operator (Admins), to look into the bucket."""
    return oci.object_storage.ObjectStorageClient(
        world.operator_config(),
        service_endpoint=world.emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )


def bucket_names(world: SandboxWorld, prefix: str) -> list[str]:
    """What the state bucket holds under ``prefix``."""
    listed = operator_storage(world).list_objects(NAMESPACE, STATE_BUCKET, prefix=prefix)
    return sorted(o.name for o in listed.data.objects)


def everything_sent(world: SandboxWorld) -> str:
    """Every metric, message, journal record and notification state written, as one text."""
    storage = operator_storage(world)
    objects = [
        storage.get_object(NAMESPACE, STATE_BUCKET, name).data.content.decode()
        for prefix in ("journal/", "notifications/")
        for name in bucket_names(world, prefix)
    ]
    sent = [
        world.emulator.services["monitoring"].posted(),  # type: ignore[attr-defined]
        world.emulator.services["notifications"].published(),  # type: ignore[attr-defined]
        objects,
    ]
    assert objects or sent[0] or sent[1]  # something to look at
    return json.dumps(sent)


def assert_no_secret(text: str) -> None:
    for marker in ("PRIVATE KEY", "BEGIN EC", "BEGIN RSA", "keyAuthorization"):
        assert marker not in text


# ------------------------------------------------------------------------------------- tests


def test_a_renewal_posts_its_datapoints_and_journals_every_run(world: SandboxWorld):
    ops = operations(world, journal={"maxRecords": 2})
    report, summary = run(world, ops)
    (certificate,) = report.certificates
    assert certificate.outcome is Outcome.RENEWED, report.to_json()
    assert summary.errors == {}
    assert summary.metrics.rejected == 0

    (days,) = posted(world, "days_to_expiry", **STREAM)
    assert days["namespace"] == METRICS_NAMESPACE
    assert days["compartmentId"] == COMPARTMENT
    assert days["dimensions"] == STREAM
    expected = (certificate.not_after - report.finished_at).total_seconds() / 86400
    assert abs(days["datapoints"][0]["value"] - expected) < 0.01
    assert [m["datapoints"][0]["value"] for m in posted(world, "run_outcome", **STREAM)] == [0]
    assert [m["datapoints"][0]["value"] for m in posted(world, "consecutive_failures")] == [0]
    assert len(posted(world, "seconds_to_renewal", **STREAM)) == 1
    assert len(posted(world, "renewal_duration_seconds", certificateName="shop")) == 1
    renewed = posted(world, "run_certificates", action="renew", outcome="renewed")
    assert [m["datapoints"][0]["value"] for m in renewed] == [1]
    assert messages(world) == []  # a healthy renewal is news only with onSuccess

    # Two more (not due) runs: the journal keeps the newest two records.
    for _ in range(2):
        later, _summary = run(world, ops)
        assert later.certificates[0].outcome is Outcome.SKIPPED, later.to_json()
    names = bucket_names(world, "journal/")
    assert len(names) == 2
    assert all(n.startswith("journal/20") and n.endswith(".json") for n in names)
    runs = ops.last_runs(10)
    assert [r["certificates"][0]["outcome"] for r in runs] == ["skipped", "skipped"]
    assert runs[0]["trigger"] == "schedule"
    history = ops.certificate_history("shop")
    assert [e["reason"] for e in history] == ["NotDue", "NotDue"]
    assert_no_secret(everything_sent(world))


def test_a_failure_notifies_once_and_the_recovery_once(world: SandboxWorld):
    ops = operations(world)
    bad_target = FaultRule.from_json(
        {"operation": "GetLoadBalancer", "status": 404, "code": "NotAuthorizedOrNotFound"}
    )
    world.emulator.faults.add(bad_target)
    first, summary = run(world, ops)
    assert first.failed
    assert summary.errors == {}
    (failure,) = messages(world)
    # PLAN reads the load balancer first (its listeners' cipher suites choose the key type).
    assert failure["title"] == "[ACME renewer] Renewal FAILED: shop (at plan: ConfigError)"
    assert failure["body"].startswith(failure["title"] + "\n")
    assert "404 NotAuthorizedOrNotFound" in failure["body"]  # OCI's error, as it said it
    assert "Next attempt:" in failure["body"]
    assert [m["datapoints"][0]["value"] for m in posted(world, "run_outcome", **STREAM)] == [2]

    second, _ = run(world, ops, force=True)  # past the backoff: a second real failure
    assert second.failed
    assert second.certificates[0].consecutive_failures == 2
    assert len(messages(world)) == 1  # no duplicate
    failures = [m["datapoints"][0]["value"] for m in posted(world, "consecutive_failures")]
    assert failures == [1, 2]

    world.emulator.faults.clear()
    third, summary = run(world, ops, force=True)
    assert third.certificates[0].outcome is Outcome.RENEWED, third.to_json()
    assert [m["title"] for m in messages(world)] == [
        failure["title"],
        "[ACME renewer] Recovered: shop renewed",
    ]
    outcomes = [e["outcome"] for e in ops.certificate_history("shop")]
    assert outcomes == ["renewed", "failed", "failed"]
    assert bucket_names(world, "notifications/") == ["notifications/shop.json"]
    assert_no_secret(everything_sent(world))


def test_monitoring_notifications_and_journal_outages_never_fail_the_run(world: SandboxWorld):
    ops = operations(world, notifications={"topicId": TOPIC_ID, "onSuccess": True})
    for operation in ("PostMetricData", "PublishMessage"):
        world.emulator.faults.add(FaultRule.from_json({"operation": operation, "status": 500}))
    world.emulator.faults.add(
        FaultRule.from_json({"operation": "PutObject", "path": "journal", "status": 503})
    )
    report, summary = run(world, ops)
    assert report.certificates[0].outcome is Outcome.RENEWED, report.to_json()
    assert not report.failed
    assert set(summary.errors) == {"metrics", "notifications.shop", "journal"}
    assert all("TransientError" in text for text in summary.errors.values())
    assert messages(world) == []
    assert world.emulator.services["monitoring"].posted() == []  # type: ignore[attr-defined]
    attempts = [e for e in world.emulator.requests if e["operation"] == "PostMetricData"]
    assert len(attempts) == 3  # the client's bounded retries, then given up
