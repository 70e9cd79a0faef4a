r"""Run one renewal in a process of its own, so that a test can ``kill -9`` it mid-run.

The fault-tolerance tests (``tests/e2e/test_faults.py``) start this as a subprocess against a
:class:`sandbox.world.SandboxWorld` living in the test process, wait until an injected ``hang``
holds the run at a chosen step, and kill it: a real process death, with its sockets, threads
and lease left behind exactly as a timed-out or crashed function leaves them. It wires the
service with :func:`renewer.wiring.build_service` (the composition root the function uses) and
prints the report as one JSON document on stdout::

    python -m sandbox.run_renewer --config CONFIG.json --endpoint http://127.0.0.1:PORT \
        --ca-bundle pebble-ca.pem --self-check-port 54037 \
        --lb-port-map '{"ocid1.loadbalancer...": {"443": 40123}}' [--holder ID] [--force]

The resource-principal credentials come from the ``OCI_RESOURCE_PRINCIPAL_*`` environment, as in
a function container. Exit status: 0 when no certificate failed, 1 otherwise, 2 on bad usage.
Sandbox only: never part of the function image.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path

from renewer.adapters.oci_clients import SERVICES, OciSettings
from renewer.settings import parse_config
from renewer.wiring import build_service


def _port_map(text: str) -> dict[str, dict[int, int]]:
    """``{lb id: {listener port: local port}}`` from JSON (object keys are strings there)."""
    raw = json.loads(text)
    if not isinstance(raw, Mapping):
        msg = "--lb-port-map must be a JSON object"
        raise argparse.ArgumentTypeError(msg)
    return {
        str(lb): {int(p): int(local) for p, local in ports.items()} for lb, ports in raw.items()
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.run_renewer", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="configuration JSON file")
    parser.add_argument("--endpoint", required=True, help="the OCI emulator's base URL")
    parser.add_argument(
        "--ca-bundle",
        required=True,
        help="PEM file of the roots trusted for the ACME server and the listeners' chains",
    )
    parser.add_argument("--self-check-port", type=int, required=True, help="loopback LB :80")
    parser.add_argument(
        "--lb-port-map", type=_port_map, default={}, help="JSON {lb id: {port: local port}}"
    )
    parser.add_argument("--holder", default=None, help="lease holder id (default: random)")
    parser.add_argument("--lease-ttl", type=float, default=600.0, help="lease seconds")
    parser.add_argument("--budget", type=float, default=120.0, help="run budget in seconds")
    parser.add_argument("--step-budget", type=float, default=30.0, help="seconds per step")
    parser.add_argument("--lb-poll-interval", type=float, default=0.05, help="work-request poll")
    parser.add_argument("--force", action="store_true", help="renew regardless of the policy")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run once, print the report JSON; the exit status (see the docstring)."""
    args = _parser().parse_args(argv)
    ports: dict[str, dict[int, int]] = args.lb_port_map

    def address_override(lb_id: str, port: int) -> tuple[str, int] | None:
        local = ports.get(lb_id, {}).get(port)
        return None if local is None else ("127.0.0.1", local)

    service = build_service(
        parse_config(json.loads(args.config.read_text())),
        oci=OciSettings(
            auth="resource_principal",
            endpoints=dict.fromkeys(SERVICES, args.endpoint),
            retry_attempts=3,
            retry_seconds=10.0,
            retry_backoff=0.01,
            timeout=(5.0, 30.0),
        ),
        holder=args.holder or f"runner-{uuid.uuid4().hex[:12]}",
        ca_bundle=args.ca_bundle,
        self_check_port=args.self_check_port,
        self_check_connect_host="127.0.0.1",
        tls_address_override=address_override,
        step_budget=args.step_budget,
        lease_ttl=timedelta(seconds=args.lease_ttl),
        lb_poll_interval=args.lb_poll_interval,
    )
    report = service.run(budget_s=args.budget, force=args.force)
    sys.stdout.write(report.to_json() + "\n")
    sys.stdout.flush()
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
