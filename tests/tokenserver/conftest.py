"""Fixtures for the token server: the OCI emulator with a challenge bucket, the server under test.

``world`` is a started emulator (IAM policies enforced: the token server may only *read objects*
of the challenge bucket, as the Terraform grants) with an operator SDK client to write and delete
key authorizations, and the token server's own resource-principal credentials. ``world.start(...)``
starts a :class:`~tokenserver.TokenServer` in-process on a free port, signed with those
credentials through the real ``oci`` SDK, its access log captured; every server started is
stopped before the emulator.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import selectors
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

import oci
import pytest

from sandbox.oci_emulator.app import build_emulator
from sandbox.oci_emulator.credentials import api_key_config, resource_principal_env
from sandbox.oci_emulator.faults import FaultRule
from sandbox.oci_emulator.server import Emulator
from tokenserver import Settings, TokenServer

NAMESPACE = "tokenns"
BUCKET = "acme-challenges"
OTHER_BUCKET = "renewer-state"
COMPARTMENT = "ocid1.compartment.oc1..tokenapps"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"  # noqa: S105 - public by design (RFC 8555)
KEY_AUTHORIZATION = f"{TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
CHALLENGE = "/.well-known/acme-challenge/"
FIXTURE: dict[str, Any] = {
    "tenancy": "ocid1.tenancy.oc1..tokentenancy",
    "namespace": NAMESPACE,
    "compartments": [{"name": "apps", "id": COMPARTMENT}],
    "principals": [
        {
            "name": "operator",
            "kind": "user",
            "id": "ocid1.user.oc1..operator",
            "groups": ["Admins"],
        },
        {
            "name": "token-server",
            "kind": "resource",
            "id": "ocid1.computecontainerinstance.oc1.phx.tokenserver",
            "compartment": COMPARTMENT,
            "groups": ["token-server-dg"],
        },
    ],
    "buckets": [
        {"name": BUCKET, "compartment": COMPARTMENT},
        {"name": OTHER_BUCKET, "compartment": COMPARTMENT},
    ],
    "authorization": True,
    "policies": [
        {
            "name": "token-server",
            "statements": [
                "Allow dynamic-group token-server-dg to read objects in compartment apps"
                f" where target.bucket.name = '{BUCKET}'",
            ],
        },
        {"name": "admins", "statements": ["Allow group Admins to manage all-resources in tenancy"]},
    ],
}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class World:
    """The emulator, an operator client for the bucket, and the servers started on it."""

    emulator: Emulator
    operator: Any
    rp_env: dict[str, str]
    servers: list[tuple[TokenServer, io.StringIO]] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return self.emulator.endpoint

    # ---------------------------------------------------------------- the bucket

    def put(self, token: str, key_authorization: str, *, bucket: str = BUCKET) -> None:
        self.operator.put_object(
            NAMESPACE,
            bucket,
            f".well-known/acme-challenge/{token}",
            key_authorization.encode(),
            content_type="text/plain",
        )

    def delete(self, token: str) -> None:
        self.operator.delete_object(NAMESPACE, BUCKET, f".well-known/acme-challenge/{token}")

    def storage_calls(self) -> list[dict[str, Any]]:
        """Every Object Storage request the token server made (the operator's excluded)."""
        return [
            entry
            for entry in self.emulator.requests
            if entry["principal"] != "ocid1.user.oc1..operator"
        ]

    def object_reads(self, token: str | None = None) -> list[dict[str, Any]]:
        """The server's GetObject/HeadObject calls (for ``token`` only, when given)."""
        return [
            e
            for e in self.storage_calls()
            if e["operation"] in ("GetObject", "HeadObject")
            and (token is None or token in e["path"])
        ]

    def clear_log(self) -> None:
        self.emulator.requests.clear()

    def fault(self, **rule: Any) -> None:
        self.emulator.faults.add(FaultRule.from_json(rule))

    # ---------------------------------------------------------------- the server

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "bucket": BUCKET,
            "namespace": NAMESPACE,
            "host": "127.0.0.1",
            "port": 0,
            "auth": "resource_principal",
            "object_storage_endpoint": self.endpoint,
            "storage_timeout": 5.0,
        }
        values.update(overrides)
        return Settings(**values)

    def start(self, **overrides: Any) -> TokenServer:
        log = io.StringIO()
        server = TokenServer(self.settings(**overrides), access_log=log)
        server.start()
        self.servers.append((server, log))
        return server

    def access_log(self, server: TokenServer) -> list[dict[str, Any]]:
        """The parsed access log of ``server`` (stops it first, so every line is flushed)."""
        server.stop()
        for candidate, log in self.servers:
            if candidate is server:
                return [json.loads(line) for line in log.getvalue().splitlines()]
        raise LookupError(server)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    emulator, tenancy = build_emulator(fixture=FIXTURE, state_path=str(tmp_path / "state.json"))
    with emulator:
        config = api_key_config(emulator, tenancy.principals["operator"], tmp_path / "operator")
        operator = oci.object_storage.ObjectStorageClient(
            config,
            service_endpoint=emulator.endpoint,
            retry_strategy=oci.retry.NoneRetryStrategy(),
            circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
            timeout=(5, 30),
        )
        rp_env = resource_principal_env(
            emulator, tenancy.principals["token-server"], tmp_path / "rp"
        )
        for name, value in rp_env.items():
            monkeypatch.setenv(name, value)
        world = World(emulator, operator, rp_env)
        try:
            yield world
        finally:
            for server, _ in world.servers:
                server.stop()


# ------------------------------------------------------------------ HTTP helpers


def get(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request on a fresh connection with ``http.client``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, headers={"Host": "www.example.com", **(headers or {})})
        answer = connection.getresponse()
        body = answer.read()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, body)
    finally:
        connection.close()


def raw(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` as is; everything the server sends back until it closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


def responses(answer: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The responses in a raw byte stream, split by Content-Length: (status, headers, body)."""
    found = []
    while answer:
        head, separator, rest = answer.partition(b"\r\n\r\n")
        assert separator, f"incomplete response: {answer[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        found.append((int(status_line.split(" ")[1]), headers, rest[:length]))
        answer = rest[length:]
    return found


def statuses(answer: bytes) -> list[int]:
    """Status codes of the responses in a raw byte stream, in order."""
    return [status for status, _, _ in responses(answer)]


def read_line(stream: Any, timeout: float) -> str:
    """The next line of a child's pipe, or "" when none comes within ``timeout``."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return str(stream.readline())
