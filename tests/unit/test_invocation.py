"""The function's payload (``renewer.invocation``) and environment (``renewer.environment``)."""

from __future__ import annotations

import json

import pytest

from renewer import cli
from renewer.environment import Environment
from renewer.errors import ConfigError
from renewer.invocation import (
    MAX_BODY_BYTES,
    Action,
    InvalidRequest,
    Invocation,
    Trigger,
    parse_payload,
)
from renewer.runner import MIN_BUDGET_S, RESERVE_S, budget_from_deadline

pytestmark = pytest.mark.unit

CONFIG_OBJECT = "acme-state/config/renewer.json"


def event(resource: str, bucket: str, event_type: str = "updateobject") -> bytes:
    return json.dumps(
        {
            "eventType": f"com.oraclecloud.objectstorage.{event_type}",
            "cloudEventsVersion": "0.1",
            "eventTypeVersion": "2.0",
            "source": "ObjectStorage",
            "eventID": "id",
            "eventTime": "2026-11-27T00:00:00Z",
            "contentType": "application/json",
            "data": {
                "resourceName": resource,
                "additionalDetails": {"bucketName": bucket, "namespace": "ns"},
            },
        }
    ).encode()


@pytest.mark.parametrize("body", [b"", b"  \n", b"\t"])
def test_an_empty_body_is_the_scheduled_renewal(body: bytes):
    assert parse_payload(body) == Invocation(action=Action.RENEW, trigger=Trigger.SCHEDULE)


def test_a_full_payload_is_read():
    invocation = parse_payload(b'{"action": "renew", "certificates": ["a", "b"], "force": true}')
    assert invocation == Invocation(
        action=Action.RENEW, certificates=("a", "b"), force=True, trigger=Trigger.MANUAL
    )


@pytest.mark.parametrize("field", ["dryRun", "dry_run"])
def test_a_dry_run_renewal_is_a_plan(field: str):
    invocation = parse_payload(json.dumps({field: True}).encode())
    assert invocation.dry_run
    assert invocation.effective_action is Action.PLAN


def test_a_rollback_needs_one_certificate_and_a_version():
    invocation = parse_payload(b'{"action": "rollback", "certificates": ["a"], "version": 3}')
    assert (invocation.action, invocation.certificates, invocation.version) == (
        Action.ROLLBACK,
        ("a",),
        3,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", "the payload is not JSON"),
        (b'"renew"', "must be a JSON object"),
        (b'{"action": 1}', "action 1 is unknown"),
        (b'{"action": "delete"}', "action 'delete' is unknown: use one of renew, plan, status"),
        (b'{"force": 1}', "force must be true or false, not a number"),
        (b'{"dryRun": "no"}', "dryRun must be true or false, not a string"),
        (b'{"certificates": "shop"}', "certificates must be a list"),
        (b'{"certificates": [""]}', "certificates must be a list"),
        (b'{"certificates": ["a", "a"]}', "names a certificate twice"),
        (b'{"cert": []}', "unknown field(s) 'cert'"),
        (b'{"action": "plan", "force": true}', '"force" is for renew only'),
        (b'{"force": true, "dryRun": true}', "exclude each other"),
        (b'{"action": "rollback", "version": 1}', "rollback needs exactly one certificate"),
        (b'{"action": "rollback", "certificates": ["a"]}', 'rollback needs "version"'),
        (b'{"action": "rollback", "certificates": ["a"], "version": 0}', "positive integer"),
        (b'{"action": "rollback", "certificates": ["a"], "version": true}', "positive integer"),
        (b'{"version": 2}', '"version" is for rollback and revoke only'),
    ],
)
def test_a_bad_payload_names_the_field_and_the_fix(body: bytes, expected: str):
    with pytest.raises(InvalidRequest) as info:
        parse_payload(body)
    assert expected in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidRequest) as info:
        parse_payload(b'{"action": "x", "force": 2, "extra": 1}')
    message = str(info.value)
    assert "'extra'" in message
    assert "action 'x'" in message
    assert "force must be" in message


def test_an_oversize_body_is_refused_before_parsing():
    with pytest.raises(InvalidRequest, match=f"at most {MAX_BODY_BYTES}"):
        parse_payload(b" " * (MAX_BODY_BYTES + 1))


def test_an_event_on_the_configuration_object_renews_everything():
    for kind in ("createobject", "updateobject"):
        invocation = parse_payload(
            event("config/renewer.json", "acme-state", kind), config_object=CONFIG_OBJECT
        )
        assert invocation == Invocation(action=Action.RENEW, trigger=Trigger.EVENT)


@pytest.mark.parametrize(
    ("body", "config_object", "expected"),
    [
        (event("leases/shop", "acme-state"), CONFIG_OBJECT, "is not the configuration object"),
        (event("config/renewer.json", "other"), CONFIG_OBJECT, "is not the configuration"),
        (event("config/renewer.json", "acme-state"), None, "configuration is inline"),
        (
            event("config/renewer.json", "acme-state", "deleteobject"),
            CONFIG_OBJECT,
            "event 'com.oraclecloud.objectstorage.deleteobject' is not handled",
        ),
    ],
)
def test_other_events_are_ignored(body: bytes, config_object: str | None, expected: str):
    invocation = parse_payload(body, config_object=config_object)
    assert invocation.trigger is Trigger.EVENT
    assert expected in (invocation.ignored or "")


