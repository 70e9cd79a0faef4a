"""Benchmark: issue a certificate with our engine, certbot and lego against one local Pebble.

Usage (``make bench-acme`` passes the peers' paths, which are also the defaults)::

    .venv/bin/python bench/acme_bench.py [--certbot PATH] [--lego PATH]
        [--clients ours,certbot,lego] [--runs 5] [--names 1,10]

Method
------
One Pebble serves the whole run and is set up so that every client meets the same deterministic
CA: ``PEBBLE_VA_NOSLEEP=1`` (no random validation delay), no bad-nonce injection, no reuse of
valid authorizations (every run solves every challenge), Retry-After 0 on authorizations and
orders, and one fixed http-01 port that each client binds in turn (certbot ``--standalone``, lego
``--http``, ours ``--http-port``). Pebble's DNS stand-in resolves every name to 127.0.0.1.

Every run issues one certificate, for 1 name and for 10 names, for fresh random names
(``<random8>-<i>.bench.example``) with a fresh account in a fresh temporary directory. Clients run
strictly one at a time; each round runs every client once per size, and the client order rotates
from round to round so that drift (page cache, CPU clock, Pebble's growing state) hits all alike.

Each run is one child process, started by a tiny launcher (``python -I -S -c``) that records

* wall time: ``time.perf_counter()`` from spawn to exit, i.e. start-up, the whole ACME exchange
  and shut-down, as an operator sees it;
* peak RSS: ``ru_maxrss`` from ``os.wait4`` (KiB on Linux, shown in MiB).

Why a launcher: Linux carries a process's peak RSS over fork and exec into the child's
``ru_maxrss``, so a client spawned straight from this driver (30+ MiB after importing the TLS code
for Pebble) could never read below the driver's own peak. Spawned from the ~9 MiB launcher, the
readings are exact above ~9 MiB, which every client here is.

What the numbers mean
---------------------
Wall time is dominated by sleeps, not CPU: polling intervals and fixed waits (the ``acme`` library
sleeps 1 s per pending poll, certbot ~0.5 s stopping its web server, lego ~5 s after each
challenge when the CA sends no Retry-After, one authorization at a time). On loopback the exchange
itself takes ~0.2 s. A smaller number means less waiting, not less work. Medians over ``--runs``
runs are reported with min and max; a run that exits non-zero, leaves no certificate behind or
outlives the per-run timeout (120 s, then killed) is a failure, shown with the end of its stderr
and not timed. A client that is unavailable or fails every run gets ``null``.

The last line of stdout is one JSON object: ``{"bench": "acme", "ours_1": ..., "certbot_1": ...,
"lego_1": ..., "ours_10": ..., "certbot_10": ..., "lego_10": ...}`` (median seconds, 3 decimals),
then extra keys: ``rss_mib``, ``failures``, ``runs``, ``pebble``, ``versions``. Progress goes
to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # run as `python bench/acme_bench.py`
    sys.path.insert(0, str(PROJECT_ROOT))

from sandbox.net import free_port  # noqa: E402
from sandbox.pebble import (  # noqa: E402
    Pebble,
    PebbleBinaries,
    PebbleNotInstalled,
    PebbleOptions,
)

CLIENTS = ("ours", "certbot", "lego")
JSON_SIZES = (1, 10)
RUN_TIMEOUT_S = 120.0
OURS_SCRIPT = PROJECT_ROOT / "bench" / "ours_issue.py"
DEFAULT_CERTBOT = PROJECT_ROOT / ".cache" / "certbot-venv" / "bin" / "certbot"
DEFAULT_LEGO = PROJECT_ROOT / ".cache" / "lego" / "usr" / "bin" / "lego"
NAME_SUFFIX = "bench.example"
LEGO_EMAIL = "bench@example.com"
CERTBOT_OPTIONAL_FLAGS = ("--no-random-sleep-on-renew",)
TAIL_CHARS = 1500

# The launcher: spawn argv[2:], wait for it, write "exit-code wall-seconds maxrss-KiB" to argv[1].
# Stdlib builtins only and no site (-I -S), so that its own small peak RSS is the floor that
# fork/exec carries into the client's ru_maxrss (see the module docstring).
LAUNCHER = """\
import os, sys, time
result, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(result, "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {wall!r} {usage.ru_maxrss}\\n")
"""


@dataclass(frozen=True, slots=True)
class Target:
    """What one client run works against: the CA, the http-01 port, the names, its own dir."""

    directory_url: str
    ca_bundle: Path
    http_port: int
    names: tuple[str, ...]
    workdir: Path


@dataclass(frozen=True, slots=True)
class Command:
    """A client invocation: absolute argv, environment set on top of ours, and its output.

    ``certificate`` is the file a successful run must leave behind: exit 0 without it is a
    failure too, so that a client that quietly did nothing is never timed as fast.
    """

    argv: list[str]
    env: dict[str, str]
    certificate: Path


CommandBuilder = Callable[[Target], Command]


@dataclass(frozen=True, slots=True)
class Client:
    """A client under test; ``build`` is None when it cannot run (``skip_reason`` says why)."""

    name: str
    build: CommandBuilder | None
    skip_reason: str = ""
    version: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """One measured run: wall seconds and peak RSS MiB, or ``error`` when it failed."""

    wall_s: float = 0.0
    rss_mib: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class Series:
    """All runs of one client at one size, and their summary statistics."""

    runs: list[RunResult] = field(default_factory=list)

    @property
    def ok(self) -> list[RunResult]:
        """The successful runs."""
        return [run for run in self.runs if run.error is None]

    @property
    def failures(self) -> int:
        """How many runs failed."""
        return len(self.runs) - len(self.ok)

    @property
    def median_wall(self) -> float | None:
        """Median wall seconds of the successful runs, None without any."""
        ok = self.ok
        return statistics.median(run.wall_s for run in ok) if ok else None

    @property
    def median_rss(self) -> float | None:
        """Median peak RSS in MiB of the successful runs, None without any."""
        ok = self.ok
        return statistics.median(run.rss_mib for run in ok) if ok else None


Results = dict[tuple[str, int], Series]


# --- client command lines -------------------------------------------------------------------


def ours_command(target: Target) -> Command:
    """Our engine: bench/ours_issue.py issues one certificate and exits 0."""
    argv = [
        sys.executable,
        str(OURS_SCRIPT),
        "--directory", target.directory_url,
        "--http-port", str(target.http_port),
        "--names", ",".join(target.names),
        "--workdir", str(target.workdir),
    ]  # fmt: skip
    env = {"REQUESTS_CA_BUNDLE": str(target.ca_bundle)}
    return Command(argv, env, target.workdir / "fullchain.pem")


def certbot_command(exe: Path, extra_flags: tuple[str, ...], target: Target) -> Command:
    """Certbot ``certonly --standalone`` with a fresh account in the run's own directories."""
    argv = [
        str(exe), "certonly", "--standalone",
        "--non-interactive", "--agree-tos", "--register-unsafely-without-email",
        "--server", target.directory_url,
        "--config-dir", str(target.workdir / "config"),
        "--work-dir", str(target.workdir / "work"),
        "--logs-dir", str(target.workdir / "logs"),
        "--http-01-port", str(target.http_port), "--http-01-address", "127.0.0.1",
        *extra_flags,
    ]  # fmt: skip
    for name in target.names:
        argv += ["-d", name]
    env = {"REQUESTS_CA_BUNDLE": str(target.ca_bundle)}
    live = target.workdir / "config" / "live" / target.names[0]
    return Command(argv, env, live / "fullchain.pem")


