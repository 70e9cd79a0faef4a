"""Contract tests of redirect mode's emulator pieces, configured through the real ``oci`` SDK.

Redirect mode (issue 5) needs no token backend: a rule set on the load balancer's HTTP :80
listener answers ``/.well-known/acme-challenge/*`` with a redirect into a read-only
pre-authenticated request (PAR) on the challenge bucket, and the CA reads the key authorization
straight from Object Storage. Here every piece is set up the way an operator (or Terraform) would,
with both signers: CreatePreauthenticatedRequest, CreateRuleSet with a ``RedirectRule``,
UpdateListener; then the data plane's answer is followed to the emulator's unsigned PAR read, and
:class:`HttpSelfCheck` walks the same chain as the CA would. The validations OCI documents for
redirect rules are checked at the API (400) or, for what depends on the listener, as a FAILED
work request (the emulator's place for reference checks).

The load balancer has an HTTP :80 listener whose default backend set is a live echo server
("app"), and a TCP :7000 listener.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import oci
import pytest
from oci.load_balancer import models
from oci.object_storage import models as os_models

from renewer.adapters.http_self_check import HttpSelfCheck, SelfCheckPolicy
from renewer.errors import SelfCheckFailed
from sandbox.oci_emulator import object_storage
from tests.contract.conftest import (
    BASE_FIXTURE,
    COMPARTMENT,
    NAMESPACE,
    Clients,
    RunningEmulator,
    assert_clean_model,
)
from tests.contract.test_dataplane import Answer, EchoServer, get
from tests.contract.test_load_balancer import service_error, state_of, work_request_id

pytestmark = pytest.mark.integration

LB_ID = "ocid1.loadbalancer.oc1.phx.redirectlb"
BUCKET = "acme-challenges"
PREFIX = "/.well-known/acme-challenge/"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"  # noqa: S105 - an ACME token, not a secret
KEY_AUTHORIZATION = f"{TOKEN}.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ"
OBJECTS = "objectstorage.us-phoenix-1.oraclecloud.com"
NAME = "shop.example.com"
TIMEOUT = 2.0


# ------------------------------------------------------------------------------------- fixture


@pytest.fixture
def app() -> Iterator[EchoServer]:
    server = EchoServer("app")
    yield server
    server.close()


@pytest.fixture
def fixture_data(app: EchoServer) -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "buckets": [{"name": BUCKET, "compartment": COMPARTMENT}],
        "load_balancers": [
            {
                "id": LB_ID,
                "compartmentId": COMPARTMENT,
                "workRequestSeconds": 0.02,
                "listeners": {
                    "http": {"port": 80, "protocol": "HTTP", "defaultBackendSetName": "app"},
                    "tcp": {"port": 7000, "protocol": "TCP", "defaultBackendSetName": "app"},
                },
                "backendSets": {
                    "app": {"backends": [{"ipAddress": "127.0.0.1", "port": app.port}]}
                },
            }
        ],
    }


# ------------------------------------------------------------------------------------- helpers


def emulator_port(running: RunningEmulator) -> int:
    port = urlsplit(running.endpoint).port
    assert port is not None
    return port


def lb_port(running: RunningEmulator, listener_port: int = 80) -> int:
    service = running.emulator.services["loadbalancer"]
    return int(service.port_map()[LB_ID][listener_port])  # type: ignore[attr-defined]


def ended(clients: Clients, response: oci.response.Response) -> str:
    """Wait (real clock) for the work request of ``response``; its final state."""
    wr_id = work_request_id(response)
    deadline = time.monotonic() + 5
    while (state := state_of(clients, wr_id)) not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, f"{wr_id} still {state}"
        time.sleep(0.01)
    return state


def error_message(clients: Clients, response: oci.response.Response) -> str:
    """The error of a FAILED work request."""
    assert ended(clients, response) == "FAILED"
    work_request = clients.load_balancer.get_work_request(work_request_id(response)).data
    return " ".join(detail.message for detail in work_request.error_details)


def put_token(clients: Clients, token: str = TOKEN, body: str = KEY_AUTHORIZATION) -> None:
    clients.object_storage.put_object(
        NAMESPACE, BUCKET, f"{PREFIX.lstrip('/')}{token}", body.encode(), content_type="text/plain"
    )


def create_par(clients: Clients, **overrides: Any) -> os_models.PreauthenticatedRequest:
    details = {
        "name": "acme-challenges-read",
        "access_type": "AnyObjectRead",
        "object_name": PREFIX.lstrip("/"),  # a prefix for Any* PARs: only challenge objects
        "bucket_listing_action": "Deny",
        "time_expires": datetime.now(UTC) + timedelta(days=30),
        **overrides,
    }
    model = os_models.CreatePreauthenticatedRequestDetails(**details)
    return clients.object_storage.create_preauthenticated_request(NAMESPACE, BUCKET, model).data


def path_condition(value: str = PREFIX, operator: str = "PREFIX_MATCH") -> models.RuleCondition:
    return models.PathMatchCondition(
        attribute_name="PATH", attribute_value=value, operator=operator
    )


def redirect_rule(access_uri: str, port: int, **uri: Any) -> models.RedirectRule:
    """The sandbox's redirect into a bucket PAR (a tenancy uses HTTPS and port 443)."""
    fields = {
        "protocol": "HTTP",
        "host": OBJECTS,
        "port": port,
        "path": access_uri.removesuffix("/") + "{path}",
        "query": "",
        **uri,
    }
    return models.RedirectRule(
        action="REDIRECT",
        response_code=302,
        conditions=[path_condition()],
        redirect_uri=models.RedirectUri(**fields),
    )


