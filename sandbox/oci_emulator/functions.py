"""OCI Functions: ``GetFunction`` and ``InvokeFunction``, the invoke running the real fdk server.

Operations (SDK 2.189 ``oci.functions``: ``FunctionsManagementClient.get_function`` and
``FunctionsInvokeClient.invoke_function``; both clients use the base path ``/20260325``, older
SDKs ``/20181201`` — both are served):

* ``GET {base}/functions/{functionId}`` -> the ``Function`` model (``id``, ``displayName``,
  ``lifecycleState`` ACTIVE, ``applicationId``, ``compartmentId``, ``memoryInMBs``,
  ``timeoutInSeconds``, ``detachedModeTimeoutInSeconds``, ``invokeEndpoint``, ...). Needs
  FN_FUNCTION_READ (``read fn-function``; "Details for Functions").
* ``POST {base}/functions/{functionId}/actions/invoke`` with the body as the payload and the
  ``fn-invoke-type`` header ``sync`` (default) or ``detached`` (``InvokeFunction`` docstring).
  Needs FN_INVOCATION (``use fn-invocation``). ``sync``: the function's own status and body
  (``timeoutInSeconds``). ``detached``: ``202`` at once (the SDK accepts any 2xx), the call
  running in the background for up to ``detachedModeTimeoutInSeconds`` (OCI Functions docs,
  "Detached invocation": 5-3600 s, defaults to ``timeoutInSeconds``).

Each invocation runs the **real fdk server** (:class:`sandbox.fn_server.FnServer`, a fresh
process per invocation: concurrent invocations scale out to containers of their own) with the
environment the sandbox attached to the function (:meth:`Functions.attach`; credentials are not
state, so they are attached after start, as principals are). The call's ``Fn-Deadline`` is the
timeout times the timing profile's scale. Every invocation is recorded
(:meth:`Functions.invocations`): id, type, body, status, start and end.

Fixture (``functions`` key)::

    "functions": [{"id": "ocid1.fnfunc.oc1.phx.x", "compartment": "<ocid or name>",
                   "displayName": "acme-renewer", "applicationId": "ocid1.fnapp.oc1.phx.a",
                   "timeoutInSeconds": 300, "detachedModeTimeoutInSeconds": 3600}]

Assumed (not documented): an invocation of a function with nothing attached is ``502
FunctionInvokeImageNotAvailable`` (OCI's error when an image cannot be pulled); a detached
invocation's answer has an empty body and an ``opc-request-id``; the general policy variables
only apply (the Functions policy reference lists no ``target.function.*`` variable).
"""

from __future__ import annotations

import secrets
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sandbox.oci_emulator.core import OciError, Reply, Request, Route, invalid, not_found, now
from sandbox.oci_emulator.server import Emulator
from sandbox.oci_emulator.timing import profile

BASES = ("/20260325", "/20181201")
INVOKE_TYPES = ("sync", "detached")
MIN_DETACHED_S, MAX_DETACHED_S = 5, 3600
MAX_SYNC_S = 300


