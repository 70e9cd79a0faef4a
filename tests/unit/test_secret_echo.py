"""A secret pasted into the wrong place is never echoed: not in the error, the 502 body or the log.

The contract (``renewer.errors``, docs/errors.md): a configuration error says what is wrong with a
value — its type, its length, that it is not an OCID, that it holds a PEM block — and never the
value. The property: a secret-looking value (a PEM private key, an HMAC key as base64url or hex)
placed in ANY field of the configuration document, of the environment or of the payload leaves
no fragment of its key material in the message; through ``func.handler`` (the function's real
entry point) neither in the body the FDK answers 502 with nor in a single log line.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fdk import context
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import func
from renewer import logs
from renewer.environment import Environment
from renewer.errors import ConfigError
from renewer.invocation import parse_payload
from renewer.settings import load_config, parse_config
from tests.unit.test_settings import GOOD, LB

FRAGMENT = 12  # characters of key material that must not appear anywhere, at any offset

# Every optional section present, so every field of the document is a place to paste into.
FULL: dict[str, Any] = copy.deepcopy(GOOD)
FULL["acme"].update(termsOfServiceAgreed=True, selfCheck=True)
FULL["oci"].update(namespace="tenancyns", namePrefix="acme")
FULL["renewal"].update(keepPreviousBundles=1, verifyTls=True)
FULL["certificates"][0].update(preferredChain="ISRG Root X1", reuseKey=False)
FULL["operations"] = {
    "metrics": {"enabled": True, "namespace": "acme_renewer", "compartmentId": LB},
    "notifications": {
        "topicId": "ocid1.onstopic.oc1.phx.aaaatopic",
        "onSuccess": False,
        "expiryWarningDays": 14,
    },
    "journal": {"enabled": True, "retentionDays": 90, "maxRecords": 1000},
}
FULL["operations"]["metrics"]["compartmentId"] = "ocid1.compartment.oc1..aaaaapps"


def leaves(value: object, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every scalar in ``value`` (strings, numbers, booleans, nulls)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))
    else:
        yield path


FIELDS = sorted(leaves(FULL), key=str)


def _get(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def placed(secret: str, path: tuple[str | int, ...]) -> dict[str, Any]:
    document = copy.deepcopy(FULL)
    parent = _get(document, path[:-1])
    parent[path[-1]] = secret
    return document


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


PEM_KEYS = [
    _pem(ec.generate_private_key(ec.SECP256R1())),
    _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
]
SECRETS = st.one_of(
    st.sampled_from(PEM_KEYS),
    st.binary(min_size=32, max_size=64).map(
        lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")  # an EAB HMAC key
    ),
    st.binary(min_size=32, max_size=64).map(bytes.hex),
)


def material(secret: str) -> list[str]:
    """The parts of ``secret`` that are key material (a PEM block's base64 lines; a raw key)."""
    return [line for line in secret.splitlines() if line and not line.startswith("-----")]


def assert_no_fragment(secret: str, text: str) -> None:
    for part in material(secret):
        for start in range(max(1, len(part) - FRAGMENT + 1)):
            fragment = part[start : start + FRAGMENT]
            assert fragment not in text, f"key material {fragment!r} echoed in: {text[:500]}"
    # Escaped forms too: a repr or a JSON dump of the value would show the same characters.
    assert json.dumps(secret)[1:-1][:40] not in text


# Fields whose valid values are free names: a key of letters and digits is a valid value there.
NAME_FIELDS = {
    ("acme", "eab", "keyId"),
    ("certificates", 0, "preferredChain"),
    ("certificates", 0, "profile"),
    ("oci", "namespace"),
    ("oci", "challengeBucket"),
    ("oci", "stateBucket"),
    ("operations", "metrics", "namespace"),
    *((*t, "listeners", i) for t in [("certificates", 0, "targets", 0)] for i in (0, 1)),
    ("certificates", 1, "targets", 0, "listeners", 0),
}


def test_every_field_of_the_document_is_covered():
    assert len(FIELDS) >= 40
    assert ("acme", "eab", "hmacKeySecretId") in FIELDS
    assert ("certificates", 0, "targets", 1, "certificateId") in FIELDS


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(secret=SECRETS, path=st.sampled_from(FIELDS))
def test_a_secret_in_any_field_of_the_configuration_is_never_echoed(
    secret: str, path: tuple[str | int, ...]
):
    document = placed(secret, path)
    try:
        load_config(json.dumps(document))
    except ConfigError as exc:
        assert_no_fragment(secret, str(exc))
    else:
        # Accepted: a key made of letters and digits has the shape of a name (a bucket, the
        # namespace...), so it is not an error at all; a PEM block fits no field.
        assert path in NAME_FIELDS, path
        assert "-----BEGIN" not in secret


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(secret=SECRETS, key=st.sampled_from(["certificates", "dnsNames", "listeners"]))
def test_a_secret_as_a_list_item_is_never_echoed(secret: str, key: str):
    document = copy.deepcopy(FULL)
    certificate = document["certificates"][0]
    target = {"certificates": document, "dnsNames": certificate, "listeners": None}[key]
    if target is None:
        certificate["targets"][0]["listeners"].append(secret)
    else:
        target[key].append(secret)
    try:
        parse_config(document)
    except ConfigError as exc:
        assert_no_fragment(secret, str(exc))
    else:  # a listener name of letters and digits is a valid listener name
        assert key == "listeners"
        assert "-----BEGIN" not in secret


ENVIRONMENT = {"RENEWER_CONFIG": json.dumps(GOOD), "OCI_AUTH": "config_file"}


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    secret=SECRETS,
    variable=st.sampled_from(
        [
            "OCI_AUTH",
            "RENEWER_LOG_LEVEL",
            "RENEWER_CONFIG_OBJECT",
            "RENEWER_OCI_ENDPOINT",
            "RENEWER_OCI_ENDPOINTS",
            "RENEWER_LOOPBACK",
            "RENEWER_CONFIG",
        ]
    ),
)
def test_a_secret_in_any_environment_variable_is_never_echoed(secret: str, variable: str):
    environment = {**ENVIRONMENT, variable: secret}
    if variable == "RENEWER_OCI_ENDPOINTS":
        environment[variable] = json.dumps({"objectstorage": secret})
    try:
        parsed = Environment.from_env(environment)
    except ConfigError as exc:
        assert_no_fragment(secret, str(exc))
        return
    assert variable in {"RENEWER_CONFIG"}, variable
    from renewer.environment import load_configuration  # noqa: PLC0415

    with pytest.raises(ConfigError) as info:
        load_configuration(parsed, clients=None)
    assert_no_fragment(secret, str(info.value))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(secret=SECRETS, field=st.sampled_from(["action", "version", "force", "dryRun", "extra"]))
