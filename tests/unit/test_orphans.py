"""Certificates that left the configuration (renewer.orphans): the decision and the retirement.

The decision is pure (table-driven); the retirement runs over in-memory ports that record every
write, so each test says exactly what was (and was not) deleted. The load balancer side of the
ownership proof is the real adapter's, tested end to end in tests/e2e/test_orphans.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from renewer.errors import AlreadyRevoked, ConfigError, TransientError
from renewer.model import KeyType, ListenerTarget, StoredCertificate
from renewer.orphans import (
    Decision,
    OrphanOutcome,
    OrphanRetirement,
    decide,
    load_balancers_of,
    noticed_time,
)
from renewer.ports import StoredLeaves
from renewer.report import RenewalReport
from renewer.settings import parse_config
from tests.support.fakes_storage import InMemoryLease

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
GRACE = timedelta(days=30)
LB = "ocid1.loadbalancer.oc1..configured"
OLD_LB = "ocid1.loadbalancer.oc1..recorded"
DIRECTORY = "https://acme.example/directory"


@pytest.mark.parametrize(
    ("noticed", "now", "expected"),
    [
        (None, NOW, Decision.NOTICE),
        (NOW, NOW, Decision.WAIT),
        (NOW - GRACE + timedelta(seconds=1), NOW, Decision.WAIT),
        (NOW - GRACE, NOW, Decision.RETIRE),
        (NOW - GRACE - timedelta(days=400), NOW, Decision.RETIRE),
    ],
)
def test_notice_then_wait_out_the_grace_then_retire(noticed, now, expected):
    assert decide(noticed, now=now, grace=GRACE) is expected


def test_load_balancers_come_from_the_deployment_records_and_the_record_only():
    state = {
        "deployed": {
            f"{OLD_LB}/https,https-alt": "ab",
            "ocid1.certificate.oc1..c": "ab",  # a Certificates-service target: not an LB
        }
    }
    record = {"load_balancers": [LB, "not-an-ocid"]}
    assert load_balancers_of(state, record) == (LB, OLD_LB)
    assert load_balancers_of(None, None) == ()
    assert load_balancers_of({"deployed": "damaged"}, {"load_balancers": "damaged"}) == ()


def test_an_unreadable_noticed_time_means_noticed_anew():
    assert noticed_time({"noticed_at": "2026-12-01T12:00:00Z"}) == NOW
    assert noticed_time({"noticed_at": "yesterday"}) is None
    assert noticed_time({"noticed_at": 5}) is None
    assert noticed_time(None) is None


# --- the retirement over in-memory ports ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.at = NOW
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += max(0.0, seconds)


@dataclass
class Records:
    states: dict[str, dict[str, object]] = field(default_factory=dict)
    records: dict[str, dict[str, object]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)

    def state_names(self) -> frozenset[str]:
        return frozenset(self.states)

    def record_names(self) -> frozenset[str]:
        return frozenset(self.records)

    def load_state(self, name: str) -> dict[str, object] | None:
        return self.states.get(name)

    def load_record(self, name: str) -> dict[str, object] | None:
        return self.records.get(name)

    def save_record(self, name: str, record: dict[str, object]) -> None:
        self.writes.append(f"save record {name}")
        self.records[name] = record

    def delete_state(self, name: str) -> None:
        self.writes.append(f"delete state {name}")
        self.states.pop(name, None)

    def delete_record(self, name: str) -> None:
        self.writes.append(f"delete record {name}")
        self.records.pop(name, None)


@dataclass
class Secrets:
    names: set[str] = field(default_factory=set)
    stored: dict[str, list[StoredCertificate]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    proof_reads: int = 0

    def managed_names(self) -> frozenset[str]:
        return frozenset(self.names)

    def leaf_fingerprints(self, name: str) -> frozenset[str]:
        self.proof_reads += 1
        if name not in self.names:
            raise ConfigError(f"Vault secret acme-{name} is PENDING_DELETION")
        return frozenset(f"fp-{c.serial_hex}" for c in self.stored.get(name, []))

    def certificates(self, name: str) -> list[StoredCertificate]:
        return list(self.stored.get(name, []))

    def schedule_secret_deletion(self, name: str) -> str:
        if name not in self.names:
            return "absent"
        self.writes.append(f"schedule secret {name}")
        self.names.discard(name)
        return "scheduled"


@dataclass(frozen=True)
class Census:
    load_balancer_id: str
    in_use: tuple[str, ...] = ()
    ours_unused: tuple[str, ...] = ()
    not_proven: tuple[tuple[str, str], ...] = ()
    gone: bool = False


@dataclass
class Bundles:
    """Bundles per load balancer: name -> (serial, in use); proof as the adapter does it."""

    lbs: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    fail_delete: Exception | None = None

    def census(self, name: str, load_balancer_id: str, *, stored: StoredLeaves) -> Census:
        bundles = self.lbs.get(load_balancer_id)
        if bundles is None:
            return Census(load_balancer_id, gone=True)
        mine = {b: v for b, v in bundles.items() if b.startswith(f"acme-{name}-")}
        proof = stored.leaf_fingerprints(name) if any(not u for _, u in mine.values()) else set()
        return Census(
            load_balancer_id,
            in_use=tuple(sorted(b for b, (_, used) in mine.items() if used)),
            ours_unused=tuple(
                sorted(b for b, (s, used) in mine.items() if not used and f"fp-{s}" in proof)
            ),
            not_proven=tuple(
                sorted(
                    (b, "not stored")
                    for b, (s, used) in mine.items()
                    if not used and f"fp-{s}" not in proof
                )
            ),
        )

    def retire(
        self,
        name: str,
        target: ListenerTarget,
        *,
        keep_previous: int,
        deadline: float,  # noqa: ARG002 - the port's signature
        stored: StoredLeaves | None = None,
    ) -> list[str]:
        assert keep_previous == 0
        assert stored is not None
        if self.fail_delete is not None:
            raise self.fail_delete
        census = self.census(name, target.load_balancer_id, stored=stored)
        for bundle in census.ours_unused:
            self.deletes.append(f"{target.load_balancer_id}/{bundle}")
            del self.lbs[target.load_balancer_id][bundle]
        return list(census.ours_unused)


@dataclass
class Revoker:
    directory_url: str = DIRECTORY
    revoked: list[tuple[str, int]] = field(default_factory=list)
    already: set[str] = field(default_factory=set)
    fail: Exception | None = None

    def revoke(
        self,
        fullchain_pem: str,
        reason_code: int,
        *,
        certificate_key_pem: str | None,  # noqa: ARG002 - the port's signature
        deadline: float,  # noqa: ARG002
    ) -> str:
        if self.fail is not None:
            raise self.fail
        if fullchain_pem in self.already:
            raise AlreadyRevoked("already revoked", problem_type="alreadyRevoked")
        self.revoked.append((fullchain_pem, reason_code))
        return "https://acme.example/acct/1"


def config(*names: str, grace: int = 30, revoke: bool = False):
    return parse_config(
        {
            "acme": {"directoryUrl": DIRECTORY, "termsOfServiceAgreed": True},
            "oci": {
                "compartmentId": "ocid1.compartment.oc1..c",
                "vaultId": "ocid1.vault.oc1..v",
                "keyId": "ocid1.key.oc1..k",
                "challengeBucket": "acme-challenges",
                "stateBucket": "acme-state",
            },
            "renewal": {"orphanGraceDays": grace, "revokeOnRemoval": revoke},
            "certificates": [
                {
                    "name": name,
                    "dnsNames": [f"{name}.example.com"],
                    "targets": [{"loadBalancerId": LB, "listeners": [f"https-{name}"]}],
                }
                for name in names
            ],
        }
    )


def stored(serial: str, *, days_left: int = 60, account: str = DIRECTORY) -> StoredCertificate:
    return StoredCertificate(
        version=1,
        fullchain_pem=f"chain-{serial}",
        private_key_pem="key",
        serial_hex=serial,
        not_before=NOW - timedelta(days=30),
        not_after=NOW + timedelta(days=days_left),
        dns_names=("old.example.com",),
        key_type=KeyType.EC_P256,
        account_url=account.replace("/directory", "/acct/1"),
    )


@dataclass
class World:
    clock: Clock = field(default_factory=Clock)
    records: Records = field(default_factory=Records)
    secrets: Secrets = field(default_factory=Secrets)
    bundles: Bundles = field(default_factory=Bundles)
    revoker: Revoker = field(default_factory=Revoker)
    leases: InMemoryLease | None = None

    def __post_init__(self) -> None:
        self.leases = InMemoryLease(self.clock)

    def service(self, cfg=None, *, holder: str = "run-1") -> OrphanRetirement:
        cfg = cfg or config("shop")
        return OrphanRetirement(
            config=cfg,
            secrets=self.secrets,
            records=self.records,
            bundles=self.bundles,
            leases=self.leases,
            clock=self.clock,
            holder=holder,
            revoker=(lambda _directory: self.revoker) if cfg.renewal.revoke_on_removal else None,
            step_budget=10.0,
        )

    def writes(self) -> list[str]:
        return [*self.records.writes, *self.secrets.writes, *self.bundles.deletes]


@pytest.fixture
def world() -> World:
    """``old`` left the configuration (``shop`` stays): a secret, a state, three bundles."""
    w = World()
    w.secrets.names = {"shop", "old"}
    w.secrets.stored = {"old": [stored("aa01"), stored("bb02")]}
    w.records.states = {
        "shop": {"deployed": {f"{LB}/https-shop": "cc"}},
        "old": {"deployed": {f"{OLD_LB}/https": "bb02"}},
    }
    w.bundles.lbs = {
        LB: {"acme-shop-cc": ("cc", True), "acme-old-aa01": ("aa01", False)},
        OLD_LB: {
            "acme-old-bb02": ("bb02", True),  # still on a listener
            "acme-old-ff99": ("ff99", False),  # named like ours, not stored
            "their-cert": ("ee", False),
        },
    }
    return w


def test_a_first_sighting_is_recorded_and_nothing_is_deleted(world: World):
    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert (report.name, report.outcome) == ("old", OrphanOutcome.NOTICED)
    assert report.retire_at == NOW + GRACE
    assert report.load_balancers == (OLD_LB,)
    assert world.writes() == ["save record old"]
    assert world.records.records["old"]["noticed_at"] == "2026-12-01T12:00:00Z"
    assert world.records.records["old"]["load_balancers"] == [OLD_LB]


def test_within_the_grace_nothing_changes(world: World):
    world.service().sweep(deadline=world.clock.mono + 100)
    world.clock.at = NOW + GRACE - timedelta(minutes=1)
    world.records.writes.clear()

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert report.outcome is OrphanOutcome.WAITING
    assert world.writes() == []


def test_past_the_grace_what_is_ours_and_unused_goes_and_nothing_else(world: World):
    world.service().sweep(deadline=world.clock.mono + 100)
    world.clock.at = NOW + GRACE
    world.records.writes.clear()

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert report.outcome is OrphanOutcome.RETIRED, report.message
    # Bundles first (the secret's versions are the proof), then the secret, then state, record.
    assert world.writes() == [
        "delete state old",
        "delete record old",
        "schedule secret old",
        f"{LB}/acme-old-aa01",
    ]
    assert world.bundles.lbs[OLD_LB].keys() == {"acme-old-bb02", "acme-old-ff99", "their-cert"}
    assert [(b.load_balancer_id, b.bundle) for b in report.in_use] == [(OLD_LB, "acme-old-bb02")]
    assert [b.bundle for b in report.not_proven] == ["acme-old-ff99"]
    assert [b.bundle for b in report.deleted] == ["acme-old-aa01"]
    assert report.vault == "scheduled"
    assert "left in use" in report.message
    assert world.leases.current("old") is None  # released
    # The configured certificate was never touched.
    assert "shop" in world.secrets.names
    assert "acme-shop-cc" in world.bundles.lbs[LB]


def test_the_secret_goes_only_after_the_bundles_it_proves(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}
    order: list[str] = []
    retire, schedule = world.bundles.retire, world.secrets.schedule_secret_deletion
    world.bundles.retire = lambda *a, **k: order.append("bundles") or retire(*a, **k)  # type: ignore[method-assign]
    world.secrets.schedule_secret_deletion = lambda n: order.append("secret") or schedule(n)  # type: ignore[method-assign]

    world.service().sweep(deadline=world.clock.mono + 100)

    assert order == ["bundles", "secret"]


def test_a_failed_deletion_keeps_the_secret_state_and_record_and_fails_the_run(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}
    world.bundles.fail_delete = TransientError("load balancer busy")

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert (report.outcome, report.failed_step) == (OrphanOutcome.FAILED, "delete bundles")
    assert world.secrets.writes == []
    assert "old" in world.records.states
    assert "old" in world.records.records
    summary = RenewalReport(NOW, NOW, (), orphans=(report,))
    assert summary.failed
    assert "old (no longer configured): retirement failed at delete bundles" in summary.summary()
    assert "busy" not in summary.summary()  # the 502 body names the type, never the message


def test_a_retirement_killed_after_the_secret_is_finished_without_proof(world: World):
    """The secret is pending deletion (unreadable): nothing more is proven, the rest goes."""
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}
    world.secrets.names.discard("old")  # scheduled by the run that died

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert report.outcome is OrphanOutcome.RETIRED
    assert report.vault == "absent"
    assert world.bundles.deletes == []
    assert {b.bundle for b in report.not_proven} == {"acme-old-aa01", "acme-old-ff99"}
    assert "old" not in world.records.states
    assert "old" not in world.records.records


def test_another_holder_of_the_lease_means_skipped_and_nothing_deleted(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}
    world.leases.acquire("old", holder="someone-else", ttl=timedelta(minutes=10))

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert report.outcome is OrphanOutcome.SKIPPED
    assert world.writes() == []


def test_no_retirement_starts_without_a_step_of_time_left(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}

    (report,) = world.service().sweep(deadline=world.clock.mono + 5)

    assert report.outcome is OrphanOutcome.SKIPPED
    assert "time" in report.message
    assert world.writes() == []


def test_a_certificate_configured_again_loses_its_record_and_a_new_removal_waits_again(
    world: World,
):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}

    assert world.service(config("shop", "old")).sweep(deadline=world.clock.mono + 100) == ()
    assert "old" not in world.records.records

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)
    assert report.outcome is OrphanOutcome.NOTICED
    assert world.secrets.writes == []
    assert world.bundles.deletes == []


def test_the_plan_reports_each_decision_and_writes_nothing(world: World):
    (noticed,) = world.service().plan()
    assert (noticed.outcome, noticed.planned) == (OrphanOutcome.NOTICED, True)

    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}
    (due,) = world.service().plan()

    assert due.outcome is OrphanOutcome.DUE
    assert [b.bundle for b in due.deleted] == ["acme-old-aa01"]
    assert [b.bundle for b in due.in_use] == ["acme-old-bb02"]
    assert due.vault == "would schedule"
    assert world.writes() == []
    assert world.leases.current("old") is None


def test_a_grace_of_days_is_configurable_and_bounded():
    assert config("shop").renewal.orphan_grace_days == 30
    assert config("shop").renewal.revoke_on_removal is False
    assert config("shop", grace=1).renewal.orphan_grace_days == 1
    for wrong in (0, 366, "30"):
        with pytest.raises(ConfigError, match=r"renewal\.orphanGraceDays"):
            config("shop", grace=wrong)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"renewal\.revokeOnRemoval"):
        config("shop", revoke="yes")  # type: ignore[arg-type]


def test_revoke_on_removal_revokes_what_no_listener_serves_before_deleting(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}
    world.secrets.stored["old"] += [
        stored("cc03", days_left=-1),  # expired: nothing to revoke
        stored("dd04", account="https://other-ca.example/directory"),
    ]
    world.revoker.already = {"chain-aa01"}

    (report,) = world.service(config("shop", revoke=True)).sweep(deadline=world.clock.mono + 100)

    assert report.outcome is OrphanOutcome.RETIRED, report.message
    # aa01 was already revoked at the CA (counts as done); bb02 is still served: never revoked.
    assert report.revoked == ("aa01",)
    assert world.revoker.revoked == []
    why = dict(report.not_revoked)
    assert "still serves" in why["bb02"]
    assert why["cc03"] == "expired"
    assert "other-ca.example" in why["dd04"]


def test_revoke_on_removal_uses_cessation_of_operation(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}

    world.service(config("shop", revoke=True)).sweep(deadline=world.clock.mono + 100)

    assert world.revoker.revoked == [("chain-aa01", 5)]


def test_a_failed_revocation_stops_before_anything_is_deleted(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}
    world.revoker.fail = TransientError("the CA answered 503")

    (report,) = world.service(config("shop", revoke=True)).sweep(deadline=world.clock.mono + 100)

    assert (report.outcome, report.failed_step) == (OrphanOutcome.FAILED, "revoke")
    assert world.writes() == []


def test_without_revoke_on_removal_nothing_is_revoked(world: World):
    world.records.records["old"] = {"noticed_at": "2026-10-01T00:00:00Z"}

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert report.revoked == ()
    assert world.revoker.revoked == []


def test_listing_failure_is_one_failed_entry(world: World):
    def broken() -> frozenset[str]:
        raise TransientError("ListSecrets answered 500")

    world.secrets.managed_names = broken  # type: ignore[method-assign]

    (report,) = world.service().sweep(deadline=world.clock.mono + 100)

    assert (report.name, report.outcome, report.failed_step) == ("*", OrphanOutcome.FAILED, "list")
    assert world.writes() == []


def test_the_report_is_json_ready(world: World):
    (report,) = world.service().sweep(deadline=world.clock.mono + 100)
    document = replace(report).to_dict()
    assert document["outcome"] == "noticed"
    assert document["retire_at"] == "2026-12-31T12:00:00Z"
    assert RenewalReport(NOW, NOW, (), orphans=(report,)).to_json().count('"orphans"') == 1
