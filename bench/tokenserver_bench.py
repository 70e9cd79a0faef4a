"""Benchmark: the token server on loopback, warm cache, server pinned to one core.

Usage (``make bench-tokenserver``)::

    .venv/bin/python bench/tokenserver_bench.py [--seconds 8] [--connections 32]
        [--rate 2000] [--flood-connections 8]

Method
------
The driver starts the OCI emulator (in its own process) with a challenge bucket holding one key
authorization, written through the real ``oci`` SDK, then ``python -m tokenserver`` as a
subprocess exactly as the container runs it: resource-principal credentials, the emulator as
Object Storage endpoint, access log on (to a file, as a container's stdout would be drained).
The server is pinned to CPU 0 (``os.sched_setaffinity``); the driver and every load generator
to CPU 1, so the server has one core to itself and the load never competes with it. With fewer
than two CPUs the run goes on unpinned and says so. Each load generator is a separate Python
process (asyncio, raw sockets) that checks every answer (status and exact body) and counts
anything else as an error; latency is measured per request with ``perf_counter``.

Phases (after one warm-up request, so the token is cached; the cache lives 5 s, so a few
re-reads of Object Storage happen during the run, as in production):

1. **keep-alive** — ``--connections`` connections, each sending its next request as soon as
   the previous answer arrived (closed loop), for ``--seconds``. → throughput (``rps``) and the
   latency percentiles of those same requests (``p99_ms``). Closed-loop latency includes the
   queueing that the chosen concurrency causes; it is the harsher reading.
2. **fixed rate** — ``--rate`` requests/s spread over the connections on a fixed schedule
   (open loop; a late answer does not delay the next send), latency measured from each
   request's *scheduled* time, so a stall shows up in every request it delays (no coordinated
   omission). → ``rate_p99_ms``.
3. **new connections** — every request on a fresh TCP connection (``Connection: close``), as
   the CA's validators do. → ``newconn_rps``, ``newconn_p99_ms``.
4. **flood** — ``--flood-connections`` keep-alive connections pipelining bogus requests (other
   paths, traversal, percent-encoding, over-long tokens, wrong methods) plus as many loops of
   bogus requests on new connections, as fast as they go; meanwhile a separate probe process
   fetches the valid token on a new connection every 10 ms. → ``flood_valid_p99_ms`` (the
   probe's p99), the flood's own rate, and the probe's errors.

The server's CPU use per phase (from /proc) shows whether the server or the load generator was
the limit: near 100 % means the server was saturated.

The last line of stdout is one JSON object: ``{"bench": "tokenserver", "rps": ..., "p99_ms":
..., "flood_valid_p99_ms": ...}`` followed by extra keys (``p50_ms``, ``rate``,
``rate_p99_ms``, ``newconn_rps``, ``newconn_p99_ms``, ``flood_rps``, ``errors``, ``pinned``,
``storage_reads``, ``access_log_lines`` and ``requests``: the access log must hold a line per
request, a check that the server did the work it was timed for). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # run as `python bench/tokenserver_bench.py`
    sys.path.insert(0, str(PROJECT_ROOT))

BUCKET = "acme-challenges"
NAMESPACE = "benchns"
COMPARTMENT = "ocid1.compartment.oc1..benchapps"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"  # noqa: S105 - public by design (RFC 8555)
KEY_AUTHORIZATION = f"{TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
SERVER_CPU = 0
LOAD_CPU = 1
START_TIMEOUT_S = 30.0
BOGUS_PATHS = (
    "/",
    "/wp-login.php",
    "/.well-known/acme-challenge/../../etc/passwd",
    "/.well-known/acme-challenge/%2e%2e/x",
    "/.well-known/acme-challenge/" + "A" * 300,
    "/.well-known/acme-challenge/tok%41en",
    "/.well-known/acme-challenge/",
    "/.well-known/security.txt",
    "/healthz/../.well-known/acme-challenge/x",
)
_LENGTH = re.compile(rb"\r\ncontent-length: *([0-9]+)", re.IGNORECASE)


# --------------------------------------------------------------------------- load generators
# Each runs in its own process (``--worker SPEC``) and prints one JSON result line.


def request_bytes(path: str, *, method: str = "GET", close: bool = False) -> bytes:
    """One HTTP/1.1 request as a validator sends it."""
    connection = "close" if close else "keep-alive"
    return (
        f"{method} {path} HTTP/1.1\r\nHost: www.bench.example\r\n"
        f"User-Agent: tokenserver-bench\r\nAccept: */*\r\nConnection: {connection}\r\n\r\n"
    ).encode()


class _Responses:
    """Splits a byte stream into HTTP responses (status, body); Content-Length framing only."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        out: list[tuple[int, bytes]] = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return out
            head = bytes(self.buffer[:end])
            match = _LENGTH.search(head)
            length = int(match.group(1)) if match else 0
            if len(self.buffer) < end + 4 + length:
                return out
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            out.append((int(head[9:12]), body))


