"""``Dns01Sweeper``: which of a dead run's dns-01 TXT values go, and which stay (issue 16).

Pure logic over an in-memory zone that removes exactly the values it is given (what
``OciDnsChallengeZone.clean_up`` does; the e2e suite runs the real one against the emulator).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from renewer.dns_sweep import Dns01Sweeper, DnsSweep, OrderChallengeRecord, record_names_of
from renewer.errors import TransientError
from renewer.model import KeyType, PendingOrder

ZONE = "ocid1.dns-zone.oc1..zone"
NAME = "_acme-challenge.shop.example.com"
FOREIGN = "another-clients-value"
ORDER = PendingOrder(
    order_url="https://ca.test/order/1",
    account_url="https://ca.test/account/1",
    private_key_pem="-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
    dns_names=("shop.example.com", "*.shop.example.com"),
    key_type=KeyType.EC_P256,
    profile=None,
    created_at=datetime(2027, 1, 1, tzinfo=UTC),
)


class Zone:
    """TXT values per name; ``clean_up`` removes exactly the given (name, value) pairs."""

    def __init__(self, values: dict[str, set[str]]) -> None:
        self.values = values
        self.calls: list[list[tuple[str, str]]] = []

    def clean_up(self, zone_id: str, records: Sequence[tuple[str, str]]) -> None:
        assert zone_id == ZONE
        self.calls.append(list(records))
        for name, value in records:
            self.values.get(name, set()).discard(value)


class Orders:
    def __init__(self, records: Sequence[OrderChallengeRecord] | None) -> None:
        self.records = records
        self.asked: list[tuple[str, str]] = []

    def dns01_records(
        self, order_url: str, *, account_url: str, deadline: float
    ) -> Sequence[OrderChallengeRecord] | None:
        del deadline
        self.asked.append((order_url, account_url))
        return self.records


VALID = OrderChallengeRecord(NAME, "value-of-the-validated-authz", settled=True)
PENDING = OrderChallengeRecord(NAME, "value-of-the-pending-authz", settled=False)


def zone_with_both() -> Zone:
    return Zone({NAME: {VALID.value, PENDING.value, FOREIGN}})


def test_settled_values_go_and_pending_ones_stay_while_the_order_is_being_finished():
    zone, orders = zone_with_both(), Orders([VALID, PENDING])

    swept = Dns01Sweeper(orders, zone).sweep(ORDER, ZONE, abandoned=False, deadline=1e9)

    assert swept == DnsSweep(removed=((NAME, VALID.value),), kept=((NAME, PENDING.value),))
    assert zone.values[NAME] == {PENDING.value, FOREIGN}
    assert orders.asked == [(ORDER.order_url, ORDER.account_url)]


def test_an_abandoned_orders_pending_values_go_too_but_never_a_foreign_value():
    zone = zone_with_both()

    swept = Dns01Sweeper(Orders([VALID, PENDING]), zone).sweep(
        ORDER, ZONE, abandoned=True, deadline=1e9
    )

    assert set(swept.removed) == {(NAME, VALID.value), (NAME, PENDING.value)}
    assert swept.kept == ()
    assert zone.values[NAME] == {FOREIGN}


def test_a_pending_value_at_a_name_another_certificate_validates_stays_even_when_abandoned():
    # A CA may give one pending authorization to orders of two certificates of one account.
    zone = zone_with_both()
    shared = record_names_of(["*.Shop.Example.com."])
    assert shared == {NAME}

    swept = Dns01Sweeper(Orders([VALID, PENDING]), zone).sweep(
        ORDER, ZONE, abandoned=True, shared_names=shared, deadline=1e9
    )

    assert swept.removed == ((NAME, VALID.value),)
    assert swept.kept == ((NAME, PENDING.value),)
    assert zone.values[NAME] == {PENDING.value, FOREIGN}


def test_an_order_that_cannot_be_read_removes_nothing():
    zone = zone_with_both()

    swept = Dns01Sweeper(Orders(None), zone).sweep(ORDER, ZONE, abandoned=True, deadline=1e9)

    assert swept == DnsSweep(readable=False)
    assert zone.calls == []
    assert zone.values[NAME] == {VALID.value, PENDING.value, FOREIGN}


def test_nothing_to_remove_is_no_zone_call_and_repeats_are_asked_once():
    zone = zone_with_both()
    repeated = [PENDING, OrderChallengeRecord(NAME.upper() + ".", PENDING.value, settled=False)]

    swept = Dns01Sweeper(Orders(repeated), zone).sweep(ORDER, ZONE, abandoned=False, deadline=1e9)

    assert swept == DnsSweep(kept=((NAME, PENDING.value),))
    assert zone.calls == []


def test_a_failing_zone_is_the_callers_to_report():
    class Failing(Zone):
        def clean_up(self, zone_id: str, records: Sequence[tuple[str, str]]) -> None:
            del zone_id, records
            raise TransientError("DNS answered 503")

    with pytest.raises(TransientError):
        Dns01Sweeper(Orders([VALID]), Failing({})).sweep(ORDER, ZONE, abandoned=False, deadline=1e9)
