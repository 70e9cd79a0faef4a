"""OCI Monitoring's metric ingestion (``PostMetricData``): a recording sink, strict as OCI.

``POST /20180401/metrics`` (``MonitoringClient.post_metric_data``; in OCI served at
``telemetry-ingestion.<region>``, here at the one emulator endpoint). Nothing is aggregated or
queried: accepted metric objects are recorded so tests can assert what was posted —
:meth:`Monitoring.posted` in-process, or ``GET /_emulator/state`` -> ``monitoring.metrics``.

Validation (documented OCI facts: the SDK 2.189 docstrings of ``post_metric_data``,
``PostMetricDataDetails``, ``MetricDataDetails`` and ``Datapoint``):

* The body is ``{"metricData": [...], "batchAtomicity"?}``; ``batchAtomicity`` is ``ATOMIC`` or
  ``NON_ATOMIC`` (the default).
* At most 50 unique metric streams per request ("Unique metric streams. Maximum: 50"); a
  stream is namespace + name + compartment + resource group + dimensions.
* Per metric object: ``namespace``, ``compartmentId``, ``name``, ``dimensions``, ``datapoints``
  are required. ``namespace`` starts with a letter and holds letters, digits and ``_``; custom
  metrics may not use the prefixes ``oci_`` / ``oracle_``. ``name`` and ``resourceGroup`` start
  with a letter and hold letters, digits, ``.``, ``_``, ``-`` and ``$``. 1 to 20 dimensions
  ("Dimensions per metric group. Maximum: 20. Minimum: 1"); a dimension key is printable ASCII
  without spaces, at most 256 characters; a value at most 512 characters; neither empty.
  Metadata keys and values at most 256 characters. At least one datapoint; each has an RFC 3339
  ``timestamp`` less than two hours in the past and less than 10 minutes in the future, a
  numeric ``value`` and an optional ``count`` greater than zero.
* NON_ATOMIC: invalid objects are answered in ``failedMetrics`` (``{"message", "metricData"}``)
  and counted in ``failedMetricsCount`` while the valid ones are stored — unless none is valid,
  which is a 400. ATOMIC: any invalid object makes it a 400 and nothing is stored.
* Authorization (``use metrics``, permission METRIC_WRITE) is checked per metric object's
  compartment with ``target.metrics.namespace``.

Assumptions (not documented; chosen strict and plausible):

* Request-level errors are ``400 InvalidParameter`` (a missing required top-level field:
  ``400 MissingParameter``); more than 50 streams is ``400 LimitExceeded``.
* Namespace, name and resource group are at most 256 characters; an unknown ``compartmentId``
  or one the caller may not post to makes the whole request ``404 NotAuthorizedOrNotFound``.
* Values must be finite numbers (JSON has no NaN; Python's parser accepts it, so it is refused).
* The recording keeps the newest :data:`MAX_RECORDED` metric objects.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from sandbox.oci_emulator.core import OciError, Reply, Request, Route, invalid, now, rfc3339
from sandbox.oci_emulator.server import Emulator

BASE = "/20180401"
MAX_STREAMS = 50
MAX_DIMENSIONS = 20
MAX_KEY_CHARS = 256
MAX_DIMENSION_VALUE_CHARS = 512
MAX_METADATA_CHARS = 256
MAX_NAME_CHARS = 256  # assumed
PAST_WINDOW = 2 * 3600.0  # "less than two hours in the past"
FUTURE_WINDOW = 600.0  # "less than 10 minutes in the future"
MAX_RECORDED = 10_000
ATOMICITIES = ("ATOMIC", "NON_ATOMIC")
RESERVED_PREFIXES = ("oci_", "oracle_")
_NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._$-]*")
_DIMENSION_KEY = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space


class _Invalid(Exception):
    """One metric object failed validation (its message goes to ``failedMetrics``)."""


class Monitoring:
    """The PostMetricData operation (see the module docstring).

    State (``state.section("monitoring")``): ``metrics``, the accepted metric objects in order,
    each ``{"namespace", "compartmentId", "name", "dimensions", "metadata", "resourceGroup",
    "datapoints", "postedAt", "requestId", "principal"}``.
    """

    name = "monitoring"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[Route]:
        """``POST /20180401/metrics``."""
        return [Route("POST", f"{BASE}/metrics", "PostMetricData", self.post_metric_data)]

    def seed(self, fixture: dict[str, Any]) -> None:
        """Nothing to seed: metrics exist once posted."""
        del fixture

    def posted(self, **match: str) -> list[dict[str, Any]]:
        """Recorded metric objects, oldest first; keywords filter by field (``name="x"``)."""
        with self.emulator.state.lock:
            metrics = list(self._state()["metrics"])
        return [m for m in metrics if all(m.get(k) == v for k, v in match.items())]

    def clear(self) -> None:
        """Forget what was posted."""
        with self.emulator.state.lock:
            self._state()["metrics"].clear()

    def _state(self) -> dict[str, Any]:
        state = self.emulator.state.section("monitoring")
        state.setdefault("metrics", [])
        return state

    # ------------------------------------------------------------------ the operation

    def post_metric_data(self, request: Request) -> Reply:
        """Validate, authorize, record; answer ``PostMetricDataResponseDetails``."""
        body = request.json_object()
        if "metricData" not in body:
            raise OciError(400, "MissingParameter", "Missing required parameter: metricData.")
        items = body["metricData"]
        if not isinstance(items, list) or not items:
            raise invalid("metricData must be a non-empty list of metric objects.")
        atomicity = body.get("batchAtomicity", "NON_ATOMIC")
        if atomicity not in ATOMICITIES:
            raise invalid(f"batchAtomicity must be one of {', '.join(ATOMICITIES)}.")
        streams = {_stream_key(item) for item in items}
        if len(streams) > MAX_STREAMS:
            raise invalid(
                f"The request holds {len(streams)} unique metric streams; at most"
                f" {MAX_STREAMS} are allowed per request.",
                "LimitExceeded",
            )
        accepted: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        moment = now()
        for item in items:
            try:
                accepted.append(_validated(item, moment))
            except _Invalid as exc:
                failed.append({"message": str(exc), "metricData": _echo(item)})
        if failed and (atomicity == "ATOMIC" or not accepted):
            raise invalid(failed[0]["message"])
        for metric in accepted:
            self._authorize(request, metric)
        principal = request.principal.id if request.principal else None
        recorded = self._state()["metrics"]
        for metric in accepted:
            metric.update(
                postedAt=rfc3339(datetime.fromtimestamp(moment, UTC)),
                requestId=request.request_id,
                principal=principal,
            )
            recorded.append(metric)
        del recorded[:-MAX_RECORDED]
        return Reply(body={"failedMetricsCount": len(failed), "failedMetrics": failed})

    def _authorize(self, request: Request, metric: dict[str, Any]) -> None:
        compartment = metric["compartmentId"]
        if not self._known_compartment(compartment):
            raise OciError(
                404,
                "NotAuthorizedOrNotFound",
                f"Authorization failed or compartment {compartment} not found.",
            )
        self.emulator.authorize(
            request, compartment_id=compartment, metrics_namespace=metric["namespace"]
        )

    def _known_compartment(self, compartment: str) -> bool:
        authorizer = self.emulator.authorizer
        tree = getattr(authorizer, "compartments", None)
        if tree is None:
            return compartment.startswith(("ocid1.compartment.", "ocid1.tenancy."))
        return bool(tree.knows(compartment)) or compartment == getattr(tree, "tenancy_id", None)


def _stream_key(item: Any) -> str:  # noqa: ANN401 - raw JSON
    if not isinstance(item, dict):
        return repr(item)
    dimensions = item.get("dimensions")
    shown = sorted(dimensions.items()) if isinstance(dimensions, dict) else dimensions
    return repr(
        (
            item.get("namespace"),
            item.get("name"),
            item.get("compartmentId"),
            item.get("resourceGroup"),
            shown,
        )
    )


def _echo(item: Any) -> dict[str, Any]:  # noqa: ANN401 - raw JSON
    """The failed object as the answer's ``metricData`` (its identifying fields)."""
    if not isinstance(item, dict):
        return {}
    keys = ("namespace", "resourceGroup", "compartmentId", "name", "dimensions", "metadata")
    return {key: item[key] for key in keys if key in item}


