"""Notifications' PublishMessage: the emulator's validation through the real SDK, and the
``NotificationsTopicPublisher`` adapter (limits fitted, errors translated, ``use ons-topics``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_notifications import (
    MAX_MESSAGE_BYTES,
    MAX_TITLE_CHARS,
    NotificationsTopicPublisher,
    fit_message,
)
from renewer.errors import ConfigError, TransientError
from renewer.operations.notices import Notice, NoticeKind
from sandbox.oci_emulator.faults import FaultRule
from tests.contract.conftest import BASE_FIXTURE, COMPARTMENT, RunningEmulator, renewer_oci_clients

pytestmark = pytest.mark.integration

TOPIC = "ocid1.onstopic.oc1.phx.operators"
OTHER_TOPIC = "ocid1.onstopic.oc1.phx.payroll"  # exists; no policy lets the renewer publish
MISSING_TOPIC = "ocid1.onstopic.oc1.phx.missing"


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "compartments": [
            *BASE_FIXTURE["compartments"],
            {"name": "finance", "id": "ocid1.compartment.oc1..finance"},
        ],
        "topics": [
            {"id": TOPIC, "name": "acme-renewer", "compartment": "apps"},
            {"id": OTHER_TOPIC, "name": "payroll", "compartment": "finance"},
        ],
        "authorization": True,
        "policies": [
            {
                "name": "renewer",
                "statements": [
                    "Allow dynamic-group renewer-dg to use ons-topics in compartment apps"
                ],
            }
        ],
    }


@pytest.fixture
def clients(emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    return renewer_oci_clients(emulator, tmp_path, monkeypatch)


def publish(clients: OciClients, topic: str = TOPIC, **fields: Any) -> Any:
    values = {"title": "hello", "body": "world"}
    values.update(fields)
    details = oci.ons.models.MessageDetails(**values)
    return clients.client("notifications").publish_message(topic, details)


def refused(clients: OciClients, *, topic: str = TOPIC, **fields: Any) -> Any:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        publish(clients, topic, **fields)
    return caught.value


def test_a_message_is_recorded_and_answered_like_oci(emulator, clients):
    response = publish(clients, title="Subject", body="line 1\nline 2")
    assert response.status == 202
    assert response.data.message_id.startswith("ocid1.onsmessage.")
    assert response.data.time_stamp is not None
    (message,) = emulator.emulator.services["notifications"].published()
    assert message["topicId"] == TOPIC
    assert (message["title"], message["body"]) == ("Subject", "line 1\nline 2")
    assert message["messageId"] == response.data.message_id
    assert message["principal"] == emulator.tenancy.principals["renewer"].id


def test_the_title_is_optional(clients):
    assert publish(clients, title=None).status == 202


@pytest.mark.parametrize(
    ("fields", "status", "code", "message"),
    [
        ({"body": None}, 400, "MissingParameter", "body"),
        ({"body": ""}, 400, "InvalidParameter", "non-empty"),
        ({"title": "t" * (MAX_TITLE_CHARS + 1)}, 400, "InvalidParameter", "title is longer"),
        ({"body": "b" * (MAX_MESSAGE_BYTES - 4)}, 400, "InvalidParameter", "65536 bytes"),
        ({"body": "é" * (MAX_MESSAGE_BYTES // 2)}, 400, "InvalidParameter", "65536 bytes"),
    ],
)
def test_invalid_messages_are_refused(emulator, clients, fields, status, code, message):
    error = refused(clients, **fields)
    assert (error.status, error.code) == (status, code)
    assert message in error.message
    assert emulator.emulator.services["notifications"].published() == []


def test_exactly_64_kb_passes(clients):
    assert publish(clients, title="t", body="b" * (MAX_MESSAGE_BYTES - 1)).status == 202


def test_missing_and_forbidden_topics_look_alike(clients):
    for topic in (MISSING_TOPIC, OTHER_TOPIC):
        error = refused(clients, topic=topic)
        assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


def test_sixty_messages_a_minute_per_topic(emulator, clients):
    for index in range(60):
        publish(clients, body=f"message {index}")
    error = refused(clients)
    assert (error.status, error.code) == (429, "TooManyRequests")


def test_json_message_type_needs_a_default_key(clients):
    client = clients.client("notifications")
    details = oci.ons.models.MessageDetails(title="t", body='{"Email": "x"}')
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        client.publish_message(TOPIC, details, message_type="JSON")
    assert "default" in caught.value.message
    details = oci.ons.models.MessageDetails(title="t", body='{"default": "x"}')
    assert client.publish_message(TOPIC, details, message_type="JSON").status == 202


# ------------------------------------------------------------------------------------ adapter


def notice(title: str = "[ACME renewer] Renewal FAILED: shop", body: str = "details\n") -> Notice:
    return Notice("shop", NoticeKind.FAILURE, title, body)


def test_the_publisher_publishes_and_returns_the_message_id(emulator, clients):
    publisher = NotificationsTopicPublisher(clients, topic_id=TOPIC)
    message_id = publisher.publish(notice())
    (message,) = emulator.emulator.services["notifications"].published()
    assert message["messageId"] == message_id
    assert message["title"] == "[ACME renewer] Renewal FAILED: shop"


def test_the_publisher_fits_oversized_messages(emulator, clients):
    publisher = NotificationsTopicPublisher(clients, topic_id=TOPIC)
    publisher.publish(notice(title="T" * 400, body="é" * 70_000))
    (message,) = emulator.emulator.services["notifications"].published()
    assert len(message["title"]) == MAX_TITLE_CHARS
    size = len(message["title"].encode()) + len(message["body"].encode())
    assert MAX_MESSAGE_BYTES - 8 <= size <= MAX_MESSAGE_BYTES
    assert message["body"].endswith("message shortened to fit the Notifications size limit]\n")


def test_fit_message_leaves_small_messages_alone():
    assert fit_message("t", "b") == ("t", "b")


def test_the_publisher_translates_errors(emulator, clients):
    with pytest.raises(ConfigError, match=r"404 NotAuthorizedOrNotFound.*opc-request-id"):
        NotificationsTopicPublisher(clients, topic_id=OTHER_TOPIC).publish(notice())
    emulator.emulator.faults.add(
        FaultRule.from_json({"operation": "PublishMessage", "status": 500})
    )
    with pytest.raises(TransientError, match="500"):
        NotificationsTopicPublisher(clients, topic_id=TOPIC).publish(notice())
    with pytest.raises(ConfigError, match="not a Notifications topic OCID"):
        NotificationsTopicPublisher(clients, topic_id=COMPARTMENT)
