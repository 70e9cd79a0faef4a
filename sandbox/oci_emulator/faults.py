"""Fault injection: rules that make chosen requests fail, slow down or hang.

A rule matches by ``operation`` (``PutObject``) or by ``method`` + ``path`` regex, fires ``times``
times (or forever) with ``probability``, and then answers ``status``/``code``/``message``, and/or
sleeps ``latency`` seconds first, or ``hang``s (holds the connection until the emulator stops, so
a test can kill the caller mid-request). Rules are tried in the order added; the first that
fires wins.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox.oci_emulator.core import OciError


@dataclass(slots=True)
class FaultRule:
    """One rule; see the module docstring. ``fired`` counts how often it fired."""

    operation: str | None = None
    method: str | None = None
    path: str | None = None
    times: int | None = None
    probability: float = 1.0
    status: int | None = None
    code: str = "InternalServerError"
    message: str = "Injected fault"
    latency: float = 0.0
    hang: bool = False
    fired: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        """Build a rule from the admin API's JSON; ValueError names a bad field."""
        allowed = {
            "operation", "method", "path", "times", "probability", "status", "code",
            "message", "latency", "hang",
        }  # fmt: skip
        unknown = set(data) - allowed
        if unknown:
            msg = f"unknown fault rule field(s): {', '.join(sorted(unknown))}"
            raise ValueError(msg)
        rule = cls(**data)
        if not (rule.operation or rule.method or rule.path):
            msg = "a fault rule needs operation, method or path"
            raise ValueError(msg)
        if rule.status is None and not rule.latency and not rule.hang:
            msg = "a fault rule needs status, latency or hang"
            raise ValueError(msg)
        if rule.path:
            rule._pattern = re.compile(rule.path)
        return rule

    def matches(self, operation: str, method: str, path: str) -> bool:
        """Whether this rule applies to the request (ignoring count and probability)."""
        if self.operation and self.operation != operation:
            return False
        if self.method and self.method.upper() != method:
            return False
        return not (self._pattern and not self._pattern.search(path))

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin API shows it."""
        return {
            "operation": self.operation, "method": self.method, "path": self.path,
            "times": self.times, "probability": self.probability, "status": self.status,
            "code": self.code, "message": self.message, "latency": self.latency,
            "hang": self.hang, "fired": self.fired,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FaultAction:
    """What to do for a request a rule fired on."""

    latency: float
    hang: bool
    error: OciError | None


class FaultInjector:
    """Holds the rules; thread-safe. ``stop`` releases every hanging request."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._rng = rng or random.Random()  # noqa: S311 - fault dice, not crypto
        self.stopping = threading.Event()

    def add(self, rule: FaultRule) -> None:
        """Append a rule."""
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        """The rules as JSON."""
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def pick(self, operation: str, method: str, path: str) -> FaultAction | None:
        """The action of the first rule that fires for this request, counting it."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(operation, method, path):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if self._rng.random() >= rule.probability:
                    continue
                rule.fired += 1
                error = (
                    OciError(rule.status, rule.code, rule.message)
                    if rule.status is not None
                    else None
                )
                return FaultAction(rule.latency, rule.hang, error)
        return None