def _validated(item: Any, moment: float) -> dict[str, Any]:  # noqa: ANN401 - raw JSON
    if not isinstance(item, dict):
        raise _Invalid("A metric object must be a JSON object.")
    for field in ("namespace", "compartmentId", "name", "dimensions", "datapoints"):
        if item.get(field) is None:
            raise _Invalid(f"Missing required parameter: {field}.")
    namespace = _text(
        item["namespace"], "namespace", _NAMESPACE, "a letter, then letters, digits, '_'"
    )
    if namespace.lower().startswith(RESERVED_PREFIXES):
        raise _Invalid(f"namespace {namespace!r} uses a reserved prefix (oci_, oracle_).")
    name = _text(item["name"], "name", _NAME, "a letter, then letters, digits, '.', '_', '-', '$'")
    resource_group = item.get("resourceGroup")
    if resource_group is not None:
        _text(
            resource_group,
            "resourceGroup",
            _NAME,
            "a letter, then letters, digits, '.', '_', '-', '$'",
        )
    compartment = item["compartmentId"]
    if not isinstance(compartment, str) or not compartment.startswith("ocid1."):
        raise _Invalid("compartmentId must be a compartment OCID.")
    return {
        "namespace": namespace,
        "compartmentId": compartment,
        "name": name,
        "resourceGroup": resource_group,
        "dimensions": _dimensions(item["dimensions"]),
        "metadata": _metadata(item.get("metadata")),
        "datapoints": _datapoints(item["datapoints"], moment),
    }


