"""In-memory implementations of our own ports, for tests. Never doubles of ``oci`` or ``acme``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from renewer.ports import AccountRecord


class InMemoryAccountStore:
    """``AccountStore`` in a dict; ``saves`` records every save in order (URL or None)."""

    def __init__(self) -> None:
        self._records: dict[str, AccountRecord] = {}
        self.saves: list[tuple[str, str | None]] = []

    def load(self, directory_url: str) -> AccountRecord | None:
        return self._records.get(directory_url)

    def save(self, directory_url: str, record: AccountRecord) -> None:
        self._records[directory_url] = record
        self.saves.append((directory_url, record.account_url))


class UnpublishedChallengeStore:
    """A ``ChallengeStore`` whose writes never reach the frontend (a misrouted bucket, say)."""

    def __init__(self) -> None:
        self.presented: list[str] = []
        self.cleaned: list[str] = []

    def present(self, token: str, key_authorization: str) -> None:
        del key_authorization
        self.presented.append(token)

    def clean_up(self, token: str) -> None:
        self.cleaned.append(token)


class RecordingClock:
    """The real clock, recording every requested sleep (to assert Retry-After was honoured)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to (``sleep`` advances it); for pure retry loops."""

    def __init__(self, start: float = 1000.0) -> None:
        self._mono = start
        self._now = datetime(2026, 11, 27, 12, tzinfo=UTC)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self._now + timedelta(seconds=self._mono)

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._mono += max(0.0, seconds)
