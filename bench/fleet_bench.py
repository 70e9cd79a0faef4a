"""Benchmark: a fleet — 200 certificates over 20 load balancers, all due at once (issue 15).

Usage (``make bench-fleet``)::

    .venv/bin/python bench/fleet_bench.py [--scale 0.2] [--targets listeners|service|both]

Method
------
The sandbox (:class:`sandbox.fleet.FleetWorld`: Pebble, the OCI emulator, the token server) runs
the emulator's **realistic timing profile** (LB work requests 20-60 s, drawn per work request;
Certificates-service updates 5 s; Vault updates 3 s; a listener follows a new CURRENT version
after 30 s) at ``--scale`` wall seconds per OCI second. The fleet: ``--certificates`` over
``--load-balancers``, one load balancer holding ``--busiest`` of them, every listener on an
expiring self-signed bundle — all due at once.

Invocations are run in this process with every renewer duration scaled like the emulator's (the
run's budget, the step budget, the work-request poll interval), so OCI time stays OCI time:

* ``sync``: one scheduled invocation of 300 s (the synchronous limit) — how much of the fleet
  one run finishes;
* ``detached``: one invocation of 3,600 s (the detached limit), certificates scheduled in lanes
  per load balancer (:mod:`renewer.fleet`) on ``--workers`` threads;
* ``fanout``: what a scheduled run does when its fleet does not fit its 300 s
  (:mod:`renewer.fanout`): it plans, splits the due certificates per load balancer, and each
  part runs as its own detached invocation (3,600 s, two workers: one lane) at the same time —
  here in this process, each with a service of its own, as each would have a container.

Printed, in unscaled OCI seconds: ``makespan_s`` (first invocation's start to the last one's
end), ``deployed_s`` (to the end of the last listener update: every listener serves its new
certificate), ``critical_path_s`` (the busiest load balancer's unavoidable serialized work,
computed from the emulator's work-request log: the profile's duration of each work request is
deterministic per work-request id, and the required ones are one bundle create and one listener
update per certificate — a retirement's bundle delete is not required before the fleet serves),
``ratio`` = makespan / critical path, ``invocations``, ``max_invocation_s``, ``orders`` (new ACME
orders, from Pebble's log) and work requests per renewal. The last line per target kind is one
JSON object ``{"bench": "fleet", ...}``, with the machine's load average.

ACME against Pebble is **not** time-scaled: an order's wall seconds cost ``1/scale`` OCI seconds
(at 0.05 a 1 s order on a loaded machine "takes" 20 OCI s, and 40 concurrent orders starved the
busiest load balancer). The default scale 0.2 and ``--workers 12`` keep ACME small against
scaled work requests (a 40 s work request is 8 wall seconds; an order, hidden behind the other
certificate of its lane, 1-3); fixed costs are still magnified by ``1/scale``, which flatters
nobody.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import oci  # noqa: E402

from renewer import fanout  # noqa: E402
from renewer.report import Outcome, RunReason  # noqa: E402
from renewer.settings import parse_config  # noqa: E402
from sandbox.fleet import FleetWorld, lb_id, uneven_layout  # noqa: E402
from sandbox.oci_emulator.timing import TimingProfile  # noqa: E402

SYNC_TIMEOUT_S = 300.0
DETACHED_TIMEOUT_S = 3600.0
RESERVE_S = 15.0  # renewer.runner.RESERVE_S: kept back from each invocation's deadline
STEP_S = 60.0  # renewer.runner.MAX_STEP_S
POLL_S = 5.0  # renewer.adapters.oci_load_balancer.DEFAULT_POLL_INTERVAL
TARGET_RATIO = 1.2
ACME_STEP_WALL_S = 20.0  # the step budget's floor in wall seconds (ISSUE is not scaled)
UNAVOIDABLE = ("CreateCertificate", "UpdateListener")


class Invocation:
    """One in-process invocation of the renewer with OCI durations scaled (see Method)."""

    def __init__(
        self,
        world: FleetWorld,
        *,
        timeout_s: float,
        scale: float,
        workers: int,
        names: list[str] | None,
    ) -> None:
        self.world, self.timeout_s, self.scale = world, timeout_s, scale
        self.workers, self.names = workers, names
        self.started = self.ended = 0.0
        self.report: Any = None

    def run(self) -> None:
        """Build this invocation's service and run it; records its start, end and report."""
        service = self.world.service(
            holder=f"bench-{uuid.uuid4().hex[:12]}",
            # ACME is not scaled: an order against Pebble on a loaded machine takes wall seconds.
            step_budget=max(STEP_S * self.scale, ACME_STEP_WALL_S),
            lb_poll_interval=POLL_S * self.scale,
            max_workers=self.workers,
            lease_ttl=timedelta(seconds=max(1.0, 600 * self.scale)),
        )
        self.started = time.monotonic()
        self.report = service.run(
            budget_s=(self.timeout_s - RESERVE_S) * self.scale, names=self.names
        )
        self.ended = time.monotonic()


