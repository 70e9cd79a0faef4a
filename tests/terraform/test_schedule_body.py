"""The body Resource Scheduler sends is the one Terraform writes, and it is journaled as scheduled.

``terraform/schedule.tf`` puts ``local.schedule_body`` in the schedule's BODY parameter. That
value, evaluated from the HCL exactly as Terraform would (tests/terraform/hcl_eval.py), is
parsed as a scheduled renewal, and — sent to the real fdk server running ``func.py`` in the
sandbox — produces a report, a journal record and a ``status`` view that all say ``schedule``.
On today's main the schedule sent ``{"action": "renew"}`` and every scheduled run was recorded
as ``manual``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
import pytest

from renewer.invocation import Action, InvalidRequest, Trigger, parse_payload
from sandbox.fn_server import FnServer
from sandbox.pebble import PebbleBinaries, PebbleOptions
from sandbox.world import SandboxWorld
from tests.terraform.hcl_eval import Evaluation, Module
from tests.terraform.stack import EXAMPLE_BOUND, ROOT, example_inputs


def schedule_body() -> str:
    """The one BODY value of the schedule resource, evaluated."""
    tree = hcl2.load((ROOT / "schedule.tf").open(encoding="utf-8"))
    kind = '"oci_resource_scheduler_schedule"'
    (schedule,) = [resource[kind] for resource in tree["resource"] if kind in resource]
    (resources,) = schedule['"renew"']["resources"]
    (parameter,) = resources["parameters"]
    assert parameter["parameter_type"] == '"BODY"'
    # The resource must send the local this test evaluates, not a literal of its own.
    assert parameter["value"] == ["${local.schedule_body}"]
    evaluation = Evaluation(Module.load(ROOT), example_inputs("basic"), EXAMPLE_BOUND)
    body = evaluation.local("schedule_body")
    assert isinstance(body, str)
    return body


@pytest.mark.unit
def test_the_terraform_schedule_body_parses_as_a_scheduled_renewal() -> None:
    invocation = parse_payload(schedule_body().encode())

    assert invocation.effective_action is Action.RENEW
    assert invocation.trigger is Trigger.SCHEDULE
    assert (invocation.certificates, invocation.force) == ((), False)


@pytest.mark.unit
def test_a_body_without_trigger_stays_manual_and_a_foreign_trigger_is_refused() -> None:
    assert parse_payload(b'{"action": "renew"}').trigger is Trigger.MANUAL
    with pytest.raises(InvalidRequest, match="trigger 'event' is not accepted"):
        parse_payload(b'{"action": "renew", "trigger": "event"}')


@pytest.mark.e2e
def test_the_function_journals_the_terraform_body_as_a_scheduled_run(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    del pebble_binaries  # the fixture makes sure Pebble is installed
    options = PebbleOptions(retry_after_authz=0, retry_after_order=0)
    with (
        SandboxWorld(tmp_path / "world", pebble_options=options) as world,
        FnServer(tmp_path / "fn", world.function_environment()) as fn,
    ):
        scheduled = fn.invoke(schedule_body())
        assert scheduled.status == 200, scheduled.text
        renewed: dict[str, Any] = json.loads(scheduled.body)
        status = fn.invoke(b'{"action": "status"}')
        assert status.status == 200, status.text
        runs = json.loads(status.body)["runs"]

    assert (renewed["action"], renewed["trigger"]) == ("renew", "schedule")
    assert renewed["certificates"][0]["outcome"] == "renewed"
    assert renewed["journal"]
    (run,) = runs
    assert (run["trigger"], run["action"], run["call_id"]) == (
        "schedule",
        "renew",
        renewed["call_id"],
    )
