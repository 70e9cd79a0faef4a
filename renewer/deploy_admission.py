"""DEPLOY admission: start a load-balancer deploy only if its lane's work requests fit the run.

An OCI load balancer runs its work requests one at a time (20-60 s each; docs/fleet.md). A
certificate's DEPLOY to a listener target costs a bundle create and one listener switch per
listener, queued behind whatever work requests the other certificates of its lane
(:mod:`renewer.fleet`) still have on that load balancer. Started with too little time left, it
fails at the step deadline with a work request still ``IN_PROGRESS``; not started, it is
*deferred*: the certificate is already stored, and the next run deploys it without a new order.

:class:`DeployAdmission` is one run's book of that work, per load balancer:

* **the estimate of one work request**: the mean duration observed in this run on that load
  balancer (a deploy's elapsed time over its work requests, counted only when nothing else was
  in flight there when it started, so waiting is not taken for work), else ``default_s``
  (the service passes its step budget: 60 s in production, the top of OCI's 20-60 s);
* **the lane's queued work**: for every deploy admitted and not yet finished, its work requests
  times the estimate, less the time it has already run (never below zero);
* **admission**: queued work plus this deploy's own work requests must fit the time left —
  judged only once this run has *observed* that load balancer's work requests. Before that, the
  default is a guess (a whole step budget per work request), and refusing on a guess would defer
  every first deploy of a short run; such a deploy is admitted, and the step deadline and the
  in-flight work-request tracking of the deployer protect it as before.

Pure bookkeeping over an injected monotonic clock; thread-safe (the lanes' workers share it).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer for one deploy: admitted (``ticket`` set) or not, with the numbers why."""

    ticket: int | None
    queued_s: float  # the lane's work still queued ahead of this deploy
    own_s: float  # this deploy's work requests times the estimate
    estimate_s: float  # one work request on this load balancer
    observed: bool  # the estimate comes from this run's work requests (else the default)
    remaining_s: float  # time left in the run when asked

    @property
    def admitted(self) -> bool:
        """Whether the deploy may start."""
        return self.ticket is not None

    def explain(self, load_balancer_id: str, work_requests: int) -> str:
        """Why a deploy was not started, for the report (no secrets: OCIDs and numbers)."""
        source = "mean of this run's work requests there" if self.observed else "default"
        return (
            f"deploy to load balancer {load_balancer_id} not started:"
            f" {self.queued_s:.0f} s of its lane's work requests still queued plus its own"
            f" {work_requests} x {self.estimate_s:.0f} s ({source}) need"
            f" {self.queued_s + self.own_s:.0f} s, {max(self.remaining_s, 0.0):.0f} s left in"
            " this run; left for the next run"
        )


@dataclass(slots=True)
class _InFlight:
    load_balancer_id: str
    work_requests: int
    estimate_s: float
    started: float
    alone: bool  # nothing else was in flight on its load balancer: its time is its own work


class DeployAdmission:
    """One run's load-balancer work: admits deploys that fit, learns work-request durations.

    Args:
        monotonic: the run's monotonic clock.
        deadline: the run's monotonic deadline.
        default_s: seconds one work request is assumed to take before one is observed (> 0).

    Raises:
        ValueError: ``default_s`` is not positive.

    """

    def __init__(self, monotonic: Callable[[], float], deadline: float, default_s: float) -> None:
        if default_s <= 0:
            msg = f"default_s must be positive, not {default_s}"
            raise ValueError(msg)
        self._monotonic = monotonic
        self._deadline = deadline
        self._default_s = default_s
        self._lock = threading.Lock()
        self._tickets = itertools.count(1)
        self._in_flight: dict[int, _InFlight] = {}
        self._observed: dict[str, list[float]] = {}  # load balancer -> seconds per work request

    def estimate(self, load_balancer_id: str) -> tuple[float, bool]:
        """Seconds one work request on ``load_balancer_id`` takes, and whether observed."""
        with self._lock:
            return self._estimate(load_balancer_id)

    def admit(self, load_balancer_id: str, work_requests: int) -> Admission:
        """Admit a deploy of ``work_requests`` work requests if the lane's work fits the run.

        An admitted deploy counts as queued work for the lane until :meth:`finish`.
        """
        with self._lock:
            now = self._monotonic()
            estimate, observed = self._estimate(load_balancer_id)
            queued = sum(
                max(0.0, f.work_requests * estimate - (now - f.started))
                for f in self._in_flight.values()
                if f.load_balancer_id == load_balancer_id
            )
            own = work_requests * estimate
            remaining = self._deadline - now
            ticket: int | None = None
            if queued + own <= remaining or not observed:  # see the module docstring
                ticket = next(self._tickets)
                alone = all(
                    f.load_balancer_id != load_balancer_id for f in self._in_flight.values()
                )
                self._in_flight[ticket] = _InFlight(
                    load_balancer_id, work_requests, estimate, now, alone=alone
                )
            return Admission(ticket, queued, own, estimate, observed, remaining)

    def finish(self, ticket: int, work_requests_done: int) -> None:
        """The deploy of ``ticket`` ended (done or not); ``work_requests_done`` it waited for.

        Only a deploy that started with nothing else in flight on its load balancer and did
        work requests
        teaches the estimate: its elapsed time over its work requests (polling included, so
        the mean errs long, the safe side).
        """
        with self._lock:
            flight = self._in_flight.pop(ticket, None)
            if flight is None or not flight.alone or work_requests_done <= 0:
                return
            elapsed = self._monotonic() - flight.started
            self._observed.setdefault(flight.load_balancer_id, []).append(
                elapsed / work_requests_done
            )

    def _estimate(self, load_balancer_id: str) -> tuple[float, bool]:
        samples = self._observed.get(load_balancer_id)
        if not samples:
            return self._default_s, False
        return sum(samples) / len(samples), True
