"""Monitoring's PostMetricData: the emulator's validation through the real SDK, and the
``MonitoringMetricsSink`` adapter (batches of 50, rejected objects counted, errors translated,
the telemetry-ingestion endpoint, the ``use metrics`` policy with its namespace condition)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_clients import OciClients, OciSettings
from renewer.adapters.oci_monitoring import MAX_METRIC_OBJECTS, MonitoringMetricsSink
from renewer.errors import ConfigError, TransientError
from renewer.operations.metrics import MetricPoint
from sandbox.oci_emulator.credentials import api_key_config
from sandbox.oci_emulator.faults import FaultRule
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, RunningEmulator, renewer_oci_clients

pytestmark = pytest.mark.integration

NAMESPACE = "acme_renewer"
POLICY = (
    "Allow dynamic-group renewer-dg to use metrics in compartment apps"
    f" where target.metrics.namespace = '{NAMESPACE}'"
)


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "authorization": True,
        "policies": [{"name": "renewer", "statements": [POLICY]}],
    }


@pytest.fixture
def clients(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return renewer_oci_clients(emulator, tmp_path, monkeypatch)


def point(name: str = "days_to_expiry", value: float = 12.5, **dimensions: str) -> MetricPoint:
    return MetricPoint(
        name, value, dimensions or {"certificateName": "shop"}, datetime.now(UTC), "days"
    )


def raw(**fields: Any) -> Any:
    """A MetricDataDetails with valid defaults; ``fields`` override (None removes)."""
    values: dict[str, Any] = {
        "namespace": NAMESPACE,
        "compartment_id": COMPARTMENT,
        "name": "days_to_expiry",
        "dimensions": {"certificateName": "shop"},
        "datapoints": [oci.monitoring.models.Datapoint(timestamp=datetime.now(UTC), value=1.0)],
    }
    values.update(fields)
    return oci.monitoring.models.MetricDataDetails(**values)


def post(clients: OciClients, *items: Any, atomicity: str = "NON_ATOMIC") -> Any:
    details = oci.monitoring.models.PostMetricDataDetails(
        metric_data=list(items), batch_atomicity=atomicity
    )
    return clients.client("monitoring").post_metric_data(details)


def test_a_valid_post_is_recorded_and_answered_like_oci(emulator, clients):
    response = post(clients, raw(), raw(name="run_outcome", metadata={"unit": "code"}))
    assert response.status == 200
    assert response.data.failed_metrics_count == 0
    assert response.data.failed_metrics == []
    recorded = emulator.emulator.services["monitoring"].posted()
    assert [m["name"] for m in recorded] == ["days_to_expiry", "run_outcome"]
    assert recorded[0]["dimensions"] == {"certificateName": "shop"}
    assert recorded[0]["principal"] == emulator.tenancy.principals["renewer"].id
    assert recorded[1]["metadata"] == {"unit": "code"}


def datapoint(offset: timedelta = timedelta(0), count: int | None = None) -> Any:
    """A datapoint ``offset`` from now, made when the test runs (the window is 2 h / 10 min)."""
    return oci.monitoring.models.Datapoint(
        timestamp=datetime.now(UTC) + offset, value=1.0, count=count
    )


def made(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value() if callable(value) else value for key, value in fields.items()}


BAD_OBJECTS = [
    ({"namespace": "oci_mine"}, "reserved prefix"),
    ({"namespace": "oracle_x"}, "reserved prefix"),
    ({"namespace": "9lives"}, "namespace '9lives' is invalid"),
    ({"namespace": "a-b"}, "namespace 'a-b' is invalid"),
    ({"name": "bad name"}, "name 'bad name' is invalid"),
    ({"name": "x" * 257}, "longer than 256"),
    ({"dimensions": {}}, "1 to 20 dimensions"),
    ({"dimensions": {f"k{i}": "v" for i in range(21)}}, "1 to 20 dimensions"),
    ({"dimensions": {"has space": "v"}}, "Dimension key 'has space' is invalid"),
    ({"dimensions": {"k": ""}}, "1 to 512 characters"),
    ({"dimensions": {"k": "v" * 513}}, "1 to 512 characters"),
    ({"metadata": {"unit": "u" * 257}}, "at most 256 characters"),
    ({"datapoints": []}, "At least one datapoint"),
    ({"datapoints": lambda: [datapoint(-timedelta(hours=2, minutes=1))]}, "allowed window"),
    ({"datapoints": lambda: [datapoint(timedelta(minutes=11))]}, "allowed window"),
    ({"datapoints": lambda: [datapoint(count=0)]}, "count must be an integer greater than zero"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_OBJECTS)
def test_invalid_objects_are_failed_metrics_beside_valid_ones(emulator, clients, fields, message):
    response = post(clients, raw(name="good"), raw(**made(fields)))
    assert response.data.failed_metrics_count == 1
    (failed,) = response.data.failed_metrics
    assert message in failed.message
    assert [m["name"] for m in emulator.emulator.services["monitoring"].posted()] == ["good"]


@pytest.mark.parametrize(("fields", "message"), BAD_OBJECTS[:3])
def test_a_request_with_nothing_valid_is_refused(clients, fields, message):
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        post(clients, raw(**made(fields)))
    assert (caught.value.status, caught.value.code) == (400, "InvalidParameter")
    assert message in caught.value.message


def test_atomic_batches_are_all_or_nothing(emulator, clients):
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        post(clients, raw(name="good"), raw(name="bad name"), atomicity="ATOMIC")
    assert caught.value.status == 400
    assert emulator.emulator.services["monitoring"].posted() == []


def test_more_than_fifty_streams_is_refused(clients):
    items = [raw(dimensions={"certificateName": f"c{i}"}) for i in range(51)]
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        post(clients, *items)
    assert (caught.value.status, caught.value.code) == (400, "LimitExceeded")
    assert post(clients, *items[:50]).data.failed_metrics_count == 0


def test_required_fields(emulator, clients):
    client = clients.client("monitoring")
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        client.base_client.call_api(
            resource_path="/metrics",
            method="POST",
            header_params={"content-type": "application/json"},
            body={"batchAtomicity": "NON_ATOMIC"},
        )
    assert (caught.value.status, caught.value.code) == (400, "MissingParameter")
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        post(clients, raw(compartment_id=None))
    assert "compartmentId" in caught.value.message


def test_the_policy_namespace_condition_and_unknown_compartments(clients):
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        post(clients, raw(namespace="someone_else"))
    assert (caught.value.status, caught.value.code) == (404, "NotAuthorizedOrNotFound")
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        post(clients, raw(compartment_id="ocid1.compartment.oc1..nowhere"))
    assert caught.value.status == 404


# ------------------------------------------------------------------------------------ adapter


def test_the_sink_posts_in_batches_of_fifty(emulator, clients):
    sink = MonitoringMetricsSink(clients, namespace=NAMESPACE, compartment_id=COMPARTMENT)
    points = [point(certificateName=f"c{i}") for i in range(2 * MAX_METRIC_OBJECTS + 3)]
    result = sink.post(points)
    assert (result.accepted, result.rejected) == (103, 0)
    posts = [e for e in emulator.emulator.requests if e["operation"] == "PostMetricData"]
    assert len(posts) == 3
    recorded = emulator.emulator.services["monitoring"].posted()
    assert len(recorded) == 103
    assert recorded[0]["namespace"] == NAMESPACE
    assert recorded[0]["compartmentId"] == COMPARTMENT
    assert recorded[0]["metadata"] == {"unit": "days"}
    assert recorded[0]["datapoints"][0]["value"] == 12.5


def test_the_sink_counts_rejected_objects_with_their_messages(clients):
    sink = MonitoringMetricsSink(clients, namespace=NAMESPACE, compartment_id=COMPARTMENT)
    result = sink.post([point(), point("bad name")])
    assert (result.accepted, result.rejected) == (1, 1)
    assert result.messages[0].startswith("bad name{certificateName=shop}: name 'bad name'")


def test_the_sink_translates_errors(emulator, clients):
    sink = MonitoringMetricsSink(clients, namespace="other_ns", compartment_id=COMPARTMENT)
    with pytest.raises(ConfigError, match=r"404 NotAuthorizedOrNotFound.*opc-request-id"):
        sink.post([point()])
    emulator.emulator.faults.add(
        FaultRule.from_json({"operation": "PostMetricData", "status": 500})
    )
    good = MonitoringMetricsSink(clients, namespace=NAMESPACE, compartment_id=COMPARTMENT)
    with pytest.raises(TransientError, match="500"):
        good.post([point()])


def test_without_an_override_the_sink_uses_telemetry_ingestion(emulator, tmp_path):
    config = api_key_config(emulator.emulator, emulator.tenancy.principals["operator"], tmp_path)
    path = tmp_path / "config"
    path.write_text("[OPS]\n" + "".join(f"{k}={v}\n" for k, v in config.items()))
    settings = OciSettings(
        auth="config_file", config_file=str(path), profile="OPS", region="eu-frankfurt-1"
    )
    sink = MonitoringMetricsSink(
        OciClients(settings), namespace=NAMESPACE, compartment_id=COMPARTMENT
    )
    endpoint = sink._client.base_client.endpoint
    assert endpoint == "https://telemetry-ingestion.eu-frankfurt-1.oraclecloud.com/20180401"


def test_an_override_is_kept(emulator, clients):
    sink = MonitoringMetricsSink(clients, namespace=NAMESPACE, compartment_id=COMPARTMENT)
    assert sink._client.base_client.endpoint == f"{emulator.endpoint}/20180401"
