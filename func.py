"""OCI Functions entry point: the only module that imports ``fdk``. Translation only.

``handler`` turns an fdk call into :func:`renewer.runner.execute` and its result into the
response: the JSON report with 200, or — when any certificate failed, or nothing could run —
an exception, which the FDK answers with 502 and ``str(exception)`` as the body. That body is
read by whoever may invoke the function, so it holds names, steps and error types only
(:meth:`renewer.report.RenewalReport.summary`); the full, equally secret-free report goes to
the log. The run's time budget is the call's ``Fn-Deadline`` minus a reserve.

Heavy imports (``oci``, ``acme``) happen inside the first call, not at import: the FDK must
listen on its socket within 5 s of start, and an ``--help``-style import stays cheap.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
from datetime import datetime

from fdk import context, response

from renewer import logs
from renewer.environment import Environment
from renewer.errors import RenewerError
from renewer.invocation import parse_payload
from renewer.runner import budget_from_deadline, execute

logger = logging.getLogger("renewer.function")


class InvocationFailedError(Exception):
    """The invocation failed; the message is the secret-free 502 body."""


def handler(ctx: context.InvokeContext, data: io.BytesIO | None = None) -> response.Response:
    """Run the requested action; see the module docstring for the response contract."""
    call_id = ctx.CallID() or f"local-{uuid.uuid4().hex[:12]}"
    logs.set_call_id(call_id)
    logs.configure()  # JSON lines from the first one, even when the environment is wrong
    try:
        environment = Environment.from_env(os.environ)
        logs.configure(environment.log_level)
        body = data.getvalue() if data is not None else b""
        invocation = parse_payload(body, config_object=environment.config_object)
        result = execute(
            invocation,
            environment,
            call_id=call_id,
            budget_s=budget_from_deadline(_deadline(ctx)),
            function_id=ctx.FnID() or None,  # FN_FN_ID: a scheduled run may fan out to it
        )
    except RenewerError as exc:
        # Our errors are secret-free by contract (renewer.errors); they name the fix.
        logger.error("invocation_failed error_type=%s error=%s", type(exc).__name__, exc)  # noqa: TRY400 - the message is the point; no traceback for a bad request
        raise InvocationFailedError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        logger.exception("invocation_failed error_type=%s (a bug)", type(exc).__name__)
        msg = f"internal error ({type(exc).__name__}); see the function's log for call {call_id}"
        raise InvocationFailedError(msg) from None
    logger.info("report %s", result.to_json())
    if result.failed:
        raise InvocationFailedError(result.summary)
    return response.Response(
        ctx, response_data=result.to_json(), headers={"Content-Type": "application/json"}
    )


def _deadline(ctx: context.InvokeContext) -> float | None:
    """The call's deadline as epoch seconds (the FDK gives RFC 3339), None if unreadable."""
    raw = ctx.Deadline()
    try:
        return datetime.fromisoformat(str(raw)).timestamp()
    except ValueError:
        logger.warning("unreadable Fn-Deadline %r; using the default budget", raw)
        return None