class _ClosedLoop(asyncio.Protocol):
    """Keep-alive connection: send, wait for the answer, record, send again until ``stop``."""

    def __init__(
        self, spec: dict[str, Any], sink: dict[str, Any], done: asyncio.Future[None]
    ) -> None:
        self.request = request_bytes(spec["path"])
        self.expect = spec["expect"].encode()
        self.stop = spec["stop_at"]
        self.sink = sink
        self.done = done
        self.responses = _Responses()
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        self.sent = time.perf_counter()
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        for status, body in self.responses.feed(data):
            now = time.perf_counter()
            if status == 200 and body == self.expect:
                self.sink["latencies"].append(now - self.sent)
            else:
                self.sink["errors"] += 1
            if now >= self.stop:
                self.transport.close()  # type: ignore[union-attr]
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's
        if time.perf_counter() < self.stop:
            self.sink["errors"] += 1  # the server closed a keep-alive connection early
        if not self.done.done():
            self.done.set_result(None)


class _OpenLoop(asyncio.Protocol):
    """Keep-alive connection fed on a schedule; answers matched to scheduled times in order."""

    def __init__(self, spec: dict[str, Any], sink: dict[str, Any]) -> None:
        self.request = request_bytes(spec["path"])
        self.expect = spec["expect"].encode()
        self.sink = sink
        self.responses = _Responses()
        self.scheduled: deque[float] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, scheduled: float) -> None:
        self.scheduled.append(scheduled)
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        for status, body in self.responses.feed(data):
            latency = time.perf_counter() - self.scheduled.popleft()
            if status == 200 and body == self.expect:
                self.sink["latencies"].append(latency)
            else:
                self.sink["errors"] += 1

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's
        self.sink["errors"] += len(self.scheduled)
        if not self.lost.done():
            self.lost.set_result(None)


