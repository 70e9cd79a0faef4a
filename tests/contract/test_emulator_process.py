"""The emulator as its own process: ``python -m sandbox.oci_emulator --state --seed``.

Credentials come from its admin API (private keys stay here), and a ``kill -9`` followed by a
restart on the same state file loses neither data nor the credentials it handed out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import oci
import pytest

from sandbox.oci_emulator.credentials import api_key_config_remote, resource_principal_env_remote
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, NAMESPACE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "acme-challenges"
FIXTURE = {**BASE_FIXTURE, "buckets": [{"name": BUCKET, "compartment": COMPARTMENT}]}


class EmulatorProcess:
    """One ``python -m sandbox.oci_emulator`` child; ``endpoint`` from its first output line."""

    def __init__(self, state: Path, seed: Path) -> None:
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "sandbox.oci_emulator",
                "--state",
                str(state),
                "--seed",
                str(seed),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.proc.kill()
            pytest.fail(
                f"emulator did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        self.announced = json.loads(line)
        self.endpoint: str = self.announced["endpoint"]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=10)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    seed = tmp_path / "fixture.json"
    seed.write_text(json.dumps(FIXTURE))
    return tmp_path / "state.json", seed


@pytest.fixture
def started(files: tuple[Path, Path]) -> Iterator[list[EmulatorProcess]]:
    processes: list[EmulatorProcess] = []
    yield processes
    for process in processes:
        process.stop(signal.SIGKILL)


def client(endpoint: str, config: dict[str, str], **kwargs: object):
    return oci.object_storage.ObjectStorageClient(
        config,
        service_endpoint=endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        **kwargs,
    )


def test_standalone_emulator_survives_kill_and_restart(files, started, tmp_path, monkeypatch):
    state, seed = files
    first = EmulatorProcess(state, seed)
    started.append(first)
    assert first.announced["endpoint"].startswith("http://127.0.0.1:")

    config = api_key_config_remote(first.endpoint, "operator", tmp_path / "api")
    client(first.endpoint, config).put_object(NAMESPACE, BUCKET, "kept", b"before the crash")
    env = resource_principal_env_remote(first.endpoint, "renewer", tmp_path / "rp")

    first.stop(signal.SIGKILL)  # no chance to save anything on the way out

    second = EmulatorProcess(state, seed)
    started.append(second)
    # The same API key and the same resource-principal token still authenticate.
    got = client(second.endpoint, config).get_object(NAMESPACE, BUCKET, "kept")
    assert got.data.content == b"before the crash"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    listed = client(second.endpoint, {}, signer=signer).list_objects(NAMESPACE, BUCKET)
    assert [o.name for o in listed.data.objects] == ["kept"]

    assert second.stop(signal.SIGTERM) == 0


def test_unknown_principal_for_credentials_is_a_clear_error(files, started, tmp_path):
    state, seed = files
    process = EmulatorProcess(state, seed)
    started.append(process)
    with pytest.raises(Exception, match="400") as info:
        api_key_config_remote(process.endpoint, "nobody", tmp_path)
    body = info.value.read().decode()  # type: ignore[attr-defined]
    assert "unknown principal 'nobody'" in body
    assert "operator" in body


def test_bad_fixture_fails_at_start_naming_the_entry(tmp_path):
    seed = tmp_path / "fixture.json"
    seed.write_text(json.dumps({"principals": [{"name": "x", "kind": "robot", "id": "y"}]}))
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "sandbox.oci_emulator", "--seed", str(seed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ},
        check=False,
    )
    assert done.returncode != 0
    assert "principal 'x'" in done.stderr
