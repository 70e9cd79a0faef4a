"""Fleet scheduling: which certificate a worker takes next, so every load balancer stays busy.

An OCI load balancer runs its work requests one at a time (20-60 s each; docs/oci-emulator.md,
"Timing"), so a fleet's makespan is bounded below by its busiest load balancer's serialized
work requests — the *critical path*. Handing certificates to workers in configuration order
wastes it: four workers that all pick certificates of one load balancer wait for each other's
work requests while the other load balancers idle, and the busiest one starts late.

:class:`LaneScheduler` groups certificates into *lanes* (:func:`lane_of`: the load balancer of
the certificate's first listener target; a certificate with Certificates-service targets only
is a lane of its own: a new version needs no load-balancer work request) and hands out work by
two rules:

* **busiest lane first**: a free worker takes the next certificate of the lane with the most
  certificates not yet started (ties: configuration order), so the critical path starts first
  and never waits behind short lanes (longest-processing-time list scheduling);
* **at most ``depth`` certificates of one lane in progress**: with ``depth=2`` one certificate
  holds the load balancer (its bundle create and listener switch) while the next one is ordered
  from the CA, so the load balancer is busy back to back — a third would only queue behind the
  load balancer holding a lease.

Pure scheduling: no I/O, no clock. Thread-safe; :meth:`LaneScheduler.take` blocks while every
lane with work left is at its depth.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

from renewer.model import ListenerTarget
from renewer.settings import ManagedCertificate

T = TypeVar("T")

DEFAULT_DEPTH = 2  # one certificate on the load balancer, one being ordered from the CA


def lane_of(managed: ManagedCertificate) -> str:
    """The lane of a certificate: its first listener target's load balancer OCID.

    A certificate whose targets are all Certificates-service certificates is a lane of its own
    (``certificate:<name>``): nothing of it waits for a load balancer.
    """
    for target in managed.targets:
        if isinstance(target, ListenerTarget):
            return target.load_balancer_id
    return f"certificate:{managed.spec.name}"


class LaneScheduler(Generic[T]):
    """Hands out ``items`` busiest lane first, at most ``depth`` in progress per lane.

    Args:
        items: the work, in configuration order.
        lane: the lane of an item (items of one lane serialize on one resource).
        depth: items of one lane in progress at once (>= 1).

    Raises:
        ValueError: ``depth`` < 1.

    """

    def __init__(
        self, items: Sequence[T], lane: Callable[[T], Hashable], depth: int = DEFAULT_DEPTH
    ) -> None:
        if depth < 1:
            msg = f"depth must be >= 1, not {depth}"
            raise ValueError(msg)
        self._depth = depth
        self._lanes: dict[Hashable, deque[tuple[int, T]]] = {}
        for index, item in enumerate(items):
            self._lanes.setdefault(lane(item), deque()).append((index, item))
        self._lane_of_index: dict[int, Hashable] = {
            index: key for key, queue in self._lanes.items() for index, _ in queue
        }
        self._running: dict[Hashable, int] = dict.fromkeys(self._lanes, 0)
        self._order = {key: position for position, key in enumerate(self._lanes)}
        self._changed = threading.Condition()

    def take(self) -> tuple[int, T] | None:
        """The next ``(index, item)`` to run; None when nothing is left to start.

        Blocks while items remain but every lane holding them has ``depth`` in progress.
        """
        with self._changed:
            while True:
                waiting = [key for key, queue in self._lanes.items() if queue]
                if not waiting:
                    return None
                ready = [key for key in waiting if self._running[key] < self._depth]
                if ready:
                    key = min(ready, key=lambda k: (-len(self._lanes[k]), self._order[k]))
                    self._running[key] += 1
                    return self._lanes[key].popleft()
                self._changed.wait()

    def done(self, index: int) -> None:
        """Item ``index`` (as :meth:`take` returned it) finished, successfully or not."""
        with self._changed:
            self._running[self._lane_of_index[index]] -= 1
            self._changed.notify_all()

    def lanes(self) -> dict[Hashable, int]:
        """Items not yet started, per lane."""
        with self._changed:
            return {key: len(queue) for key, queue in self._lanes.items()}


def run_in_lanes(
    items: Sequence[T],
    work: Callable[[T], object],
    *,
    lane: Callable[[T], Hashable],
    workers: int,
    depth: int = DEFAULT_DEPTH,
) -> list[object]:
    """Run ``work`` over ``items`` on ``workers`` threads scheduled by :class:`LaneScheduler`.

    Returns the results in the order of ``items``. ``work`` must not raise (the renewal wraps
    each certificate in its isolation boundary); if it does, the first error is re-raised after
    every worker stopped.
    """
    scheduler = LaneScheduler(items, lane, depth)
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def worker() -> None:
        while (taken := scheduler.take()) is not None:
            index, item = taken
            try:
                results[index] = work(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the caller's thread
                errors.append(exc)
            finally:
                scheduler.done(index)

    threads = [
        threading.Thread(target=worker, name=f"renewer-lane-{n}", daemon=True)
        for n in range(max(1, min(workers, len(items))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(items))]
