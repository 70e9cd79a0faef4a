"""Spreading first issuances under the CA's limits (renewer.rate_limits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renewer.errors import TransientError
from renewer.rate_limits import (
    Issuance,
    IssuanceGate,
    IssuanceLog,
    Limits,
    OrderWanted,
    RateLimited,
    limits_for,
    plan,
    registered_domain,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LE = Limits()


def _fleet(count: int, domain: str = "example.com", *, renewal: bool = False) -> list[OrderWanted]:
    return [OrderWanted(f"c{i:03d}", (f"c{i:03d}.{domain}",), renewal) for i in range(count)]


def test_registered_domain_is_the_last_two_labels():
    assert registered_domain("A.Shop.Example.COM.") == "example.com"
    assert registered_domain("*.example.com") == "example.com"
    assert registered_domain("example.co.uk") == "co.uk"  # stricter than the PSL: never fewer


def test_200_new_names_of_one_domain_go_50_now_and_the_rest_later():
    result = plan(_fleet(200), [], now=NOW, limits=LE)

    assert len(result.now) == 50
    assert set(result.later) == {f"c{i:03d}" for i in range(50, 200)}


def test_renewals_with_replaces_are_exempt():
    history = [Issuance(NOW - timedelta(hours=1), ("example.com",))] * 300
    result = plan(_fleet(200, renewal=True), history, now=NOW, limits=LE)

    assert len(result.now) == 200
    assert not result.later


def test_the_account_limit_waits_for_the_oldest_order_to_leave_the_window():
    history = [
        Issuance(NOW - timedelta(hours=2) + timedelta(seconds=i), (f"d{i}.com",))
        for i in range(300)
    ]
    result = plan([OrderWanted("x", ("x.fresh.com",))], history, now=NOW, limits=LE)

    assert result.now == ()
    assert result.later["x"] == NOW + timedelta(hours=1)  # the oldest leaves the 3-h window


def test_many_domains_spread_by_the_account_limit():
    wanted = [OrderWanted(f"c{i}", (f"c{i}.d{i % 20}.com",)) for i in range(400)]
    result = plan(wanted, [], now=NOW, limits=LE)

    assert len(result.now) == 300  # 20 domains x 15 each, under 50 per domain, 300 per account


@settings(max_examples=80, deadline=None)
@given(
    domains=st.lists(st.integers(0, 4), min_size=0, max_size=120),
    history_domains=st.lists(st.integers(0, 4), max_size=80),
    ages=st.lists(st.integers(0, 8 * 24 * 60), max_size=80),
    orders=st.integers(1, 40),
    per_domain=st.integers(1, 30),
)
def test_no_window_ever_holds_more_than_the_limits(
    domains, history_domains, ages, orders, per_domain
):
    limits = Limits(orders_per_account=orders, certificates_per_domain=per_domain)
    history = [
        Issuance(NOW - timedelta(minutes=age), (f"d{d}.com",))
        for d, age in zip(history_domains, ages, strict=False)
    ]
    wanted = [OrderWanted(f"c{i}", (f"c{i}.d{d}.com",)) for i, d in enumerate(domains)]

    result = plan(wanted, history, now=NOW, limits=limits)

    by_name = {w.name: w for w in wanted}
    admitted = [Issuance(NOW, (f"{by_name[n].dns_names[0].split('.', 1)[1]}",)) for n in result.now]
    counted = [*history, *admitted]
    recent_account = [h for h in history if h.at > NOW - limits.order_window]
    assert len(admitted) <= max(0, orders - len(recent_account))
    for d in range(5):
        in_week = [
            h for h in counted if f"d{d}.com" in h.domains and h.at > NOW - limits.domain_window
        ]
        history_in_week = [
            h for h in history if f"d{d}.com" in h.domains and h.at > NOW - limits.domain_window
        ]
        assert len(in_week) <= max(per_domain, len(history_in_week))
    assert set(result.now) | set(result.later) == set(by_name)
    assert all(when > NOW for when in result.later.values())


def test_the_log_round_trips_and_prunes_old_entries():
    log = IssuanceLog().record(NOW - timedelta(days=9), ["old.example.com"], LE)
    log = log.record(NOW, ["a.example.com", "b.other.org"], LE)

    assert log.entries == (Issuance(NOW, ("example.com", "other.org")),)
    assert IssuanceLog.parse(log.to_document()) == log
    assert (
        IssuanceLog.parse({"issuances": [{"at": "garbage"}, 3, {"at": "2026-01-01T00:00"}]})
        == IssuanceLog()
    )


# --- the gate a run asks before each new order (IssuanceGate) ---------------------------------


class _MemoryLog:
    """An IssuanceLogStore in memory, with the conditional write of the state bucket.

    ``interfere``: writes another run slips in before each of this run's next saves.
    """

    def __init__(self, interfere: int = 0) -> None:
        self.log, self.tag, self.version = IssuanceLog(), None, 0
        self.reads = self.writes = 0
        self.interfere = interfere

    def load(self) -> tuple[IssuanceLog, str | None]:
        self.reads += 1
        return self.log, self.tag

    def save(self, log: IssuanceLog, tag: str | None) -> bool:
        if self.interfere:
            self.interfere -= 1
            self._put(self.log.record(NOW - timedelta(minutes=1), ["other.example.org"], LE))
        if tag != self.tag:
            return False
        self._put(log)
        return True

    def _put(self, log: IssuanceLog) -> None:
        self.version += 1
        self.writes += 1
        self.log, self.tag = log, f"v{self.version}"


def _gate(store: _MemoryLog, limits: Limits = LE) -> IssuanceGate:
    return IssuanceGate(store, limits, lambda: NOW, attempts=3)


def test_the_gate_records_each_first_issuance_and_holds_back_the_one_past_the_limit():
    store = _MemoryLog()
    gate = _gate(store, Limits(certificates_per_domain=2))

    gate.admit("a", ["a.example.com"], renewal=False)
    gate.admit("b", ["b.example.com"], renewal=False)
    with pytest.raises(RateLimited) as held:
        gate.admit("c", ["c.example.com"], renewal=False)

    assert [e.domains for e in store.log.entries] == [("example.com",), ("example.com",)]
    assert held.value.fits_at == NOW + timedelta(days=7)
    assert "2 new certificates per registered domain per 7 days" in str(held.value)
    assert NOW.isoformat() not in str(held.value)  # it says when it fits, not when it was held


def test_a_renewal_with_replaces_reads_and_writes_nothing():
    store = _MemoryLog()
    gate = _gate(store, Limits(orders_per_account=1))
    gate.admit("a", ["a.example.com"], renewal=False)

    gate.admit("a", ["a.example.com"], renewal=True)  # past the limit, and still admitted

    assert (store.reads, store.writes) == (1, 1)


def test_a_concurrent_write_makes_the_gate_read_and_plan_again():
    store = _MemoryLog(interfere=1)
    gate = _gate(store, Limits(orders_per_account=2))

    gate.admit("a", ["a.example.com"], renewal=False)  # lost the first write, won the second

    assert store.reads == 2
    assert len(store.log.entries) == 2  # the other run's order and this one
    with pytest.raises(RateLimited):  # both count: the account's two orders are used
        gate.admit("b", ["b.example.com"], renewal=False)


def test_a_log_that_keeps_changing_is_a_transient_error_and_orders_nothing():
    store = _MemoryLog(interfere=10)

    with pytest.raises(TransientError, match="changed under this run 3 times"):
        _gate(store).admit("a", ["a.example.com"], renewal=False)


def test_auto_means_lets_encrypt_production_only():
    production = "https://acme-v02.api.letsencrypt.org/directory"
    assert limits_for("auto", production) == LE
    assert limits_for("auto", "https://acme-staging-v02.api.letsencrypt.org/directory") is None
    assert limits_for("off", production) is None
    explicit = Limits(orders_per_account=5)
    assert limits_for(explicit, "https://ca.example/dir") is explicit