async def _one_new_connection(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        data = await reader.read()  # Connection: close -> until EOF
    finally:
        writer.close()
    responses = _Responses().feed(data)
    return responses[0] if responses else (0, b"")


async def worker_closed_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """Phase 1: ``connections`` closed-loop keep-alive connections until ``seconds`` pass."""
    loop = asyncio.get_running_loop()
    sink: dict[str, Any] = {"latencies": [], "errors": 0}
    spec = {**spec, "stop_at": time.perf_counter() + spec["seconds"]}
    started = time.perf_counter()
    done = []
    for _ in range(spec["connections"]):
        future = loop.create_future()
        await loop.create_connection(
            lambda f=future: _ClosedLoop(spec, sink, f), "127.0.0.1", spec["port"]
        )
        done.append(future)
    await asyncio.gather(*done)
    return {"elapsed": time.perf_counter() - started, **sink}


async def worker_open_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """Phase 2: ``rate`` requests/s round-robin over ``connections``, for ``seconds``."""
    loop = asyncio.get_running_loop()
    sink: dict[str, Any] = {"latencies": [], "errors": 0}
    protocols: list[_OpenLoop] = []
    for _ in range(spec["connections"]):
        _, protocol = await loop.create_connection(
            lambda: _OpenLoop(spec, sink), "127.0.0.1", spec["port"]
        )
        protocols.append(protocol)
    total = int(spec["rate"] * spec["seconds"])
    start = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = start + i / spec["rate"]
        delay = scheduled - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        protocols[i % len(protocols)].send(scheduled)
    deadline = time.perf_counter() + 5
    # Polling: the last answers of a few connections, once.
    while any(p.scheduled for p in protocols) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    for protocol in protocols:
        protocol.transport.close()  # type: ignore[union-attr]
    return {"elapsed": time.perf_counter() - start, **sink}


async def worker_new_connections(spec: dict[str, Any]) -> dict[str, Any]:
    """Phase 3 (and the flood's probe): requests on fresh connections, ``connections`` at once.

    With ``interval`` each loop waits that long between requests (the probe); without, it goes
    as fast as it can.
    """
    request = request_bytes(spec["path"], close=True)
    expect = spec["expect"].encode()
    sink: dict[str, Any] = {"latencies": [], "errors": 0}
    stop = time.perf_counter() + spec["seconds"]
    interval = spec.get("interval")

    async def one_loop() -> None:
        next_at = time.perf_counter()
        while time.perf_counter() < stop:
            if interval:
                next_at += interval
            started = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(
                    _one_new_connection(spec["port"], request), timeout=5
                )
            except (OSError, TimeoutError):
                status, body = 0, b""
            if status == 200 and body == expect:
                sink["latencies"].append(time.perf_counter() - started)
            else:
                sink["errors"] += 1
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    started = time.perf_counter()
    await asyncio.gather(*(one_loop() for _ in range(spec["connections"])))
    return {"elapsed": time.perf_counter() - started, **sink}


class _Flooder(asyncio.Protocol):
    """Pipelines ``depth`` bogus requests at a time on one keep-alive connection."""

    def __init__(
        self, spec: dict[str, Any], sink: dict[str, Any], done: asyncio.Future[None]
    ) -> None:
        self.requests = [request_bytes(p) for p in BOGUS_PATHS]
        self.requests += [request_bytes("/.well-known/acme-challenge/x", method="POST")]
        self.depth = spec["depth"]
        self.stop = spec["stop_at"]
        self.sink = sink
        self.done = done
        self.responses = _Responses()
        self.i = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        for _ in range(self.depth):
            self._send()

    def _send(self) -> None:
        self.i += 1
        self.transport.write(self.requests[self.i % len(self.requests)])  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        for status, _ in self.responses.feed(data):
            self.sink["answers"] += 1
            self.sink["statuses"][str(status)] = self.sink["statuses"].get(str(status), 0) + 1
            if time.perf_counter() < self.stop:
                self._send()
            elif self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002 - asyncio's
        if not self.done.done():
            self.done.set_result(None)


async def worker_flood(spec: dict[str, Any]) -> dict[str, Any]:
    """Phase 4: bogus requests, pipelined on keep-alive connections and on new connections."""
    loop = asyncio.get_running_loop()
    sink: dict[str, Any] = {"answers": 0, "statuses": {}, "errors": 0}
    spec = {**spec, "stop_at": time.perf_counter() + spec["seconds"]}
    started = time.perf_counter()
    done = []
    for _ in range(spec["connections"]):
        future = loop.create_future()
        await loop.create_connection(
            lambda f=future: _Flooder(spec, sink, f), "127.0.0.1", spec["port"]
        )
        done.append(future)

    async def new_connection_loop(offset: int) -> None:
        i = offset
        while time.perf_counter() < spec["stop_at"]:
            i += 1
            try:
                status, _ = await asyncio.wait_for(
                    _one_new_connection(
                        spec["port"], request_bytes(BOGUS_PATHS[i % len(BOGUS_PATHS)], close=True)
                    ),
                    timeout=5,
                )
            except (OSError, TimeoutError):
                sink["errors"] += 1
                continue
            sink["answers"] += 1
            sink["statuses"][str(status)] = sink["statuses"].get(str(status), 0) + 1

    await asyncio.gather(*done, *(new_connection_loop(i) for i in range(spec["connections"])))
    return {"elapsed": time.perf_counter() - started, **sink}


WORKERS = {
    "closed": worker_closed_loop,
    "open": worker_open_loop,
    "newconn": worker_new_connections,
    "flood": worker_flood,
}


def run_worker(spec_json: str) -> int:
    """Worker process entry: run one load generator, print its JSON result."""
    spec = json.loads(spec_json)
    result = asyncio.run(WORKERS[spec["kind"]](spec))
    print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- the driver


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) in milliseconds, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 3)