class Functions:
    """GetFunction and InvokeFunction (see the module docstring)."""

    name = "functions"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._attached: dict[str, tuple[dict[str, str], Path]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        """GetFunction and InvokeFunction under both base paths."""
        routes = []
        for base in BASES:
            routes += [
                Route("GET", f"{base}/functions/{{functionId}}", "GetFunction", self.get),
                Route(
                    "POST",
                    f"{base}/functions/{{functionId}}/actions/invoke",
                    "InvokeFunction",
                    self.invoke,
                ),
            ]
        return routes

    def seed(self, fixture: dict[str, Any]) -> None:
        """Create the fixture's functions; ValueError names a bad entry."""
        state = self._state()
        compartments = {str(c["name"]): str(c["id"]) for c in fixture.get("compartments", [])}
        for entry in fixture.get("functions", []):
            function_id = str(entry.get("id", ""))
            if not function_id.startswith("ocid1.fnfunc."):
                msg = f"function {entry!r}: 'id' must be an ocid1.fnfunc.... OCID"
                raise ValueError(msg)
            compartment = str(entry.get("compartment") or fixture.get("tenancy", ""))
            timeout = int(entry.get("timeoutInSeconds", 30))
            detached = int(entry.get("detachedModeTimeoutInSeconds", timeout))
            if not (
                MIN_DETACHED_S <= timeout <= MAX_SYNC_S
                and MIN_DETACHED_S <= detached <= MAX_DETACHED_S
            ):
                msg = f"function {function_id}: timeouts out of range (sync 5-300, detached 5-3600)"
                raise ValueError(msg)
            state["functions"][function_id] = {
                "id": function_id,
                "displayName": str(entry.get("displayName", "acme-renewer")),
                "applicationId": str(entry.get("applicationId", "ocid1.fnapp.oc1.phx.app")),
                "compartmentId": compartments.get(compartment, compartment),
                "lifecycleState": "ACTIVE",
                "memoryInMBs": int(entry.get("memoryInMBs", 256)),
                "timeoutInSeconds": timeout,
                "detachedModeTimeoutInSeconds": detached,
                "config": {},
                "freeformTags": {},
                "definedTags": {},
            }

    # ------------------------------------------------------------------ sandbox side

    def attach(self, function_id: str, environment: Mapping[str, str], workdir: Path) -> None:
        """What an invocation of ``function_id`` runs: ``func.py`` with ``environment``."""
        with self._lock:
            self._attached[function_id] = (dict(environment), workdir)

    def invocations(self, **match: str) -> list[dict[str, Any]]:
        """Recorded invocations, oldest first; keywords filter by field."""
        with self.emulator.state.lock:
            records = [dict(r) for r in self._state()["invocations"]]
        return [r for r in records if all(r.get(k) == v for k, v in match.items())]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every detached invocation ended; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                alive = [t for t in self._threads if t.is_alive()]
                self._threads = alive
            if not alive:
                return True
            if time.monotonic() > deadline:
                return False
            alive[0].join(timeout=min(1.0, max(0.0, deadline - time.monotonic())))

    def stop(self) -> None:
        """Wait for the detached invocations still running (their deadline bounds them)."""
        self.wait_idle(timeout=60.0)

    # ------------------------------------------------------------------ the operations

    def get(self, request: Request) -> Reply:
        """GetFunction."""
        function = self._function(request)
        self.emulator.authorize(request, compartment_id=function["compartmentId"])
        return Reply(body={**function, "invokeEndpoint": self.emulator.endpoint})

    def invoke(self, request: Request) -> Reply:
        """InvokeFunction: sync answers the function's answer, detached 202 at once."""
        function = self._function(request)
        self.emulator.authorize(request, compartment_id=function["compartmentId"])
        kind = (request.header("fn-invoke-type") or "sync").lower()
        if kind not in INVOKE_TYPES:
            raise invalid(f"fn-invoke-type must be one of {', '.join(INVOKE_TYPES)}.")
        with self._lock:
            attached = self._attached.get(function["id"])
        if attached is None:
            raise OciError(
                502, "FunctionInvokeImageNotAvailable", "The function has no image to run."
            )
        timeout_key = "detachedModeTimeoutInSeconds" if kind == "detached" else "timeoutInSeconds"
        timeout = function[timeout_key] * profile(self.emulator.state).scale
        record = {
            "id": f"01{secrets.token_hex(12).upper()}",
            "functionId": function["id"],
            "type": kind,
            "body": request.body.decode("utf-8", errors="replace"),
            "principal": request.principal.id if request.principal else None,
            "acceptedAt": now(),
            "endedAt": None,
            "status": None,
        }
        with self.emulator.state.lock:
            self._state()["invocations"].append(record)
        if kind == "sync":
            # Handlers run under the emulator's state lock; a sync call lasts as long as the
            # function, which calls the emulator itself: the lock is let go meanwhile.
            lock = self.emulator.state.lock
            lock.release()
            try:
                status, body = self._run(record, attached, timeout)
            finally:
                lock.acquire()
            return Reply(status=status, body=body, headers={"fn-call-id": record["id"]})
        thread = threading.Thread(target=self._run, args=(record, attached, timeout), daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()
        return Reply(status=202, body=None, headers={"fn-call-id": record["id"]})

    # ------------------------------------------------------------------ helpers

    def _run(
        self, record: dict[str, Any], attached: tuple[dict[str, str], Path], timeout: float
    ) -> tuple[int, bytes]:
        from sandbox.fn_server import FnServer  # noqa: PLC0415 - only when a call runs

        environment, workdir = attached
        workdir.mkdir(parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix=f"fn-{record['id'][:10]}-", dir=workdir))
        env = {**environment, "FN_FN_ID": record["functionId"], "FN_TYPE": record["type"]}
        status, body = 502, b""
        try:
            with FnServer(directory, env) as server:
                answer = server.invoke(
                    record["body"].encode(),
                    call_id=record["id"],
                    timeout=timeout,
                    headers={"Fn-Invoke-Type": record["type"]},
                )
                status, body = answer.status, answer.body
        except Exception as exc:  # noqa: BLE001 - a dead container is the invocation's failure
            body = f"the function's container failed: {type(exc).__name__}".encode()
        with self.emulator.state.lock:
            record.update(status=status, endedAt=now(), log=str(directory / "fn.log"))
        return status, body

    def _function(self, request: Request) -> dict[str, Any]:
        function = self._state()["functions"].get(request.params["functionId"])
        if function is None:
            raise not_found("function")
        return dict(function)

    def _state(self) -> dict[str, Any]:
        state = self.emulator.state.section("functions")
        state.setdefault("functions", {})
        state.setdefault("invocations", [])
        return state
