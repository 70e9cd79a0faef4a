"""Bad configuration, end to end: a clear error naming the field or resource, and nothing changed.

Each case runs the invocation path the function uses (:func:`renewer.runner.execute`, the same
environment variables ``func.py`` reads) against the sandbox: real Pebble, the emulated tenancy
with IAM enforced. Two families:

* **shape** — the document itself is wrong (a wildcard with http-01, an unknown key, a wrong
  type...): refused by the validator with the JSON path and the fix, before a single request;
* **tenancy** — the document is well-formed but wrong for this tenancy or CA (a key of the wrong
  type, a bucket that does not exist, a profile the CA does not offer...): the certificate fails
  naming the resource, with no ACME order and no change to Load Balancer, Vault or Certificates
  (the state bucket's lease and failure record are the renewer's own bookkeeping).

tests/e2e/test_faults.py holds six more tenancy cases (unknown load balancer, listener, a
listener without SSL, missing vault, missing key, unknown Certificates-service certificate).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import oci
import pytest

from renewer.environment import Environment
from renewer.errors import ConfigError
from renewer.invocation import Invocation
from renewer.runner import execute
from sandbox.fn_server import FnServer
from sandbox.world import (
    CHALLENGE_BUCKET,
    DISABLED_KEY_ID,
    HTTPS_LISTENER,
    LB_ID,
    OTHER_VAULT_KEY_ID,
    RSA_KEY_ID,
    SERVICE_CERTIFICATE_ID,
    SandboxWorld,
)

pytestmark = pytest.mark.e2e

Change = Callable[[dict[str, Any]], None]
# A throwaway P-256 key (never used anywhere): what an operator might paste by mistake.
PEM_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXRCEaaaNuBwZ5v9W
oy7RoPmnQezHTaPAlHYVIwrFSzChRANCAAQl1h8J6DjHB03K87NHgCt2yxhAjUSA
23Au+sEoCiemiGSzwF0EeB9G3HhuSze5C3L2yJO+zHRVz5J4vu4c1u0P
-----END PRIVATE KEY-----
"""
CHANGING_SERVICES = ("/20170115/", "/20180608/", "/20210224/")  # LB, Vault/KMS, Certificates


@dataclass(frozen=True)
class Case:
    change: Change
    expected: str  # in the error: the JSON path / resource, and for shape cases the fix


def _parent(document: dict[str, Any], path: str) -> tuple[Any, str | int]:
    """The container holding ``a.b.0.c`` and the key or index of it (numbers index lists)."""
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, int(last) if isinstance(node, list) else last


def _set(path: str, value: object) -> Change:
    """Set ``a.b.0.c`` in the document."""

    def change(document: dict[str, Any]) -> None:
        node, key = _parent(document, path)
        node[key] = value

    return change


def _delete(path: str) -> Change:
    """Remove ``a.b.0.c`` from the document."""

    def change(document: dict[str, Any]) -> None:
        node, key = _parent(document, path)
        del node[key]

    return change


def _second_certificate(**fields: object) -> Change:
    def change(document: dict[str, Any]) -> None:
        second = copy.deepcopy(document["certificates"][0])
        second.update({"name": "blog", "dnsNames": ["blog.example.com"], **fields})
        document["certificates"].append(second)

    return change


SHAPE = {
    "wildcard-with-http-01": Case(
        _set("certificates.0.dnsNames", ["*.example.com"]), "certificates[0].dnsNames[0]"
    ),
    "ip-address": Case(_set("certificates.0.dnsNames", ["192.0.2.1"]), "IP address"),
    "invalid-dns-name": Case(
        _set("certificates.0.dnsNames", ["shop_1.example.com"]), "certificates[0].dnsNames[0]"
    ),
    "duplicate-dns-names": Case(
        _set("certificates.0.dnsNames", ["a.example.com", "A.example.com."]), "more than once"
    ),
    "duplicate-certificate-names": Case(
        _second_certificate(
            name="shop", targets=[{"certificateId": "ocid1.certificate.oc1.phx.x"}]
        ),
        "certificates[1].name",
    ),
    "unknown-top-level-key": Case(_set("acmee", {}), "acmee"),
    "unknown-certificate-key": Case(_set("certificates.0.dnsname", ["x"]), "dnsname"),
    "wrong-type": Case(_set("certificates.0.dnsNames", "shop.example.com"), "dnsNames"),
    "missing-vault-id": Case(_delete("oci.vaultId"), "oci.vaultId"),
    "retention-over-vault-limit": Case(_set("renewal.retention", 28), "renewal.retention"),
    "unknown-key-type": Case(_set("certificates.0.keyType", "ed25519"), "keyType"),
    "eab-key-inline": Case(_set("acme.eab", {"keyId": "kid", "hmacKey": "c2VjcmV0"}), "acme.eab"),
    "same-listener-twice": Case(
        _second_certificate(targets=[{"loadBalancerId": LB_ID, "listeners": [HTTPS_LISTENER]}]),
        "certificates[1].targets[0].listeners[0]: is already the target of"
        " certificates[0].targets[0].listeners[0]",
    ),
    "plain-http-directory": Case(
        _set("acme.directoryUrl", "http://acme.example/directory"), "acme.directoryUrl"
    ),
    "same-bucket-twice": Case(_set("oci.stateBucket", CHALLENGE_BUCKET), "oci.stateBucket"),
    "no-targets": Case(_set("certificates.0.targets", []), "certificates[0].targets"),
    # Names a public CA refuses (Pebble issued shop.example.123 before this was checked).
    "short-ipv4-form": Case(_set("certificates.0.dnsNames", ["127.1"]), "numbers only"),
    "hex-ipv4-form": Case(_set("certificates.0.dnsNames", ["0x7f.0.0.1"]), "numbers only"),
    "octal-ipv4-form": Case(_set("certificates.0.dnsNames", ["0177.0.0.1"]), "numbers only"),
    "numeric-top-label": Case(
        _set("certificates.0.dnsNames", ["shop.example.123"]), "top-level label must be letters"
    ),
    "unicode-name": Case(
        _set("certificates.0.dnsNames", ["bücher.example"]), '"xn--bcher-kva.example"'
    ),
    "unknown-key-with-a-newline": Case(
        lambda document: document["oci"].update({"x\n- oci.vaultId: fine": 1}),
        '- oci."x\\n- oci.vaultId: fine": unknown key',
    ),
}