def test_a_cloudevents_1_0_delivery_is_recognised():
    body = json.dumps(
        {
            "specversion": "1.0",
            "type": "com.oraclecloud.objectstorage.createobject",
            "source": "ObjectStorage",
            "id": "1",
            "data": {
                "resourceName": "config/renewer.json",
                "additionalDetails": {"bucketName": "acme-state"},
            },
        }
    ).encode()
    assert parse_payload(body, config_object=CONFIG_OBJECT).action is Action.RENEW


# ------------------------------------------------------------------------------ environment


def test_the_environment_needs_exactly_one_configuration_source():
    with pytest.raises(ConfigError, match=r"set RENEWER_CONFIG .* or RENEWER_CONFIG_OBJECT"):
        Environment.from_env({})
    with pytest.raises(ConfigError, match="keep exactly one"):
        Environment.from_env({"RENEWER_CONFIG": "{}", "RENEWER_CONFIG_OBJECT": "b/o"})


def test_a_full_environment_is_read():
    environment = Environment.from_env(
        {
            "RENEWER_CONFIG_OBJECT": CONFIG_OBJECT,
            "OCI_AUTH": "config_file",
            "OCI_CONFIG_PROFILE": "ops",
            "OCI_REGION": "eu-frankfurt-1",
            "RENEWER_OCI_ENDPOINT": "http://127.0.0.1:1",
            "RENEWER_OCI_ENDPOINTS": '{"vaults": "https://vaults.example"}',
            "RENEWER_ACME_CA_BUNDLE": "/ca.pem",
            "RENEWER_LOOPBACK": json.dumps(
                {
                    "selfCheckPort": 8080,
                    "selfCheckHost": "127.0.0.1",
                    "listenerPorts": {"ocid1.loadbalancer.x": {"443": 9443}},
                    "resolve": {"objectstorage.example:443": "127.0.0.1:9000"},
                }
            ),
            "RENEWER_LOG_LEVEL": "debug",
        }
    )
    assert environment.config_object == CONFIG_OBJECT
    assert (environment.auth, environment.profile, environment.region) == (
        "config_file",
        "ops",
        "eu-frankfurt-1",
    )
    assert environment.endpoints["vaults"] == "https://vaults.example"
    assert environment.endpoints["object_storage"] == "http://127.0.0.1:1"
    assert environment.log_level == "DEBUG"
    loopback = environment.loopback
    assert loopback is not None
    assert loopback.address_override("ocid1.loadbalancer.x", 443) == ("127.0.0.1", 9443)
    assert loopback.address_override("ocid1.loadbalancer.x", 80) is None
    assert loopback.resolve == {("objectstorage.example", 443): ("127.0.0.1", 9000)}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RENEWER_CONFIG_OBJECT": "no-slash"}, "must be <bucket>/<object name>"),
        ({"OCI_AUTH": "instance_principal"}, "OCI_AUTH 'instance_principal' is unknown"),
        ({"RENEWER_LOG_LEVEL": "LOUD"}, "RENEWER_LOG_LEVEL 'LOUD' is unknown"),
        ({"RENEWER_OCI_ENDPOINTS": "[]"}, "must be a JSON object"),
        ({"RENEWER_OCI_ENDPOINTS": '{"functions": "https://x"}'}, "unknown service(s) functions"),
        ({"RENEWER_OCI_ENDPOINT": "ftp://x"}, "must be an http(s) URL"),
        ({"RENEWER_LOOPBACK": '{"selfCheckPort": "x"}'}, "RENEWER_LOOPBACK must be JSON"),
        ({"RENEWER_LOOPBACK": '{"resolve": {"a": "b"}}'}, "RENEWER_LOOPBACK must be JSON"),
        ({"RENEWER_LOOPBACK": '{"other": 1}'}, "RENEWER_LOOPBACK must be JSON"),
    ],
)
def test_a_bad_environment_names_the_variable(env: dict[str, str], expected: str):
    with pytest.raises(ConfigError) as info:
        Environment.from_env({"RENEWER_CONFIG": "{}", **env})
    assert expected in str(info.value)


# ------------------------------------------------------------------------------ time budget


def test_the_budget_keeps_a_reserve_before_the_deadline():
    assert budget_from_deadline(1000.0 + 200, now=1000.0) == 200 - RESERVE_S
    assert budget_from_deadline(1000.0 + 1, now=1000.0) == MIN_BUDGET_S
    assert budget_from_deadline(None) == 270.0


# ------------------------------------------------------------------------------ the CLI's flags


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["renew", "--force", "--dry-run"], '"force" and "dryRun" exclude each other'),
        # rollback takes ONE name (issue 13): argparse refuses a second one, exit 2 as well.
        (["rollback", "a", "b", "--version", "2"], "unrecognized arguments: b"),
        (["rollback", "a", "--version", "0"], "version must be a positive integer"),
    ],
)
def test_the_cli_validates_its_flags_as_the_function_validates_a_payload(
    argv: list[str], expected: str, tmp_path, capsys: pytest.CaptureFixture[str]
):
    config = tmp_path / "config.json"
    config.write_text("{}")  # never read: the flags are refused first

    try:
        status = cli.main(["--config", str(config), *argv])
    except SystemExit as exc:  # argparse's own usage errors
        status = exc.code

    assert status == cli.EXIT_USAGE
    assert expected in capsys.readouterr().err
