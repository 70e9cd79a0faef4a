"""Contracts between the operations façade and its sinks (``typing.Protocol``s).

Adapters: :mod:`renewer.adapters.oci_monitoring`, :mod:`renewer.adapters.oci_notifications`,
:mod:`renewer.adapters.oci_journal`; in-memory doubles: ``tests/support/fakes_operations.py``.
Errors are :class:`renewer.errors.TransientError` (worth another try later) or
:class:`renewer.errors.ConfigError` (a wrong OCID, a missing policy, a request OCI refused).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from renewer.operations.metrics import MetricPoint
from renewer.operations.notices import Notice


@dataclass(frozen=True, slots=True)
class MetricsResult:
    """What Monitoring accepted: datapoint counts and its messages about the rejected ones."""

    accepted: int
    rejected: int
    messages: tuple[str, ...] = ()


class MetricsSink(Protocol):
    """Posts datapoints to a metrics service.

    ``post`` sends them in as many requests as the service's limits need; a datapoint the
    service refuses is counted in ``rejected`` (with its message), not raised. A request that
    fails as a whole raises, and the datapoints not yet sent are not sent. Not idempotent (a
    retried post adds datapoints again, which aggregations such as ``max``/``min`` tolerate).
    """

    def post(self, points: Sequence[MetricPoint]) -> MetricsResult:
        """Post ``points``; returns how many were accepted and rejected."""
        ...


class Notifier(Protocol):
    """Publishes a message to the operators' topic; returns the service's message id.

    Title and body are cut to the service's limits (never refused for size). Not idempotent:
    each call is a message.
    """

    def publish(self, notice: Notice) -> str:
        """Publish ``notice``."""
        ...


class NoticeStates(Protocol):
    """The per-certificate notification state documents. ``load`` returns None when absent."""

    def load(self, name: str) -> dict[str, object] | None:
        """The stored document of certificate ``name``, or None."""
        ...

    def save(self, name: str, document: Mapping[str, object]) -> None:
        """Replace the document of certificate ``name`` (idempotent)."""
        ...


class RunJournal(Protocol):
    """One JSON record per run, with retention.

    ``write`` stores the record under ``object_name`` (replacing one of the same name, so a
    retried write is harmless) and then prunes what the retention limits no longer allow,
    judged at ``now``; it returns the names it deleted. ``recent`` and ``history`` read
    newest first and skip records that cannot be read.
    """

    def write(self, object_name: str, record: Mapping[str, object], *, now: datetime) -> list[str]:
        """Store ``record``; prune; return the pruned names."""
        ...

    def recent(self, limit: int) -> list[dict[str, object]]:
        """The ``limit`` newest records, newest first."""
        ...

    def history(self, name: str, *, limit: int) -> list[dict[str, object]]:
        """Certificate ``name``'s ``limit`` newest entries (see ``certificate_entries``)."""
        ...
