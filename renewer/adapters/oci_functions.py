"""Invoking this function again, detached: the OCI Functions calls of a fan-out (renewer.fanout).

``GetFunction`` (FN_FUNCTION_READ, ``read fn-function``) answers the function's
``invokeEndpoint``; ``InvokeFunction`` there with ``fn-invoke-type: detached`` (FN_INVOCATION,
``use fn-invocation``) is accepted at once and runs for up to the function's
``detachedModeTimeoutInSeconds`` (OCI Functions, "Detached invocation"; SDK 2.189
``FunctionsInvokeClient.invoke_function``). Both run under the function's own resource
principal, through :class:`~renewer.adapters.oci_clients.OciClients` (deadline, retries).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from renewer import fanout
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_object_storage import ObjectStorageLease
from renewer.clock import SystemClock
from renewer.errors import RenewerError, TransientError
from renewer.report import Outcome, RunReason

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from renewer.renewal import RenewalService
    from renewer.report import RenewalReport
    from renewer.settings import Config


class FunctionsInvoker:
    """Invokes ``function_id`` in detached mode. Thread-safe; the endpoint is read once."""

    def __init__(self, clients: OciClients, function_id: str) -> None:
        self._clients = clients
        self.function_id = function_id
        self._endpoint: str | None = None
        self.detached_timeout_s: float | None = None
        self._lock = threading.Lock()

    def describe(self) -> None:
        """Read the function once: its invoke endpoint and detached-mode timeout."""
        with self._lock:
            if self._endpoint is not None:
                return
            with translate(f"read function {self.function_id}"):
                function = (
                    self._clients.client("functions_management").get_function(self.function_id).data
                )
            endpoint = function.invoke_endpoint
            if not endpoint:
                msg = f"function {self.function_id} has no invoke endpoint (is it ACTIVE?)"
                raise TransientError(msg)
            self._endpoint = str(endpoint)
            timeout = function.detached_mode_timeout_in_seconds or function.timeout_in_seconds
            self.detached_timeout_s = float(timeout) if timeout else None

    def invoke_detached(self, body: Mapping[str, object]) -> str:
        """Start a detached invocation with ``body``; returns OCI's request id for the log."""
        self.describe()
        assert self._endpoint is not None  # noqa: S101 - set by describe()
        client = self._clients.functions_invoke(self._endpoint)
        with translate(f"invoke function {self.function_id} (detached)"):
            answer = client.invoke_function(
                self.function_id,
                invoke_function_body=json.dumps(body),
                fn_invoke_type="detached",
            )
        return str(answer.headers.get("opc-request-id") or answer.headers.get("fn-call-id") or "")


def fan_out(
    service: RenewalService,
    config: Config,
    clients: OciClients,
    *,
    function_id: str,
    holder: str,
    budget_s: float,
) -> tuple[RenewalReport | None, list[dict[str, object]] | None]:
    """A scheduled run's fan-out (:mod:`renewer.fanout`), or ``(None, None)``: run it here.

    No call at all when even the whole busiest lane fits ``budget_s``; otherwise one read-only
    plan, and — when the due certificates of the busiest lane do not fit — one detached
    invocation per lane. Returns the plan's report and the parts.

    A function that may not read or invoke itself (Terraform's ``fan_out = false``), or whose
    invocation fails, is not stuck: ``(None, None)``, and the run renews what it can itself
    (parts already invoked are kept apart from it by the certificates' leases).
    """
    if not fanout.might_fan_out(config, budget_s=budget_s):
        return None, None
    plan = service.plan()
    parts = fanout.split(config, [c.name for c in plan.certificates if c.due], budget_s=budget_s)
    if not parts:
        return None, None
    invoker = FunctionsInvoker(clients, function_id)
    try:
        invoker.describe()
    except RenewerError as exc:
        logger.warning(
            "fan_out_unavailable error_type=%s error=%s; renewing here", type(exc).__name__, exc
        )
        return None, None
    namespace = config.oci.namespace or clients.namespace()
    leases = ObjectStorageLease(
        clients, namespace=namespace, bucket=config.oci.state_bucket, clock=SystemClock()
    )
    dispatched = fanout.dispatch(
        parts,
        invoke=invoker.invoke_detached,
        leases=leases,
        holder=holder,
        ttl=fanout.lease_ttl(invoker.detached_timeout_s),
    )
    if any((d.skipped or "").startswith("not invoked") for d in dispatched):
        return None, None  # logged by dispatch; this run does what it can itself
    return plan, [d.to_document() for d in dispatched]


def continue_detached(
    report: RenewalReport, clients: OciClients, *, function_id: str, force: bool
) -> list[dict[str, object]] | None:
    """Invoke the function detached for the certificates ``report`` deferred for time.

    A lane longer than one invocation (40 certificates on one load balancer are ~3,200 s of
    work requests, most of a detached invocation's 3,600 s) goes on in a fresh invocation
    instead of waiting for the next schedule. Only a run that made progress continues (at
    least one certificate renewed or deployed), so a run that can start nothing never chains.
    None: nothing to continue.
    """
    deferred = tuple(
        c.name
        for c in report.certificates
        if c.outcome is Outcome.DEFERRED and c.reason == str(RunReason.TIME_BUDGET)
    )
    progress = any(c.outcome in (Outcome.RENEWED, Outcome.DEPLOYED) for c in report.certificates)
    if not deferred or not progress:
        return None
    part = fanout.Part("continuation", deferred)
    body: dict[str, object] = {**part.body(), "force": force}
    try:
        request_id = FunctionsInvoker(clients, function_id).invoke_detached(body)
    except RenewerError as exc:
        logger.warning("continuation_failed error_type=%s error=%s", type(exc).__name__, exc)
        return [fanout.Dispatched(part, skipped=f"not invoked: {type(exc).__name__}").to_document()]
    logger.info("continuation certificates=%d request_id=%s", len(deferred), request_id)
    return [fanout.Dispatched(part, request_id=request_id).to_document()]
