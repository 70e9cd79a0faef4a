"""``python -m tokenserver``: serve until SIGTERM/SIGINT, configured by the environment.

Output, all JSON lines (OCI Logging parses them): stdout carries first one ``{"event":
"listening", "port": N, ...}`` line — a parent that started us with ``TOKEN_SERVER_PORT=0``
reads the port from it — then the access log, one line per request; stderr carries diagnostics
(start-up, Object Storage failures with their opc-request-id). A settings or credentials problem
exits with status 2 and one line naming the variable to fix.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

# Read by the SDK at import time. The client gets explicit no-retry settings anyway; this keeps
# any client built elsewhere from retrying for minutes behind a validator's back.
os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")

from tokenserver.server import TokenServer
from tokenserver.settings import Settings, SettingsError

logger = logging.getLogger("tokenserver")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the error type)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, separators=(",", ":"))


def configure_logging() -> None:
    """JSON diagnostics on stderr at INFO; the SDK's chatty loggers at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("oci", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> int:
    """Run the server; 0 after a clean stop, 2 on a configuration problem."""
    configure_logging()
    try:
        settings = Settings.from_env(os.environ)
        server = TokenServer(settings, access_log=sys.stdout)
    except SettingsError as exc:
        logger.error("token server not started: %s", exc)  # noqa: TRY400 - the message is all
        return 2

    def ready(port: int) -> None:
        line = {"event": "listening", "host": settings.host, "port": port, "pid": os.getpid()}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    try:
        server.run(on_ready=ready, handle_signals=True)
    except OSError as exc:
        logger.error("cannot listen: %s", exc)  # noqa: TRY400 - the message is all
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
