"""``python -m sandbox.oci_emulator --state FILE --seed [FIXTURE.json] [--port N]``.

``--seed`` without a file seeds the example tenancy (:mod:`sandbox.example`: the tenancy of
``make demo`` and ``make sandbox``, with a fresh self-signed certificate on the :443 listener).

Prints one JSON line with the endpoint (and the data-plane port map once listeners exist), then
serves until interrupted. The state file is loaded if present and saved after every change, so a
killed emulator restarts where it was.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from sandbox.oci_emulator.app import build_emulator

EXAMPLE = Path("<example>")  # --seed without a file


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.oci_emulator")
    parser.add_argument("--state", type=Path, help="JSON state file (loaded, then kept up to date)")
    parser.add_argument(
        "--seed",
        type=Path,
        nargs="?",
        const=EXAMPLE,
        help="fixture JSON used when there is no state yet (no file: the example tenancy)",
    )
    parser.add_argument("--port", type=int, default=0, help="API port (default: a free port)")
    args = parser.parse_args(argv)
    try:
        if args.seed == EXAMPLE:
            from sandbox.example import example_fixture  # noqa: PLC0415 - only when asked

            fixture = example_fixture()
        else:
            fixture = json.loads(args.seed.read_text()) if args.seed else {}
        emulator, _ = build_emulator(
            fixture=fixture, state_path=str(args.state) if args.state else None, port=args.port
        )
    except (OSError, ValueError) as exc:  # a fixture error names the bad entry
        print(f"oci emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with emulator:
        port_map = getattr(emulator.services.get("loadbalancer"), "port_map", dict)
        ports: dict[str, dict[str, int]] = port_map()
        print(json.dumps({"endpoint": emulator.endpoint, "dataplane": ports}), flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
