"""The fan-out statements Terraform writes (``fan_out_statements`` in documents.tf) are exactly
what a fan-out needs: with the renewer's statements and them, the function reads itself and
invokes itself detached in the sandbox; without either one, the emulator refuses
(NotAuthorizedOrNotFound) and nothing is invoked. ``fan_out = false`` writes none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_functions import FunctionsInvoker
from renewer.errors import ConfigError
from sandbox.fleet import FUNCTION_ID, FleetWorld
from sandbox.pebble import PebbleBinaries
from sandbox.world import COMPARTMENT, KEY_ID, LB_ID, TOPIC_ID, VAULT_ID
from tests.terraform.stack import EXAMPLE_BOUND, ROOT, Evaluation, Module, example_inputs
from tests.terraform.test_policies_e2e import WORLD_GROUPS, as_policies, as_world_statement

pytestmark = pytest.mark.e2e


def evaluated(**overrides: Any) -> tuple[Any, list[str], list[str]]:
    """(stack names, renewer statements, fan-out statements) of the basic example."""
    inputs = example_inputs("basic", {"compartment_ocid": COMPARTMENT, "load_balancer_id": LB_ID})
    inputs.update(overrides)
    bound = {**EXAMPLE_BOUND, "vault_id": VAULT_ID, "key_id": KEY_ID, "topic_id": TOPIC_ID}
    evaluation = Evaluation(Module.load(ROOT), inputs, bound)
    evaluation.validate_all()
    return (
        evaluation,
        evaluation.local("renewer_statements"),
        evaluation.local("fan_out_statements"),
    )


class _Names:
    def __init__(self, evaluation: Any) -> None:
        self.renewer_dynamic_group = evaluation.local("renewer_dynamic_group")
        self.token_server_dynamic_group = evaluation.local("token_server_dynamic_group")


def world_statements(evaluation: Any, texts: list[str]) -> list[str]:
    return [as_world_statement(t, _Names(evaluation)) for t in texts]  # type: ignore[arg-type]


def invoke(tmp_path: Path, statements: list[str]) -> str | None:
    """In a fresh world with ``statements``: the fan-out's calls; None, or why they failed."""
    with FleetWorld(
        tmp_path,
        layout=[1],
        function={"timeoutInSeconds": 300, "detachedModeTimeoutInSeconds": 3600},
        policies=as_policies([("renewer", s) for s in statements]),
    ) as world:
        world.attach_function()
        clients = OciClients(world.oci_settings())
        try:
            FunctionsInvoker(clients, FUNCTION_ID).invoke_detached({"action": "plan"})
        except ConfigError as exc:
            assert world.emulator.services["functions"].invocations() == []
            return str(exc)
        finally:
            clients.close()
        functions = world.emulator.services["functions"]
        assert functions.wait_idle(timeout=120)
        assert len(functions.invocations(type="detached")) == 1
        return None


def test_the_fan_out_statements_are_two_and_scoped_to_the_compartment() -> None:
    evaluation, _, fan_out = evaluated()
    group = WORLD_GROUPS["renewer"]
    assert world_statements(evaluation, fan_out) == [
        f"Allow dynamic-group {group} to read fn-function in compartment id {COMPARTMENT}",
        f"Allow dynamic-group {group} to use fn-invocation in compartment id {COMPARTMENT}",
    ]
    assert evaluated(fan_out=False)[2] == []


def test_a_fan_out_passes_with_exactly_terraforms_statements(
    tmp_path: Path, pebble_binaries: PebbleBinaries
) -> None:
    evaluation, renewer, fan_out = evaluated()
    assert invoke(tmp_path, world_statements(evaluation, renewer + fan_out)) is None


@pytest.mark.parametrize(
    "removed", [0, 1], ids=["without read fn-function", "without use fn-invocation"]
)
def test_removing_either_fan_out_statement_is_refused(
    tmp_path: Path, pebble_binaries: PebbleBinaries, removed: int
) -> None:
    evaluation, renewer, fan_out = evaluated()
    kept = [s for i, s in enumerate(fan_out) if i != removed]
    failure = invoke(tmp_path, world_statements(evaluation, renewer + kept))
    assert failure is not None
    assert "NotAuthorizedOrNotFound" in failure or "not authorized" in failure.lower(), failure
