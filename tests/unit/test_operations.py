"""The pure operations core: datapoints, notification decisions and words, journal records and
retention, the ``operations`` configuration, and the façade over in-memory sinks (it never
raises, and a message that could not be sent is sent by the next run)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from renewer.errors import ConfigError
from renewer.model import CertificateServiceTarget, ListenerTarget
from renewer.operations import Operations, RunInfo, Trigger
from renewer.operations import journal as journal_module
from renewer.operations.metrics import OUTCOME_CODES, metric_points
from renewer.operations.notices import (
    NoticeKind,
    NoticeState,
    NoticeStatus,
    plan_notices,
)
from renewer.operations.redact import REDACTED, redact
from renewer.report import CertificateReport, Outcome, RenewalReport, TargetReport
from renewer.settings import (
    JournalSettings,
    MetricsSettings,
    NotificationSettings,
    OperationsSettings,
    parse_config,
)
from tests.support.fakes_operations import (
    InMemoryNoticeStates,
    InMemoryRunJournal,
    RecordingMetricsSink,
    RecordingNotifier,
    outage,
)

NOW = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
LB = "ocid1.loadbalancer.oc1.phx.lb1"
CS = "ocid1.certificate.oc1.phx.cs1"
TOPIC = "ocid1.onstopic.oc1.phx.topic1"
TARGETS = {
    "shop": (ListenerTarget(LB, ("https", "https-alt")), CertificateServiceTarget(CS)),
    "blog": (ListenerTarget(LB, ("blog",)),),
}
RUN = RunInfo(trigger="schedule", call_id="01HZCALL", action="renew")
PEM = (
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----"
)
KEY_AUTHORIZATION = (
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)


def cert(
    name: str = "shop", outcome: Outcome = Outcome.RENEWED, **fields: Any
) -> CertificateReport:
    values: dict[str, Any] = {
        "name": name,
        "outcome": outcome,
        "reason": "RenewalWindow",
        "message": "inside the renewal window",
        "serial": "0a1b2c",
        "not_after": NOW + timedelta(days=60),
        "next_renewal": NOW + timedelta(days=40),
        "timings": {"issue": 2.5, "deploy": 1.25},
        "consecutive_failures": 0,
    }
    if outcome is Outcome.FAILED:
        values.update(
            reason="ChallengeFailed",
            message="failed at issue: the CA could not fetch the token",
            failed_step="issue",
            error="the CA could not fetch http://shop.example.com/.well-known/acme-challenge/x",
            error_type="ChallengeFailed",
            consecutive_failures=1,
            next_renewal=NOW + timedelta(minutes=1),
        )
    values.update(fields)
    return CertificateReport(**values)


def report(*certificates: CertificateReport, mode: str = "renew") -> RenewalReport:
    return RenewalReport(NOW - timedelta(seconds=30), NOW, certificates, mode=mode)


# ------------------------------------------------------------------------------------ metrics


def by_name(points: list[Any], name: str) -> list[Any]:
    return [p for p in points if p.name == name]


def test_each_listener_and_certificate_target_gets_its_streams():
    points = metric_points(report(cert()), TARGETS, now=NOW)
    days = by_name(points, "days_to_expiry")
    assert [dict(p.dimensions) for p in days] == [
        {"certificateName": "shop", "loadBalancerId": LB, "listener": "https"},
        {"certificateName": "shop", "loadBalancerId": LB, "listener": "https-alt"},
        {"certificateName": "shop", "certificateId": CS},
    ]
    assert {p.value for p in days} == {60.0}
    assert {p.value for p in by_name(points, "seconds_to_renewal")} == {40 * 86400}
    assert {p.value for p in by_name(points, "run_outcome")} == {0}
    assert {p.value for p in by_name(points, "consecutive_failures")} == {0}
    (duration,) = by_name(points, "renewal_duration_seconds")
    assert duration.value == 3.75
    assert dict(duration.dimensions) == {"certificateName": "shop"}
    assert all(p.timestamp == NOW for p in points)


def test_run_totals_have_one_stream_per_outcome_and_a_duration():
    points = metric_points(report(cert(), cert("blog", Outcome.FAILED)), TARGETS, now=NOW)
    totals = {p.dimensions["outcome"]: p.value for p in by_name(points, "run_certificates")}
    assert totals == {"renewed": 1, "deployed": 0, "skipped": 0, "deferred": 0, "failed": 1}
    (duration,) = by_name(points, "run_duration_seconds")
    assert (duration.value, dict(duration.dimensions)) == (30.0, {"action": "renew"})


def test_outcome_codes_and_unknown_values_left_out():
    failed = cert("blog", Outcome.FAILED, not_after=None, next_renewal=None)
    points = metric_points(report(failed), TARGETS, now=NOW)
    assert by_name(points, "days_to_expiry") == []
    assert by_name(points, "seconds_to_renewal") == []
    assert [p.value for p in by_name(points, "run_outcome")] == [2]
    assert OUTCOME_CODES[Outcome.DEFERRED] == 1


def test_a_plan_posts_observations_only():
    points = metric_points(report(cert(outcome=Outcome.SKIPPED), mode="plan"), TARGETS, now=NOW)
    names = {p.name for p in points}
    assert names == {
        "days_to_expiry",
        "seconds_to_renewal",
        "run_certificates",
        "run_duration_seconds",
    }


def test_dimensions_stay_low_cardinality():
    points = metric_points(report(cert(), cert("blog", Outcome.FAILED)), TARGETS, now=NOW)
    keys = {k for p in points for k in p.dimensions}
    assert keys <= {
        "certificateName",
        "loadBalancerId",
        "listener",
        "certificateId",
        "action",
        "outcome",
    }
    assert all(1 <= len(p.dimensions) <= 20 for p in points)


def test_unconfigured_certificates_use_their_reported_targets():
    reported = TargetReport("listener", LB, ("https",), "acme-x-0a", changed=True)
    points = metric_points(report(cert("old", targets=(reported,))), {}, now=NOW)
    assert {tuple(sorted(p.dimensions)) for p in by_name(points, "run_outcome")} == {
        ("certificateName", "listener", "loadBalancerId")
    }


# ------------------------------------------------------------------------------ notifications


def decide(
    certificate: CertificateReport,
    before: NoticeState | None = None,
    *,
    on_success: bool = False,
    days: int = 14,
    mode: str = "renew",
):
    previous = {certificate.name: before} if before is not None else {}
    decisions = plan_notices(
        report(certificate, mode=mode),
        previous=previous,
        run=RUN,
        targets=TARGETS,
        on_success=on_success,
        expiry_warning_days=days,
    )
    assert len(decisions) <= 1
    return decisions[0] if decisions else None


FAILING = NoticeState(NoticeStatus.FAILING, since=NOW - timedelta(hours=2), failed_step="issue")


def test_a_first_failure_sends_one_failure_message_and_opens_a_failing_state():
    decision = decide(cert(outcome=Outcome.FAILED))
    assert decision.notice.kind is NoticeKind.FAILURE
    assert decision.state.status is NoticeStatus.FAILING
    assert (decision.state.failed_step, decision.state.error_type) == ("issue", "ChallengeFailed")


def test_a_second_failure_sends_nothing_and_changes_nothing():
    assert decide(cert(outcome=Outcome.FAILED, consecutive_failures=2), FAILING) is None


def test_skipping_while_backing_off_is_still_failing():
    backing_off = cert(outcome=Outcome.SKIPPED, reason="BackingOff", consecutive_failures=2)
    assert decide(backing_off, FAILING) is None


def test_a_success_after_failures_sends_a_recovery_and_clears_the_state():
    decision = decide(cert(), FAILING)
    assert decision.notice.kind is NoticeKind.RECOVERY
    assert decision.notice.title == "[ACME renewer] Recovered: shop renewed"
    assert decision.state == NoticeState(since=NOW)


def test_a_deploy_only_recovery_says_healthy_again():
    decision = decide(cert(outcome=Outcome.DEPLOYED), FAILING)
    assert decision.notice.title.endswith("shop is healthy again")


@pytest.mark.parametrize(
    "certificate",
    [
        cert(outcome=Outcome.SKIPPED, reason="Locked", consecutive_failures=None),
        cert(outcome=Outcome.DEFERRED, reason="TimeBudget", consecutive_failures=None),
    ],
    ids=["locked", "deferred"],
)
def test_a_run_that_learnt_nothing_keeps_the_state(certificate):
    assert decide(certificate, FAILING) is None
    assert decide(certificate) is None


def test_renewals_are_announced_only_when_asked():
    assert decide(cert()) is None
    decision = decide(cert(), on_success=True)
    assert decision.notice.kind is NoticeKind.RENEWED
    assert decision.notice.title == "[ACME renewer] Renewed: shop (valid until 2026-06-30)"
    assert decision.state is None  # nothing to de-duplicate: each renewal is news
    assert decide(cert(outcome=Outcome.SKIPPED, reason="NotDue"), on_success=True) is None


def test_failing_near_expiry_warns_once_per_failing_spell():
    near = cert(outcome=Outcome.FAILED, not_after=NOW + timedelta(days=6), consecutive_failures=3)
    first = decide(near, FAILING)
    assert first.notice.kind is NoticeKind.EXPIRY_WARNING
    assert first.notice.title == (
        "[ACME renewer] EXPIRING in 6 days: shop - its renewal keeps failing"
    )
    assert first.state.expiry_warned
    assert decide(near, first.state) is None  # not again in this spell
    recovery = decide(cert(), first.state)
    assert recovery.notice.kind is NoticeKind.RECOVERY
    assert not recovery.state.expiry_warned  # a later spell may warn again


def test_starting_to_fail_inside_the_window_sends_the_warning_only():
    decision = decide(cert(outcome=Outcome.FAILED, not_after=NOW + timedelta(days=3)))
    assert decision.notice.kind is NoticeKind.EXPIRY_WARNING
    assert decision.state.status is NoticeStatus.FAILING


def test_backing_off_into_the_window_warns():
    backing_off = cert(
        outcome=Outcome.SKIPPED,
        reason="BackingOff",
        consecutive_failures=4,
        not_after=NOW + timedelta(days=10),
    )
    assert decide(backing_off, FAILING).notice.kind is NoticeKind.EXPIRY_WARNING
    assert decide(backing_off, FAILING, days=7) is None


def test_an_expired_certificate_says_expired():
    expired = cert(outcome=Outcome.FAILED, not_after=NOW - timedelta(days=2))
    assert decide(expired).notice.title.startswith("[ACME renewer] EXPIRED: shop")


def test_a_plan_sends_nothing():
    assert decide(cert(outcome=Outcome.FAILED), mode="plan") is None


def test_failure_message_reads_well_and_names_step_error_and_next_attempt():
    notice = decide(cert(outcome=Outcome.FAILED)).notice
    assert notice.title == "[ACME renewer] Renewal FAILED: shop (at issue: ChallengeFailed)"
    lines = notice.body.splitlines()
    assert lines[0] == notice.title  # HTTPS and Slack subscriptions show no title
    body = notice.body
    assert "failed at the issue step" in body
    assert "the CA could not fetch http://shop.example.com/" in body
    assert "Next attempt: 2026-05-01T03:01:00Z (1 consecutive failure(s))" in body
    assert f"load balancer {LB} listener(s) https, https-alt" in body
    assert f"Certificates-service certificate {CS}" in body
    assert "call id 01HZCALL" in body
    assert "trigger schedule" in body
    assert all(len(line) < 200 for line in lines if "fetch" not in line)


def test_messages_never_carry_secrets_even_when_an_error_does():
    leaky = cert(
        outcome=Outcome.FAILED,
        error=f"boom {PEM} key authorization {KEY_AUTHORIZATION} hmacKey=c2VjcmV0",
    )
    notice = decide(leaky).notice
    for secret in ("BEGIN PRIVATE KEY", "MIGHAgEAMBMG", KEY_AUTHORIZATION, "c2VjcmV0"):
        assert secret not in notice.body
        assert secret not in notice.title
    assert REDACTED in notice.body


def test_long_errors_are_cut():
    notice = decide(cert(outcome=Outcome.FAILED, error="x" * 10_000)).notice
    assert len(notice.body) < 6000
    assert "[...]" in notice.body


def test_notice_state_documents_round_trip_and_damage_reads_as_ok():
    state = replace(FAILING, expiry_warned=True, error_type="DeploymentError")
    assert NoticeState.from_document(json.loads(json.dumps(state.to_document()))) == state
    assert NoticeState.from_document({"status": "weird"}) == NoticeState()
    assert NoticeState.from_document(None) == NoticeState()


# ----------------------------------------------------------------------------------- journal


def test_journal_object_names_are_dated_sortable_and_safe():
    name = journal_module.object_name(NOW, "01HZ/../CALL id")
    assert name == "journal/2026/05/01/20260501T030000000Z-01HZ-CALL-id.json"
    assert journal_module.recorded_at(name) == NOW
    assert journal_module.recorded_at("journal/readme.txt") is None
    later = journal_module.object_name(NOW + timedelta(milliseconds=7), "a")
    assert later.endswith("T030000007Z-a.json")  # runs in one second still sort in order
    assert journal_module.recorded_at(later) == NOW + timedelta(milliseconds=7)


def test_retention_prunes_by_age_then_by_count_and_ignores_foreign_objects():
    names = [
        journal_module.object_name(NOW - timedelta(days=d), f"c{d}") for d in (100, 50, 3, 2, 1, 0)
    ]
    foreign = "journal/keep-me.json"
    doomed = journal_module.expired(
        [*reversed(names), foreign], now=NOW, retention_days=90, max_records=3
    )
    assert doomed == names[:3]  # 100 days old (age), then the oldest beyond three
    assert journal_module.expired(names, now=NOW, retention_days=90, max_records=100) == names[:1]


def test_journal_records_hold_the_run_and_no_secret():
    failed = cert(outcome=Outcome.FAILED, error=f"bad {PEM}", order_url="https://ca/order/1")
    record = journal_module.journal_record(
        report(failed),
        RUN,
        notifications=[{"certificate": "shop", "kind": "failure"}],
        metrics={"accepted": 3, "rejected": 0},
    )
    text = json.dumps(record)
    assert "PRIVATE KEY" not in text
    assert record["call_id"] == "01HZCALL"
    assert record["trigger"] == "schedule"
    assert record["started_at"] == "2026-05-01T02:59:30Z"
    assert record["certificates"][0]["failed_step"] == "issue"
    assert record["certificates"][0]["order_url"] == "https://ca/order/1"
    assert record["notifications"] == [{"certificate": "shop", "kind": "failure"}]
    entries = journal_module.certificate_entries(record, "shop")
    assert entries[0]["outcome"] == "failed"
    assert entries[0]["call_id"] == "01HZCALL"


def test_redact():
    assert redact(f"x {PEM} y") == f"x {REDACTED} y"
    assert redact("password: hunter2") == f"password: {REDACTED}"
    assert redact("read the secret: OCI answered 404") == "read the secret: OCI answered 404"
    assert (
        redact("ocid1.vaultsecret.oc1.phx." + "a" * 60) == "ocid1.vaultsecret.oc1.phx." + "a" * 60
    )


def test_run_info_checks_its_trigger():
    assert RunInfo("cli", "x", "status").trigger is Trigger.CLI
    with pytest.raises(ConfigError, match="not one of: schedule, manual, event, cli"):
        RunInfo("cron", "x", "renew")


# ----------------------------------------------------------------------------- configuration


def document(operations: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "acme": {"directoryUrl": "https://ca.example/dir"},
        "oci": {
            "compartmentId": "ocid1.compartment.oc1..c",
            "vaultId": "ocid1.vault.oc1..v",
            "keyId": "ocid1.key.oc1..k",
            "challengeBucket": "ch",
            "stateBucket": "st",
        },
        "certificates": [
            {
                "name": "shop",
                "dnsNames": ["shop.example.com"],
                "targets": [{"loadBalancerId": LB, "listeners": ["https"]}],
            }
        ],
    }
    if operations is not None:
        doc["operations"] = operations
    return doc


def test_operations_default_to_journal_only():
    config = parse_config(document())
    assert config.operations == OperationsSettings()
    assert not config.operations.metrics.enabled
    assert not config.operations.notifications.enabled
    assert config.operations.journal == JournalSettings(True, 90, 1000)


def test_operations_section_parsed():
    config = parse_config(
        document(
            {
                "metrics": {"namespace": "shop_certs"},
                "notifications": {"topicId": TOPIC, "onSuccess": True, "expiryWarningDays": 7},
                "journal": {"retentionDays": 30, "maxRecords": 50},
            }
        )
    )
    assert config.operations.metrics == MetricsSettings(True, "shop_certs", None)
    assert config.operations.notifications == NotificationSettings(TOPIC, True, 7)
    assert config.operations.journal == JournalSettings(True, 30, 50)


@pytest.mark.parametrize(
    ("operations", "problem"),
    [
        (
            {"metrics": {"namespace": "oci_certs"}},
            "operations.metrics.namespace: uses a prefix OCI reserves",
        ),
        (
            {"metrics": {"namespace": "9lives"}},
            "operations.metrics.namespace: a string of 6 characters is not valid",
        ),
        ({"metrics": {"compartmentId": "ocid1.vault.oc1..v"}}, "operations.metrics.compartmentId"),
        ({"notifications": {}}, "operations.notifications.topicId: is required"),
        ({"notifications": {"topicId": "ocid1.topic.oc1..t"}}, "is not a onstopic OCID"),
        (
            {"notifications": {"topicId": TOPIC, "expiryWarningDays": 0}},
            "must be between 1 and 365",
        ),
        ({"journal": {"retentionDays": 0}}, "operations.journal.retentionDays: must be between"),
        ({"journal": {"maxRecords": True}}, "operations.journal.maxRecords: must be an integer"),
        (
            {"alarms": {}},
            "operations.alarms: unknown key; the allowed keys are: journal, metrics, notifications",
        ),
    ],
)
def test_operations_problems_name_the_field_and_the_fix(operations, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config(document(operations))
    assert problem in str(caught.value)


# ------------------------------------------------------------------------------------ façade


class FixedClock:
    """``now`` is NOW (the reports' finish), as on the day of the run."""

    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        del seconds


class World:
    """A façade over in-memory sinks, everything on."""

    def __init__(self, *, on_success: bool = False) -> None:
        self.metrics = RecordingMetricsSink()
        self.notifier = RecordingNotifier()
        self.states = InMemoryNoticeStates()
        self.journal = InMemoryRunJournal(retention_days=90, max_records=5)
        settings = OperationsSettings(
            MetricsSettings(enabled=True),
            NotificationSettings(TOPIC, on_success=on_success),
            JournalSettings(),
        )
        self.ops = Operations(
            settings=settings,
            targets=TARGETS,
            clock=FixedClock(),
            metrics=self.metrics,
            notifier=self.notifier,
            notice_states=self.states,
            journal=self.journal,
        )

    def run(self, *certificates: CertificateReport, call: str = "c1"):
        return self.ops.after_run(report(*certificates), RunInfo("schedule", call, "renew"))


def test_after_run_posts_notifies_and_journals():
    world = World()
    summary = world.run(cert("shop", Outcome.FAILED), cert("blog"))
    assert summary.errors == {}
    assert summary.metrics.accepted == len(world.metrics.points) > 0
    assert [n.kind for n in world.notifier.notices] == [NoticeKind.FAILURE]
    assert summary.journal_object == "journal/2026/05/01/20260501T025930000Z-c1.json"
    record = world.journal.objects[summary.journal_object]
    assert record["notifications"][0]["message_id"] == "message-1"
    assert record["metrics"] == {"accepted": summary.metrics.accepted, "rejected": 0}


def test_one_message_per_state_change_not_per_run():
    world = World()
    for call in ("c1", "c2", "c3"):
        world.run(cert(outcome=Outcome.FAILED, consecutive_failures=int(call[1])), call=call)
    world.run(cert(), call="c4")
    world.run(cert(), call="c5")
    assert [n.kind for n in world.notifier.notices] == [NoticeKind.FAILURE, NoticeKind.RECOVERY]
    assert world.ops.certificate_history("shop", limit=10)[0]["call_id"] == "c5"
    assert [r["call_id"] for r in world.ops.last_runs(2)] == ["c5", "c4"]


def test_a_message_that_could_not_be_sent_is_sent_by_the_next_run():
    world = World()
    world.notifier.fail_with = outage()
    summary = world.run(cert(outcome=Outcome.FAILED))
    assert "notifications.shop" in summary.errors
    assert world.states.saves == 0  # the state follows the message, never precedes it
    world.notifier.fail_with = None
    world.run(cert(outcome=Outcome.FAILED, consecutive_failures=2), call="c2")
    assert [n.kind for n in world.notifier.notices] == [NoticeKind.FAILURE]


@pytest.mark.parametrize("sink", ["metrics", "notifier", "journal"])
@pytest.mark.parametrize("error", [outage(), RuntimeError("a bug"), KeyError("k")])
def test_after_run_never_raises(sink, error):
    world = World()
    getattr(world, sink).fail_with = error
    summary = world.run(cert(outcome=Outcome.FAILED))
    assert len(summary.errors) == 1
    (text,) = summary.errors.values()
    assert type(error).__name__ in text
    if sink != "journal":
        assert summary.journal_object is not None  # the others still ran


def test_sinks_that_are_off_are_skipped():
    ops = Operations(settings=OperationsSettings(), targets=TARGETS, clock=FixedClock())
    summary = ops.after_run(report(cert(outcome=Outcome.FAILED)), RUN)
    assert summary == type(summary)()
    assert ops.last_runs() == []
    assert ops.certificate_history("shop") == []
    with pytest.raises(ValueError, match="notice-state store"):
        Operations(
            settings=OperationsSettings(),
            targets={},
            clock=FixedClock(),
            notifier=RecordingNotifier(),
        )


def test_the_journal_is_pruned_on_write():
    world = World()
    for index in range(8):
        world.run(cert(), call=f"call{index}")
    # Same second, different call ids: five kept (max_records), newest by name.
    assert len(world.journal.objects) == 5
