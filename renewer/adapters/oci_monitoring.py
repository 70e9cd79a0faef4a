"""``MetricsSink`` on OCI Monitoring: custom metrics through ``PostMetricData``.

Wire facts (SDK ``oci.monitoring`` 2.189 docstrings; OCI "Publishing Custom Metrics"):

* PostMetricData is served by ``telemetry-ingestion.<region>``, not the ``telemetry.<region>``
  endpoint the SDK derives for Monitoring's other operations. Without an endpoint override this
  adapter rewrites the client's endpoint (:func:`ingestion_endpoint`); an override (the sandbox's
  emulator, a dedicated region) is used as given.
* Per request at most 50 unique metric streams, so datapoints go in batches of
  :data:`MAX_METRIC_OBJECTS` metric objects (one stream, one datapoint each); 1 to 20
  dimensions per metric; a datapoint's timestamp less than two hours in the past and less than
  10 minutes in the future.
* ``batchAtomicity=NON_ATOMIC`` (the default): objects that fail validation come back in
  ``failedMetrics`` with a message while the others are stored; only a request whose every
  object fails is refused (400).

Names and dimensions are checked by the service, not here: the pure layer
(:mod:`renewer.operations.metrics`) only makes names and dimension values OCI documents as valid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import oci

from renewer.adapters.oci_clients import OciClients, translate
from renewer.errors import ConfigError
from renewer.operations.metrics import MetricPoint
from renewer.operations.ports import MetricsResult

logger = logging.getLogger(__name__)

MAX_METRIC_OBJECTS = 50  # "Unique metric streams. Maximum: 50" per PostMetricData call
_DEFAULT_HOST = "://telemetry."
_INGESTION_HOST = "://telemetry-ingestion."


def ingestion_endpoint(client: Any) -> None:  # noqa: ANN401 - oci.monitoring.MonitoringClient
    """Point ``client`` at ``telemetry-ingestion.<region>`` if it has the SDK's default host.

    A client built with an explicit ``service_endpoint`` keeps it.
    """
    endpoint = str(client.base_client.endpoint)
    if _DEFAULT_HOST in endpoint:
        client.base_client.endpoint = endpoint.replace(_DEFAULT_HOST, _INGESTION_HOST, 1)


class MonitoringMetricsSink:
    """Posts :class:`~renewer.operations.metrics.MetricPoint` s to one namespace and compartment.

    ``post`` sends ``ceil(n / 50)`` requests; rejected metric objects are counted with OCI's
    message (logged at WARNING by the caller), not raised. A request that fails as a whole
    raises :class:`~renewer.errors.TransientError` (429, 5xx, network, after the client's
    bounded retries) or :class:`~renewer.errors.ConfigError` (400 when every object was invalid,
    404 when no policy lets the function ``use metrics`` in the compartment for the namespace),
    with the ``opc-request-id``; batches after it are not sent.

    Thread-safe: no state besides the shared SDK client.
    """

    def __init__(self, clients: OciClients, *, namespace: str, compartment_id: str) -> None:
        if not namespace or not compartment_id:
            msg = "metrics need a namespace and a compartment OCID"
            raise ConfigError(msg)
        self._client = clients.client("monitoring")
        if "monitoring" not in clients.settings.endpoints:
            ingestion_endpoint(self._client)
        self.namespace = namespace
        self.compartment_id = compartment_id

    def post(self, points: Sequence[MetricPoint]) -> MetricsResult:
        """Post ``points`` in batches; see the class docstring."""
        accepted = rejected = 0
        messages: list[str] = []
        for start in range(0, len(points), MAX_METRIC_OBJECTS):
            batch = points[start : start + MAX_METRIC_OBJECTS]
            details = oci.monitoring.models.PostMetricDataDetails(
                metric_data=[self._metric(point) for point in batch],
                batch_atomicity="NON_ATOMIC",
            )
            with translate(
                f"post {len(batch)} metric(s) to Monitoring namespace {self.namespace!r}"
            ):
                response = self._client.post_metric_data(details)
            failed = response.data.failed_metrics or []
            count = int(response.data.failed_metrics_count or len(failed))
            rejected += count
            accepted += len(batch) - count
            messages.extend(_describe(record) for record in failed)
        logger.debug(
            "metrics posted namespace=%s accepted=%d rejected=%d",
            self.namespace,
            accepted,
            rejected,
        )
        return MetricsResult(accepted, rejected, tuple(messages))

    def _metric(self, point: MetricPoint) -> Any:  # noqa: ANN401 - an SDK model
        return oci.monitoring.models.MetricDataDetails(
            namespace=self.namespace,
            compartment_id=self.compartment_id,
            name=point.name,
            dimensions=dict(point.dimensions),
            metadata={"unit": point.unit},
            datapoints=[
                oci.monitoring.models.Datapoint(timestamp=point.timestamp, value=point.value)
            ],
        )


def _describe(record: Any) -> str:  # noqa: ANN401 - oci.monitoring.models.FailedMetricRecord
    metric = record.metric_data
    name = getattr(metric, "name", None) or "?"
    dimensions = getattr(metric, "dimensions", None) or {}
    shown = ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
    return f"{name}{{{shown}}}: {record.message}"
