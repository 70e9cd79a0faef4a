"""Logs as one JSON object per line, carrying the invocation's call id (OCI Logging friendly).

OCI Functions ships each line a function writes to stdout/stderr to OCI Logging; one JSON
object per line lets Logging Search filter on ``level``, ``logger``, ``call_id`` and ``message``
instead of grepping prose. The call id is process-wide (a function container runs one call at a
time; the FDK's agent never sends two at once), so the service's worker threads carry it too.

The SDKs' chatty loggers (``oci`` logs a line per client construction; ``urllib3`` per
connection) are raised to WARNING. Secrets never reach a log call in the first place (rule 3):
this module does not try to scrub them, it only formats.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO

_QUIET = ("oci", "urllib3", "acme", "josepy", "fdk", "asyncio", "httptools")
_STATE = {"call_id": "-"}
_HANDLER_NAME = "renewer-json"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "call_id", "message"[, "exception"]}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line; an exception's traceback goes in ``exception`` (escaped newlines)."""
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "call_id": _STATE["call_id"],
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def configure(level: str = "INFO", *, stream: IO[str] | None = None) -> None:
    """Install the JSON handler on the root logger (once; later calls only change the level)."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(h.get_name() == _HANDLER_NAME for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def set_call_id(call_id: str) -> None:
    """Tag every following line with ``call_id`` (the FDK's ``fn-call-id``)."""
    _STATE["call_id"] = call_id or "-"