TENANCY = {
    "rsa-master-key": Case(_set("oci.keyId", RSA_KEY_ID), "is an RSA key"),
    "disabled-master-key": Case(_set("oci.keyId", DISABLED_KEY_ID), "is DISABLED"),
    "key-of-another-vault": Case(_set("oci.keyId", OTHER_VAULT_KEY_ID), "belongs to vault"),
    "unknown-challenge-bucket": Case(
        _set("oci.challengeBucket", "no-such-bucket"), "oci.challengeBucket"
    ),
    "wrong-namespace": Case(_set("oci.namespace", "wrongns"), "check oci.namespace"),
    "unknown-state-bucket": Case(_set("oci.stateBucket", "no-such-state"), "no-such-state"),
    "profile-the-ca-does-not-offer": Case(
        _set("certificates.0.profile", "nosuchprofile"), "nosuchprofile"
    ),
    "not-an-acme-directory": Case(_set("acme.directoryUrl", "PEBBLE/nope"), "directory"),
}

SETUP = {  # fail while setting the run up: the invocation itself is refused
    "unknown-eab-secret": Case(
        _set("acme.eab", {"keyId": "kid", "hmacKeySecretId": "ocid1.vaultsecret.oc1.phx.nope"}),
        "ocid1.vaultsecret.oc1.phx.nope",
    ),
}


def document_with(world: SandboxWorld, case: Case) -> dict[str, Any]:
    document = world.config_document()
    case.change(document)
    text = json.dumps(document).replace(
        "PEBBLE/", world.pebble.directory_url.rsplit("/", 1)[0] + "/"
    )
    return json.loads(text)


@pytest.fixture
def run(world: SandboxWorld, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Any]:
    """Run a renewal in this process as the function would, with ``document`` inline."""

    def run_with(document: dict[str, Any]) -> Any:
        variables = world.function_environment(document)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)  # the resource principal is read from os.environ
        environment = Environment.from_env(variables)
        return execute(Invocation(), environment, call_id="bad-config", budget_s=60.0)

    return run_with


def orders(world: SandboxWorld) -> int:
    return world.pebble_log().count("POST /order-plz")


def changes(world: SandboxWorld, since: int) -> list[str]:
    """Successful mutating calls to LB, Vault or Certificates since entry ``since``."""
    return [
        f"{e['operation']} {unquote(e['path'])}"
        for e in world.emulator.requests[since:]
        if e["method"] not in ("GET", "HEAD")
        and e["status"] < 400
        and e["path"].startswith(CHANGING_SERVICES)
    ]


def challenge_objects(world: SandboxWorld) -> list[str]:
    with world.emulator.state.lock:
        buckets = world.emulator.state.data["objectstorage"]["buckets"]
        return sorted(buckets[CHALLENGE_BUCKET]["objects"])


@pytest.mark.parametrize("case", list(SHAPE), ids=list(SHAPE))
def test_a_malformed_configuration_is_refused_before_any_request(
    world: SandboxWorld, run: Any, case: str
):
    document = document_with(world, SHAPE[case])
    mark = len(world.emulator.requests)

    with pytest.raises(ConfigError) as info:
        run(document)

    message = str(info.value)
    assert message.startswith("RENEWER_CONFIG:"), message
    assert SHAPE[case].expected in message, message
    # The configuration is inline: not one request reached OCI, and none reached the CA.
    assert world.emulator.requests[mark:] == []
    assert orders(world) == 0


