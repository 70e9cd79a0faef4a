"""The run journal's records, object names and retention. Pure; no I/O.

Every run writes one JSON record to the private state bucket under a dated prefix::

    journal/2026/05/01/20260501T030000123Z-01HZX4K2M3N4P5Q6R7S8T9V0W1.json

so names sort by time (newest last), one day's runs list with one prefix, and a bucket lifecycle
rule could expire them too. The record holds what an operator asks "what happened?" for: time,
trigger, call id, and per certificate the decision (reason), outcome, error, step durations,
ACME order URL and OCI work-request ids (``CertificateReport.to_dict``), plus what the run told
operators (notifications, metrics). No secret: reports are secret-free by contract and every
string is :func:`~renewer.operations.redact.redact` ed on top.

Retention (pruned on write): records older than ``retention_days`` go first, then the oldest
beyond ``max_records``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from renewer.operations.redact import redact_json
from renewer.operations.run import RunInfo
from renewer.report import RenewalReport

JOURNAL_PREFIX = "journal/"
JOURNAL_SCHEMA = 1
# Milliseconds in the name: two runs in one second (an operator's retry) still sort in order.
_STAMP = "%Y%m%dT%H%M%S"
_NAME = re.compile(
    r"journal/(\d{4})/(\d{2})/(\d{2})/(?P<stamp>\d{8}T\d{6})(?P<ms>\d{3})Z"
    r"-(?P<call>[A-Za-z0-9_-]{1,64})\.json"
)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def object_name(started_at: datetime, call_id: str) -> str:
    """The record's object name: dated prefix, start time, the call id made name-safe."""
    moment = started_at.astimezone(UTC)
    call = _UNSAFE.sub("-", call_id).strip("-")[:64] or "run"
    stamp = f"{moment.strftime(_STAMP)}{moment.microsecond // 1000:03d}Z"
    return f"{JOURNAL_PREFIX}{moment:%Y/%m/%d}/{stamp}-{call}.json"


def recorded_at(name: str) -> datetime | None:
    """When the record ``name`` started (from its name); None for a foreign object."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    moment = datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
    return moment + timedelta(milliseconds=int(match["ms"]))


def journal_names(names: Sequence[str]) -> list[str]:
    """The journal records among ``names``, oldest first (others are ignored, never deleted)."""
    found = [(moment, name) for name in names if (moment := recorded_at(name)) is not None]
    return [name for _, name in sorted(found)]


def expired(
    names: Sequence[str], *, now: datetime, retention_days: int, max_records: int
) -> list[str]:
    """The records to delete so that ``retention_days`` and ``max_records`` hold, oldest first.

    Only names :func:`recorded_at` understands count; anything else under the prefix is left
    alone.
    """
    ordered = journal_names(names)
    cutoff = now - timedelta(days=retention_days)
    old = [name for name in ordered if (recorded_at(name) or now) < cutoff]
    kept = ordered[len(old) :]
    surplus = kept[: max(len(kept) - max_records, 0)]
    return old + surplus


def journal_record(
    report: RenewalReport,
    run: RunInfo,
    *,
    notifications: Sequence[Mapping[str, object]] = (),
    metrics: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The JSON record of one run (a fresh dict; every string redacted)."""
    document = {
        "schema": JOURNAL_SCHEMA,
        "call_id": run.call_id,
        "trigger": str(run.trigger),
        "action": run.action,
        "mode": report.mode,
        "started_at": _iso(report.started_at),
        "finished_at": _iso(report.finished_at),
        "duration_s": round((report.finished_at - report.started_at).total_seconds(), 3),
        "failed": report.failed,
        "totals": report.totals,
        "certificates": [c.to_dict() for c in report.certificates],
        "orphans": [o.to_dict() for o in report.orphans],
        "notifications": [dict(n) for n in notifications],
        "metrics": dict(metrics) if metrics is not None else None,
    }
    cleaned = redact_json(document)
    if not isinstance(cleaned, dict):  # pragma: no cover - redact_json keeps the shape
        msg = "internal: a redacted journal record is not an object"
        raise TypeError(msg)
    return cleaned


def certificate_entries(record: Mapping[str, object], name: str) -> list[dict[str, object]]:
    """``name``'s entries in one record, each with the run's time, trigger, call id and action."""
    certificates = record.get("certificates")
    if not isinstance(certificates, list):
        return []
    run = {key: record.get(key) for key in ("started_at", "call_id", "trigger", "action")}
    return [
        {**run, **entry}
        for entry in certificates
        if isinstance(entry, dict) and entry.get("name") == name
    ]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
