"""The revoke action records what it revoked, and holds the certificate's lease to do it.

Over the real renewal pipeline with the in-memory fakes of ``test_renewal`` (as
``test_revocation``). The classes of failure guarded: a revocation forgotten once the journal
expires (so a rollback could serve it again), and a rollback or renewal slipping in between the
check that no target serves a version and its revocation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from renewer.errors import AlreadyRevoked
from renewer.operations.status import VersionEntry, rollback_refusal
from renewer.report import Outcome
from renewer.revocation import RevocationReason, RevokedVersion
from renewer.revoker import RevocationRequest, RevocationService
from renewer.settings import Config
from tests.unit.test_renewal import BUDGET, World, new_world, only
from tests.unit.test_revocation import RecordingRevoker


class Records:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, RevokedVersion]] = []

    def record(self, name: str, revoked: RevokedVersion) -> None:
        self.recorded.append((name, revoked))


class LeaseCheckingRevoker(RecordingRevoker):
    """Notes who held the certificate's lease while revokeCert was sent."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.holders: list[str | None] = []

    def revoke(self, fullchain_pem: str, reason_code: int, **kwargs: Any) -> str:
        current = self.world.lease.current("shop")
        self.holders.append(None if current is None else current.holder)
        return super().revoke(fullchain_pem, reason_code, **kwargs)


def service(
    world: World,
    revoker: RecordingRevoker,
    records: Records,
    *,
    after_run: Any = None,  # a callable, called after each renewal run
) -> RevocationService:
    def renewals_for(config: Config) -> Any:
        renewals = world.service(config=config)
        if after_run is None:
            return renewals

        class Run:
            def run(self, **kwargs: Any) -> Any:
                report = renewals.run(**kwargs)
                after_run()
                return report

        return Run()

    return RevocationService(
        config=world.config,
        certificates=world.store,
        revoker=lambda _directory: revoker,
        renewals_for=renewals_for,
        clock=world.clock,
        records=records,
        leases=world.lease,
        holder="revoke-1",
    )


def superseded(version: int) -> RevocationRequest:
    return RevocationRequest(name="shop", version=version, reason=RevocationReason.SUPERSEDED)


def test_a_revocation_is_recorded_under_the_lease_which_is_released_after():
    world = new_world()
    first = only(world.run())
    only(world.run(force=True))
    revoker, records = LeaseCheckingRevoker(world), Records()

    entry = only(
        service(world, revoker, records).revoke(superseded(first.version or 0), budget_s=BUDGET)
    )

    assert entry.reason == "Revoked"
    assert entry.revocation is not None
    assert entry.revocation["recorded"] is True
    assert revoker.holders == ["revoke-1"]
    assert world.lease.current("shop") is None
    ((name, revoked),) = records.recorded
    assert (name, revoked.serial, revoked.version, revoked.reason) == (
        "shop",
        (first.serial or "").lower(),
        first.version,
        "superseded",
    )


def test_another_holder_of_the_lease_at_check_means_nothing_is_revoked():
    world = new_world()
    first = only(world.run())
    only(world.run(force=True))
    revoker, records = RecordingRevoker(world), Records()
    # A rollback takes the lease right after the revoke's own deployment run released it.
    revocations = service(
        world,
        revoker,
        records,
        after_run=lambda: world.lease.acquire(
            "shop", holder="a-rollback", ttl=timedelta(minutes=10)
        ),
    )

    entry = only(revocations.revoke(superseded(first.version or 0), budget_s=BUDGET))

    assert entry.outcome is Outcome.FAILED
    assert entry.failed_step == "check"
    assert "another run" in (entry.error or "")
    assert revoker.calls == []
    assert records.recorded == []
    current = world.lease.current("shop")
    assert current is not None
    assert current.holder == "a-rollback"  # never taken from its holder


def test_already_revoked_at_the_ca_is_recorded_too():
    world = new_world()
    first = only(world.run())
    only(world.run(force=True))
    revoker, records = RecordingRevoker(world), Records()
    revoker.error = AlreadyRevoked("already", problem_type="alreadyRevoked")

    entry = only(
        service(world, revoker, records).revoke(superseded(first.version or 0), budget_s=BUDGET)
    )

    assert entry.error_type == "AlreadyRevoked"
    assert [r.serial for _, r in records.recorded] == [(first.serial or "").lower()]
    assert world.lease.current("shop") is None


def test_rollback_refuses_a_revoked_version():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    entry = VersionEntry(
        version=3, serial="ab", not_after=now + timedelta(days=30), revoked="keyCompromise, x"
    )
    refusal = rollback_refusal(entry, now=now)
    assert refusal is not None
    assert "revoked" in refusal
    assert "keyCompromise" in refusal
    assert rollback_refusal(VersionEntry(version=3, serial="ab"), now=now) is None
