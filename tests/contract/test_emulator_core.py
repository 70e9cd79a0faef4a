"""The emulator's shared pipeline: authentication, fault injection, the admin API, wire hygiene.

Driven by the real ``oci`` SDK (its signer and its clients) against a tiny probe service, so these
tests hold whatever services are registered.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import oci
import pytest
import requests

from sandbox.oci_emulator.core import Principal, Reply, Request, Route
from sandbox.oci_emulator.credentials import api_key_config, resource_principal_env
from sandbox.oci_emulator.faults import FaultRule
from sandbox.oci_emulator.server import Emulator

pytestmark = pytest.mark.integration

TENANCY = "ocid1.tenancy.oc1..coretenancy"
USER = Principal("user", "ocid1.user.oc1..coreuser", TENANCY, groups=frozenset({"Admins"}))
FUNCTION = Principal(
    "resource",
    "ocid1.fnfunc.oc1.phx.corefunction",
    TENANCY,
    "ocid1.compartment.oc1..core",
    frozenset({"renewer-dg"}),
)


class Probe:
    """A minimal service: GetNamespace (GET /n) and an echo POST that reports the principal."""

    name = "probe"

    def __init__(self) -> None:
        self.seen: list[Principal | None] = []

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/n", "GetNamespace", self._namespace),
            Route("POST", "/20990101/echo", "Echo", self._echo),
            Route("GET", "/open/{name}", "OpenRead", self._open, signed=False),
        ]

    def seed(self, fixture: dict[str, Any]) -> None:
        del fixture

    def _namespace(self, request: Request) -> Reply:
        self.seen.append(request.principal)
        return Reply(body="corens")

    def _echo(self, request: Request) -> Reply:
        self.seen.append(request.principal)
        return Reply(body={"got": request.json_object()})

    def _open(self, request: Request) -> Reply:
        return Reply(body=request.params["name"].encode(), content_type="text/plain")


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def emulator(probe: Probe, tmp_path: Path):
    emu = Emulator(state_path=str(tmp_path / "state.json"))
    emu.register(probe)
    with emu:
        yield emu


def object_storage(emulator: Emulator, config: dict[str, Any], **kwargs: Any):
    return oci.object_storage.ObjectStorageClient(
        config,
        service_endpoint=emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
        **kwargs,
    )


def signed_session(config: dict[str, str]) -> tuple[requests.Session, oci.signer.Signer]:
    signer = oci.signer.Signer(
        tenancy=config["tenancy"],
        user=config["user"],
        fingerprint=config["fingerprint"],
        private_key_file_location=config["key_file"],
    )
    return requests.Session(), signer


def error_of(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def test_api_key_signature_identifies_the_user(emulator, probe, tmp_path):
    client = object_storage(emulator, api_key_config(emulator, USER, tmp_path))
    assert client.get_namespace().data == "corens"
    assert probe.seen == [USER]


def test_resource_principal_signature_identifies_the_function(
    emulator, probe, tmp_path, monkeypatch
):
    for name, value in resource_principal_env(emulator, FUNCTION, tmp_path).items():
        monkeypatch.setenv(name, value)
    signer = oci.auth.signers.get_resource_principals_signer()
    assert object_storage(emulator, {}, signer=signer).get_namespace().data == "corens"
    assert probe.seen == [FUNCTION]


def test_signed_post_body_reaches_the_handler(emulator, tmp_path):
    session, signer = signed_session(api_key_config(emulator, USER, tmp_path))
    response = session.post(f"{emulator.endpoint}/20990101/echo", json={"a": 1}, auth=signer)
    assert response.status_code == 200
    assert response.json() == {"got": {"a": 1}}


def test_missing_signature_is_401(emulator):
    response = requests.get(f"{emulator.endpoint}/n", timeout=5)
    assert error_of(response) == (401, "NotAuthenticated")


def test_unknown_key_is_401(emulator, tmp_path):
    config = api_key_config(emulator, USER, tmp_path)
    other = Emulator()  # the key is registered with another emulator only
    client = object_storage(emulator, api_key_config(other, USER, tmp_path / "other"))
    other._server.server_close()
    with pytest.raises(oci.exceptions.ServiceError) as info:
        client.get_namespace()
    assert (info.value.status, info.value.code) == (401, "NotAuthenticated")
    assert object_storage(emulator, config).get_namespace().data == "corens"


def test_tampered_body_is_401(emulator, tmp_path):
    session, signer = signed_session(api_key_config(emulator, USER, tmp_path))
    prepared = requests.Request(
        "POST", f"{emulator.endpoint}/20990101/echo", json={"amount": 1}
    ).prepare()
    signer(prepared)
    prepared.body = json.dumps({"amount": 9}).encode()  # same length, other content
    response = session.send(prepared, timeout=5)
    assert error_of(response) == (401, "NotAuthenticated")
    assert "x-content-sha256" in response.json()["message"]


def test_body_signature_must_cover_the_body_headers(emulator, tmp_path):
    session, signer = signed_session(api_key_config(emulator, USER, tmp_path))
    prepared = requests.Request(
        "POST", f"{emulator.endpoint}/20990101/echo", json={"a": 1}
    ).prepare()
    # Signed like a GET (date, (request-target), host only): OCI requires the body headers on POST.
    signer(prepared, enforce_content_headers=False)
    response = session.send(prepared, timeout=5)
    assert error_of(response) == (401, "NotAuthenticated")
    assert "does not cover" in response.json()["message"]


def test_stale_date_is_401(emulator, tmp_path):
    session, signer = signed_session(api_key_config(emulator, USER, tmp_path))
    prepared = requests.Request("GET", f"{emulator.endpoint}/n").prepare()
    prepared.headers["date"] = "Fri, 27 Nov 2020 00:00:00 GMT"
    signer(prepared)
    assert error_of(session.send(prepared, timeout=5)) == (401, "NotAuthenticated")


def test_forged_security_token_is_401(emulator, tmp_path, monkeypatch):
    env = resource_principal_env(emulator, FUNCTION, tmp_path)
    token = Path(env["OCI_RESOURCE_PRINCIPAL_RPST"]).read_text()
    header, claims, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["res_id"] = "ocid1.fnfunc.oc1.phx.someoneelse"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    Path(env["OCI_RESOURCE_PRINCIPAL_RPST"]).write_text(f"{header}.{forged}.{signature}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = object_storage(emulator, {}, signer=oci.auth.signers.get_resource_principals_signer())
    with pytest.raises(oci.exceptions.ServiceError) as info:
        client.get_namespace()
    assert (info.value.status, info.value.code) == (401, "NotAuthenticated")


def test_expired_security_token_is_401(emulator, tmp_path, monkeypatch):
    for name, value in resource_principal_env(emulator, FUNCTION, tmp_path, ttl=-10).items():
        monkeypatch.setenv(name, value)
    client = object_storage(emulator, {}, signer=oci.auth.signers.get_resource_principals_signer())
    with pytest.raises(oci.exceptions.ServiceError) as info:
        client.get_namespace()
    assert info.value.status == 401
    assert "expired" in info.value.message


def test_unsigned_route_needs_no_signature_and_unknown_path_is_404(emulator):
    response = requests.get(f"{emulator.endpoint}/open/hello", timeout=5)
    assert (response.status_code, response.content) == (200, b"hello")
    assert error_of(requests.get(f"{emulator.endpoint}/nope", timeout=5)) == (
        404,
        "NotAuthorizedOrNotFound",
    )


def test_every_answer_has_a_request_id_and_one_content_length(emulator, tmp_path):
    for response in (
        requests.get(f"{emulator.endpoint}/n", timeout=5),
        requests.head(f"{emulator.endpoint}/open/x", timeout=5),
        requests.get(f"{emulator.endpoint}/open/x", timeout=5),
    ):
        assert response.headers["opc-request-id"]
        raw = response.raw.headers.getlist("Content-Length")
        assert len(raw) == 1
    sent = requests.get(f"{emulator.endpoint}/n", headers={"opc-request-id": "abc"}, timeout=5)
    assert sent.headers["opc-request-id"] == "abc"


def admin(emulator: Emulator, method: str, what: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{emulator.endpoint}/_emulator/{what}", data=data, method=method
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        text = response.read()
    return json.loads(text) if text else None


def test_fault_rule_by_operation_fires_the_given_times(emulator, tmp_path):
    client = object_storage(emulator, api_key_config(emulator, USER, tmp_path))
    admin(
        emulator,
        "POST",
        "faults",
        {"operation": "GetNamespace", "times": 2, "status": 503, "code": "ServiceUnavailable"},
    )
    for _ in range(2):
        with pytest.raises(oci.exceptions.ServiceError) as info:
            client.get_namespace()
        assert (info.value.status, info.value.code) == (503, "ServiceUnavailable")
    assert client.get_namespace().data == "corens"
    assert admin(emulator, "GET", "faults")[0]["fired"] == 2


def test_fault_rule_by_method_and_path_with_probability_zero_never_fires(emulator, tmp_path):
    client = object_storage(emulator, api_key_config(emulator, USER, tmp_path))
    admin(
        emulator,
        "POST",
        "faults",
        {"method": "GET", "path": "^/n$", "status": 500, "probability": 0.0},
    )
    assert client.get_namespace().data == "corens"


def test_fault_latency_delays_the_answer(emulator, tmp_path):
    client = object_storage(emulator, api_key_config(emulator, USER, tmp_path))
    admin(emulator, "POST", "faults", {"operation": "GetNamespace", "latency": 0.3, "times": 1})
    started = time.monotonic()
    assert client.get_namespace().data == "corens"
    assert time.monotonic() - started >= 0.3


def test_hanging_request_is_released_when_the_emulator_stops(probe, tmp_path):
    emu = Emulator()
    emu.register(probe)
    emu.start()
    emu.faults.add(FaultRule.from_json({"operation": "OpenRead", "hang": True}))
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(requests.get(f"{emu.endpoint}/open/x", timeout=10).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # held by the fault
    emu.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_bad_fault_rule_is_rejected_with_the_field(emulator):
    with pytest.raises(urllib.error.HTTPError) as info:
        admin(
            emulator,
            "POST",
            "faults",
            {"operation": "GetNamespace", "colour": "red", "status": 500},
        )
    assert info.value.code == 400
    assert "colour" in info.value.read().decode()


def test_request_log_records_operations_and_principals(emulator, tmp_path):
    client = object_storage(emulator, api_key_config(emulator, USER, tmp_path))
    client.get_namespace()
    requests.get(f"{emulator.endpoint}/n", timeout=5)
    log = admin(emulator, "GET", "requests")
    assert [(e["operation"], e["status"], e["principal"]) for e in log] == [
        ("GetNamespace", 200, USER.id),
        ("GetNamespace", 401, None),
    ]
    assert emulator.operations_called(mutating_only=True) == []
    admin(emulator, "DELETE", "requests")
    assert admin(emulator, "GET", "requests") == []


def test_state_is_saved_atomically_and_reloaded(tmp_path):
    path = tmp_path / "state.json"
    first = Emulator(state_path=str(path))
    first.state.section("probe")["items"] = {"a": 1}
    first.state.save()
    first._server.server_close()
    assert not (tmp_path / "state.json.tmp").exists()
    second = Emulator(state_path=str(path))
    second._server.server_close()
    assert second.state.load()
    assert second.state.section("probe") == {"items": {"a": 1}}
