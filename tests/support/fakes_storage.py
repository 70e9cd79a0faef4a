"""In-memory ``Lease`` and ``StateRepository``: the ports' contracts without Object Storage.

They follow the same contract suite as the Object Storage adapters
(``tests/contract/test_object_storage_adapters.py``), so orchestrator tests built on them see
the behaviour the real adapters have. Time comes from an injected clock (``FakeClock`` in
tests); nothing here sleeps or reads the system clock unless given ``SystemClock``.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from renewer import naming
from renewer.clock import Clock, SystemClock
from renewer.errors import ConfigError
from renewer.ports import ChallengeSweep, LeaseHandle


@dataclass(frozen=True, slots=True)
class _Entry:
    holder: str
    acquired_at: datetime
    expires_at: datetime
    tag: str


class InMemoryLease:
    """``Lease`` in a dict, thread-safe, with the adapter's steps and race outcomes.

    Like the Object Storage lease, ``acquire`` is a conditional create, then a read, then a
    compare-and-swap on the tag; each step is atomic and the clock is read when the lease is
    first tried and again when an existing lease is judged, so concurrent acquirers interleave
    the way they do against the real store (several may read the same stale lease; one swap
    wins). A live lease of the same holder is refreshed; ``release`` is conditional on the tag;
    ``remove_expired`` deletes an expired lease unless it changed since it was read.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._tags = itertools.count(1)
        self.removed: list[str] = []  # names whose expired lease ``remove_expired`` deleted

    def acquire(self, name: str, *, holder: str, ttl: timedelta) -> LeaseHandle | None:
        """Take the lease for ``name`` for ``ttl``, or None if someone else holds it."""
        naming.lease_object(name)
        if not holder:
            msg = "a lease holder id must not be empty; use one unique id per run"
            raise ConfigError(msg)
        if ttl <= timedelta(0):
            msg = f"lease ttl must be positive (and longer than the function timeout), not {ttl}"
            raise ConfigError(msg)
        now = self._clock.now()
        with self._lock:
            current = self._entries.get(name)
            if current is None:
                return self._write(name, holder, now, ttl)
            if (current.holder, current.acquired_at, current.expires_at) == (
                holder,
                now,
                now + ttl,
            ):
                return _handle(name, current)  # exactly what we would write: already ours
        now = self._clock.now()
        if current.holder != holder and current.expires_at > now:
            return None
        with self._lock:
            if self._entries.get(name) != current:
                return None  # someone swapped it since we read it
            return self._write(name, holder, now, ttl)

    def release(self, handle: LeaseHandle) -> None:
        """Delete the lease if ``handle`` still holds it; otherwise do nothing."""
        with self._lock:
            current = self._entries.get(handle.name)
            if current is not None and current.tag == handle.tag:
                del self._entries[handle.name]

    def remove_expired(self, name: str) -> LeaseHandle | None:
        """Delete the lease of ``name`` if it expired (and did not change since it was read)."""
        naming.lease_object(name)
        with self._lock:
            current = self._entries.get(name)
        if current is None or current.expires_at > self._clock.now():
            return None
        with self._lock:
            if self._entries.get(name) != current:
                return None  # taken over or refreshed since we read it
            del self._entries[name]
        self.removed.append(name)
        return _handle(name, current)

    def current(self, name: str) -> LeaseHandle | None:
        """The lease stored for ``name``, expired or not."""
        with self._lock:
            entry = self._entries.get(name)
            return None if entry is None else _handle(name, entry)

    def _write(self, name: str, holder: str, now: datetime, ttl: timedelta) -> LeaseHandle:
        entry = _Entry(holder, now, now + ttl, f"tag-{next(self._tags)}")
        self._entries[name] = entry
        return _handle(name, entry)


def _handle(name: str, entry: _Entry) -> LeaseHandle:
    return LeaseHandle(name=name, holder=entry.holder, expires_at=entry.expires_at, tag=entry.tag)


class InMemoryStateRepository:
    """``StateRepository`` in a dict of JSON texts, thread-safe.

    Values go through ``json`` both ways, as with Object Storage: a value that is not JSON fails
    on ``save``, and ``load`` returns a fresh copy. ``saves`` lists the names saved, in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, str] = {}
        self.saves: list[str] = []

    def load(self, name: str) -> dict[str, object] | None:
        """The saved state of certificate ``name``, or None."""
        naming.state_object(name)
        with self._lock:
            text = self._documents.get(name)
        if text is None:
            return None
        state: dict[str, object] = json.loads(text)
        return state

    def save(self, name: str, state: dict[str, object]) -> None:
        """Replace the saved state of certificate ``name``."""
        naming.state_object(name)
        text = json.dumps(state, sort_keys=True, allow_nan=False)
        with self._lock:
            self._documents[name] = text
            self.saves.append(name)


class InMemoryChallengeBucket:
    """``ChallengeStore`` and ``ChallengeSweeper`` in a dict: token -> (key authorization,
    creation time by the injected clock), like the challenge bucket's objects.

    ``present`` overwrites (a new creation time, as an Object Storage overwrite has);
    ``clean_up`` of an absent token is a no-op; ``sweep`` deletes what was created before the
    cutoff and counts what it left. ``sweeps`` records every cutoff asked for. Thread-safe.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._objects: dict[str, tuple[str, datetime]] = {}
        self.sweeps: list[datetime] = []

    @property
    def tokens(self) -> list[str]:
        """The tokens published now, sorted."""
        with self._lock:
            return sorted(self._objects)

    def present(self, token: str, key_authorization: str) -> None:
        naming.challenge_object(token)
        with self._lock:
            self._objects[token] = (key_authorization, self._clock.now())

    def clean_up(self, token: str) -> None:
        naming.challenge_object(token)
        with self._lock:
            self._objects.pop(token, None)

    def sweep(self, *, created_before: datetime) -> ChallengeSweep:
        with self._lock:
            self.sweeps.append(created_before)
            old = sorted(t for t, (_, created) in self._objects.items() if created < created_before)
            for token in old:
                del self._objects[token]
            return ChallengeSweep(removed=tuple(old), younger=len(self._objects))
