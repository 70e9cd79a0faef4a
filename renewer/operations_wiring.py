"""Composition root of the operations sinks: a :class:`Config` becomes an :class:`Operations`.

Like :mod:`renewer.wiring` (and next to it, not in it), the only place where the operations core
and its OCI adapters meet. What is configured is wired; what is not is left off: metrics only
with ``operations.metrics`` enabled, notifications only with a topic, the journal unless
``operations.journal.enabled`` is false.
"""

from __future__ import annotations

from renewer.adapters.oci_clients import OciClients, OciSettings
from renewer.adapters.oci_journal import ObjectStorageNoticeStates, ObjectStorageRunJournal
from renewer.adapters.oci_monitoring import MonitoringMetricsSink
from renewer.adapters.oci_notifications import NotificationsTopicPublisher
from renewer.clock import Clock, SystemClock
from renewer.operations.facade import Operations
from renewer.settings import Config

__all__ = ["build_operations"]


def build_operations(
    config: Config,
    *,
    oci: OciSettings | None = None,
    clients: OciClients | None = None,
    namespace: str | None = None,
    clock: Clock | None = None,
) -> Operations:
    """Wire ``config.operations`` to Monitoring, Notifications and the state bucket.

    Args:
        config: the validated configuration.
        oci: how to reach OCI (ignored when ``clients`` is given).
        clients: SDK clients to share (e.g. with the renewal service's wiring).
        namespace: the Object Storage namespace, when the caller already knows it.
        clock: the metrics' clock (default: the system clock).

    Returns:
        The façade. Nothing was called in the tenancy except, when the journal or
        notifications are on and neither ``namespace`` nor ``oci.namespace`` names the Object
        Storage namespace, one GetNamespace.

    Raises:
        ConfigError: neither ``oci`` nor ``clients``, unusable credentials, or the namespace
            lookup was refused.
        TransientError: OCI could not be reached for the namespace lookup.

    """
    if clients is None:
        if oci is None:
            msg = "build_operations needs OCI settings or clients"
            raise ValueError(msg)
        clients = OciClients(oci)
    settings = config.operations
    resources = config.oci
    needs_bucket = settings.journal.enabled or settings.notifications.enabled
    if needs_bucket and namespace is None:
        namespace = resources.namespace or clients.namespace()
    namespace = namespace or ""
    bucket = resources.state_bucket
    metrics = None
    if settings.metrics.enabled:
        metrics = MonitoringMetricsSink(
            clients,
            namespace=settings.metrics.namespace,
            compartment_id=settings.metrics.compartment_id or resources.compartment_id,
        )
    notifier = states = None
    if settings.notifications.topic_id is not None:
        notifier = NotificationsTopicPublisher(clients, topic_id=settings.notifications.topic_id)
        states = ObjectStorageNoticeStates(clients, namespace=namespace, bucket=bucket)
    journal = None
    if settings.journal.enabled:
        journal = ObjectStorageRunJournal(
            clients,
            namespace=namespace,
            bucket=bucket,
            retention_days=settings.journal.retention_days,
            max_records=settings.journal.max_records,
        )
    return Operations(
        settings=settings,
        targets={m.spec.name: m.targets for m in config.certificates},
        clock=clock or SystemClock(),
        metrics=metrics,
        notifier=notifier,
        notice_states=states,
        journal=journal,
    )
