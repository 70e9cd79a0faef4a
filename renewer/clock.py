"""Time as a dependency: wall-clock ``now`` for certificate dates, monotonic time for deadlines.

Policy code receives ``now`` as an argument; code that waits receives a :class:`Clock`, so tests
can run it without real sleeping and never patch ``time``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What code that waits needs to know about time."""

    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards; only differences are meaningful."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (no-op when not positive)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep()``, skipped for non-positive durations."""
        if seconds > 0:
            time.sleep(seconds)
