"""OCI Notifications' ``PublishMessage``: a recording sink for messages to fixture topics.

``POST /20181201/topics/{topicId}/messages`` (``NotificationDataPlaneClient.publish_message``).
Nothing is delivered: published messages are recorded so tests can assert what operators would
receive — :meth:`Notifications.published` in-process, or ``GET /_emulator/state`` ->
``notifications.messages``.

Fixture (``topics`` key)::

    "topics": [{"id": "ocid1.onstopic.oc1.phx.t", "name": "acme-renewer",
                "compartment": "<ocid or fixture compartment name>"}]

Behaviour (documented: the SDK 2.189 docstrings of ``publish_message``, ``MessageDetails``,
``PublishResult``; OCI "Publishing a Message to a Topic"):

* ``body`` is required, ``title`` optional (both strings); "Message size limit per request:
  64KB"; 60 messages per minute per topic (the TPM limit) — the 61st within a minute is
  ``429 TooManyRequests``.
* The optional ``messageType`` header is ``JSON`` or ``RAW_TEXT``; with ``JSON`` the body must be
  a JSON object with a ``default`` key.
* A topic that does not exist, or that the caller may not publish to (``use ons-topics``,
  ONS_TOPIC_PUBLISH), is ``404 NotAuthorizedOrNotFound``.
* The answer is ``PublishResult`` ``{"messageId", "timeStamp"}``.

Assumptions (not documented; chosen strict and plausible):

* The 64 KB are 65536 bytes of UTF-8 title plus body; beyond is ``400 InvalidParameter``, as is a
  title over 255 characters (OCI documents no title limit) or a missing/empty body
  (``400 MissingParameter`` when absent).
* The status is 202 Accepted (delivery is asynchronous); the SDK accepts any 2xx.
* The recording keeps the newest :data:`MAX_RECORDED` messages.
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from datetime import UTC, datetime
from typing import Any

from sandbox.oci_emulator.core import (
    OciError,
    Reply,
    Request,
    Route,
    invalid,
    not_found,
    now,
    rfc3339,
)
from sandbox.oci_emulator.server import Emulator

BASE = "/20181201"
MAX_MESSAGE_BYTES = 64 * 1024
MAX_TITLE_CHARS = 255  # assumed
MESSAGES_PER_MINUTE = 60
MESSAGE_TYPES = ("JSON", "RAW_TEXT")
MAX_RECORDED = 10_000


class Notifications:
    """The PublishMessage operation (see the module docstring).

    State (``state.section("notifications")``): ``topics`` by id (``{"id", "name",
    "compartmentId"}``) and ``messages``, the published messages in order, each ``{"messageId",
    "topicId", "title", "body", "messageType", "timeStamp", "requestId", "principal"}``.
    """

    name = "notifications"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._recent: dict[str, deque[float]] = {}  # topic -> publish times (rate limit)

    def routes(self) -> list[Route]:
        """``POST /20181201/topics/{topicId}/messages``."""
        return [
            Route("POST", f"{BASE}/topics/{{topicId}}/messages", "PublishMessage", self.publish)
        ]

    def seed(self, fixture: dict[str, Any]) -> None:
        """Create the fixture's topics; ValueError names a bad entry."""
        state = self._state()
        compartments = {str(c["name"]): str(c["id"]) for c in fixture.get("compartments", [])}
        for entry in fixture.get("topics", []):
            topic_id = entry.get("id")
            if not topic_id or not str(topic_id).startswith("ocid1.onstopic."):
                msg = f"topic {entry!r}: 'id' must be an ocid1.onstopic.... OCID"
                raise ValueError(msg)
            compartment = entry.get("compartment") or fixture.get("tenancy")
            if not compartment:
                msg = f"topic {topic_id}: 'compartment' (or a fixture tenancy) is needed"
                raise ValueError(msg)
            state["topics"][str(topic_id)] = {
                "id": str(topic_id),
                "name": str(entry.get("name", topic_id)),
                "compartmentId": compartments.get(str(compartment), str(compartment)),
            }

    def published(self, **match: str) -> list[dict[str, Any]]:
        """Recorded messages, oldest first; keywords filter by field (``topicId="..."``)."""
        with self.emulator.state.lock:
            messages = list(self._state()["messages"])
        return [m for m in messages if all(m.get(k) == v for k, v in match.items())]

    def clear(self) -> None:
        """Forget what was published (and the rate-limit window)."""
        with self.emulator.state.lock:
            self._state()["messages"].clear()
            self._recent.clear()

    def _state(self) -> dict[str, Any]:
        state = self.emulator.state.section("notifications")
        state.setdefault("topics", {})
        state.setdefault("messages", [])
        return state

    # ------------------------------------------------------------------ the operation

    def publish(self, request: Request) -> Reply:
        """Validate, authorize, rate-limit, record; answer ``PublishResult`` (202)."""
        topic_id = request.params["topicId"]
        topic = self._state()["topics"].get(topic_id)
        if topic is None:
            raise not_found("topic")
        self.emulator.authorize(request, compartment_id=topic["compartmentId"])
        body = request.json_object()
        message_type = request.header("messageType") or "RAW_TEXT"
        if message_type not in MESSAGE_TYPES:
            raise invalid(f"messageType must be one of {', '.join(MESSAGE_TYPES)}.")
        if "body" not in body or body["body"] is None:
            raise OciError(400, "MissingParameter", "Missing required parameter: body.")
        text, title = body["body"], body.get("title")
        if not isinstance(text, str) or not text:
            raise invalid("body must be a non-empty string.")
        if title is not None and not isinstance(title, str):
            raise invalid("title must be a string.")
        if title is not None and len(title) > MAX_TITLE_CHARS:
            raise invalid(f"title is longer than {MAX_TITLE_CHARS} characters.")
        size = len(text.encode()) + len((title or "").encode())
        if size > MAX_MESSAGE_BYTES:
            raise invalid(
                f"The message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes (64 KB)."
            )
        if message_type == "JSON":
            _check_json_body(text)
        moment = now()
        self._rate_limit(topic_id, moment)
        stamp = rfc3339(datetime.fromtimestamp(moment, UTC))
        message_id = f"ocid1.onsmessage.oc1.phx.{secrets.token_hex(16)}"
        messages = self._state()["messages"]
        messages.append(
            {
                "messageId": message_id,
                "topicId": topic_id,
                "title": title,
                "body": text,
                "messageType": message_type,
                "timeStamp": stamp,
                "requestId": request.request_id,
                "principal": request.principal.id if request.principal else None,
            }
        )
        del messages[:-MAX_RECORDED]
        return Reply(status=202, body={"messageId": message_id, "timeStamp": stamp})

    def _rate_limit(self, topic_id: str, moment: float) -> None:
        recent = self._recent.setdefault(topic_id, deque())
        while recent and recent[0] <= moment - 60:
            recent.popleft()
        if len(recent) >= MESSAGES_PER_MINUTE:
            raise OciError(
                429,
                "TooManyRequests",
                f"More than {MESSAGES_PER_MINUTE} messages per minute to this topic.",
            )
        recent.append(moment)


def _check_json_body(text: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        raise invalid("With messageType JSON the body must be a JSON object.") from None
    if not isinstance(document, dict) or "default" not in document:
        raise invalid("With messageType JSON the body needs a 'default' key.")