def lego_command(exe: Path, target: Target) -> Command:
    """Lego ``run`` with its built-in http-01 server and a fresh account under ``--path``."""
    lego_dir = target.workdir / "lego"
    argv = [
        str(exe), "--accept-tos", "--email", LEGO_EMAIL,
        "--server", target.directory_url,
        "--path", str(lego_dir),
        "--http", "--http.port", f"127.0.0.1:{target.http_port}",
    ]  # fmt: skip
    for name in target.names:
        argv += ["--domains", name]
    argv.append("run")
    env = {"LEGO_CA_CERTIFICATES": str(target.ca_bundle)}
    return Command(argv, env, lego_dir / "certificates" / f"{target.names[0]}.crt")


# --- finding the clients ----------------------------------------------------------------------


def executable_problem(path: Path | None, label: str, make_target: str) -> str:
    """Why ``path`` cannot be run as ``label`` ("" when it can)."""
    if path is None or not path.is_file():
        return f"{label} not found at {path} (run `make {make_target}` or pass --{label} PATH)"
    if not os.access(path, os.X_OK):
        return f"{label} at {path} is not executable"
    return ""


def tool_version(exe: Path) -> str | None:
    """First line of ``exe --version``, None if it does not answer."""
    try:
        done = subprocess.run(
            [str(exe), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return lines[0] if lines else None


def certbot_accepts(exe: Path, flag: str) -> bool:
    """Whether this certbot parses ``flag`` (hidden flags are absent from ``--help all``)."""
    with tempfile.TemporaryDirectory(prefix="acme-bench-probe-") as tmp:
        probe = [
            str(exe), "certificates", flag,
            "--config-dir", f"{tmp}/config", "--work-dir", f"{tmp}/work",
            "--logs-dir", f"{tmp}/logs",
        ]  # fmt: skip
        try:
            done = subprocess.run(probe, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0


def make_ours() -> Client:
    """Our engine, if bench/ours_issue.py exists."""
    if not OURS_SCRIPT.is_file():
        return Client("ours", None, f"{OURS_SCRIPT.relative_to(PROJECT_ROOT)} not found")
    try:
        version = f"acme {importlib.metadata.version('acme')}"
    except importlib.metadata.PackageNotFoundError:
        version = None
    return Client("ours", ours_command, version=version)


def make_certbot(exe: Path | None) -> Client:
    """Certbot at ``exe``, with the optional flags this version accepts."""
    problem = executable_problem(exe, "certbot", ".cache/certbot-venv/bin/certbot")
    if problem or exe is None:
        return Client("certbot", None, problem)
    extra = tuple(flag for flag in CERTBOT_OPTIONAL_FLAGS if certbot_accepts(exe, flag))
    return Client("certbot", functools.partial(certbot_command, exe, extra), "", tool_version(exe))


def make_lego(exe: Path | None) -> Client:
    """Lego at ``exe``."""
    problem = executable_problem(exe, "lego", ".cache/lego/VERSION")
    if problem or exe is None:
        return Client("lego", None, problem)
    return Client("lego", functools.partial(lego_command, exe), "", tool_version(exe))


def make_clients(selected: list[str], certbot: Path | None, lego: Path | None) -> list[Client]:
    """Return the selected clients in canonical order, each runnable or with a skip reason.

    Paths are made absolute (not resolved: a venv's python must keep its own path) because every
    run's working directory is its own temporary directory.
    """
    certbot = certbot.absolute() if certbot else None
    lego = lego.absolute() if lego else None
    factories: dict[str, Callable[[], Client]] = {
        "ours": make_ours,
        "certbot": functools.partial(make_certbot, certbot),
        "lego": functools.partial(make_lego, lego),
    }
    return [factories[name]() for name in CLIENTS if name in selected]


# --- measuring ---------------------------------------------------------------------------------


def new_target(pebble: Pebble, size: int, parent: Path) -> Target:
    """Make a fresh directory and ``size`` fresh random names for one run."""
    label = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix=f"run-{label}-", dir=parent))
    names = tuple(f"{label}-{i}.{NAME_SUFFIX}" for i in range(size))
    return Target(pebble.directory_url, pebble.ca_bundle, pebble.http_port, names, workdir)


def output_tail(stderr: Path, stdout: Path) -> str:
    """Return the end of the run's stderr (stdout if stderr is empty), for failure reports."""
    for path in (stderr, stdout):
        text = path.read_text("utf-8", "replace").strip() if path.is_file() else ""
        if text:
            return text[-TAIL_CHARS:]
    return "(no output)"


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the launcher's process group (launcher + client) and reap the launcher."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def launch(command: Command, workdir: Path, timeout: float) -> tuple[int | None, Path]:
    """Run ``command`` under the launcher in ``workdir``; (launcher exit code, result file).

    The exit code is None when the run outlived ``timeout`` and was killed.
    """
    result_file = workdir / "launcher.result"
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(result_file), *command.argv]
    env = {**os.environ, **command.env}
    with (workdir / "stdout.log").open("wb") as out, (workdir / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            launcher,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            cwd=workdir,
            start_new_session=True,  # one process group to kill: launcher and client
        )
        try:
            return proc.wait(timeout=timeout), result_file
        except subprocess.TimeoutExpired:
            kill_group(proc)
            return None, result_file
        except BaseException:  # Ctrl-C: leave nothing running
            kill_group(proc)
            raise


