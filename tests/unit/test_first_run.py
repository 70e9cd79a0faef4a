"""The first run after ``terraform apply`` (issue 13 §2): a failed self-check costs the CA
nothing, so it is retried soon — within the run (the same order) and by the next run after a
short backoff — instead of entering Let's Encrypt's long failure backoff; the report says which
backoff applies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from renewer.errors import RateLimited, SelfCheckFailed
from renewer.model import FailureHistory
from renewer.policy import PolicyConfig, backoff_kind, backoff_until
from renewer.report import Outcome
from tests.unit.test_renewal import new_world, only

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def self_check_failed() -> SelfCheckFailed:
    return SelfCheckFailed("http://shop.example.com/.well-known/acme-challenge/t", "HTTP 502")


def test_a_cost_free_failure_waits_minutes_and_never_a_day() -> None:
    waits = [
        backoff_until(FailureHistory(n, T0, cost_free=True)) - T0  # type: ignore[operator]
        for n in range(1, 8)
    ]
    assert waits == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=5),
        *[timedelta(minutes=10)] * 4,
    ]


def test_a_failure_at_the_ca_keeps_lets_encrypts_backoff() -> None:
    waits = [backoff_until(FailureHistory(n, T0)) - T0 for n in range(1, 6)]  # type: ignore[operator]
    assert waits == [*PolicyConfig().backoff, timedelta(days=1)]
    assert "CA's failure backoff" in backoff_kind(FailureHistory(1, T0))
    assert "costs the CA nothing" in backoff_kind(FailureHistory(1, T0, cost_free=True))


def test_a_failed_self_check_reports_the_short_backoff_and_the_next_run_retries() -> None:
    world = new_world()
    world.issuer.fail_next(3, self_check_failed())

    failed = only(world.run())
    assert failed.outcome == Outcome.FAILED
    assert failed.error_type == "SelfCheckFailed"
    assert "costs the CA nothing: short backoff" in failed.message
    state = world.state_of()
    assert state["last_failure_cost_free"] is True
    # One minute later the next run (an Events delivery, a manual invoke) tries again.
    world.advance(timedelta(minutes=1))
    again = only(world.run())
    assert again.outcome == Outcome.FAILED
    assert world.state_of()["consecutive_failures"] == 2
    world.advance(timedelta(minutes=2))
    assert only(world.run()).outcome == Outcome.FAILED
    world.advance(timedelta(minutes=5))
    recovered = only(world.run())
    assert recovered.outcome == Outcome.RENEWED
    assert world.state_of()["consecutive_failures"] == 0
    assert world.state_of()["last_failure_cost_free"] is False


def test_a_failure_at_the_ca_reports_the_cas_backoff() -> None:
    world = new_world()
    world.issuer.fail_next(1, RateLimited("too many failed authorizations", retry_after=60))
    failed = only(world.run())
    assert "the CA's failure backoff" in failed.message
    assert world.state_of()["last_failure_cost_free"] is False


def test_a_failed_self_check_is_retried_within_the_run() -> None:
    world = new_world()
    world.issuer.fail_next(2, self_check_failed())
    report = only(world.service(self_check_waits=(30.0, 60.0)).run(budget_s=600))

    assert report.outcome == Outcome.RENEWED
    assert "the self-check failed 2 times first and was retried in this run" in report.message
    assert len(world.issuer.issued) == 1
    assert world.state_of()["consecutive_failures"] == 0


def test_no_retry_within_the_run_when_the_budget_cannot_hold_the_wait() -> None:
    world = new_world()
    world.issuer.fail_next(1, self_check_failed())
    report = only(world.service(self_check_waits=(300.0,)).run(budget_s=120))

    assert report.outcome == Outcome.FAILED
    assert report.error_type == "SelfCheckFailed"
