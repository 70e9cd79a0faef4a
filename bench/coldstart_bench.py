"""Benchmark: the function's cold start — a fresh fdk process until its first answer.

Usage (``make bench-coldstart``)::

    .venv/bin/python bench/coldstart_bench.py [--runs 7]

Method
------
One sandbox (Pebble, the OCI emulator with a tenancy, the token backend) serves every run; the
certificate is issued once beforehand, so each measured call is the scheduled run that finds
nothing due — what the function does on almost every invocation. Each run starts a **new**
``fdk func.py handler`` process exactly as OCI Functions does (``FN_FORMAT=http-stream``, a unix
socket, the configuration and resource-principal credentials as environment variables) and
measures:

* ``wall_s``: from spawning the process to the end of the first invocation's response — the
  interpreter, ``import func`` (fdk), the FDK binding its socket, then the first call: parsing
  the environment and payload, importing the OCI SDK and ``acme``, validating the configuration,
  building the clients and the service, and the run itself (a handful of reads on loopback);
* ``listen_s``: spawn → the FDK's socket exists (what the "listen within 5 s" rule is about);
* ``call_s``: the first call alone (``wall_s - listen_s``, plus the invoke's own overhead);
* ``peak_rss_mb``: the process's ``VmHWM`` (peak resident set) read from ``/proc`` after the
  call. ``exec`` starts a new address space, so this is the function's own peak.

Medians over ``--runs`` (min-max shown). Targets (issue 5): ``wall_s`` ≤ 0.6 s and peak RSS ≤
120 MB on this machine. The last line is one JSON object:
``{"bench": "coldstart", "wall_s": …, "peak_rss_mb": …}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.fn_server import FnServer  # noqa: E402 - after the path set-up
from sandbox.world import SandboxWorld  # noqa: E402

TARGET_WALL_S = 0.6
TARGET_RSS_MB = 120.0


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    msg = f"no VmHWM for process {pid}"
    raise RuntimeError(msg)


def one_cold_start(
    world: SandboxWorld,
    workdir: Path,
    *,
    function: Path | None = None,
    python_path: list[Path] | None = None,
) -> dict[str, float]:
    """One fresh fdk process, one not-due scheduled run: wall, listen, call, peak RSS.

    ``function`` and ``python_path``: run another tree (bench/image_bench.py runs the pruned
    one with ``python -S``); default: this checkout in this venv.
    """
    workdir.mkdir()
    options: dict[str, Any] = {}
    if function is not None:
        options = {"function": function, "python_path": python_path}
    server = FnServer(workdir, world.function_environment(), **options)
    started = time.perf_counter()
    server.start()
    listening = time.perf_counter()
    try:
        response = server.invoke(b"")
        done = time.perf_counter()
        if response.status != 200:
            msg = f"the invocation answered {response.status}: {response.text}"
            raise RuntimeError(msg)
        outcome = json.loads(response.body)["certificates"][0]["reason"]
        if outcome != "NotDue":
            msg = f"expected a NotDue run, got {outcome}"
            raise RuntimeError(msg)
        process = server._process  # noqa: SLF001 - the bench reads the child's /proc entry
        assert process is not None  # noqa: S101 - started above
        rss = _peak_rss_mb(process.pid)
    finally:
        server.stop()
    return {
        "wall_s": done - started,
        "listen_s": listening - started,
        "call_s": done - listening,
        "peak_rss_mb": rss,
    }


def main() -> int:
    """Run the benchmark; prints a table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as tmp:
        workdir = Path(tmp)
        with SandboxWorld(workdir / "world") as world:
            warm = FnServer(workdir / "issue", world.function_environment())
            (workdir / "issue").mkdir()
            with warm:
                first = warm.invoke(b"")
            if first.status != 200:
                sys.stderr.write(f"set-up issuance failed: {first.text}\n")
                return 1
            runs = [one_cold_start(world, workdir / f"run-{i}") for i in range(args.runs)]
    print(f"cold start of the function, {args.runs} fresh fdk processes (medians, min-max)")
    summary: dict[str, float] = {}
    for key, unit in (("wall_s", "s"), ("listen_s", "s"), ("call_s", "s"), ("peak_rss_mb", "MB")):
        values = [run[key] for run in runs]
        summary[key] = statistics.median(values)
        print(f"  {key:12} {summary[key]:8.3f} {unit}  ({min(values):.3f}-{max(values):.3f})")
    wall_ok = "meets" if summary["wall_s"] <= TARGET_WALL_S else "MISSES"
    rss_ok = "meets" if summary["peak_rss_mb"] <= TARGET_RSS_MB else "MISSES"
    print(f"  target wall <= {TARGET_WALL_S} s: {wall_ok}", end="; ")
    print(f"peak RSS <= {TARGET_RSS_MB:.0f} MB: {rss_ok}")
    result = {
        "bench": "coldstart",
        "wall_s": round(summary["wall_s"], 3),
        "peak_rss_mb": round(summary["peak_rss_mb"], 1),
        "listen_s": round(summary["listen_s"], 3),
        "call_s": round(summary["call_s"], 3),
        "runs": args.runs,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