def cpu_seconds(pid: int) -> float:
    """Utime + stime of ``pid`` in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpu: int) -> bool:
    """Pin ``pid`` to ``cpu`` when this machine has it; False otherwise."""
    if cpu not in os.sched_getaffinity(0) and cpu >= (os.cpu_count() or 1):
        return False
    try:
        os.sched_setaffinity(pid, {cpu})
    except OSError:
        return False
    return True


class Workers:
    """Starts worker processes (inheriting the driver's CPU) and collects their results."""

    def __init__(self, port: int, server_pid: int) -> None:
        self.port = port
        self.server_pid = server_pid

    def start(self, kind: str, **spec: Any) -> subprocess.Popen[str]:  # noqa: ANN401
        """Spawn one worker."""
        spec = {"kind": kind, "port": self.port, **spec}
        return subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, *procs: subprocess.Popen[str]) -> tuple[list[dict[str, Any]], float]:
        """Wait for ``procs``; their results and the server's CPU share meanwhile."""
        cpu0, wall0 = cpu_seconds(self.server_pid), time.perf_counter()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=300)
            if proc.returncode != 0:
                msg = f"load generator failed with exit code {proc.returncode}"
                raise RuntimeError(msg)
            results.append(json.loads(out.strip().splitlines()[-1]))
        share = (cpu_seconds(self.server_pid) - cpu0) / (time.perf_counter() - wall0)
        return results, share


