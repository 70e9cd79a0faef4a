"""The dns-01 sweep: remove exactly the ``_acme-challenge`` TXT values a dead run left behind.

A run answers dns-01 by writing TXT records and removes them in a ``finally``; a run killed in
between (``kill -9``, a lost node, a timeout) leaves them in the zone. OCI DNS records carry no
creation time, so the http-01 sweep's rule (objects older than the lease TTL) has nothing to
go by here. The values themselves are derivable instead: RFC 8555 §8.4 makes a dns-01 value
``base64url(SHA-256(token "." thumbprint(account key)))``, and the dead run's order URL is in
the store (its pending-order record, written right after newOrder and *before* any record is
written). So the run that finds that record re-reads the order and its authorizations
(POST-as-GET, with the same account), computes each dns-01 value, and removes those values —
and nothing else — from the zone.

Exact: a value binds one authorization's token to our account key. Another ACME client (another
key) never has the same value, so its records at the same name are never touched.

Safe: a value is needed only while its authorization is ``pending`` (RFC 8555 §7.1.6: the CA
validates a challenge only then; a valid authorization is reused without one). So a value is
removed when its authorization has *settled* (valid, invalid, expired, deactivated, revoked).
A value of a still-pending authorization is removed only when the order is *abandoned* (the
next run will not finish it) and no other certificate of the configuration validates that
record name: a CA may hand one pending authorization to two orders of one account (RFC 8555
§7.4 allows reuse), and a live run of another certificate could be waiting on it. The dead run
of this certificate is no such run: its lease has expired (the lease TTL exceeds any run).

When the order is finished instead (resumed), its pending authorizations are presented and
cleaned up again by the resuming run itself (the same values: same token, same key).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from renewer.dns_names import dns01_record_name
from renewer.model import PendingOrder

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OrderChallengeRecord:
    """The dns-01 TXT record one authorization of an order asks for.

    ``name`` is ``_acme-challenge.<domain>`` (no trailing dot), ``value`` the TXT value,
    ``settled`` whether the authorization has left ``pending`` (nobody needs the value now).
    """

    name: str
    value: str
    settled: bool


@runtime_checkable
class OrderChallengeRecords(Protocol):
    """Reads an existing order's dns-01 records (POST-as-GET only; never creates anything).

    Returns None when the order cannot be read with our account (another CA, another account,
    unknown to the CA or not ours): then nothing can be derived. Raises
    :class:`~renewer.errors.TransientError`/:class:`~renewer.errors.AcmeProtocolError` (or
    :class:`~renewer.errors.AcmeTimeout` at ``deadline``, a ``time.monotonic()`` instant).
    """

    def dns01_records(
        self, order_url: str, *, account_url: str, deadline: float
    ) -> Sequence[OrderChallengeRecord] | None:
        """The order's dns-01 records, one per authorization offering dns-01."""
        ...


class TxtCleaner(Protocol):
    """Removes exactly the given ``(name, value)`` TXT records from a zone; idempotent.

    (:meth:`~renewer.ports.DnsChallengeZone.clean_up`: other values at a name stay.)
    """

    def clean_up(self, zone_id: str, records: Sequence[tuple[str, str]]) -> None:
        """Remove the TXT records (removing an absent one is a no-op)."""
        ...


@dataclass(frozen=True, slots=True)
class DnsSweep:
    """What one sweep did: ``removed`` (name, value) pairs asked away, ``kept`` left in place.

    ``readable`` is False when the order could not be read (nothing could be derived).
    """

    removed: tuple[tuple[str, str], ...] = ()
    kept: tuple[tuple[str, str], ...] = ()
    readable: bool = True


class Dns01Sweeper:
    """Removes the dns-01 TXT values of a dead run's order (see the module docstring).

    Args:
        orders: reads the order's authorizations and derives their values (the ACME issuer).
        zone: removes TXT values from the OCI DNS zone.

    """

    def __init__(self, orders: OrderChallengeRecords, zone: TxtCleaner) -> None:
        self._orders = orders
        self._zone = zone

    def sweep(
        self,
        order: PendingOrder,
        zone_id: str,
        *,
        abandoned: bool,
        shared_names: Collection[str] = (),
        deadline: float,
    ) -> DnsSweep:
        """Remove the values of ``order`` that nobody can need any more from ``zone_id``.

        Args:
            order: the dead run's order, as its pending-order record holds it.
            zone_id: the OCI DNS zone the certificate's dns-01 records are written into.
            abandoned: no run will finish the order (the next one orders anew or none).
            shared_names: record names (``_acme-challenge.<domain>``) another configured
                certificate validates, whose pending values are kept even when abandoned.
            deadline: a ``time.monotonic()`` instant bounding the reads at the CA.

        Raises:
            The errors of :meth:`OrderChallengeRecords.dns01_records` and of the clean-up
            (TransientError, ConfigError): the caller logs them; a sweep never fails a run.

        """
        records = self._orders.dns01_records(
            order.order_url, account_url=order.account_url, deadline=deadline
        )
        if records is None:
            return DnsSweep(readable=False)
        shared = {_record_name(n) for n in shared_names}
        removed: list[tuple[str, str]] = []
        kept: list[tuple[str, str]] = []
        for record in records:
            pair = (_record_name(record.name), record.value)
            if pair in removed or pair in kept:
                continue
            if record.settled or (abandoned and pair[0] not in shared):
                removed.append(pair)
            else:
                kept.append(pair)
        if removed:
            self._zone.clean_up(zone_id, removed)
        logger.info(
            "dns01_sweep order=%s zone=%s removed=%d kept=%d abandoned=%s",
            order.order_url,
            zone_id,
            len(removed),
            len(kept),
            abandoned,
        )
        return DnsSweep(removed=tuple(removed), kept=tuple(kept))


def _record_name(name: str) -> str:
    return name.lower().removesuffix(".")


def record_names_of(dns_names: Collection[str]) -> frozenset[str]:
    """The ``_acme-challenge`` record names a certificate with ``dns_names`` validates at."""
    return frozenset(dns01_record_name(n) for n in dns_names)


__all__ = [
    "Dns01Sweeper",
    "DnsSweep",
    "OrderChallengeRecord",
    "OrderChallengeRecords",
    "TxtCleaner",
    "record_names_of",
]
