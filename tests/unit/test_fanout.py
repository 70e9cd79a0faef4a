"""Fan-out's split and dispatch (renewer.fanout): pure logic over the in-memory lease."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import pytest

from renewer import fanout
from renewer.errors import TransientError
from renewer.settings import Config, parse_config
from tests.support.fakes import FakeClock
from tests.support.fakes_storage import InMemoryLease

pytestmark = pytest.mark.unit

LB_A = "ocid1.loadbalancer.oc1.phx.aaaa"
LB_B = "ocid1.loadbalancer.oc1.phx.bbbb"


def _config(layout: Mapping[str, int], service: int = 0) -> Config:
    certificates = []
    for lb, count in layout.items():
        for n in range(count):
            name = f"{lb[-4:]}-{n}"
            certificates.append(
                {
                    "name": name,
                    "dnsNames": [f"{name}.example.com"],
                    "targets": [{"loadBalancerId": lb, "listeners": [f"https-{name}"]}],
                }
            )
    certificates.extend(
        {
            "name": f"svc-{n}",
            "dnsNames": [f"svc-{n}.example.com"],
            "targets": [{"certificateId": f"ocid1.certificate.oc1.phx.svc{n}"}],
        }
        for n in range(service)
    )
    return parse_config(
        {
            "acme": {"directoryUrl": "https://ca.example/directory"},
            "oci": {
                "compartmentId": "ocid1.compartment.oc1..aaaa",
                "vaultId": "ocid1.vault.oc1.phx.aaaa",
                "keyId": "ocid1.key.oc1.phx.aaaa",
                "challengeBucket": "acme-challenges",
                "stateBucket": "acme-state",
            },
            "certificates": certificates,
        }
    )


def _names(config: Config) -> list[str]:
    return [m.spec.name for m in config.certificates]


def test_a_fleet_whose_busiest_lane_fits_the_budget_is_not_split():
    config = _config({LB_A: 2, LB_B: 1})
    assert not fanout.might_fan_out(config, budget_s=285.0)  # 2 x 100 s fit: not even a plan
    assert fanout.split(config, _names(config), budget_s=285.0) == []


def test_the_busiest_lane_decides_and_parts_are_per_load_balancer_busiest_first():
    config = _config({LB_B: 2, LB_A: 5}, service=3)
    assert fanout.might_fan_out(config, budget_s=285.0)

    parts = fanout.split(config, _names(config), budget_s=285.0)

    assert [(p.lane, len(p.names)) for p in parts] == [
        (LB_A, 5),
        ("certificates-service", 3),  # no load-balancer work: one part for all of them
        (LB_B, 2),
    ]
    assert parts[0].body() == {"action": "renew", "certificates": list(parts[0].names)}


def test_only_due_certificates_count():
    config = _config({LB_A: 5})
    due = _names(config)[:2]
    assert fanout.split(config, due, budget_s=285.0) == []  # 2 due fit, though 5 are configured
    assert [p.names for p in fanout.split(config, due, budget_s=150.0)] == [tuple(due)]


def test_lane_lease_names_are_certificate_names_and_differ_per_lane():
    a, b = fanout.Part(LB_A, ("x",)), fanout.Part(LB_B, ("y",))
    assert a.lease_name != b.lease_name
    assert a.lease_name.startswith("lane-")
    InMemoryLease().acquire(a.lease_name, holder="h", ttl=timedelta(seconds=1))  # a valid name


class _Invoker:
    def __init__(self, fail_on: str | None = None) -> None:
        self.bodies: list[Mapping[str, object]] = []
        self.fail_on = fail_on

    def __call__(self, body: Mapping[str, object]) -> str:
        names = body["certificates"]
        assert isinstance(names, list)
        if self.fail_on in names:
            msg = "OCI did not answer"
            raise TransientError(msg)
        self.bodies.append(body)
        return f"req-{len(self.bodies)}"


def test_dispatch_leases_each_lane_and_a_running_part_is_not_invoked_twice():
    clock = FakeClock()
    leases = InMemoryLease(clock)
    parts = [fanout.Part(LB_A, ("a-0", "a-1")), fanout.Part(LB_B, ("b-0",))]
    first = _Invoker()
    ttl = fanout.lease_ttl(3600)

    done = fanout.dispatch(parts, invoke=first, leases=leases, holder="run-1", ttl=ttl)

    assert [d.request_id for d in done] == ["req-1", "req-2"]
    again = _Invoker()
    skipped = fanout.dispatch(parts, invoke=again, leases=leases, holder="run-2", ttl=ttl)
    assert again.bodies == []
    assert all("still running" in (d.skipped or "") for d in skipped)
    # A part that died: its lane lease expires after the detached timeout, and the next
    # schedule dispatches the lane again.
    clock.sleep(ttl.total_seconds() + 1)
    revived = fanout.dispatch(parts[:1], invoke=again, leases=leases, holder="run-3", ttl=ttl)
    assert revived[0].request_id == "req-1"


def test_a_failed_invocation_releases_its_lane_and_the_others_go_on():
    leases = InMemoryLease(FakeClock())
    parts = [fanout.Part(LB_A, ("a-0",)), fanout.Part(LB_B, ("b-0",))]

    done = fanout.dispatch(
        parts, invoke=_Invoker(fail_on="a-0"), leases=leases, holder="run-1", ttl=timedelta(hours=1)
    )

    assert "TransientError" in (done[0].skipped or "")
    assert done[1].request_id == "req-1"
    assert leases.current(parts[0].lease_name) is None  # the next schedule may try it again
    assert leases.current(parts[1].lease_name) is not None


@pytest.mark.parametrize(("timeout", "expected"), [(3600.0, 3900), (None, 3900), (600.0, 900)])
def test_a_lane_lease_outlives_its_part(timeout: float | None, expected: int) -> None:
    assert fanout.lease_ttl(timeout).total_seconds() == expected
