"""The :class:`~renewer.ports.Issuer` port over an ordered list of CAs (issue 17).

One issuer per CA directory (each with its own ACME account, stored under its directory URL),
built on first use. An order tries ``request.cas`` in order and moves to the next CA only when
:func:`renewer.ca_choice.is_ca_side` says the CA failed on its side; ``replaces`` goes only to
the CA that issued the certificate it names. The choice of which CAs to try (backoffs) is the
orchestrator's, from the certificate's state (:func:`renewer.ca_choice.ca_order`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from renewer import ca_choice
from renewer.dns_names import DnsRecord
from renewer.dns_sweep import OrderChallengeRecord, OrderChallengeRecords
from renewer.errors import CaUnavailable, ConfigError, RenewerError
from renewer.model import CaFailure, CaSpec, IssuedCertificate, OrderRequest, RenewalInfo
from renewer.ports import CaPersistRecords, Issuer, OrderCreated, PersistRecordPlanner

__all__ = ["CaListIssuer"]

logger = logging.getLogger(__name__)


class CaListIssuer:
    """Orders from the first CA of a request's list that does not fail on its side.

    Args:
        issuers: one issuer per directory URL (lazily built ones, see
            :class:`renewer.wiring.IssuerOnFirstUse`); each also answers ``renewal_info``.
        default: the directory used when a request names no CA (the global first choice).

    """

    def __init__(self, issuers: Mapping[str, Issuer], *, default: str) -> None:
        if default not in issuers:
            msg = "internal: the default CA has no issuer"
            raise ConfigError(msg)
        self._issuers = dict(issuers)
        self._default = default

    def _issuer(self, directory_url: str) -> Issuer:
        issuer = self._issuers.get(directory_url)
        if issuer is None:
            msg = f"internal: no issuer is configured for the CA at {directory_url}"
            raise ConfigError(msg)
        return issuer

    def issue(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None = None
    ) -> IssuedCertificate:
        """Order from each CA of ``request.cas`` in turn until one issues.

        Raises:
            CaUnavailable: every CA failed on its side (``ca_failures`` lists each).
            RenewerError: the first failure of ours, at whichever CA it happened (with
                ``ca_failures`` naming the CAs passed over before it); with one CA, its error.

        """
        cas = request.cas or (CaSpec(self._default),)
        failures: list[CaFailure] = []
        for index, ca in enumerate(cas):
            attempt = dataclasses.replace(
                request,
                profile=ca.profile if ca.profile is not None else request.profile,
                preferred_chain=ca.preferred_chain
                if ca.preferred_chain is not None
                else request.preferred_chain,
                replaces=request.replaces if request.replaces_ca == ca.directory_url else None,
                cas=(),
                replaces_ca=None,
            )
            try:
                issued = self._issuer(ca.directory_url).issue(
                    attempt, deadline=deadline, on_order=on_order
                )
            except Exception as exc:
                if not ca_choice.is_ca_side(exc):
                    if isinstance(exc, RenewerError):
                        exc.ca_failures = tuple(failures)
                    raise
                failure = ca_choice.ca_failure(ca.directory_url, exc)
                failures.append(failure)
                if len(cas) == 1:
                    if isinstance(exc, RenewerError):
                        exc.ca_failures = tuple(failures)
                    raise
                left = len(cas) - index - 1
                logger.warning(
                    "ca_failed ca=%s error_type=%s problem=%s error=%s next=%s",
                    ca_choice.ca_host(ca.directory_url),
                    failure.error_type,
                    failure.problem_type or "-",
                    exc,
                    ca_choice.ca_host(cas[index + 1].directory_url) if left else "none",
                )
                if not left:
                    raise _unavailable(failures) from exc
                continue
            return dataclasses.replace(
                issued, directory_url=ca.directory_url, passed_over=tuple(failures)
            )
        raise _unavailable(failures)  # pragma: no cover - the loop returns or raises

    def resume(
        self, order_url: str, request: OrderRequest, *, account_url: str, deadline: float
    ) -> IssuedCertificate | None:
        """Finish an open order at the CA it was placed with (its account URL's origin)."""
        cas = request.cas or (CaSpec(self._default),)
        ca = ca_choice.find_ca(cas, account_url)  # on the CA's own server, as the order
        if ca is None or ca.directory_url not in self._issuers:
            logger.info("acme order not resumed url=%s reason=another-ca", order_url)
            return None
        issued = self._issuer(ca.directory_url).resume(
            order_url,
            dataclasses.replace(request, cas=(), replaces_ca=None),
            account_url=account_url,
            deadline=deadline,
        )
        return (
            None if issued is None else dataclasses.replace(issued, directory_url=ca.directory_url)
        )

    def renewal_info(self, cert_pem: str, *, deadline: float | None = None) -> RenewalInfo | None:
        """Renewal information from the default CA (see :meth:`renewal_info_at`)."""
        return self._issuer(self._default).renewal_info(cert_pem, deadline=deadline)

    def renewal_info_at(
        self, directory_url: str, cert_pem: str, *, deadline: float | None = None
    ) -> RenewalInfo | None:
        """Renewal information from the CA at ``directory_url``, the one that issued it."""
        return self._issuer(directory_url).renewal_info(cert_pem, deadline=deadline)

    def persist_records(
        self, dns_names: Sequence[str], *, deadline: float | None = None
    ) -> tuple[DnsRecord, ...] | None:
        """The default CA's dns-persist-01 records (they name its account).

        A certificate with several CAs needs one record per CA: see
        :meth:`persist_records_per_ca`, which ``plan`` uses.
        """
        issuer = self._issuer(self._default)
        if not isinstance(issuer, PersistRecordPlanner):
            return None
        return issuer.persist_records(dns_names, deadline=deadline)

    def persist_records_per_ca(
        self, dns_names: Sequence[str], cas: Sequence[CaSpec], *, deadline: float | None = None
    ) -> tuple[CaPersistRecords, ...]:
        """Each CA's dns-persist-01 records, one entry per CA of ``cas`` in order.

        Every CA a certificate may be issued by needs its own record (its issuer domain from
        its directory's ``caaIdentities``, this renewer's account URL there): a fallback CA
        without one fails validation exactly when it is needed. A CA whose account does not
        exist yet has ``records`` None; one that cannot say has ``error`` (the others are
        still listed). Empty ``cas``: the default CA.
        """
        entries: list[CaPersistRecords] = []
        for ca in cas or (CaSpec(self._default),):
            issuer = self._issuer(ca.directory_url)
            if not isinstance(issuer, PersistRecordPlanner):
                entries.append(
                    CaPersistRecords(ca.directory_url, None, "its issuer cannot plan records")
                )
                continue
            try:
                records = issuer.persist_records(dns_names, deadline=deadline)
            except RenewerError as exc:  # secret-free by contract (errors.py)
                entries.append(
                    CaPersistRecords(ca.directory_url, None, f"{type(exc).__name__}: {exc}")
                )
                continue
            entries.append(CaPersistRecords(ca.directory_url, records))
        return tuple(entries)

    def dns01_records(
        self, order_url: str, *, account_url: str, deadline: float
    ) -> Sequence[OrderChallengeRecord] | None:
        """A dead run's dns-01 records, read at the CA its account lives on (the dns sweep).

        None when no configured CA is on the account's origin, or its issuer cannot read orders.
        """
        ca = ca_choice.find_ca([CaSpec(url) for url in self._issuers], account_url)
        issuer = None if ca is None else self._issuers[ca.directory_url]
        if not isinstance(issuer, OrderChallengeRecords):
            return None
        return issuer.dns01_records(order_url, account_url=account_url, deadline=deadline)

    @property
    def built(self) -> bool:
        """Whether any CA's issuer (and so the ACME stack) has been built."""
        return any(bool(getattr(i, "built", True)) for i in self._issuers.values())


def _unavailable(failures: Sequence[CaFailure]) -> CaUnavailable:
    said = "; ".join(
        f"{ca_choice.ca_host(f.directory_url)}: {f.error_type}"
        + (f" ({f.problem_type})" if f.problem_type else "")
        for f in failures
    )
    waits = [f.retry_after for f in failures if f.retry_after is not None]
    error = CaUnavailable(
        f"every configured CA failed on its side ({said}); the next run tries them again"
        " once their backoff ends",
        retry_after=min(waits) if len(waits) == len(failures) and waits else None,
    )
    error.ca_failures = tuple(failures)
    return error
