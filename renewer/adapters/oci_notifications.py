"""``Notifier`` on OCI Notifications: ``PublishMessage`` to the operators' topic.

Wire facts (SDK ``oci.ons`` 2.189; OCI "Publishing a Message to a Topic"):

* ``POST /20181201/topics/{topicId}/messages`` with ``{"title", "body"}`` (body required), at the
  regional ``notification.<region>`` endpoint (or the endpoint override).
* "Message size limit per request: 64 KB"; 60 messages per minute per topic.
* The title is the e-mail subject (and PagerDuty's title); HTTPS, Slack and SMS subscriptions
  do not use titles — which is why the messages' bodies repeat it.

OCI documents no title limit; :data:`MAX_TITLE_CHARS` (255, the common e-mail subject limit) is
an assumption, and the emulator enforces the same. Too long a title or body is cut here (with
an ellipsis), never refused: a shortened message beats none.
"""

from __future__ import annotations

import logging

import oci

from renewer.adapters.oci_clients import OciClients, translate
from renewer.errors import ConfigError
from renewer.operations.notices import Notice

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024  # title + body, UTF-8 ("Message size limit per request: 64KB")
MAX_TITLE_CHARS = 255  # assumed: OCI documents none
_CUT = "\n[... message shortened to fit the Notifications size limit]\n"


def fit_message(title: str, body: str) -> tuple[str, str]:
    """``title`` and ``body`` cut to the limits (UTF-8 safe); unchanged when they fit."""
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1] + "…"
    room = MAX_MESSAGE_BYTES - len(title.encode())
    encoded = body.encode()
    if len(encoded) > room:
        keep = room - len(_CUT.encode())
        body = encoded[:keep].decode(errors="ignore") + _CUT
    return title, body


class NotificationsTopicPublisher:
    """Publishes :class:`~renewer.operations.notices.Notice` s to one topic.

    Each ``publish`` is one message (not idempotent) and returns OCI's message id. Raises
    :class:`~renewer.errors.ConfigError` for a missing topic or policy (404; OCI answers both
    alike) and a refused message, :class:`~renewer.errors.TransientError` for throttling (429
    beyond 60 messages a minute), 5xx and network failures, always with the ``opc-request-id``.

    Thread-safe: no state besides the shared SDK client.
    """

    def __init__(self, clients: OciClients, *, topic_id: str) -> None:
        if not topic_id.startswith("ocid1.onstopic."):
            msg = f"{topic_id!r} is not a Notifications topic OCID (ocid1.onstopic....)"
            raise ConfigError(msg)
        self._client = clients.client("notifications")
        self.topic_id = topic_id

    def publish(self, notice: Notice) -> str:
        """Publish ``notice`` to the topic; returns the message id."""
        title, body = fit_message(notice.title, notice.body)
        details = oci.ons.models.MessageDetails(title=title, body=body)
        with translate(f"publish a {notice.kind} message about {notice.certificate!r}"):
            response = self._client.publish_message(self.topic_id, details)
        message_id = str(response.data.message_id)
        logger.debug(
            "message published topic=%s cert=%s kind=%s message_id=%s",
            self.topic_id,
            notice.certificate,
            notice.kind,
            message_id,
        )
        return message_id