def attach(clients: Clients, listener: str, rule_sets: list[str]) -> oci.response.Response:
    """UpdateListener with every field kept except ``ruleSetNames``."""
    current = clients.load_balancer.get_load_balancer(LB_ID).data.listeners[listener]
    details = models.UpdateListenerDetails(
        default_backend_set_name=current.default_backend_set_name,
        port=current.port,
        protocol=current.protocol,
        connection_configuration=current.connection_configuration,
        rule_set_names=rule_sets,
    )
    return clients.load_balancer.update_listener(details, LB_ID, listener)


def install(
    clients: Clients, running: RunningEmulator, par: os_models.PreauthenticatedRequest
) -> None:
    """The redirect-mode set-up: a rule set redirecting to ``par`` on the :80 listener."""
    create = models.CreateRuleSetDetails(
        name="acme-redirect", items=[redirect_rule(par.access_uri, emulator_port(running))]
    )
    assert ended(clients, clients.load_balancer.create_rule_set(LB_ID, create)) == "SUCCEEDED"
    assert ended(clients, attach(clients, "http", ["acme-redirect"])) == "SUCCEEDED"


def follow(running: RunningEmulator, location: str) -> Answer:
    """GET ``location`` the way the sandbox's CA does: its name resolves to loopback."""
    parts = urlsplit(location)
    assert parts.port == emulator_port(running)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=TIMEOUT)
    try:
        conn.request("GET", parts.path, headers={"Host": parts.netloc})  # no signature
        response = conn.getresponse()
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def self_check(running: RunningEmulator, *, tries: int = 1) -> HttpSelfCheck:
    """The renewer's self-check as the sandbox wires it in redirect mode."""
    port = emulator_port(running)
    return HttpSelfCheck(
        port=lb_port(running),
        connect_host="127.0.0.1",
        resolve={(OBJECTS, port): ("127.0.0.1", port)},
        policy=SelfCheckPolicy(tries=tries, interval=0.01, max_interval=0.01, timeout=TIMEOUT),
    )


# ----------------------------------------------------------------------------- the chain


def test_the_challenge_path_is_redirected_into_the_par_and_served_from_the_bucket(
    clients: Clients, emulator: RunningEmulator
) -> None:
    put_token(clients)
    par = create_par(clients)
    assert_clean_model(par)
    assert (par.access_type, par.bucket_listing_action, par.object_name) == (
        "AnyObjectRead",
        "Deny",
        PREFIX.lstrip("/"),
    )
    assert par.access_uri.startswith("/p/")
    assert par.access_uri.endswith(f"/n/{NAMESPACE}/b/{BUCKET}/o/")
    install(clients, emulator, par)
    rule = clients.load_balancer.get_rule_set(LB_ID, "acme-redirect").data.items[0]
    assert isinstance(rule, models.RedirectRule)
    assert rule.redirect_uri.path == par.access_uri[:-1] + "{path}"

    answer = get(lb_port(emulator), f"{PREFIX}{TOKEN}?cache=no", host=NAME)

    assert answer.status == 302
    location = answer.headers["location"]
    port = emulator_port(emulator)
    assert location == f"http://{OBJECTS}:{port}{par.access_uri}.well-known/acme-challenge/{TOKEN}"
    served = follow(emulator, location)
    assert (served.status, served.body) == (200, KEY_AUTHORIZATION.encode())
    assert served.headers["content-type"] == "text/plain"
    operations = [entry["operation"] for entry in emulator.emulator.requests]
    assert operations[-1] == "PreauthenticatedGetObject"


