"""Read-only: the TLS settings of a listener target's listeners, for the key-type choice.

One GetLoadBalancer per target, kept for the run's read-only check
(:mod:`renewer.adapters.oci_lb_snapshots`). Each listener's ``sslConfiguration`` is read as
OCI applies it (:func:`renewer.key_choice.listener_tls`): no ``cipherSuiteName`` is
``oci-default-ssl-cipher-suite-v1``, no ``protocols`` is TLSv1.2; a custom suite's ciphers
come from the load balancer's ``sslCipherSuites``. A listener that does not exist or has no
``sslConfiguration`` is left out here: the deployer's read-only check names it.
"""

from __future__ import annotations

from typing import Any

from renewer import key_choice
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_lb_snapshots import LoadBalancerSnapshots
from renewer.model import ListenerTarget, ListenerTls


class ListenerTlsReader:
    """Reads what each listener of a :class:`ListenerTarget` negotiates. Read-only."""

    def __init__(
        self, clients: OciClients, *, snapshots: LoadBalancerSnapshots | None = None
    ) -> None:
        """``snapshots``: where each answer is kept for the run's read-only check."""
        self._clients = clients
        self._snapshots = snapshots

    def settings(self, target: ListenerTarget) -> tuple[ListenerTls, ...]:
        """The TLS settings of the target's listeners, in the target's order.

        Raises:
            ConfigError, TransientError: as the read of the load balancer answers
                (:func:`renewer.adapters.oci_clients.translate`).

        """
        lb_id = target.load_balancer_id
        with translate(f"read load balancer {lb_id}"):
            response = self._clients.load_balancer.get_load_balancer(lb_id)
        if self._snapshots is not None:
            self._snapshots.put(lb_id, response)
        return tls_of(response.data, lb_id, target.listener_names)


def tls_of(lb: Any, lb_id: str, listener_names: tuple[str, ...]) -> tuple[ListenerTls, ...]:  # noqa: ANN401 - an SDK LoadBalancer model
    """The TLS settings of ``listener_names`` of the SDK ``LoadBalancer`` model ``lb``."""
    custom = {
        name: tuple(suite.ciphers or ())
        for name, suite in (getattr(lb, "ssl_cipher_suites", None) or {}).items()
    }
    listeners = lb.listeners or {}
    settings = []
    for name in dict.fromkeys(listener_names):
        listener = listeners.get(name)
        ssl = None if listener is None else listener.ssl_configuration
        if ssl is None:
            continue
        settings.append(
            key_choice.listener_tls(
                lb_id,
                name,
                suite=ssl.cipher_suite_name,
                protocols=ssl.protocols,
                custom_suites=custom,
            )
        )
    return tuple(settings)
