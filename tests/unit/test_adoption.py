"""Adopting what is already there (issue 13 §4): with nothing held, a valid certificate a
target serves for every configured name is renewed in its own window, not at once."""

from __future__ import annotations

import pytest

from renewer.model import FailureHistory, Reason, ServedCertificate
from renewer.policy import decide, renewal_window_start
from tests.unit.test_policy import DAY, HEALTHY_WINDOW, NOW, SPEC, cert, spec

pytestmark = pytest.mark.unit

WHERE = "listener https of load balancer ocid1.loadbalancer.oc1..x"


def served(**kw: object) -> ServedCertificate:
    return ServedCertificate(certificate=cert(**kw), issuer="R11", where=WHERE)  # type: ignore[arg-type]


def test_a_valid_served_certificate_is_adopted_until_its_window() -> None:
    decision = decide(spec=SPEC, current=None, now=NOW, served=served())
    assert (decision.renew, decision.reason) == (False, Reason.ADOPTED)
    assert decision.next_check == HEALTHY_WINDOW
    for words in (WHERE, "issuer R11", "serial 03a1f2", "60.0 days left", "force"):
        assert words in decision.message


def test_an_adopted_certificate_in_its_window_is_renewed_by_the_window() -> None:
    soon = served(not_after=NOW + 20 * DAY)
    decision = decide(spec=SPEC, current=None, now=NOW, served=soon)
    assert (decision.renew, decision.reason) == (True, Reason.RENEWAL_WINDOW)
    assert "does not hold" in decision.message
    start = renewal_window_start(soon.certificate)
    assert start <= NOW


def test_a_served_certificate_missing_a_configured_name_is_not_adopted() -> None:
    more = spec(dns_names=("example.com", "www.example.com", "shop.example.com"))
    decision = decide(spec=more, current=None, now=NOW, served=served())
    assert (decision.renew, decision.reason) == (True, Reason.MISSING)


def test_force_renews_an_adoptable_certificate_at_once() -> None:
    decision = decide(spec=SPEC, current=None, now=NOW, served=served(), force=True)
    assert (decision.renew, decision.reason) == (True, Reason.FORCED)


def test_a_held_certificate_wins_over_what_is_served() -> None:
    held = cert(not_after=NOW + 10 * DAY)
    decision = decide(spec=SPEC, current=held, now=NOW, served=served())
    assert (decision.renew, decision.reason) == (True, Reason.RENEWAL_WINDOW)
    assert "does not hold" not in decision.message


def test_an_adopted_certificate_due_during_backoff_waits() -> None:
    failures = FailureHistory(1, NOW)
    decision = decide(
        spec=SPEC, current=None, now=NOW, served=served(not_after=NOW + DAY), failures=failures
    )
    assert decision.reason == Reason.BACKING_OFF
