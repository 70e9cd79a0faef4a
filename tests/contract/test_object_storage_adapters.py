"""The Object Storage adapters and their in-memory fakes, held to one contract.

Each contract test runs twice (``params=["fake", "emulator"]``): against the fake the
orchestrator tests use, and against the real adapter driving the emulator through the real
``oci`` SDK, signed with the function's resource principal — so the fakes cannot drift. The
tests after the contracts are about the adapters alone: what lands in which bucket, request
counts, retries, error translation and IAM policies.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer import naming
from renewer.adapters.oci_clients import SERVICES, OciClients, OciSettings
from renewer.adapters.oci_object_storage import (
    ObjectStorageChallengeStore,
    ObjectStorageLease,
    ObjectStorageStateRepository,
)
from renewer.errors import ConfigError
from renewer.ports import ChallengeStore, Lease, LeaseHandle, StateRepository
from sandbox.challenges import InMemoryChallengeStore
from sandbox.oci_emulator.credentials import resource_principal_env
from sandbox.oci_emulator.faults import FaultRule
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    NAMESPACE,
    RunningEmulator,
    make_clients,
)
from tests.support.fakes import FakeClock
from tests.support.fakes_storage import InMemoryLease, InMemoryStateRepository

pytestmark = pytest.mark.integration

CHALLENGES = "acme-challenges"
STATE = "renewer-state"
UNLISTED = "payroll-exports"  # exists, but no policy lets the renewer near it
MISSING = "no-such-bucket"
CERT = "shop-www"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"  # noqa: S105 - public by design (RFC 8555)
KEY_AUTHORIZATION = f"{TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
TTL = timedelta(minutes=10)

FIXTURE: dict[str, Any] = {
    **BASE_FIXTURE,
    "buckets": [
        {"name": CHALLENGES, "compartment": COMPARTMENT},
        {"name": STATE, "compartment": COMPARTMENT},
        {"name": UNLISTED, "compartment": COMPARTMENT},
    ],
}
# The renewer's statement as the Terraform writes it, and nothing more for it.
AUTHORIZED: dict[str, Any] = {
    **FIXTURE,
    "authorization": True,
    "policies": [
        {
            "name": "renewer",
            "statements": [
                "Allow dynamic-group renewer-dg to manage objects in compartment apps"
                f" where any {{target.bucket.name = '{CHALLENGES}',"
                f" target.bucket.name = '{STATE}'}}",
            ],
        },
        {"name": "admins", "statements": ["Allow group Admins to manage all-resources in tenancy"]},
    ],
}


@pytest.fixture
def fixture_data(request: pytest.FixtureRequest) -> dict[str, Any]:
    """``FIXTURE``, or what a test passes with ``parametrize(..., indirect=True)``."""
    return getattr(request, "param", FIXTURE)


# ---------------------------------------------------------------------- harness


class GatedClock:
    """A ``FakeClock`` whose ``now()`` can first make concurrent callers meet at a barrier.

    With ``gate`` set, every ``now()`` waits until all parties have called it: that lines up
    racing acquirers at the points where they read the time, which both lease implementations
    do when they start and again after reading an existing lease — so every racer has read the
    same stale lease before any of them swaps it.
    """

    def __init__(self) -> None:
        self.inner = FakeClock()
        self.gate: threading.Barrier | None = None

    def now(self) -> datetime:
        if self.gate is not None:
            self.gate.wait(timeout=10)
        return self.inner.now()

    def monotonic(self) -> float:
        return self.inner.monotonic()

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)

    def advance(self, delta: timedelta) -> None:
        self.inner.sleep(delta.total_seconds())


@pytest.fixture
def renewer_clients(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], OciClients]:
    """Builds ``OciClients`` the way the function does: resource principal, bounded retries."""
    principal = emulator.tenancy.principals["renewer"]
    env = resource_principal_env(emulator.emulator, principal, tmp_path / "renewer")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = OciSettings(
        endpoints=dict.fromkeys(SERVICES, emulator.endpoint),
        retry_attempts=3,
        retry_seconds=5,
        retry_backoff=0.01,
    )
    return lambda: OciClients(settings)


@pytest.fixture
def operator(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An operator's ObjectStorageClient (API key), to look at what the adapters wrote."""
    return make_clients(emulator, "api_key", tmp_path, monkeypatch).object_storage


