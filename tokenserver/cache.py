"""The event loop's view of the bucket: a short cache, one fetch per token, bounded concurrency.

Why each piece exists:

* **Positive cache** (``Settings.cache_seconds``, 5 s): the CA validates every challenge from
  several vantage points within seconds (Let's Encrypt: a primary and several remote
  perspectives), and the renewer's own self-check comes just before; all of them should cost one
  GetObject. A token is never rewritten with other content (each challenge has a fresh token),
  and after the renewer's clean-up an extra few seconds of serving a public value is harmless.
* **Negative cache** (``Settings.negative_cache_seconds``, 1 s): a flood of requests for an
  unknown (well-formed) token then costs at most one GetObject per token per second, while a
  token written just after a 404 is served at most one second later. Longer would protect
  Object Storage more but could make a validator that raced the renewer's write fail; shorter
  would let a flood of repeats through. The renewer writes first and only then asks the CA to
  validate, so one second is well inside the CA's patience.
* **Coalescing**: concurrent misses for one token share one GetObject (the validators' requests
  arrive together, before the cache has an answer).
* **Bounded concurrency**: at most ``storage_threads`` GetObject calls run at once and at most
  ``max_pending_fetches`` distinct tokens are being fetched (running or queued). Beyond that a
  miss is answered 503 at once (:class:`Saturated`) instead of queuing without end: a flood of
  random well-formed tokens, or a slow Object Storage, must not grow memory or latency for the
  requests that the cache can answer.
* **Timeout**: a request waits at most ``storage_timeout`` for its fetch; the thread keeps its slot
  until the SDK call returns (the SDK's own read timeout bounds that), so a hung Object Storage
  fills the slots and further misses get a quick 503 while cached tokens and ``/healthz`` keep
  being served.

Everything here runs on the event loop's thread except the storage call itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tokenserver.store import StorageError, StorageUnavailable

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10_000  # tokens remembered at once (a few MB at most); oldest evicted first
SATURATION_LOG_INTERVAL = 5.0  # at most one "saturated" warning per this many seconds


class Saturated(StorageUnavailable):
    """Every fetch slot is taken: answer 503 now rather than queue."""


class StorageTimeout(StorageUnavailable):
    """The fetch did not finish within the storage timeout."""


@dataclass(slots=True)
class _Fetch:
    """One GetObject in flight for a token; ``abandoned`` once its waiters gave up."""

    future: asyncio.Future[bytes | None]
    abandoned: bool = False


class TokenCache:
    """Answers for tokens: from memory when fresh, otherwise one bounded fetch per token.

    Use from the event loop's thread only. :meth:`cached` is the fast path; :meth:`fetch` starts
    (or joins) a fetch and returns a future resolving to the body or None (no such token), or
    failing with a :class:`~tokenserver.store.StorageError`. ``stats`` counts storage calls for
    logs and tests.
    """

    def __init__(
        self,
        reader: Callable[[str], bytes | None],
        *,
        loop: asyncio.AbstractEventLoop,
        positive_ttl: float,
        negative_ttl: float,
        timeout: float,
        threads: int,
        max_pending: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._loop = loop
        self._positive_ttl = positive_ttl
        self._negative_ttl = negative_ttl
        self._timeout = timeout
        self._max_pending = max_pending
        self._clock = clock
        self._entries: dict[str, tuple[float, bytes | None]] = {}
        self._inflight: dict[str, _Fetch] = {}
        self._pending = 0  # submitted storage calls not yet returned (running or queued)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="tokenserver-storage"
        )
        self.fetches = 0
        self.refused = 0  # misses answered 503 because every slot was taken
        self._refused_logged = 0
        self._saturation_logged_at = -SATURATION_LOG_INTERVAL

    def cached(self, token: str) -> tuple[bool, bytes | None]:
        """``(True, body or None)`` when a fresh answer is in memory, else ``(False, None)``."""
        entry = self._entries.get(token)
        if entry is None:
            return False, None
        expires, body = entry
        if self._clock() >= expires:
            del self._entries[token]
            return False, None
        return True, body

    def fetch(self, token: str) -> tuple[asyncio.Future[bytes | None], bool]:
        """A future for ``token``'s answer, and whether it joined a fetch already in flight.

        Raises:
            Saturated: ``max_pending`` distinct tokens are already being fetched.

        """
        current = self._inflight.get(token)
        if current is not None:
            return current.future, True
        if self._pending >= self._max_pending:
            self.refused += 1
            now = self._clock()
            if now - self._saturation_logged_at >= SATURATION_LOG_INTERVAL:
                # One line per interval, not one per request: a flood must not flood the log.
                logger.warning(
                    "object storage reads saturated (%d in flight): %d misses answered 503",
                    self._pending,
                    self.refused - self._refused_logged,
                )
                self._saturation_logged_at, self._refused_logged = now, self.refused
            raise Saturated(f"{self._pending} Object Storage reads in flight; answering 503")
        fetch = _Fetch(self._loop.create_future())
        self._inflight[token] = fetch
        self._pending += 1
        self.fetches += 1
        timer = self._loop.call_later(self._timeout, self._expire, token, fetch)
        work = self._executor.submit(self._read, fetch, token)

        def finished(done: concurrent.futures.Future[bytes | None]) -> None:
            # Runs on the storage thread; a read outliving a stopped server has no loop left.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._finish, token, fetch, done, timer)

        work.add_done_callback(finished)
        return fetch.future, False

    def run_in_background(self, job: Callable[[], None]) -> None:
        """Run ``job`` on a storage thread (start-up warm-up); not counted as a fetch."""
        self._executor.submit(job)

    def close(self) -> None:
        """Drop queued reads and stop the threads (running SDK calls end at their timeout)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        for fetch in self._inflight.values():
            if not fetch.future.done():
                fetch.future.set_exception(StorageUnavailable("token server stopping"))
        self._inflight.clear()

    # ------------------------------------------------------------------ internals

    def _read(self, fetch: _Fetch, token: str) -> bytes | None:
        # Queued behind slow calls until its waiters gave up: nobody wants the answer any more.
        if fetch.abandoned:
            raise StorageTimeout("abandoned before it started")
        return self._reader(token)

    def _expire(self, token: str, fetch: _Fetch) -> None:
        fetch.abandoned = True
        if self._inflight.get(token) is fetch:
            del self._inflight[token]  # the next request for it may try again (if a slot is free)
        if not fetch.future.done():
            error = StorageTimeout(f"Object Storage did not answer within {self._timeout:g} s")
            logger.warning("token read failed: %s", error)
            fetch.future.set_exception(error)

    def _finish(
        self,
        token: str,
        fetch: _Fetch,
        done: concurrent.futures.Future[bytes | None],
        timer: asyncio.TimerHandle,
    ) -> None:
        self._pending -= 1
        timer.cancel()
        if self._inflight.get(token) is fetch:
            del self._inflight[token]
        if done.cancelled():  # close() dropped it
            error: BaseException | None = StorageUnavailable("token server stopping")
        else:
            error = done.exception()
        if error is None:
            body = done.result()
            self._remember(token, body)
            if not fetch.future.done():
                fetch.future.set_result(body)
            return
        if not isinstance(error, StorageError):  # a bug or an SDK surprise: still answer 502
            error = StorageError(f"unexpected {type(error).__name__} reading a token")
        if fetch.future.done():
            return  # timed out earlier (and logged then)
        # Once per read, not per waiting request: names, codes and the opc-request-id only.
        logger.warning("token read failed: %s", error)
        fetch.future.set_exception(error)

    def _remember(self, token: str, body: bytes | None) -> None:
        ttl = self._positive_ttl if body is not None else self._negative_ttl
        if ttl <= 0:
            return
        entries = self._entries
        entries.pop(token, None)  # re-insert: dict order is then age order
        if len(entries) >= MAX_ENTRIES:
            now = self._clock()
            for key in [k for k, (expires, _) in entries.items() if expires <= now]:
                del entries[key]
            while len(entries) >= MAX_ENTRIES:
                del entries[next(iter(entries))]
        entries[token] = (self._clock() + ttl, body)