def test_other_paths_on_the_listener_are_not_redirected(
    clients: Clients, emulator: RunningEmulator
) -> None:
    install(clients, emulator, create_par(clients))
    port = lb_port(emulator)
    for path in ("/", "/index.html", "/.well-known/acme-challenge", "/.well-known/other/x"):
        answer = get(port, path, host=NAME)
        assert answer.status == 200, path
        assert answer.json()["name"] == "app", path  # forwarded to the default backend set
        assert "location" not in answer.headers, path


def test_the_par_reads_nothing_but_challenge_objects(
    clients: Clients, emulator: RunningEmulator
) -> None:
    put_token(clients)
    clients.object_storage.put_object(NAMESPACE, BUCKET, "private.txt", b"not for the CA")
    par = create_par(clients)
    install(clients, emulator, par)
    missing = get(lb_port(emulator), f"{PREFIX}not-written-yet", host=NAME)
    assert follow(emulator, missing.headers["location"]).status == 404
    base = f"http://{OBJECTS}:{emulator_port(emulator)}{par.access_uri}"
    assert follow(emulator, f"{base}private.txt").status == 404  # outside the prefix
    assert follow(emulator, base).status == 404  # bucketListingAction Deny
    assert follow(emulator, f"{base}{PREFIX.lstrip('/')}{TOKEN}").status == 200  # the control


