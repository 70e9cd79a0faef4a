"""Composition root of the revoke action: a :class:`Config` becomes a RevocationService.

Next to :mod:`renewer.wiring` (not in it): the certificate store and the account store are the
Vault adapters the renewal uses; the revoker is the ACME adapter for the directory of the CA
that issued the version (:func:`renewer.wiring.acme_revokers`), built on use (it imports
``acme``). The renewal run a revocation starts with comes from ``renewals_for``, which the
runner builds exactly as for a renew action.
"""

from __future__ import annotations

from collections.abc import Callable

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_object_storage import ObjectStorageLease
from renewer.adapters.oci_revocations import ObjectStorageRevocationRecords
from renewer.adapters.oci_vault import VaultCertificateStore
from renewer.clock import Clock, SystemClock
from renewer.revoker import Renewals, RevocationService
from renewer.settings import Config
from renewer.wiring import acme_revokers

__all__ = ["build_revocation_service"]


def build_revocation_service(
    config: Config,
    *,
    clients: OciClients,
    renewals_for: Callable[[Config], Renewals],
    ca_bundle: str | None = None,
    clock: Clock | None = None,
    holder: str = "revoke",
) -> RevocationService:
    """Wire the revoke action. Nothing is called at the CA yet.

    In the tenancy, only the namespace lookup when the configuration names none. ``holder``:
    this invocation's lease holder id (the lease is held from CHECK to the record).
    """
    clock = clock or SystemClock()
    resources = config.oci
    namespace = resources.namespace or clients.namespace()
    vault = {
        "compartment_id": resources.compartment_id,
        "vault_id": resources.vault_id,
        "key_id": resources.key_id,
        "prefix": resources.name_prefix,
    }

    return RevocationService(
        config=config,
        certificates=VaultCertificateStore(clients, **vault),
        revoker=acme_revokers(clients, vault, ca_bundle, clock),
        renewals_for=renewals_for,
        clock=clock,
        records=ObjectStorageRevocationRecords(
            clients, namespace=namespace, bucket=resources.state_bucket
        ),
        leases=ObjectStorageLease(
            clients, namespace=namespace, bucket=resources.state_bucket, clock=clock
        ),
        holder=holder,
    )
