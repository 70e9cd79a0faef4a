"""``OciDnsChallengeZone``'s wait, on a fake clock: it polls until every value is listed, and
ends with AcmeTimeout at the deadline; and ``txt_value`` reads TXT presentation format.

The DNS client here is an in-memory stand-in (pure logic: what the adapter does with lists that
lag behind its writes); the SDK wire behaviour is tested against the emulator in
tests/contract/test_dns.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from renewer.adapters.oci_dns import OciDnsChallengeZone, txt_value
from renewer.errors import AcmeTimeout
from tests.support.fakes import FakeClock

ZONE = "ocid1.dns-zone.oc1..z"
NAME = "_acme-challenge.shop.example.com"


@dataclass
class LaggingDns:
    """Lists an added value only after ``lag`` reads of its name (never, with ``lag=None``)."""

    lag: int | None
    added: list[str] = field(default_factory=list)
    reads: int = 0
    page_size: int = 1

    def patch_domain_records(self, zone: str, domain: str, details: Any) -> None:
        assert (zone, domain) == (ZONE, NAME)
        self.added += [item.rdata for item in details.items if item.operation == "ADD"]

    def get_domain_records(self, zone: str, domain: str, **kwargs: Any) -> Any:  # noqa: ARG002
        assert kwargs["rtype"] == "TXT"
        start = int(kwargs.get("page", 0))
        if start == 0:
            self.reads += 1
        visible = self.added if self.lag is not None and self.reads > self.lag else []
        items = [
            SimpleNamespace(rtype="TXT", rdata=rdata, record_hash=f"h{i}")
            for i, rdata in enumerate(['"foreign"', *visible])
        ]
        chosen = items[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(items):
            headers["opc-next-page"] = str(start + self.page_size)
        return SimpleNamespace(data=SimpleNamespace(items=chosen), headers=headers)


def zone_with(dns: LaggingDns, clock: FakeClock) -> OciDnsChallengeZone:
    return OciDnsChallengeZone(SimpleNamespace(dns=dns), clock=clock)  # type: ignore[arg-type]


def test_present_polls_every_page_until_the_values_are_listed() -> None:
    clock, dns = FakeClock(), LaggingDns(lag=3)
    zone_with(dns, clock).present(ZONE, [(NAME, "a"), (NAME, "b")], deadline=clock.monotonic() + 60)
    assert dns.added == ['"a"', '"b"']
    assert dns.reads == 4  # three reads without them, the fourth lists both (over 3 pages)
    assert clock.sleeps == [0.25, 0.5, 1.0]


def test_present_ends_with_acme_timeout_at_the_deadline() -> None:
    clock, dns = FakeClock(), LaggingDns(lag=None)
    start = clock.monotonic()
    with pytest.raises(AcmeTimeout, match=NAME):
        zone_with(dns, clock).present(ZONE, [(NAME, "a")], deadline=start + 10)
    assert clock.monotonic() - start == pytest.approx(10)  # waited to the deadline, no further


@pytest.mark.parametrize(
    ("rdata", "value"),
    [
        ('"abc"', "abc"),
        ("abc", "abc"),
        ('"a" "bc"', "abc"),
        ("a bc", "abc"),
        ('"with \\"quotes\\" and \\\\"', 'with "quotes" and \\'),
        ('"\\065\\066"', "AB"),
        ('""', ""),
    ],
)
def test_txt_value_reads_presentation_format(rdata: str, value: str) -> None:
    assert txt_value(rdata) == value