def measure(command: Command, workdir: Path, timeout: float = RUN_TIMEOUT_S) -> RunResult:
    """Run one client and return its wall time and peak RSS, or why it failed."""
    launcher_rc, result_file = launch(command, workdir, timeout)
    tail = output_tail(workdir / "stderr.log", workdir / "stdout.log")
    if launcher_rc is None:
        return RunResult(error=f"timed out after {timeout:.0f} s, killed\n{tail}")
    if launcher_rc != 0 or not result_file.is_file():
        return RunResult(error=f"launcher failed (exit {launcher_rc})\n{tail}")
    rc_text, wall_text, maxrss_text = result_file.read_text().split()
    rc = int(rc_text)
    if rc != 0:
        how = f"killed by signal {-rc}" if rc < 0 else f"exit {rc}"
        return RunResult(error=f"{how}\n{tail}")
    if not command.certificate.is_file():
        return RunResult(error=f"exit 0 but no certificate at {command.certificate}\n{tail}")
    return RunResult(wall_s=float(wall_text), rss_mib=int(maxrss_text) / 1024)


def run_rounds(pebble: Pebble, clients: list[Client], sizes: list[int], runs: int) -> Results:
    """Run every runnable client ``runs`` times per size, interleaved, reporting as it goes."""
    results: Results = {(c.name, size): Series() for c in clients for size in sizes}
    runnable = [(c.name, c.build) for c in clients if c.build is not None]
    scratch = pebble.workdir.parent
    for round_no in range(runs):
        shift = round_no % len(runnable) if runnable else 0
        order = runnable[shift:] + runnable[:shift]
        for size in sizes:
            for name, build in order:
                target = new_target(pebble, size, scratch)
                try:
                    result = measure(build(target), target.workdir)
                finally:
                    shutil.rmtree(target.workdir, ignore_errors=True)
                results[name, size].runs.append(result)
                report_run(name, size, round_no + 1, runs, result)
    return results