def test_the_self_check_follows_the_redirect_into_the_bucket(
    clients: Clients, emulator: RunningEmulator
) -> None:
    put_token(clients)
    install(clients, emulator, create_par(clients))

    self_check(emulator).verify(NAME, TOKEN, KEY_AUTHORIZATION, deadline=time.monotonic() + 10)


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_a_dead_par_fails_the_self_check_naming_the_object_storage_url(
    clients: Clients, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    put_token(clients)
    par = create_par(clients, time_expires=datetime.now(UTC) + timedelta(hours=1))
    install(clients, emulator, par)
    if how == "deleted":
        clients.object_storage.delete_preauthenticated_request(NAMESPACE, BUCKET, par.id)
    else:
        later = object_storage.now() + 2 * 3600
        monkeypatch.setattr(object_storage, "now", lambda: later)  # the emulator's clock

    with pytest.raises(SelfCheckFailed) as caught:
        self_check(emulator).verify(NAME, TOKEN, KEY_AUTHORIZATION, deadline=time.monotonic() + 10)

    port = emulator_port(emulator)
    target = f"http://{OBJECTS}:{port}{par.access_uri}.well-known/acme-challenge/{TOKEN}"
    assert caught.value.url == f"http://{NAME}:{lb_port(emulator)}{PREFIX}{TOKEN}"
    assert caught.value.observed == f"HTTP 404 from {target}"
    assert KEY_AUTHORIZATION not in str(caught.value)


def test_a_listing_par_and_an_object_par_are_not_what_the_redirect_needs(
    clients: Clients, emulator: RunningEmulator
) -> None:
    """An ObjectRead PAR's accessUri names its object: ``{path}`` after it reads nothing."""
    put_token(clients)
    par = create_par(clients, access_type="ObjectRead", object_name=f"{PREFIX.lstrip('/')}{TOKEN}")
    assert not par.access_uri.endswith("/o/")
    install(clients, emulator, par)

    with pytest.raises(SelfCheckFailed) as caught:
        self_check(emulator).verify(NAME, TOKEN, KEY_AUTHORIZATION, deadline=time.monotonic() + 10)

    assert caught.value.observed.startswith("HTTP 404 from ")


# ------------------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("uri", "field"),
    [
        ({"protocol": "FTP"}, "protocol"),
        ({"path": "p/x{path}"}, "path"),
        ({"query": "a=1"}, "query"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
    ],
    ids=["protocol", "path-without-slash", "query-without-question-mark", "port-0", "port-65536"],
)
def test_bad_redirect_uris_are_400(
    clients: Clients, emulator: RunningEmulator, uri: dict[str, Any], field: str
) -> None:
    fields = {"port": emulator_port(emulator), **uri}
    rule = redirect_rule("/p/t/n/ns/b/b/o/", **fields)
    create = models.CreateRuleSetDetails(name="bad", items=[rule])

    error = service_error(clients.load_balancer.create_rule_set, LB_ID, create)

    assert error.status == 400
    assert field in error.message


@pytest.mark.parametrize("code", [200, 304, 404])
def test_redirect_response_codes_other_than_3xx_redirects_are_400(
    clients: Clients, emulator: RunningEmulator, code: int
) -> None:
    rule = redirect_rule("/p/t/n/ns/b/b/o/", emulator_port(emulator))
    rule.response_code = code
    create = models.CreateRuleSetDetails(name="bad", items=[rule])

    error = service_error(clients.load_balancer.create_rule_set, LB_ID, create)

    assert (error.status, error.code) == (400, "InvalidParameter")
    assert "responseCode" in error.message


def test_two_redirects_for_one_path_in_a_rule_set_are_400(
    clients: Clients, emulator: RunningEmulator
) -> None:
    port = emulator_port(emulator)
    first, second = redirect_rule("/p/a/n/ns/b/b/o/", port), redirect_rule("/p/b/n/ns/b/b/o/", port)
    create = models.CreateRuleSetDetails(name="twice", items=[first, second])

    error = service_error(clients.load_balancer.create_rule_set, LB_ID, create)

    assert (error.status, error.code) == (400, "InvalidParameter")
    assert "only one per original path" in error.message
    other = redirect_rule("/p/b/n/ns/b/b/o/", port)
    other.conditions = [path_condition(PREFIX, "EXACT_MATCH")]  # another original path: fine
    create = models.CreateRuleSetDetails(name="both", items=[first, other])
    assert ended(clients, clients.load_balancer.create_rule_set(LB_ID, create)) == "SUCCEEDED"


def test_two_rule_sets_redirecting_one_path_on_a_listener_fail_the_work_request(
    clients: Clients, emulator: RunningEmulator
) -> None:
    port = emulator_port(emulator)
    for name, uri in (("one", "/p/a/n/ns/b/b/o/"), ("two", "/p/b/n/ns/b/b/o/")):
        create = models.CreateRuleSetDetails(name=name, items=[redirect_rule(uri, port)])
        assert ended(clients, clients.load_balancer.create_rule_set(LB_ID, create)) == "SUCCEEDED"

    message = error_message(clients, attach(clients, "http", ["one", "two"]))

    assert "listener 'http' has REDIRECT rules for the path" in message
    assert "'one' and 'two'" in message
    listener = clients.load_balancer.get_load_balancer(LB_ID).data.listeners["http"]
    assert listener.rule_set_names == []  # unchanged


def test_a_redirect_on_a_tcp_listener_fails_the_work_request(
    clients: Clients, emulator: RunningEmulator
) -> None:
    create = models.CreateRuleSetDetails(
        name="acme-redirect", items=[redirect_rule("/p/a/n/ns/b/b/o/", emulator_port(emulator))]
    )
    assert ended(clients, clients.load_balancer.create_rule_set(LB_ID, create)) == "SUCCEEDED"

    message = error_message(clients, attach(clients, "tcp", ["acme-redirect"]))

    assert "REDIRECT rules apply only to HTTP listeners" in message


def test_a_listener_naming_a_missing_rule_set_fails_the_work_request(clients: Clients) -> None:
    message = error_message(clients, attach(clients, "http", ["acme-redirect"]))

    assert "rule set 'acme-redirect', which does not exist" in message


def in_minutes(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"accessType": "AnyObjectReadAll"}, "accessType"),
        ({"accessType": None}, "accessType"),
        ({"timeExpires": in_minutes(-1)}, "timeExpires"),
        ({"timeExpires": None}, "timeExpires"),
        ({"timeExpires": "next week"}, "timeExpires"),
        ({"accessType": "ObjectRead"}, "objectName"),
        ({"accessType": "ObjectRead", "objectName": "x", "bucketListingAction": "ListObjects"},
         "ListObjects"),
        ({"bucketListingAction": "Allow"}, "bucketListingAction"),
        ({"name": None}, "name"),
    ],
    ids=["unknown-access-type", "no-access-type", "expired", "no-expiry", "unparsable-expiry",
         "object-par-without-object", "object-par-listing", "listing-action", "no-name"],
)  # fmt: skip
def test_bad_par_requests_are_400(clients: Clients, overrides: dict[str, Any], field: str) -> None:
    """Raw bodies (the SDK's models refuse an unknown accessType before sending)."""
    body = {
        "name": "acme-challenges-read",
        "accessType": "AnyObjectRead",
        "bucketListingAction": "Deny",
        "timeExpires": in_minutes(60),
        **overrides,
    }
    body = {key: value for key, value in body.items() if value is not None}

    error = service_error(
        clients.object_storage.create_preauthenticated_request, NAMESPACE, BUCKET, body
    )

    assert (error.status, error.code) == (400, "InvalidParameter")
    assert field in error.message