class _Planner(Invocation):
    """The scheduled invocation of a fan-out: a plan, and the parts it would invoke."""

    def run(self) -> None:
        service = self.world.service(holder=f"bench-{uuid.uuid4().hex[:12]}")
        self.started = time.monotonic()
        self.report = service.plan()
        due = [c.name for c in self.report.certificates if c.due]
        config = parse_config(self.world.config_document())
        self.parts = fanout.split(config, due, budget_s=SYNC_TIMEOUT_S - RESERVE_S)
        self.ended = time.monotonic()


def _fan_out(world: FleetWorld, args: argparse.Namespace) -> list[Invocation]:
    """The scheduled run plans and splits; each part runs as a detached invocation of its own."""
    planner = _Planner(world, timeout_s=SYNC_TIMEOUT_S, scale=args.scale, workers=1, names=None)
    planner.run()
    parts = [
        Invocation(
            world,
            timeout_s=DETACHED_TIMEOUT_S,
            scale=args.scale,
            workers=2,  # one lane: one certificate on the load balancer, one being ordered
            names=list(part.names),
        )
        for part in planner.parts
    ]
    done: list[Invocation] = []
    lock = threading.Lock()

    def run_part(part: Invocation) -> None:
        # A part that made progress but deferred certificates for time continues them in a
        # fresh detached invocation (renewer.adapters.oci_functions.continue_detached).
        while True:
            part.run()
            with lock:
                done.append(part)
            left = _deferred_for_time(part.report)
            if not left or not _progressed(part.report):
                return
            part = Invocation(
                world, timeout_s=DETACHED_TIMEOUT_S, scale=args.scale, workers=2, names=left
            )

    threads = [threading.Thread(target=run_part, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [planner, *done]


def _deferred_for_time(report: Any) -> list[str]:  # noqa: ANN401 - a RenewalReport
    return [
        c.name
        for c in report.certificates
        if c.outcome is Outcome.DEFERRED and c.reason == str(RunReason.TIME_BUDGET)
    ]


def _progressed(report: Any) -> bool:  # noqa: ANN401 - a RenewalReport
    return any(c.outcome in (Outcome.RENEWED, Outcome.DEPLOYED) for c in report.certificates)


def _orders(world: FleetWorld, since: int) -> int:
    """New ACME orders Pebble accepted since log offset ``since``."""
    log = world.pebble_log()[since:]
    return sum(1 for line in log.splitlines() if "POST /order-plz" in line)


def _work_requests(world: FleetWorld) -> dict[str, list[Any]]:
    config = world.operator_config()
    client = oci.load_balancer.LoadBalancerClient(config, service_endpoint=world.emulator.endpoint)
    out: dict[str, list[Any]] = {}
    for index in range(len(world.layout)):
        out[lb_id(index)] = oci.pagination.list_call_get_all_results(
            client.list_work_requests, lb_id(index)
        ).data
    return out


def run_fleet(args: argparse.Namespace, *, service_targets: bool, strategy: str) -> dict[str, Any]:
    """One fleet, one strategy; returns the JSON result."""
    profile = TimingProfile.realistic(scale=args.scale)
    layout = uneven_layout(args.certificates, args.load_balancers, args.busiest)
    with (
        tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp,
        FleetWorld(
            Path(tmp) / "world", layout=layout, service_targets=service_targets, timing=profile
        ) as world,
    ):
        offset = len(world.pebble_log())
        began_wall = datetime.now(UTC)
        began = time.monotonic()
        if strategy == "fanout":
            invocations = _fan_out(world, args)
        else:
            timeout = SYNC_TIMEOUT_S if strategy == "sync" else DETACHED_TIMEOUT_S
            invocation = Invocation(
                world, timeout_s=timeout, scale=args.scale, workers=args.workers, names=None
            )
            invocation.run()
            invocations = [invocation]
        makespan = (max(i.ended for i in invocations) - began) / args.scale
        outcomes = collections.Counter(
            str(c.outcome)
            for i in invocations
            if i.report.mode == "renew"
            for c in i.report.certificates
        )
        renewed = outcomes.get(str(Outcome.RENEWED), 0)
        wrs = _work_requests(world)
        # Required per certificate: its first bundle create and its first listener update (a
        # retried work request or a retirement's delete is not on the unavoidable path).
        per_lb = {
            lb: sum(
                profile.oci_seconds("lbWorkRequestSeconds", w.id)
                for w in _required(items, world.layout[index])
            )
            for index, (lb, items) in enumerate(wrs.items())
        }
        all_wrs = sum(len(items) for items in wrs.values())
        by_type = collections.Counter(w.type for items in wrs.values() for w in items)
        updates = [
            w.time_finished
            for items in wrs.values()
            for w in items
            if w.type == "UpdateListener" and w.time_finished is not None
        ]
        deployed = (max(updates) - began_wall).total_seconds() / args.scale if updates else makespan
        # When the busiest load balancer got every work request it needs, their durations;
        # otherwise (a run that did not get that far) its unavoidable work at the profile's mean
        # duration, so an unfinished run never looks faster than the floor.
        low, high = profile.durations["lbWorkRequestSeconds"]
        expected = max(layout) * len(UNAVOIDABLE) * (low + high) / 2
        busiest = max(range(len(layout)), key=lambda i: layout[i])
        complete = len(_required(wrs[lb_id(busiest)], layout[busiest])) == 2 * layout[busiest]
        critical = max(per_lb.values()) if complete else expected
        return {
            "bench": "fleet",
            "targets": "service" if service_targets else "listeners",
            "strategy": strategy,
            "certs": world.size,
            "lbs": len(layout),
            "makespan_s": round(makespan, 1),
            "deployed_s": round(deployed, 1),
            "critical_path_s": round(critical, 1),
            "ratio": round(makespan / critical, 3) if critical else None,
            "invocations": len(invocations),
            "max_invocation_s": round(
                max(i.ended - i.started for i in invocations) / args.scale, 1
            ),
            "orders": _orders(world, offset),
            "renewed": renewed,
            "outcomes": dict(outcomes),
            "work_requests": all_wrs,
            "work_requests_per_renewal": round(all_wrs / renewed, 2) if renewed else None,
            "work_requests_by_type": dict(by_type),
            "scale": args.scale,
            "workers": args.workers,
            "load_average": [round(v, 2) for v in os.getloadavg()],
        }


def _required(items: list[Any], certificates: int) -> list[Any]:
    """The unavoidable work requests of one load balancer: per type, its first ``certificates``."""
    by_type: dict[str, list[Any]] = collections.defaultdict(list)
    for w in sorted(items, key=lambda w: w.time_accepted):
        if w.type in UNAVOIDABLE:
            by_type[w.type].append(w)
    return [w for kind in UNAVOIDABLE for w in by_type[kind][:certificates]]


def main() -> int:
    """Run the benchmark; prints one JSON line per fleet."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--certificates", type=int, default=200)
    parser.add_argument("--load-balancers", type=int, default=20)
    parser.add_argument("--busiest", type=int, default=40)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--targets", choices=("listeners", "service", "both"), default="both")
    parser.add_argument("--strategy", choices=("sync", "detached", "fanout"), default="detached")
    args = parser.parse_args()
    kinds = {"listeners": [False], "service": [True], "both": [False, True]}[args.targets]
    failed = False
    for service_targets in kinds:
        result = run_fleet(args, service_targets=service_targets, strategy=args.strategy)
        print(json.dumps(result), flush=True)
        ratio = result["ratio"]
        if result["orders"] != result["certs"] or (ratio is not None and ratio > TARGET_RATIO):
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