# --- reporting ---------------------------------------------------------------------------------


def report_run(client: str, size: int, round_no: int, runs: int, result: RunResult) -> None:
    """One progress line on stderr (with the output tail when the run failed)."""
    head = f"[{round_no}/{runs}] {client:<8} {size:>2} name{'s' if size > 1 else ' '}:"
    if result.error is None:
        print(f"{head} {result.wall_s:7.3f} s  {result.rss_mib:6.1f} MiB", file=sys.stderr)
    else:
        indented = result.error.replace("\n", "\n      ")
        print(f"{head} FAILED: {indented}", file=sys.stderr, flush=True)


def report_skips(clients: list[Client]) -> None:
    """Say on stderr which clients will not run, and why."""
    for client in clients:
        if client.build is None:
            print(f"skipping {client.name}: {client.skip_reason}", file=sys.stderr)


def ratio_cell(ours: Series | None, peer: Series, client: str) -> str:
    """Format the ``ours/this`` column: our median divided by this client's."""
    if client == "ours":
        return "-"
    ours_median = ours.median_wall if ours else None
    peer_median = peer.median_wall
    if ours_median is None or not peer_median:
        return "n/a"
    return f"{ours_median / peer_median:.2f}"


def print_table(clients: list[Client], results: Results, size: int, runs: int) -> None:
    """Print the table for one size: median/min/max wall, median peak RSS, failures, ratio."""
    print(f"\n{size} name{'s' if size > 1 else ''}, {runs} run(s) per client")
    print(f"{'client':<9}{'median s':>9}{'min s':>8}{'max s':>8}{'RSS MiB':>9}{'fail':>6}"
          f"{'ours/this':>11}")  # fmt: skip
    ours = results.get(("ours", size))
    for client in clients:
        series = results[client.name, size]
        median = series.median_wall
        if client.build is None or median is None:
            why = client.skip_reason or f"all {len(series.runs)} runs failed"
            print(f"{client.name:<9}{'null':>9}   ({why})")
            continue
        walls = [run.wall_s for run in series.ok]
        print(
            f"{client.name:<9}{median:>9.3f}{min(walls):>8.3f}{max(walls):>8.3f}"
            f"{series.median_rss or 0:>9.1f}{f'{series.failures}/{len(series.runs)}':>6}"
            f"{ratio_cell(ours, series, client.name):>11}"
        )