def _text(value: Any, field: str, pattern: re.Pattern[str], rule: str) -> str:  # noqa: ANN401
    if not isinstance(value, str) or not value:
        raise _Invalid(f"{field} must be a non-empty string.")
    if len(value) > MAX_NAME_CHARS:
        raise _Invalid(f"{field} is longer than {MAX_NAME_CHARS} characters.")
    if not pattern.fullmatch(value):
        raise _Invalid(f"{field} {value!r} is invalid: use {rule}.")
    return value


def _dimensions(value: Any) -> dict[str, str]:  # noqa: ANN401 - raw JSON
    if not isinstance(value, dict):
        raise _Invalid("dimensions must be an object of string keys and values.")
    if not 1 <= len(value) <= MAX_DIMENSIONS:
        raise _Invalid(
            f"A metric needs 1 to {MAX_DIMENSIONS} dimensions; this one has {len(value)}."
        )
    for key, item in value.items():
        if not _DIMENSION_KEY.fullmatch(key) or len(key) > MAX_KEY_CHARS:
            raise _Invalid(
                f"Dimension key {key!r} is invalid: printable ASCII without spaces,"
                f" 1 to {MAX_KEY_CHARS} characters."
            )
        if not isinstance(item, str) or not item or len(item) > MAX_DIMENSION_VALUE_CHARS:
            raise _Invalid(
                f"Dimension {key!r}: the value must be a string of 1 to"
                f" {MAX_DIMENSION_VALUE_CHARS} characters."
            )
    return dict(value)


def _metadata(value: Any) -> dict[str, str] | None:  # noqa: ANN401 - raw JSON
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid("metadata must be an object of string keys and values.")
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_CHARS:
            raise _Invalid(f"Metadata key {key!r} must have 1 to {MAX_METADATA_CHARS} characters.")
        if not isinstance(item, str) or len(item) > MAX_METADATA_CHARS:
            raise _Invalid(
                f"Metadata {key!r}: the value must be a string of at most"
                f" {MAX_METADATA_CHARS} characters."
            )
    return dict(value)


def _datapoints(value: Any, moment: float) -> list[dict[str, Any]]:  # noqa: ANN401 - raw JSON
    if not isinstance(value, list) or not value:
        raise _Invalid("At least one datapoint is required.")
    points: list[dict[str, Any]] = []
    for point in value:
        if not isinstance(point, dict):
            raise _Invalid("A datapoint must be an object.")
        for field in ("timestamp", "value"):
            if point.get(field) is None:
                raise _Invalid(f"Missing required parameter: datapoints.{field}.")
        when = _timestamp(point["timestamp"])
        if when < moment - PAST_WINDOW or when > moment + FUTURE_WINDOW:
            raise _Invalid(
                f"Datapoint timestamp {point['timestamp']} is outside the allowed window"
                " (less than two hours in the past and less than 10 minutes in the future)."
            )
        number = point["value"]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise _Invalid("A datapoint value must be a number.")
        if not math.isfinite(number):
            raise _Invalid("A datapoint value must be a finite number.")
        count = point.get("count")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count <= 0
        ):
            raise _Invalid("A datapoint count must be an integer greater than zero.")
        points.append({"timestamp": point["timestamp"], "value": number, "count": count or 1})
    return points


def _timestamp(value: Any) -> float:  # noqa: ANN401 - raw JSON
    if not isinstance(value, str):
        raise _Invalid("A datapoint timestamp must be an RFC 3339 string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"Datapoint timestamp {value!r} is not RFC 3339.") from None
    if parsed.tzinfo is None:
        raise _Invalid(f"Datapoint timestamp {value!r} has no time zone.")
    return parsed.timestamp()