def read_object(operator: Any, bucket: str, name: str) -> Any:
    """The operator's GetObject response, or None for 404."""
    try:
        return operator.get_object(NAMESPACE, bucket, name)
    except oci.exceptions.ServiceError as exc:
        if exc.status == 404:
            return None
        raise


def stored_objects(emulator: RunningEmulator) -> dict[str, list[str]]:
    """Object names per bucket, straight from the emulator's state."""
    with emulator.emulator.state.lock:
        buckets = emulator.emulator.state.data["objectstorage"]["buckets"]
        return {name: sorted(bucket["objects"]) for name, bucket in buckets.items()}


def requests_made(emulator: RunningEmulator) -> list[tuple[str, int]]:
    return [(e["operation"], e["status"]) for e in emulator.emulator.requests]


def _nothing_published(token: str) -> None:
    del token


@dataclass
class Contract:
    """One implementation of a port under the contract tests, and how to observe it."""

    backend: str
    port: Any
    clock: GatedClock = field(default_factory=GatedClock)
    # What a challenge store serves for a token (None when nothing is published).
    published: Callable[[str], str | None] = _nothing_published
    # (operation, status) of every request sent so far; the fakes send none.
    requests: Callable[[], list[tuple[str, int]]] = list


@pytest.fixture(params=["fake", "emulator"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def emulated(request: pytest.FixtureRequest) -> tuple[OciClients, Callable[[], list[Any]]]:
    """The renewer's clients on a fresh emulator, and that emulator's request log."""
    emulator: RunningEmulator = request.getfixturevalue("emulator")
    clients = request.getfixturevalue("renewer_clients")()
    return clients, lambda: requests_made(emulator)


@pytest.fixture
def challenges(backend: str, request: pytest.FixtureRequest) -> Contract:
    if backend == "fake":
        fake = InMemoryChallengeStore()
        return Contract(backend, fake, published=fake.get)
    clients, requests = emulated(request)
    operator = request.getfixturevalue("operator")

    def published(token: str) -> str | None:
        found = read_object(operator, CHALLENGES, naming.challenge_object(token))
        return None if found is None else found.data.content.decode()

    store = ObjectStorageChallengeStore(clients, namespace=NAMESPACE, bucket=CHALLENGES)
    return Contract(backend, store, published=published, requests=requests)


@pytest.fixture
def leases(backend: str, request: pytest.FixtureRequest) -> Contract:
    clock = GatedClock()
    if backend == "fake":
        return Contract(backend, InMemoryLease(clock), clock=clock)
    clients, requests = emulated(request)
    lease = ObjectStorageLease(clients, namespace=NAMESPACE, bucket=STATE, clock=clock)
    return Contract(backend, lease, clock=clock, requests=requests)


@pytest.fixture
def states(backend: str, request: pytest.FixtureRequest) -> Contract:
    if backend == "fake":
        return Contract(backend, InMemoryStateRepository())
    clients, requests = emulated(request)
    repository = ObjectStorageStateRepository(clients, namespace=NAMESPACE, bucket=STATE)
    return Contract(backend, repository, requests=requests)


# ---------------------------------------------------------------------- ChallengeStore contract


def test_present_publishes_the_key_authorization(challenges: Contract):
    store: ChallengeStore = challenges.port
    store.present(TOKEN, KEY_AUTHORIZATION)
    assert challenges.published(TOKEN) == KEY_AUTHORIZATION


def test_present_is_idempotent_and_the_last_write_wins(challenges: Contract):
    store: ChallengeStore = challenges.port
    store.present(TOKEN, KEY_AUTHORIZATION)
    store.present(TOKEN, KEY_AUTHORIZATION)
    assert challenges.published(TOKEN) == KEY_AUTHORIZATION
    store.present(TOKEN, f"{TOKEN}.another-thumbprint")
    assert challenges.published(TOKEN) == f"{TOKEN}.another-thumbprint"


def test_clean_up_removes_it_and_can_be_repeated(challenges: Contract):
    store: ChallengeStore = challenges.port
    store.present(TOKEN, KEY_AUTHORIZATION)
    store.present("other_token", "other_token.x")
    store.clean_up(TOKEN)
    assert challenges.published(TOKEN) is None
    store.clean_up(TOKEN)
    assert challenges.published("other_token") == "other_token.x"


def test_clean_up_of_a_token_never_presented_succeeds(challenges: Contract):
    store: ChallengeStore = challenges.port
    store.clean_up("never-presented")
    assert challenges.published("never-presented") is None


# ---------------------------------------------------------------------- Lease contract


def test_acquire_gives_a_handle_until_the_ttl_runs_out(leases: Contract):
    lease: Lease = leases.port
    handle = lease.acquire(CERT, holder="run-a", ttl=TTL)
    assert handle is not None
    assert (handle.name, handle.holder) == (CERT, "run-a")
    assert handle.expires_at == leases.clock.now() + TTL
    assert handle.tag


def test_a_live_lease_is_not_given_to_another_holder(leases: Contract):
    lease: Lease = leases.port
    assert lease.acquire(CERT, holder="run-a", ttl=TTL) is not None
    assert lease.acquire(CERT, holder="run-b", ttl=TTL) is None
    leases.clock.advance(TTL - timedelta(seconds=1))
    assert lease.acquire(CERT, holder="run-b", ttl=TTL) is None


def test_current_tells_who_holds_the_lease_and_until_when(leases: Contract):
    lease: Lease = leases.port
    assert lease.current(CERT) is None
    handle = lease.acquire(CERT, holder="run-a", ttl=TTL)
    assert handle is not None

    held = lease.current(CERT)

    assert held is not None
    assert (held.holder, held.expires_at, held.tag) == ("run-a", handle.expires_at, handle.tag)
    lease.release(handle)
    assert lease.current(CERT) is None


def test_an_expired_lease_is_taken_over(leases: Contract):
    lease: Lease = leases.port
    first = lease.acquire(CERT, holder="run-a", ttl=TTL)
    assert first is not None
    leases.clock.advance(TTL)
    second = lease.acquire(CERT, holder="run-b", ttl=TTL)
    assert second is not None
    assert second.holder == "run-b"
    assert second.tag != first.tag
    assert second.expires_at == leases.clock.now() + TTL
    assert lease.acquire(CERT, holder="run-a", ttl=TTL) is None


def test_the_same_holder_refreshes_its_own_live_lease(leases: Contract):
    lease: Lease = leases.port
    first = lease.acquire(CERT, holder="run-a", ttl=TTL)
    assert first is not None
    leases.clock.advance(timedelta(minutes=1))
    again = lease.acquire(CERT, holder="run-a", ttl=TTL)
    assert again is not None
    assert again.expires_at == first.expires_at + timedelta(minutes=1)
    assert again.tag != first.tag
    lease.release(first)  # a handle from before the refresh no longer releases it
    assert lease.acquire(CERT, holder="run-b", ttl=TTL) is None
    lease.release(again)
    assert lease.acquire(CERT, holder="run-b", ttl=TTL) is not None


def test_of_several_runs_taking_over_one_stale_lease_exactly_one_wins(leases: Contract):
    lease: Lease = leases.port
    assert lease.acquire(CERT, holder="crashed-run", ttl=TTL) is not None
    leases.clock.advance(TTL + timedelta(seconds=1))
    racers = ["run-a", "run-b", "run-c"]
    leases.clock.gate = threading.Barrier(len(racers))
    with ThreadPoolExecutor(len(racers)) as pool:
        handles = list(pool.map(lambda h: lease.acquire(CERT, holder=h, ttl=TTL), racers))
    leases.clock.gate = None
    winners = [h for h in handles if h is not None]
    assert len(winners) == 1
    if leases.backend == "emulator":
        # Every racer's create was refused, and the losers' swaps on the same stale ETag too.
        assert leases.requests().count(("PutObject", 412)) == 2 * len(racers) - 1
    assert lease.acquire(CERT, holder="late-run", ttl=TTL) is None
    lease.release(winners[0])
    assert lease.acquire(CERT, holder="late-run", ttl=TTL) is not None


def test_a_release_after_a_takeover_leaves_the_new_lease_alone(leases: Contract):
    lease: Lease = leases.port
    old = lease.acquire(CERT, holder="slow-run", ttl=TTL)
    assert old is not None
    leases.clock.advance(TTL + timedelta(minutes=1))
    new = lease.acquire(CERT, holder="next-run", ttl=TTL)
    assert new is not None
    lease.release(old)
    assert lease.acquire(CERT, holder="third-run", ttl=TTL) is None
    lease.release(new)
    assert lease.acquire(CERT, holder="third-run", ttl=TTL) is not None


def test_release_frees_the_lease_and_a_second_release_is_a_no_op(leases: Contract):
    lease: Lease = leases.port
    handle = lease.acquire(CERT, holder="run-a", ttl=TTL)
    assert handle is not None
    lease.release(handle)
    lease.release(handle)
    lease.release(
        LeaseHandle(name="never-held", holder="run-a", expires_at=handle.expires_at, tag="x")
    )
    assert lease.acquire(CERT, holder="run-b", ttl=TTL) is not None


def test_remove_expired_removes_a_dead_holders_lease_and_never_a_live_one(leases: Contract):
    lease: Lease = leases.port
    assert lease.remove_expired(CERT) is None  # no lease at all
    held = lease.acquire(CERT, holder="dead-run", ttl=TTL)
    assert held is not None
    leases.clock.advance(TTL - timedelta(seconds=1))
    assert lease.remove_expired(CERT) is None  # live: its holder may still be working
    assert lease.acquire(CERT, holder="other-run", ttl=TTL) is None
    leases.clock.advance(timedelta(seconds=1))
    before = len(leases.requests())

    removed = lease.remove_expired(CERT)

    assert removed is not None
    assert (removed.holder, removed.expires_at) == ("dead-run", held.expires_at)
    if leases.backend == "emulator":  # one read, one conditional delete
        assert [op for op, _ in leases.requests()[before:]] == ["GetObject", "DeleteObject"]
    assert lease.remove_expired(CERT) is None
    lease.release(held)  # the dead holder's handle no longer matches anything: a no-op
    assert lease.acquire(CERT, holder="next-run", ttl=TTL) is not None


def test_leases_of_different_certificates_are_independent(leases: Contract):
    lease: Lease = leases.port
    assert lease.acquire(CERT, holder="run-a", ttl=TTL) is not None
    assert lease.acquire("shop-api", holder="run-b", ttl=TTL) is not None


@pytest.mark.parametrize(
    ("name", "holder", "ttl"),
    [
        ("../x", "run-a", TTL),
        ("Shop-WWW", "run-a", TTL),
        (CERT, "", TTL),
        (CERT, "run-a", timedelta(0)),
        (CERT, "run-a", -TTL),
    ],
)
def test_bad_lease_arguments_are_refused_before_any_request(leases: Contract, name, holder, ttl):
    lease: Lease = leases.port
    with pytest.raises(ConfigError):
        lease.acquire(name, holder=holder, ttl=ttl)
    assert leases.requests() == []


# ---------------------------------------------------------------------- StateRepository contract

STATE_DOC: dict[str, object] = {
    "consecutiveFailures": 2,
    "nextAttempt": "2026-11-27T12:00:00Z",
    "ari": {"start": "2026-12-01T00:00:00Z", "retryAfter": 21600, "explanation": None},
    "deployed": [{"lb": "ocid1.loadbalancer.oc1..x", "listener": "https", "ok": True}],
    "note": "naïve café ✓",
}


def test_load_of_nothing_saved_is_none(states: Contract):
    repository: StateRepository = states.port
    assert repository.load(CERT) is None


def test_save_then_load_round_trips(states: Contract):
    repository: StateRepository = states.port
    repository.save(CERT, STATE_DOC)
    assert repository.load(CERT) == STATE_DOC


def test_save_replaces_and_states_are_per_certificate(states: Contract):
    repository: StateRepository = states.port
    repository.save(CERT, STATE_DOC)
    repository.save(CERT, {"consecutiveFailures": 0})
    repository.save(CERT, {"consecutiveFailures": 0})
    repository.save("shop-api", {"other": True})
    assert repository.load(CERT) == {"consecutiveFailures": 0}
    assert repository.load("shop-api") == {"other": True}


@pytest.mark.parametrize(
    "bad", [{"when": datetime(2026, 1, 1, tzinfo=UTC)}, {"ratio": float("nan")}]
)
def test_a_value_that_is_not_json_is_refused_before_anything_is_written(states: Contract, bad):
    repository: StateRepository = states.port
    with pytest.raises((TypeError, ValueError)):
        repository.save(CERT, bad)
    assert repository.load(CERT) is None


def test_a_bad_certificate_name_is_a_config_error(states: Contract):
    repository: StateRepository = states.port
    with pytest.raises(ConfigError, match="certificate name"):
        repository.save("../leases/x", {})
    with pytest.raises(ConfigError, match="certificate name"):
        repository.load("a/b")
    assert states.requests() == []


# ---------------------------------------------------------------------- the adapters alone


@pytest.fixture
def adapters(renewer_clients: Callable[[], OciClients]) -> Callable[..., Any]:
    """``adapters(port, bucket=..., clock=...)``: one adapter on the renewer's clients."""

    def build(port: str, *, bucket: str | None = None, clock: Any = None) -> Any:
        clients = renewer_clients()
        if port == "challenges":
            return ObjectStorageChallengeStore(
                clients, namespace=NAMESPACE, bucket=bucket or CHALLENGES
            )
        if port == "lease":
            return ObjectStorageLease(
                clients, namespace=NAMESPACE, bucket=bucket or STATE, clock=clock or FakeClock()
            )
        return ObjectStorageStateRepository(clients, namespace=NAMESPACE, bucket=bucket or STATE)

    return build


@pytest.mark.parametrize("token", ["../x", "a/b", "tok\n", "", "tok en", "tök", "a?b=c", "."])
def test_bad_tokens_are_refused_before_any_request(emulator, adapters, token):
    store = adapters("challenges")
    with pytest.raises(ConfigError, match=r"\[A-Za-z0-9_-\]\+"):
        store.present(token, KEY_AUTHORIZATION)
    with pytest.raises(ConfigError):
        store.clean_up(token)
    assert "PutObject" not in emulator.emulator.operations_called()
    assert requests_made(emulator) == []


def test_objects_land_in_the_configured_buckets_with_their_names_and_types(
    emulator, adapters, operator
):
    clock = FakeClock()
    adapters("challenges").present(TOKEN, KEY_AUTHORIZATION)
    handle = adapters("lease", clock=clock).acquire(CERT, holder="call-01", ttl=TTL)
    adapters("state").save(CERT, STATE_DOC)

    assert stored_objects(emulator) == {
        CHALLENGES: [f".well-known/acme-challenge/{TOKEN}"],
        STATE: [f"leases/{CERT}.json", f"state/{CERT}.json"],
        UNLISTED: [],
    }
    challenge = read_object(operator, CHALLENGES, f".well-known/acme-challenge/{TOKEN}")
    assert challenge.headers["content-type"] == "text/plain"
    assert challenge.data.content == KEY_AUTHORIZATION.encode()

    lease = read_object(operator, STATE, f"leases/{CERT}.json")
    assert lease.headers["content-type"] == "application/json"
    assert lease.headers["etag"] == handle.tag
    document = json.loads(lease.data.content)
    assert set(document) == {"holder", "acquiredAt", "expiresAt"}
    assert document["holder"] == "call-01"
    assert document["acquiredAt"].endswith("Z")
    assert datetime.fromisoformat(document["acquiredAt"]) == clock.now()
    assert datetime.fromisoformat(document["expiresAt"]) == handle.expires_at == clock.now() + TTL

    state = read_object(operator, STATE, f"state/{CERT}.json")
    assert state.headers["content-type"] == "application/json"
    assert json.loads(state.data.content) == STATE_DOC


def test_an_uncontended_acquire_and_release_take_one_request_each(emulator, adapters):
    lease = adapters("lease")
    handle = lease.acquire(CERT, holder="call-01", ttl=TTL)
    lease.release(handle)
    assert requests_made(emulator) == [("PutObject", 200), ("DeleteObject", 204)]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"holder": "x"}', b'{"holder": 1}'])
def test_an_unreadable_lease_counts_as_expired(emulator, adapters, operator, caplog, body):
    operator.put_object(NAMESPACE, STATE, f"leases/{CERT}.json", body)
    handle = adapters("lease").acquire(CERT, holder="call-01", ttl=TTL)
    assert handle is not None
    assert "lease unreadable" in caplog.text
    assert "treating it as expired" in caplog.text


def test_a_refused_create_that_finds_our_own_record_keeps_it(emulator, adapters):
    # What a retried create sees when its first answer was lost: its own lease, written by the
    # first attempt. A frozen clock makes the second acquire write exactly that record.
    lease = adapters("lease", clock=FakeClock())
    first = lease.acquire(CERT, holder="call-01", ttl=TTL)
    again = lease.acquire(CERT, holder="call-01", ttl=TTL)
    assert again == first
    assert requests_made(emulator) == [("PutObject", 200), ("PutObject", 412), ("GetObject", 200)]


def test_release_no_ops_are_logged(emulator, adapters, caplog):
    clock = FakeClock()
    lease = adapters("lease", clock=clock)
    old = lease.acquire(CERT, holder="slow-run", ttl=TTL)
    clock.sleep(TTL.total_seconds())
    assert lease.acquire(CERT, holder="next-run", ttl=TTL) is not None
    lease.release(old)
    assert "reason=no-longer-ours" in caplog.text
    lease.release(LeaseHandle(name="shop-api", holder="x", expires_at=old.expires_at, tag="t"))
    assert "reason=already-gone" in caplog.text


@pytest.mark.parametrize("body", [b"garbage", b"[1, 2]", b'"text"'])
def test_an_unreadable_state_is_treated_as_absent(emulator, adapters, operator, caplog, body):
    operator.put_object(NAMESPACE, STATE, f"state/{CERT}.json", body)
    assert adapters("state").load(CERT) is None
    assert "state unreadable" in caplog.text


CALLS_ON_A_BUCKET: dict[str, Callable[[Any], object]] = {
    "present": lambda a: a.present(TOKEN, KEY_AUTHORIZATION),
    "clean_up": lambda a: a.clean_up(TOKEN),
    "acquire": lambda a: a.acquire(CERT, holder="call-01", ttl=TTL),
    "release": lambda a: a.release(
        LeaseHandle(
            name=CERT, holder="call-01", expires_at=datetime(2026, 1, 1, tzinfo=UTC), tag="t"
        )
    ),
    "save": lambda a: a.save(CERT, STATE_DOC),
    "load": lambda a: a.load(CERT),
}
PORT_OF = {
    "present": "challenges",
    "clean_up": "challenges",
    "acquire": "lease",
    "release": "lease",
    "save": "state",
    "load": "state",
}


@pytest.mark.parametrize("call", ["present", "acquire"])  # plain and conditional writes
def test_a_503_on_put_is_retried_by_the_client(emulator, adapters, call):
    emulator.emulator.faults.add(
        FaultRule.from_json({"operation": "PutObject", "times": 1, "status": 503})
    )
    CALLS_ON_A_BUCKET[call](adapters(PORT_OF[call]))
    assert requests_made(emulator) == [("PutObject", 503), ("PutObject", 200)]
    assert sum(len(names) for names in stored_objects(emulator).values()) == 1


@pytest.mark.parametrize("call", list(CALLS_ON_A_BUCKET))
def test_a_missing_bucket_is_a_config_error_naming_it(emulator, adapters, call):
    adapter = adapters(PORT_OF[call], bucket=MISSING)
    with pytest.raises(ConfigError) as info:
        CALLS_ON_A_BUCKET[call](adapter)
    message = str(info.value)
    assert f"bucket {MISSING!r}" in message
    assert "BucketNotFound" in message
    assert "policy" in message
    assert "opc-request-id" in message
    assert KEY_AUTHORIZATION not in message


def test_an_empty_bucket_or_namespace_is_a_config_error(renewer_clients):
    clients = renewer_clients()
    with pytest.raises(ConfigError, match="bucket ''"):
        ObjectStorageStateRepository(clients, namespace=NAMESPACE, bucket="")
    with pytest.raises(ConfigError, match="namespace ' x'"):
        ObjectStorageChallengeStore(clients, namespace=" x", bucket=CHALLENGES)


# ---------------------------------------------------------------------- IAM policies


@pytest.mark.parametrize("fixture_data", [AUTHORIZED], indirect=True)
def test_the_renewers_policy_covers_every_call(emulator, adapters):
    store = adapters("challenges")
    store.present(TOKEN, KEY_AUTHORIZATION)
    store.present(TOKEN, KEY_AUTHORIZATION)  # an overwrite needs more than a create
    store.clean_up(TOKEN)
    store.clean_up(TOKEN)

    clock = FakeClock()
    lease = adapters("lease", clock=clock)
    stale = lease.acquire(CERT, holder="call-01", ttl=TTL)
    assert lease.acquire(CERT, holder="call-02", ttl=TTL) is None
    clock.sleep(TTL.total_seconds())
    handle = lease.acquire(CERT, holder="call-02", ttl=TTL)
    assert handle is not None
    lease.release(stale)
    lease.release(handle)

    repository = adapters("state")
    repository.save(CERT, STATE_DOC)
    assert repository.load(CERT) == STATE_DOC
    assert adapters("state").load("shop-api") is None

    renewer = emulator.tenancy.principals["renewer"].id
    log = emulator.emulator.requests
    assert {entry["principal"] for entry in log} == {renewer}
    assert all(entry["status"] in (200, 204, 404, 412) for entry in log), log
    assert stored_objects(emulator)[STATE] == [f"state/{CERT}.json"]


@pytest.mark.parametrize("fixture_data", [AUTHORIZED], indirect=True)
@pytest.mark.parametrize("call", ["present", "acquire", "save", "load"])
def test_a_bucket_without_a_policy_is_a_config_error_and_nothing_is_written(
    emulator, adapters, call
):
    adapter = adapters(PORT_OF[call], bucket=UNLISTED)
    with pytest.raises(ConfigError, match="policy") as info:
        CALLS_ON_A_BUCKET[call](adapter)
    assert f"bucket {UNLISTED!r}" in str(info.value)
    assert stored_objects(emulator) == {CHALLENGES: [], STATE: [], UNLISTED: []}


# ---------------------------------------------------------------- challenge bucket check (rule 6)


def test_check_of_the_challenge_bucket_is_one_list_and_writes_nothing(
    emulator: RunningEmulator, renewer_clients: Callable[[], OciClients]
):
    store = ObjectStorageChallengeStore(renewer_clients(), namespace=NAMESPACE, bucket=CHALLENGES)
    before = len(emulator.emulator.requests)
    store.check()
    assert requests_made(emulator)[before:] == [("ListObjects", 200)]


@pytest.mark.parametrize(
    ("namespace", "bucket"),
    [(NAMESPACE, "no-such-bucket"), ("wrongnamespace", CHALLENGES)],
    ids=["unknown-bucket", "wrong-namespace"],
)
def test_check_names_the_challenge_bucket_that_cannot_be_used(
    emulator: RunningEmulator,
    renewer_clients: Callable[[], OciClients],
    namespace: str,
    bucket: str,
):
    store = ObjectStorageChallengeStore(renewer_clients(), namespace=namespace, bucket=bucket)
    with pytest.raises(ConfigError, match=r"challenge bucket \(oci\.challengeBucket\)") as info:
        store.check()
    assert repr(bucket) in str(info.value)
    assert all(operation == "ListObjects" for operation, _ in requests_made(emulator))
