"""In-memory doubles of the operations ports (``renewer.operations.ports``).

The journal double applies the same pure retention rules as the Object Storage adapter, and
``tests/contract/test_journal.py`` holds both to one contract so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from renewer.errors import TransientError
from renewer.operations.journal import certificate_entries, expired, journal_names
from renewer.operations.metrics import MetricPoint
from renewer.operations.notices import Notice
from renewer.operations.ports import MetricsResult


class RecordingMetricsSink:
    """Keeps every posted point; ``fail_with`` makes ``post`` raise it instead."""

    def __init__(self) -> None:
        self.posts: list[list[MetricPoint]] = []
        self.fail_with: Exception | None = None

    @property
    def points(self) -> list[MetricPoint]:
        return [p for post in self.posts for p in post]

    def post(self, points: Sequence[MetricPoint]) -> MetricsResult:
        if self.fail_with is not None:
            raise self.fail_with
        self.posts.append(list(points))
        return MetricsResult(accepted=len(points), rejected=0)


class RecordingNotifier:
    """Keeps every published notice; ``fail_with`` makes ``publish`` raise it instead."""

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self.fail_with: Exception | None = None

    def publish(self, notice: Notice) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.notices.append(notice)
        return f"message-{len(self.notices)}"


class InMemoryNoticeStates:
    """``NoticeStates`` in a dict."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, object]] = {}
        self.saves = 0

    def load(self, name: str) -> dict[str, object] | None:
        found = self.documents.get(name)
        return dict(found) if found is not None else None

    def save(self, name: str, document: Mapping[str, object]) -> None:
        self.saves += 1
        self.documents[name] = dict(document)


class InMemoryRunJournal:
    """``RunJournal`` in a dict of object name -> record, with the adapter's retention."""

    def __init__(self, *, retention_days: int, max_records: int) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.retention_days = retention_days
        self.max_records = max_records
        self.fail_with: Exception | None = None

    def write(self, object_name: str, record: Mapping[str, object], *, now: datetime) -> list[str]:
        if self.fail_with is not None:
            raise self.fail_with
        self.objects[object_name] = dict(record)
        doomed = expired(
            list(self.objects),
            now=now,
            retention_days=self.retention_days,
            max_records=self.max_records,
        )
        doomed = [name for name in doomed if name != object_name][:100]
        for name in doomed:
            del self.objects[name]
        return doomed

    def recent(self, limit: int) -> list[dict[str, object]]:
        return [dict(self.objects[n]) for n in journal_names(list(self.objects))[::-1][:limit]]

    def history(self, name: str, *, limit: int) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        for object_name in journal_names(list(self.objects))[::-1]:
            entries.extend(certificate_entries(self.objects[object_name], name))
        return entries[:limit]


def outage(message: str = "Monitoring answered 500 (opc-request-id X)") -> TransientError:
    """The error a sink raises when its OCI service is down."""
    return TransientError(message)