@pytest.mark.parametrize("case", list(TENANCY), ids=list(TENANCY))
def test_a_configuration_wrong_for_the_tenancy_fails_naming_it_and_changes_nothing(
    world: SandboxWorld, run: Any, case: str
):
    document = document_with(world, TENANCY[case])
    mark = len(world.emulator.requests)

    result = run(document)

    assert result.failed
    (certificate,) = result.document["certificates"]
    assert certificate["outcome"] == "failed"
    assert TENANCY[case].expected in (certificate["error"] or ""), certificate
    assert orders(world) == 0
    assert changes(world, mark) == []
    assert challenge_objects(world) == []
    # The 502 body names the certificate, the step and the error type, never the message.
    assert result.summary.splitlines()[1].startswith("shop: failed at ")


@pytest.mark.parametrize("case", list(SETUP), ids=list(SETUP))
def test_a_configuration_that_cannot_set_up_a_run_is_refused_without_changes(
    world: SandboxWorld, run: Any, case: str
):
    document = document_with(world, SETUP[case])
    mark = len(world.emulator.requests)

    with pytest.raises(ConfigError) as info:
        run(document)

    assert SETUP[case].expected in str(info.value)
    assert orders(world) == 0
    assert changes(world, mark) == []
    assert [
        e for e in world.emulator.requests[mark:] if e["method"] not in ("GET", "HEAD", "POST")
    ] == []


@pytest.mark.world(service_certificate=True)
def test_a_certificates_service_target_pending_deletion_fails_before_any_order(
    world: SandboxWorld, run: Any
):
    operator = oci.certificates_management.CertificatesManagementClient(
        world.operator_config(),
        service_endpoint=world.emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
    )
    operator.schedule_certificate_deletion(
        SERVICE_CERTIFICATE_ID,
        oci.certificates_management.models.ScheduleCertificateDeletionDetails(),
    )
    mark = len(world.emulator.requests)

    result = run(world.config_document())

    (certificate,) = result.document["certificates"]
    assert (certificate["outcome"], certificate["failed_step"]) == ("failed", "check")
    assert f"{SERVICE_CERTIFICATE_ID} (targets[].certificateId) is PENDING_DELETION" in (
        certificate["error"] or ""
    )
    assert orders(world) == 0
    assert changes(world, mark) == []


HOSTILE_TEXT = {  # appended to the document as one more top-level key: the text, not a value
    "integer-over-4300-digits": ("9" * 5000, "holds a number with 5,000 digits"),
    "nested-100000-deep": ("[" * 100_000 + "]" * 100_000, "too deeply"),
    "repeated-key": ('1, "acme": {}', "repeats the key 'acme'"),
}


@pytest.mark.parametrize("case", list(HOSTILE_TEXT), ids=list(HOSTILE_TEXT))
def test_hostile_json_in_the_configuration_is_a_typed_error_before_any_request(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch, case: str
):
    tail, expected = HOSTILE_TEXT[case]
    variables = world.function_environment()
    variables["RENEWER_CONFIG"] = variables["RENEWER_CONFIG"][:-1] + f', "x": {tail}}}'
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    mark = len(world.emulator.requests)

    with pytest.raises(ConfigError) as info:
        execute(Invocation(), Environment.from_env(variables), call_id="hostile", budget_s=60.0)

    assert str(info.value).startswith("RENEWER_CONFIG: the configuration is not valid JSON: it ")
    assert expected in str(info.value)
    assert world.emulator.requests[mark:] == []
    assert orders(world) == 0


HMAC_KEY = "c2VjcmV0LWhtYWMta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"  # base64url, as a CA hands it out


def test_a_secret_pasted_into_a_field_is_in_neither_the_502_body_nor_the_function_log(
    world: SandboxWorld, tmp_path: Path
):
    """The function for real (the fdk server): the body and every log line are checked."""
    document = world.config_document()
    document["acme"]["eab"] = {"keyId": "kid-1", "hmacKeySecretId": HMAC_KEY}
    pem = PEM_KEY.strip()
    document["certificates"][0]["name"] = pem
    document["certificates"][0]["dnsNames"] = [pem]
    server = FnServer(tmp_path / "fn", world.function_environment(document))
    server.workdir.mkdir()
    with server:
        answer = server.invoke(b"")
        hostile = server.invoke(b'{"version": ' + b"9" * 5000 + b"}")
        log = server.log()

    assert answer.status == 502
    assert "acme.eab.hmacKeySecretId: is not a vaultsecret OCID" in answer.text
    assert "holding a PEM block" in answer.text
    for text in (answer.text, log):
        assert HMAC_KEY not in text
        assert HMAC_KEY[:16] not in text
        for line in pem.splitlines()[1:-1]:
            assert line not in text
    # Hostile JSON is a typed error the caller can act on, not "internal error ... (a bug)".
    assert hostile.status == 502
    assert "InvalidRequest: the payload holds a number with 5,000 digits" in hostile.text
    assert "a bug" not in log