def test_a_secret_in_any_field_of_the_payload_is_never_echoed(secret: str, field: str):
    with pytest.raises(ConfigError) as info:
        parse_payload(json.dumps({field: secret}).encode())
    assert_no_fragment(secret, str(info.value))


@given(secret=SECRETS)
def test_a_secret_asked_for_as_a_certificate_name_is_never_echoed(secret: str):
    config = load_config(json.dumps(GOOD))
    with pytest.raises(ConfigError, match="configured: shop, blog") as info:
        config.certificate(secret)
    assert_no_fragment(secret, str(info.value))


# --- through the function's entry point: the 502 body and the log --------------------------


class _Captured(logging.Handler):
    """Every log line as the function writes it (renewer.logs' JSON formatter)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def invoke(environment: dict[str, str], body: bytes = b"") -> tuple[str, list[str]]:
    """Call ``func.handler`` as the FDK does; (the 502 body, the log lines)."""
    ctx = context.InvokeContext(
        app_id="app", app_name="acme", fn_id="fn", fn_name="acme-renewer", call_id="secret-test"
    )
    captured = _Captured()
    root = logging.getLogger()
    root.addHandler(captured)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in [n for n in os.environ if n.startswith("RENEWER_")]:
                patch.delenv(name)
            for name, value in environment.items():
                patch.setenv(name, value)
            with pytest.raises(func.InvocationFailedError) as info:
                func.handler(ctx, io.BytesIO(body))
    finally:
        root.removeHandler(captured)
    return str(info.value), captured.lines


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(secret=SECRETS, path=st.sampled_from(FIELDS))
def test_a_secret_in_the_configuration_reaches_neither_the_502_body_nor_the_log(
    secret: str, path: tuple[str | int, ...]
):
    if "-----BEGIN" not in secret and path in NAME_FIELDS:
        secret = PEM_KEYS[0]  # a name-shaped key is a valid name there; a PEM block never is
    environment = {**ENVIRONMENT, "RENEWER_CONFIG": json.dumps(placed(secret, path))}

    body, lines = invoke(environment)

    assert body.startswith("ConfigError: RENEWER_CONFIG: the configuration has")
    assert any("invocation_failed" in line for line in lines)
    assert_no_fragment(secret, body)
    assert_no_fragment(secret, "\n".join(lines))


def test_the_hmac_key_pasted_into_hmac_key_secret_id_is_described_not_shown():
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    environment = {
        **ENVIRONMENT,
        "RENEWER_CONFIG": json.dumps(placed(key, ("acme", "eab", "hmacKeySecretId"))),
    }

    body, lines = invoke(environment)

    assert (
        "acme.eab.hmacKeySecretId: is not a vaultsecret OCID (expected ocid1.vaultsecret....;"
        f" found a string of {len(key)} characters, not an OCID)"
    ) in body
    assert key not in body
    assert all(key not in line for line in lines)


def test_the_orchestrator_describes_an_unknown_certificate_name_it_cannot_show():
    from renewer.errors import ConfigError  # noqa: PLC0415
    from tests.unit.test_renewal import new_world  # noqa: PLC0415

    pasted = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    world = new_world()
    with pytest.raises(ConfigError) as info:
        world.service().run(budget_s=60, names=["shop", pasted, "nope"])
    message = str(info.value)
    assert "MIIEvQ" not in message
    assert "PEM block" in message
    assert "'nope'" in message  # a name of a name's shape is shown


def test_a_malformed_configuration_object_location_is_described_not_echoed():
    from renewer.environment import read_configuration_object  # noqa: PLC0415
    from renewer.errors import ConfigError  # noqa: PLC0415

    pasted = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    with pytest.raises(ConfigError) as info:
        read_configuration_object(None, pasted)  # type: ignore[arg-type] - refused before use
    assert "RENEWER_CONFIG_OBJECT" in str(info.value)
    assert pasted not in str(info.value)


def test_a_malformed_loopback_address_is_described_not_echoed():
    from renewer.environment import Environment  # noqa: PLC0415
    from renewer.errors import RenewerError  # noqa: PLC0415

    pasted = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    loopback = '{"selfCheckPort": 80, "resolve": {"' + pasted + '": "' + pasted + '"}}'
    with pytest.raises(RenewerError) as info:
        Environment.from_env({"RENEWER_LOOPBACK": loopback})
    assert "RENEWER_LOOPBACK" in str(info.value)
    assert pasted not in str(info.value)
