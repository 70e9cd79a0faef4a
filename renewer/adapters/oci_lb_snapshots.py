"""One GetLoadBalancer answer shared by PLAN and the read-only check of the same run.

A not-due run reads each listener target's load balancer in PLAN (its cipher suites and
protocols, for the key choice) and again in the read-only check (which bundle each listener
serves). The second read would see the same thing: nothing of ours changed the load balancer in
between. So PLAN's answer is kept here and the read-only check *takes* it — once; a second
check reads afresh — and any mutation of ours on that load balancer forgets it first. What the
check judges is then never older than the same certificate's PLAN, and never older than a change
we made.

Per invocation (the wiring builds one per service); thread-safe.
"""

from __future__ import annotations

import threading
from typing import Any


class LoadBalancerSnapshots:
    """The last PLAN read of each load balancer, for the read-only check to take once."""

    def __init__(self) -> None:
        self._answers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def put(self, lb_id: str, response: Any) -> None:  # noqa: ANN401 - an SDK response
        """Keep ``response`` (a GetLoadBalancer answer) for :meth:`take`."""
        with self._lock:
            self._answers[lb_id] = response

    def take(self, lb_id: str) -> Any:  # noqa: ANN401 - an SDK response
        """The kept answer for ``lb_id``, removed; None when there is none."""
        with self._lock:
            return self._answers.pop(lb_id, None)

    def forget(self, lb_id: str) -> None:
        """Drop what is kept for ``lb_id`` (a mutation of ours was accepted)."""
        with self._lock:
            self._answers.pop(lb_id, None)
