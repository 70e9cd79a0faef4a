"""OCI Functions' GetFunction and InvokeFunction: the emulator through the real SDK, and the
``FunctionsInvoker`` adapter a fan-out uses (its own invoke endpoint, detached mode, policies).

Sources: SDK 2.189 ``FunctionsManagementClient.get_function`` / ``Function`` model,
``FunctionsInvokeClient.invoke_function`` (``fn_invoke_type`` sync|detached); the Functions
policy reference (GetFunction: FN_FUNCTION_READ, ``read fn-function``; InvokeFunction:
FN_INVOCATION, ``use fn-invocation``; general variables only).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_functions import FunctionsInvoker, continue_detached
from renewer.errors import ConfigError
from renewer.report import CertificateReport, Outcome, RenewalReport, RunReason
from tests.contract.conftest import BASE_FIXTURE, RunningEmulator, renewer_oci_clients

pytestmark = pytest.mark.integration

FUNCTION = "ocid1.fnfunc.oc1.phx.renewerfunction"  # the renewer principal's own OCID
OTHER = "ocid1.fnfunc.oc1.phx.payroll"  # in a compartment no policy covers
MISSING = "ocid1.fnfunc.oc1.phx.missing"


def _fixture(statements: list[str]) -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "compartments": [
            *BASE_FIXTURE["compartments"],
            {"name": "finance", "id": "ocid1.compartment.oc1..finance"},
        ],
        "functions": [
            {
                "id": FUNCTION,
                "compartment": "apps",
                "timeoutInSeconds": 300,
                "detachedModeTimeoutInSeconds": 3600,
            },
            {"id": OTHER, "compartment": "finance"},
        ],
        "authorization": True,
        "policies": [
            {"name": "renewer", "statements": statements},
            {
                "name": "admins",
                "statements": ["Allow group Admins to manage all-resources in tenancy"],
            },
        ],
    }


FAN_OUT = [
    "Allow dynamic-group renewer-dg to read fn-function in compartment apps",
    "Allow dynamic-group renewer-dg to use fn-invocation in compartment apps",
]


@pytest.fixture
def fixture_data(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _fixture(getattr(request, "param", FAN_OUT))


@pytest.fixture
def clients(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return renewer_oci_clients(emulator, tmp_path, monkeypatch)


def attach(emulator: RunningEmulator, tmp_path: Path) -> None:
    # No configuration at all: the function answers at once with its typed error (502).
    emulator.emulator.services["functions"].attach(FUNCTION, {}, tmp_path / "fn")


def test_get_function_answers_the_model_with_its_invoke_endpoint(
    clients: OciClients, emulator: RunningEmulator
) -> None:
    function = clients.client("functions_management").get_function(FUNCTION).data

    assert isinstance(function, oci.functions.models.Function)
    assert function.invoke_endpoint == emulator.endpoint
    assert function.detached_mode_timeout_in_seconds == 3600
    assert function.timeout_in_seconds == 300
    assert function.lifecycle_state == "ACTIVE"


def test_a_detached_invocation_is_accepted_at_once_and_runs_the_real_fdk_server(
    clients: OciClients, emulator: RunningEmulator, tmp_path: Path
) -> None:
    attach(emulator, tmp_path)
    invoker = FunctionsInvoker(clients, FUNCTION)

    invoker.invoke_detached({"action": "plan"})

    functions = emulator.emulator.services["functions"]
    assert invoker.detached_timeout_s == 3600
    assert functions.wait_idle(timeout=60)
    (record,) = functions.invocations()
    assert record["type"] == "detached"
    assert json.loads(record["body"]) == {"action": "plan"}
    # The real fdk server ran func.py: without a configuration it fails with its typed error.
    assert record["status"] == 502
    assert "RENEWER_CONFIG" in Path(record["log"]).read_text()


def test_a_sync_invocation_answers_the_functions_own_answer(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    attach(emulator, tmp_path)
    operator = emulator.emulator  # the operator (Admins) may invoke anything
    from sandbox.oci_emulator.credentials import api_key_config  # noqa: PLC0415

    config = api_key_config(operator, emulator.tenancy.principals["operator"], tmp_path / "op")
    client = oci.functions.FunctionsInvokeClient(config, service_endpoint=emulator.endpoint)

    with pytest.raises(oci.exceptions.ServiceError) as failed:
        client.invoke_function(FUNCTION, invoke_function_body="{}", fn_invoke_type="sync")

    assert failed.value.status == 502  # what the FDK answered for a failed call
    assert "RENEWER_CONFIG" in str(failed.value.message)
    with pytest.raises(oci.exceptions.ServiceError) as bad:
        client.invoke_function(FUNCTION, invoke_function_body="{}", fn_invoke_type="eventually")
    assert bad.value.status == 400


@pytest.mark.parametrize(
    ("fixture_data", "refused"),
    [(FAN_OUT[1:], "read function"), (FAN_OUT[:1], "invoke function")],
    indirect=["fixture_data"],
    ids=["without read fn-function", "without use fn-invocation"],
)
def test_each_fan_out_permission_is_needed(
    clients: OciClients, emulator: RunningEmulator, tmp_path: Path, refused: str
) -> None:
    attach(emulator, tmp_path)
    with pytest.raises(ConfigError, match=refused):
        FunctionsInvoker(clients, FUNCTION).invoke_detached({"action": "plan"})
    assert emulator.emulator.services["functions"].invocations() == []


def test_another_compartments_function_and_a_missing_one_look_alike(clients: OciClients) -> None:
    management = clients.client("functions_management")
    for function_id in (OTHER, MISSING):
        with pytest.raises(oci.exceptions.ServiceError) as refused:
            management.get_function(function_id)
        assert (refused.value.status, refused.value.code) == (404, "NotAuthorizedOrNotFound")


def _report(*outcomes: tuple[str, Outcome, str]) -> RenewalReport:
    now = datetime.now(UTC)
    return RenewalReport(
        now, now, tuple(CertificateReport(n, o, r, "") for n, o, r in outcomes), mode="renew"
    )


def test_a_run_that_progressed_continues_what_it_deferred_for_time_detached(
    clients: OciClients, emulator: RunningEmulator, tmp_path: Path
) -> None:
    attach(emulator, tmp_path)
    report = _report(
        ("a", Outcome.RENEWED, "Missing"),
        ("b", Outcome.DEFERRED, RunReason.TIME_BUDGET),
        ("c", Outcome.DEFERRED, RunReason.RATE_LIMITED),  # a later run's, not a continuation's
        ("d", Outcome.DEFERRED, RunReason.TIME_BUDGET),
    )

    parts = continue_detached(report, clients, function_id=FUNCTION, force=True)

    assert parts is not None
    assert parts[0]["certificates"] == ["b", "d"]
    assert parts[0].get("invoked")
    functions = emulator.emulator.services["functions"]
    assert functions.wait_idle(timeout=60)
    (record,) = functions.invocations(type="detached")
    assert json.loads(record["body"]) == {
        "action": "renew",
        "certificates": ["b", "d"],
        "force": True,
    }


def test_a_run_that_made_no_progress_never_chains(
    clients: OciClients, emulator: RunningEmulator, tmp_path: Path
) -> None:
    attach(emulator, tmp_path)
    stuck = _report(("b", Outcome.DEFERRED, RunReason.TIME_BUDGET))
    done = _report(("a", Outcome.RENEWED, "Missing"))

    assert continue_detached(stuck, clients, function_id=FUNCTION, force=False) is None
    assert continue_detached(done, clients, function_id=FUNCTION, force=False) is None
    assert emulator.emulator.services["functions"].invocations() == []
