"""The orchestrator with two CAs (issue 17), over in-memory fakes: which CA each run asks, what
the state records, and that a fallback certificate is judged by its own CA's profile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from renewer.ca_issuers import CaListIssuer
from renewer.errors import AcmeUnreachable, RateLimited
from renewer.report import Outcome
from renewer.settings import parse_config
from tests.support.fakes_issuer import FakeIssuer
from tests.unit.test_renewal import World, cert_doc, config_document, new_world, only

pytestmark = pytest.mark.unit

FIRST = "https://acme.first.test/directory"
SECOND = "https://acme.second.test/directory"


def two_cas(second: dict[str, Any] | None = None, **cert: Any) -> World:
    world = new_world()
    document = config_document(cert_doc("shop", **cert))
    document["acme"] = {"cas": [FIRST, {"directoryUrl": SECOND, **(second or {})}]}
    world.config = parse_config(document)
    fakes = {
        FIRST: FakeIssuer(clock=world.clock, account_url="https://acme.first.test/acct/1"),
        SECOND: FakeIssuer(clock=world.clock, account_url="https://acme.second.test/acct/2"),
    }
    world.options["issuer"] = CaListIssuer(fakes, default=FIRST)
    world.fakes = fakes  # type: ignore[attr-defined]
    return world


def fakes(world: World) -> tuple[FakeIssuer, FakeIssuer]:
    pair: dict[str, FakeIssuer] = world.fakes  # type: ignore[attr-defined]
    return pair[FIRST], pair[SECOND]


def test_a_ca_in_backoff_is_skipped_until_its_backoff_ends() -> None:
    world = two_cas()
    first, second = fakes(world)
    first.fail_next(1, RateLimited("slow down", retry_after=600))

    fallback = only(world.run())
    assert (fallback.outcome, fallback.ca, fallback.ca_passed_over) == (
        Outcome.RENEWED,
        "acme.second.test",
        ("acme.first.test",),
    )
    entry = world.state_of()["ca_backoff"][FIRST]
    assert entry["failures"] == 1
    # Retry-After 600 s beats the first step of the table (60 s).
    assert entry["until"] == (world.clock.now() + timedelta(seconds=600)).isoformat()

    world.advance(timedelta(minutes=5))
    during = only(world.run(force=True))
    assert during.ca == "acme.second.test"
    assert (len(first.orders), len(second.orders)) == (1, 2)  # the first CA was not asked

    world.advance(timedelta(minutes=6))
    after = only(world.run(force=True))
    assert after.ca == "acme.first.test"
    assert (len(first.orders), len(second.orders)) == (2, 2)
    assert "ca_backoff" not in world.state_of()


def test_replaces_and_ari_stay_with_the_ca_that_issued_the_certificate() -> None:
    world = two_cas()
    first, second = fakes(world)
    first.fail_next(1, AcmeUnreachable("down"))
    only(world.run())
    world.advance(timedelta(days=61))  # due by lifetime; the first CA is out of its backoff

    renewed = only(world.run())

    assert renewed.ca == "acme.first.test"
    assert first.orders[-1].replaces is None  # the certificate it replaces is the second CA's
    assert len(second.renewal_info_calls) >= 1
    assert first.renewal_info_calls == []


def test_a_fallback_certificate_is_judged_by_its_own_cas_profile() -> None:
    world = two_cas({"profile": "shortlived"}, profile="tlsserver")
    first, second = fakes(world)
    first.fail_next(1, AcmeUnreachable("down"))

    only(world.run())
    assert second.orders[0].profile == "shortlived"
    again = only(world.run())

    assert (again.outcome, again.reason) == (Outcome.SKIPPED, "NotDue"), again
