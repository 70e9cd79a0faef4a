"""Adopting what is already there (issue 13 §4), end to end.

The listener serves a valid, publicly trusted (here: Pebble-issued) certificate for the
configured names that the renewer does not hold — a deployment over a fleet already on
certificates. The renewer reports it (issuer, serial, days left) and leaves it until its own
renewal window; a forced run renews at once. The world's self-signed seed is never adopted.
"""

from __future__ import annotations

import pytest

from renewer import pki
from renewer.report import Outcome
from renewer.settings import parse_config
from sandbox.world import SandboxWorld

pytestmark = pytest.mark.e2e

BUDGET = 120.0
NAME = "shop.example.com"


def served_serial(world: SandboxWorld) -> str:
    return pki.normalize_serial(pki.serial_hex(world.served_certificate(NAME)))


def test_a_served_valid_certificate_is_adopted_not_reissued(world: SandboxWorld) -> None:
    first = world.service().run(budget_s=BUDGET).certificates[0]
    assert (first.outcome, first.reason) == (Outcome.RENEWED, "Missing")  # the seed: not adopted
    serving = served_serial(world)
    # Another name for the same listener: the renewer holds nothing under it.
    document = world.config_document()
    document["certificates"][0]["name"] = "shop-fleet"
    config = parse_config(document)
    orders_before = world.pebble_log().count("POST /order-plz")
    assert orders_before == 1

    adopted = world.service(config=config).run(budget_s=BUDGET).certificates[0]
    assert (adopted.outcome, adopted.reason) == (Outcome.SKIPPED, "Adopted")
    assert f"serial {serving}" in adopted.message
    assert "issuer Pebble Intermediate CA" in adopted.message
    assert "days left" in adopted.message
    assert adopted.next_renewal is not None
    assert world.pebble_log().count("POST /order-plz") == orders_before
    assert served_serial(world) == serving
    planned = world.service(config=config).plan().certificates[0]
    assert (planned.reason, planned.due) == ("Adopted", False)

    forced = world.service(config=config).run(budget_s=BUDGET, force=True).certificates[0]
    assert (forced.outcome, forced.reason) == (Outcome.RENEWED, "Forced")
    assert served_serial(world) == forced.serial != serving