def setup_storage(tmp: Path) -> tuple[Any, dict[str, str]]:
    """Start the emulator process; write the key authorization; the server's environment."""
    os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
    import oci  # noqa: PLC0415 - only the driver needs the SDK

    from sandbox.oci_emulator.credentials import (  # noqa: PLC0415
        api_key_config_remote,
        resource_principal_env_remote,
    )

    fixture = {
        "tenancy": "ocid1.tenancy.oc1..bench",
        "namespace": NAMESPACE,
        "compartments": [{"name": "apps", "id": COMPARTMENT}],
        "principals": [
            {"name": "operator", "kind": "user", "id": "ocid1.user.oc1..op", "groups": ["A"]},
            {
                "name": "token-server",
                "kind": "resource",
                "id": "ocid1.computecontainerinstance.oc1.phx.bench",
                "compartment": COMPARTMENT,
                "groups": ["token-server-dg"],
            },
        ],
        "buckets": [{"name": BUCKET, "compartment": COMPARTMENT}],
    }
    (tmp / "fixture.json").write_text(json.dumps(fixture))
    emulator = subprocess.Popen(
        [sys.executable, "-m", "sandbox.oci_emulator", "--seed", str(tmp / "fixture.json")],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = emulator.stdout.readline()  # type: ignore[union-attr]
    if not line:
        msg = "the OCI emulator did not start"
        raise RuntimeError(msg)
    endpoint = json.loads(line)["endpoint"]
    config = api_key_config_remote(endpoint, "operator", tmp / "operator")
    client = oci.object_storage.ObjectStorageClient(
        config, service_endpoint=endpoint, retry_strategy=oci.retry.NoneRetryStrategy()
    )
    client.put_object(
        NAMESPACE,
        BUCKET,
        f".well-known/acme-challenge/{TOKEN}",
        KEY_AUTHORIZATION.encode(),
        content_type="text/plain",
    )
    env = {
        **resource_principal_env_remote(endpoint, "token-server", tmp / "rp"),
        "OCI_AUTH": "resource_principal",
        "TOKEN_SERVER_BUCKET": BUCKET,
        "TOKEN_SERVER_PORT": "0",
        "TOKEN_SERVER_HOST": "127.0.0.1",
        "TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": endpoint,
    }
    return emulator, env


def start_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``python -m tokenserver`` with stdout (access log) to ``log``; its pid and port."""
    full_env = {**os.environ, **env, "PYTHONPATH": str(PROJECT_ROOT)}
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenserver"],
        cwd=PROJECT_ROOT,
        env=full_env,
        stdout=out,
        stderr=subprocess.DEVNULL,
    )
    out.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"the token server exited with {proc.returncode}"
            raise RuntimeError(msg)
        first = log.read_text().split("\n", 1)[0]
        if first.endswith("}"):
            return proc, int(json.loads(first)["port"])
        time.sleep(0.05)
    proc.kill()
    msg = "the token server did not report its port"
    raise RuntimeError(msg)


def report(name: str, result: dict[str, Any], share: float, *, rps: float | None = None) -> None:
    """One human-readable line for a phase."""
    lat = result["latencies"]
    rate = rps if rps is not None else len(lat) / result["elapsed"]
    print(
        f"{name:<34} {rate:>9.0f} req/s  p50 {percentile(lat, 50)} ms  p90 {percentile(lat, 90)}"
        f" ms  p99 {percentile(lat, 99)} ms  max {percentile(lat, 100)} ms"
        f"  errors {result['errors']}  server CPU {share:.0%}",
        flush=True,
    )


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine results of several workers of one phase."""
    return {
        "latencies": [x for r in results for x in r["latencies"]],
        "errors": sum(r["errors"] for r in results),
        "elapsed": max(r["elapsed"] for r in results),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, run the four phases, print the table; the summary for the JSON line."""
    pinned = pin(0, LOAD_CPU)
    with tempfile.TemporaryDirectory(prefix="tokenserver-bench-") as tmp_name:
        tmp = Path(tmp_name)
        emulator, env = setup_storage(tmp)
        server = None
        try:
            server, port = start_server(env, tmp / "access.log")
            pinned = pin(server.pid, SERVER_CPU) and pinned
            if not pinned:
                print("warning: fewer than 2 CPUs; running unpinned", file=sys.stderr)
            workers = Workers(port, server.pid)
            expect = KEY_AUTHORIZATION
            path = f"/.well-known/acme-challenge/{TOKEN}"
            common = {"path": path, "expect": expect}
            print(f"token server pid {server.pid} on CPU {SERVER_CPU}, port {port}; load on CPU"
                  f" {LOAD_CPU}; {args.seconds:g} s per phase", file=sys.stderr)  # fmt: skip
            warm, _ = workers.run(workers.start("newconn", connections=1, seconds=0.001, **common))
            if warm[0]["errors"]:
                msg = "the warm-up request did not get the key authorization"
                raise RuntimeError(msg)

            (closed,), share1 = workers.run(
                workers.start(
                    "closed", connections=args.connections, seconds=args.seconds, **common
                )
            )
            report(f"keep-alive, {args.connections} connections", closed, share1)
            (opened,), share2 = workers.run(
                workers.start("open", connections=8, rate=args.rate, seconds=args.seconds, **common)
            )
            report(f"fixed rate {args.rate}/s (open loop)", opened, share2)
            (newconn,), share3 = workers.run(
                workers.start("newconn", connections=8, seconds=args.seconds, **common)
            )
            report("new connection per request, 8 loops", newconn, share3)

            flood_proc = workers.start(
                "flood", connections=args.flood_connections, depth=8, seconds=args.seconds
            )
            time.sleep(0.5)  # let the flood ramp up before probing
            probe_proc = workers.start(
                "newconn", connections=1, interval=0.01, seconds=args.seconds - 1, **common
            )
            (flood, probe), share4 = workers.run(flood_proc, probe_proc)
            flood_rps = flood["answers"] / flood["elapsed"]
            print(
                f"flood of bogus requests: {flood_rps:.0f} answers/s, statuses"
                f" {flood['statuses']}, connection errors {flood['errors']}",
                flush=True,
            )
            report("  valid token during flood (probe)", probe, share4)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=10)
            emulator.terminate()
            emulator.wait(timeout=10)
        log_lines = (tmp / "access.log").read_text().splitlines()[1:]  # after "listening"
    storage_reads = sum(1 for line in log_lines if '"cache":"miss"' in line)
    answered = (
        1
        + flood["answers"]
        + sum(len(r["latencies"]) + r["errors"] for r in (closed, opened, newconn, probe))
    )
    print(
        f"access log: {len(log_lines)} lines for {answered} answers counted by the load"
        " generators (a flooder closing with pipelined requests in flight leaves a few more"
        f" lines than answers); storage reads (cache misses): {storage_reads}",
        flush=True,
    )
    return {
        "bench": "tokenserver",
        "rps": round(len(closed["latencies"]) / closed["elapsed"]),
        "p99_ms": percentile(closed["latencies"], 99),
        "flood_valid_p99_ms": percentile(probe["latencies"], 99),
        "p50_ms": percentile(closed["latencies"], 50),
        "rate": args.rate,
        "rate_p99_ms": percentile(opened["latencies"], 99),
        "newconn_rps": round(len(newconn["latencies"]) / newconn["elapsed"]),
        "newconn_p99_ms": percentile(newconn["latencies"], 99),
        "flood_rps": round(flood_rps),
        "errors": closed["errors"] + opened["errors"] + newconn["errors"] + probe["errors"],
        "probe_requests": len(probe["latencies"]) + probe["errors"],
        "pinned": pinned,
        "storage_reads": storage_reads,
        "access_log_lines": len(log_lines),
        "requests": answered,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each phase")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rate", type=int, default=2000, help="fixed-rate phase, requests/s")
    parser.add_argument("--flood-connections", type=int, default=8)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with --worker, one load generator)."""
    args = parse_args(argv)
    if args.worker:
        return run_worker(args.worker)
    summary = run(args)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
