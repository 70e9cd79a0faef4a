"""``python -m tokenserver`` as the container runs it, and its health-check helper.

The process gets only environment variables (the names the Terraform module sets), reads the
bucket with the resource principal the container instance would have, looks the namespace up
itself, prints its port first, logs JSON, stops cleanly on SIGTERM, and refuses to start with
exit status 2 and a message naming the variable when its configuration is wrong.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tokenserver.conftest import (
    BUCKET,
    CHALLENGE,
    KEY_AUTHORIZATION,
    TOKEN,
    World,
    get,
    read_line,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def base_env() -> dict[str, str]:
    """Our environment without OCI credentials or token-server settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OCI_RESOURCE_PRINCIPAL_", "TOKEN_SERVER_", "OCI_AUTH"))
    } | {"PYTHONPATH": str(ROOT)}


def server_env(world: World, **extra: str) -> dict[str, str]:
    return {
        **base_env(),
        **world.rp_env,
        "TOKEN_SERVER_BUCKET": BUCKET,
        "TOKEN_SERVER_PORT": "0",
        "TOKEN_SERVER_HOST": "127.0.0.1",
        "TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": world.endpoint,
        **extra,
    }


@pytest.fixture
def process(world: World) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(  # noqa: S603 - our own arguments
        [sys.executable, "-m", "tokenserver"],
        cwd=ROOT,
        env=server_env(world),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = read_line(proc.stdout, START_TIMEOUT)
        assert first, (
            f"no listening line; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        ready = json.loads(first)
        assert ready["event"] == "listening"
        yield proc, int(ready["port"])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_the_process_serves_the_bucket_and_stops_cleanly_on_sigterm(world: World, process):
    proc, port = process
    world.put(TOKEN, KEY_AUTHORIZATION)

    answer = get(port, CHALLENGE + TOKEN)
    health = get(port, "/healthz")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)

    assert (answer.status, answer.body) == (200, KEY_AUTHORIZATION.encode())
    assert health.status == 200
    assert proc.returncode == 0
    access = [json.loads(line) for line in out.splitlines()]
    assert [(e["path"], e["status"]) for e in access] == [
        (CHALLENGE + TOKEN, 200),
        ("/healthz", 200),
    ]
    diagnostics = [json.loads(line) for line in err.splitlines()]
    assert {"time", "level", "logger", "message"} <= set(diagnostics[0])
    assert any("listening" in d["message"] for d in diagnostics)
    secret = KEY_AUTHORIZATION.split(".", 1)[1]
    assert secret not in err
    assert secret not in json.dumps(access)
    # No namespace configured: it was looked up with GetNamespace (which needs no policy).
    assert "GetNamespace" in [e["operation"] for e in world.storage_calls()]


def test_the_health_check_helper_reports_the_server(world: World, process):
    _, port = process
    env = {**base_env(), "TOKEN_SERVER_PORT": str(port)}

    healthy = subprocess.run(  # noqa: S603 - our own arguments
        [sys.executable, "-m", "tokenserver.healthcheck"],
        env=env,
        cwd=ROOT,
        timeout=30,
        check=False,
    )
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    dead = subprocess.run(  # noqa: S603 - our own arguments
        [sys.executable, "-m", "tokenserver.healthcheck"],
        env={**env, "TOKEN_SERVER_PORT": str(dead_port)},
        cwd=ROOT,
        timeout=30,
        check=False,
        capture_output=True,
        text=True,
    )

    assert healthy.returncode == 0
    assert dead.returncode == 1
    assert str(dead_port) in dead.stderr


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"TOKEN_SERVER_BUCKET": ""}, "TOKEN_SERVER_BUCKET"),
        ({"TOKEN_SERVER_PORT": "eighty"}, "TOKEN_SERVER_PORT"),
        ({"OCI_AUTH": "password"}, "OCI_AUTH"),
        ({"TOKEN_SERVER_CACHE_SECONDS": "-1"}, "TOKEN_SERVER_CACHE_SECONDS"),
        (
            {"TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": "localhost:1"},
            "TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT",
        ),
    ],
    ids=["no-bucket", "bad-port", "bad-auth", "negative-ttl", "endpoint-without-scheme"],
)
def test_bad_configuration_exits_2_naming_the_variable(
    world: World, change: dict[str, str], named: str
):
    result = subprocess.run(  # noqa: S603 - our own arguments
        [sys.executable, "-m", "tokenserver"],
        env=server_env(world, **change),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert named in result.stderr
    assert result.stdout == ""  # no listening line


def test_missing_resource_principal_credentials_exit_2_naming_oci_auth(world: World):
    env = {
        k: v for k, v in server_env(world).items() if not k.startswith("OCI_RESOURCE_PRINCIPAL_")
    }

    result = subprocess.run(  # noqa: S603 - our own arguments
        [sys.executable, "-m", "tokenserver"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "OCI_AUTH=resource_principal" in result.stderr
    assert "OCI_RESOURCE_PRINCIPAL_" in result.stderr


def test_a_port_in_use_exits_2(world: World):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(  # noqa: S603 - our own arguments
            [sys.executable, "-m", "tokenserver"],
            env=server_env(world, TOKEN_SERVER_PORT=str(port)),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert result.returncode == 2
    assert "cannot listen" in result.stderr