def rounded(value: float | None, digits: int) -> float | None:
    """``round`` that lets None through."""
    return None if value is None else round(value, digits)


def summary(
    clients: list[Client], results: Results, sizes: list[int], runs: int
) -> dict[str, object]:
    """Build the JSON summary: required median keys first (null if unavailable), then extras."""
    line: dict[str, object] = {"bench": "acme"}
    rss: dict[str, float | None] = {}
    failures: dict[str, int] = {}
    for size in [*JSON_SIZES, *(s for s in sizes if s not in JSON_SIZES)]:
        for name in CLIENTS:
            series = results.get((name, size))
            key = f"{name}_{size}"
            line[key] = rounded(series.median_wall, 3) if series else None
            rss[key] = rounded(series.median_rss, 1) if series else None
            if series and series.runs:
                failures[key] = series.failures
    try:
        pebble_version = PebbleBinaries.locate().version
    except PebbleNotInstalled:
        pebble_version = None
    line.update(
        rss_mib=rss,
        failures=failures,
        runs=runs,
        pebble=pebble_version,
        versions={c.name: c.version for c in clients},
    )
    return line


# --- entry point -------------------------------------------------------------------------------


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so that Pebble and a running client are still cleaned up."""

    def handler(signum: int, frame: FrameType | None) -> None:
        del frame
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certbot", type=Path, default=DEFAULT_CERTBOT, help="certbot binary")
    parser.add_argument("--lego", type=Path, default=DEFAULT_LEGO, help="lego binary")
    parser.add_argument(
        "--clients", type=client_list, default=list(CLIENTS), help="subset of ours,certbot,lego"
    )
    parser.add_argument("--runs", type=positive_int, default=5, help="runs per client and size")
    parser.add_argument("--names", type=size_list, default=list(JSON_SIZES), help="e.g. 1,10")
    return parser.parse_args(argv)


def positive_int(text: str) -> int:
    """Parse an integer >= 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def client_list(text: str) -> list[str]:
    """Parse comma-separated client names out of CLIENTS (argparse type)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(CLIENTS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"clients are {','.join(CLIENTS)}; got {text!r}")
    return names


def size_list(text: str) -> list[int]:
    """Parse comma-separated name counts such as ``1,10`` (argparse type)."""
    sizes = [positive_int(part) for part in text.split(",") if part.strip()]
    if not sizes:
        raise argparse.ArgumentTypeError("give at least one size")
    return list(dict.fromkeys(sizes))


def main(argv: list[str] | None = None) -> int:
    """Set up the clients and one Pebble, run the rounds, print tables and the JSON line."""
    args = parse_args(argv)
    exit_on_sigterm()
    clients = make_clients(args.clients, args.certbot, args.lego)
    report_skips(clients)
    with tempfile.TemporaryDirectory(prefix="acme-bench-") as tmp:
        options = PebbleOptions(
            http_port=free_port(),
            nonce_reject_percent=0,
            authz_reuse_percent=0,
            retry_after_authz=0,
            retry_after_order=0,
        )
        try:
            with Pebble(Path(tmp) / "pebble", options) as pebble:
                print(f"Pebble at {pebble.directory_url}, http-01 on port {pebble.http_port}",
                      file=sys.stderr)  # fmt: skip
                results = run_rounds(pebble, clients, args.names, args.runs)
        except PebbleNotInstalled as exc:
            print(f"cannot run: {exc}", file=sys.stderr)
            return 2
    for size in args.names:
        print_table(clients, results, size, args.runs)
    print(json.dumps(summary(clients, results, args.names, args.runs)), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: Pebble and the running client were stopped", file=sys.stderr)
        sys.exit(130)
