"""``AcmeIssuer``: one RFC 8555 order, from account to downloaded chain.

Each order answers the challenge its request names (:class:`~renewer.dns_names.ChallengeType`):
http-01 through the challenge store, dns-01 through a DNS zone (``dns_zone``), dns-persist-01
with nothing to present — the ``_validation-persist`` record is already in DNS
(draft-ietf-acme-dns-persist; the CA checks that it names our account URL).

The issuer receives a :class:`~renewer.ports.ChallengeStore` (the distributed http-01 solver),
an :class:`~renewer.ports.AccountStore` and optionally a
:class:`~renewer.ports.ChallengeSelfCheck`; it knows nothing about Vault or load balancers.

Protocol steps, each a method named after RFC 8555 section 7 (``_new_order``, ``_authorizations``,
``_respond``, ``_finalize``, ``_download``):

1. directory (7.1.1) and account: load-or-create, key saved before registering, URL reused;
2. newOrder (7.4) with the profile and, on renewals, RFC 9773 ``replaces``; one retry without
   ``replaces`` if the CA rejects it (it may not know the old certificate);
3. every pending authorization: present the key authorization, self-check it, then answer all
   challenges before polling any, so the CA validates them in parallel;
4. poll authorizations, then finalize with the CSR and poll the order, honouring Retry-After,
   never past the caller's deadline; clean up every presented token whatever happened;
5. download the chain (and the alternates when a preferred chain is configured) and choose one.

``issue`` calls its ``on_order`` hook between steps 2 and 3, so the caller can record the order
(and the key behind the CSR) before anything is answered; ``resume`` reads such an order again
with the same account and runs whichever of steps 3-5 it still needs (``_complete`` is shared),
or returns None when the order can no longer be finished.

Polling starts at 50 ms and doubles to 1 s: the ``acme`` library's own loops sleep a whole second
before every re-poll, which is most of its wall time against a fast CA.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import Random
from typing import TypeVar
from urllib.parse import urlsplit

from acme import challenges, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import errors as jose_errors
from josepy import jwa, jwk

from renewer import dns_names, pki
from renewer.adapters import acme_answers as answers
from renewer.adapters.acme_renewal_info import RenewalInfoClient
from renewer.adapters.acme_transport import (
    BAD_NONCE_RETRIES,
    AcmeNetwork,
    NewOrder,
    from_problem,
    problem_type,
    retry_after_seconds,
    translate,
)
from renewer.clock import Clock, SystemClock
from renewer.dns_names import ChallengeType, DnsRecord
from renewer.dns_sweep import OrderChallengeRecord
from renewer.errors import (
    AcmeProtocolError,
    AcmeTimeout,
    CaAnswerInvalid,
    ChallengeFailed,
    ConfigError,
    IdentifierFailure,
    RateLimited,
)
from renewer.model import IssuedCertificate, OrderRequest, RenewalInfo
from renewer.ports import (
    AccountRecord,
    AccountStore,
    ChallengeSelfCheck,
    ChallengeStore,
    DnsChallengeZone,
    OrderCreated,
)
from renewer.untrusted import json_kind

logger = logging.getLogger(__name__)

T = TypeVar("T")

# RFC 8555 section 8.1: tokens are base64url; anything else must never become an object name.
# Always used with fullmatch(): "$" would also match before a trailing newline.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,256}")
PEM_CHAIN = "application/pem-certificate-chain"
# An order that is gone or not ours: 404 (Pebble answers unknown orders without a problem
# document) or 403; the caller orders anew.
_ORDER_GONE = frozenset({403, 404})


@dataclass(frozen=True, slots=True)
class ExternalAccountBinding:
    """EAB credentials from the CA (RFC 8555 section 7.3.4). ``hmac_key`` is base64url, secret."""

    kid: str
    hmac_key: str = field(repr=False)
    hmac_alg: str = "HS256"


@dataclass(frozen=True, slots=True)
class PollingPolicy:
    """Polling cadence when the CA sends no Retry-After: ``initial`` doubling to ``maximum``."""

    initial: float = 0.05
    maximum: float = 1.0


@dataclass(slots=True)
class _Pending:
    """A pending authorization with the challenge we will answer.

    ``key_authorization`` is set for http-01; ``dns_record`` (name, value) for dns-01.
    """

    authz: messages.AuthorizationResource
    challenge: messages.ChallengeBody
    key_authorization: str = field(repr=False)
    kind: ChallengeType = ChallengeType.HTTP_01
    dns_record: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return str(self.authz.body.identifier.value)

    @property
    def token(self) -> str:
        return str(self.challenge.chall.encode("token"))


class AcmeIssuer:
    """Issues certificates from one ACME directory with http-01.

    Thread-safe: ``issue`` may run concurrently for different certificates; the directory and
    the account are resolved once and shared.

    Args:
        directory_url: the CA's RFC 8555 directory.
        accounts: where the account key and URL live (one account per directory, reused).
        challenges: where key authorizations are published for the CA to fetch.
        self_check: when given, every token is fetched through the public path before the CA
            is asked to validate it.
        contact: e-mail addresses for the account (optional; Let's Encrypt no longer mails).
        eab: External Account Binding credentials, for CAs that require them.
        terms_of_service_agreed: the operator agreed to the CA's terms; registration at a CA
            that has terms fails with a ConfigError otherwise.
        ca_bundle: a PEM file to trust for the ACME server instead of the system store.
        clock: time source for deadlines and waits.
        polling: poll cadence when the CA sends no Retry-After.
        network_timeout: seconds for one socket operation of an HTTP request; the request as a
            whole (connect, TLS, every byte of the answer) never outlasts the order's deadline.
        bad_nonce_retries: re-signing attempts after badNonce, per request (the default
            survives a CA that rejects half of all nonces).
        max_workers: concurrency for presenting, self-checking and cleaning up tokens.
        user_agent: sent to the CA.
        dns_zone: where dns-01 TXT records are written (orders asking for dns-01 need it).

    """

    def __init__(
        self,
        *,
        directory_url: str,
        accounts: AccountStore,
        challenges: ChallengeStore,
        self_check: ChallengeSelfCheck | None = None,
        contact: Sequence[str] = (),
        eab: ExternalAccountBinding | None = None,
        terms_of_service_agreed: bool = True,
        ca_bundle: str | None = None,
        clock: Clock | None = None,
        polling: PollingPolicy | None = None,
        network_timeout: float = 30.0,
        bad_nonce_retries: int = BAD_NONCE_RETRIES,
        max_workers: int = 10,
        user_agent: str = "oci-acme-renewer/0.1",
        dns_zone: DnsChallengeZone | None = None,
    ) -> None:
        self.directory_url = directory_url
        self._accounts = accounts
        self._challenges = challenges
        self._self_check = self_check
        self._contact = tuple(contact)
        self._eab = eab
        self._tos_agreed = terms_of_service_agreed
        self._verify: str | bool = ca_bundle or True
        self._clock = clock or SystemClock()
        self._polling = polling or PollingPolicy()
        self._timeout = network_timeout
        self._bad_nonce_retries = bad_nonce_retries
        self._max_workers = max_workers
        self._user_agent = user_agent
        self._dns_zone = dns_zone
        self._renewal_info = RenewalInfoClient(
            directory_url, ca_bundle=ca_bundle, clock=self._clock, user_agent=user_agent
        )
        self._lock = threading.Lock()
        self._directory: messages.Directory | None = None
        self._account_key: jwk.JWKEC | None = None
        self._account_url: str | None = None

    # ------------------------------------------------------------------ public API

    def issue(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None = None
    ) -> IssuedCertificate:
        """Run one order to completion and return the chosen chain.

        Args:
            request: names, CSR and options.
            deadline: a ``time.monotonic()`` instant; no wait goes past it.
            on_order: called with the order URL and the account URL right after newOrder and
                before any challenge is presented (the caller records the order so that a run
                killed later can :meth:`resume` it); what it raises ends the attempt.

        Raises:
            ConfigError: the request or the account settings cannot work with this CA (unknown
                profile, EAB required but missing, terms not agreed).
            ChallengeFailed: the CA refused one or more identifiers; each is listed.
            SelfCheckFailed: a token was not reachable through the public path.
            RateLimited: the CA said to wait (``retry_after`` seconds).
            AcmeProtocolError: any other problem document, with its type and detail.
            AcmeTimeout / TransientError: deadline reached, network or server trouble.

        """
        try:
            return self._issue_once(request, deadline=deadline, on_order=on_order)
        except AcmeProtocolError as exc:
            if exc.problem_type != "accountDoesNotExist":
                raise
        # The CA no longer knows our account URL (deactivated, or a test CA restarted). Keep the
        # key, register it again, and run the order once more; nothing was issued yet.
        logger.warning("acme account unknown to the CA; registering the same key again")
        self._forget_account_url()
        return self._issue_once(request, deadline=deadline, on_order=on_order)

    def resume(
        self, order_url: str, request: OrderRequest, *, account_url: str, deadline: float
    ) -> IssuedCertificate | None:
        """Finish an order created earlier (by a run that died), or None if it cannot be.

        The order is read (POST-as-GET, RFC 8555 section 7.1.3) with our account and taken from
        where it stands: ``valid`` — download; ``processing`` — poll, download; ``ready`` —
        finalize with ``request.csr_pem``, poll, download; ``pending`` — the authorizations
        exactly as a new order's (present, self-check, answer, poll), then finalize. No order is
        ever created here.

        Args:
            order_url: the order's URL as newOrder returned it.
            request: the order's names, a CSR from the order's key, the preferred chain.
            account_url: the account that created the order.
            deadline: a ``time.monotonic()`` instant; no wait goes past it.

        Returns:
            The certificate, or None when the order is ``invalid`` (failed or expired), unknown
            to the CA (404), not ours (403 ``unauthorized``, another account URL, or a URL of
            another CA) or for other names: the caller places a new order.

        Raises:
            The errors of :meth:`issue` for an order that can be finished but fails now.

        """
        started = self._clock.monotonic()
        if started >= deadline:
            raise AcmeTimeout("ACME order not resumed: the deadline has already passed")
        if _origin(order_url) != _origin(self.directory_url):
            logger.info("acme order not resumed url=%s reason=another-ca", order_url)
            return None
        client, current_account = self._client(deadline)
        if account_url != current_account:
            logger.info("acme order not resumed url=%s reason=another-account", order_url)
            return None
        timings = {"account": self._clock.monotonic() - started}
        try:
            with translate("order"):
                response = client._post_as_get(order_url)  # noqa: SLF001
                body = answers.order(response)
        except AcmeProtocolError as exc:
            if exc.problem_type == "accountDoesNotExist":
                self._forget_account_url()
            elif exc.status not in _ORDER_GONE and exc.problem_type != "unauthorized":
                raise
            logger.info(
                "acme order not resumed url=%s reason=%s status=%s",
                order_url,
                exc.problem_type,
                exc.status,
            )
            return None
        wanted = {_normal(n) for n in request.dns_names}
        ordered = {_normal(str(i.value)) for i in body.identifiers}
        if body.status == messages.STATUS_INVALID or ordered != wanted:
            reason = "invalid" if body.status == messages.STATUS_INVALID else "other-names"
            detail = f"{problem_type(body.error)}: {body.error.detail}" if body.error else "-"
            logger.info(
                "acme order not resumed url=%s reason=%s error=%s", order_url, reason, detail
            )
            return None
        logger.info("acme order resumed url=%s status=%s", order_url, body.status)
        order = messages.OrderResource(body=body, uri=order_url, csr_pem=request.csr_pem)
        return self._complete(
            client,
            order,
            request,
            account_url=current_account,
            deadline=deadline,
            timings=timings,
            started=started,
        )

    def dns01_records(
        self, order_url: str, *, account_url: str, deadline: float
    ) -> list[OrderChallengeRecord] | None:
        """The dns-01 TXT record each authorization of an existing order asks for.

        :class:`~renewer.dns_sweep.OrderChallengeRecords`: the order and each authorization
        are read (POST-as-GET, RFC 8555 §7.1.3) with our account; each dns-01 challenge's
        value is computed from its token and our account key (§8.4) — exactly what a run that
        presented it wrote. Nothing is created or answered.

        Returns:
            One record per authorization offering dns-01 (``settled``: the authorization is
            no longer pending), or None when the order is of another CA or another account,
            unknown to the CA (404) or not ours (403 / ``unauthorized``).

        """
        if self._clock.monotonic() >= deadline:
            raise AcmeTimeout("ACME order not read: the deadline has already passed")
        if _origin(order_url) != _origin(self.directory_url):
            return None
        client, current_account = self._client(deadline)
        if account_url != current_account:
            return None
        try:
            with translate("order"):
                body = answers.order(client._post_as_get(order_url))  # noqa: SLF001
        except AcmeProtocolError as exc:
            if exc.status in _ORDER_GONE or exc.problem_type == "unauthorized":
                return None
            raise
        account_key = client.net.key
        if account_key is None:  # pragma: no cover - ``_client`` always binds the account key
            return None
        records: list[OrderChallengeRecord] = []
        for url in body.authorizations:
            try:
                with translate("authorization"):
                    authz = answers.authorization(client._post_as_get(url))  # noqa: SLF001
            except AcmeProtocolError as exc:
                if exc.status in _ORDER_GONE:
                    continue  # the CA dropped it: its token is unknown, nothing to derive
                raise
            records.extend(_dns01_records(authz, account_key))
        return records

    def _issue_once(
        self, request: OrderRequest, *, deadline: float, on_order: OrderCreated | None
    ) -> IssuedCertificate:
        timings: dict[str, float] = {}
        started = self._clock.monotonic()
        if started >= deadline:
            raise AcmeTimeout("ACME order not started: the deadline has already passed")
        # Bad input changes nothing at the CA: check the profile before any account request.
        self._check_profile(request.profile, deadline)
        client, account_url = self._client(deadline)
        timings["account"] = self._clock.monotonic() - started

        mark = self._clock.monotonic()
        order, replaced = self._new_order(client, request)
        timings["new_order"] = self._clock.monotonic() - mark
        logger.info(
            "acme order created url=%s names=%d replaces=%s",
            order.uri,
            len(request.dns_names),
            replaced or "-",
        )
        if on_order is not None:
            on_order(str(order.uri), account_url)
        return self._complete(
            client,
            order,
            request,
            account_url=account_url,
            deadline=deadline,
            timings=timings,
            started=started,
        )

    def _complete(
        self,
        client: acme_client.ClientV2,
        order: messages.OrderResource,
        request: OrderRequest,
        *,
        account_url: str,
        deadline: float,
        timings: dict[str, float],
        started: float,
    ) -> IssuedCertificate:
        """The steps after newOrder, from the order's status on (shared by issue and resume)."""
        status = order.body.status
        if status == messages.STATUS_PENDING:
            mark = self._clock.monotonic()
            pending = self._authorizations(client, order, request)
            if pending:
                self._respond(client, pending, request, deadline=deadline)
            timings["authorizations"] = self._clock.monotonic() - mark
        if status != messages.STATUS_VALID or order.body.certificate is None:
            mark = self._clock.monotonic()
            order = self._finalize(
                client,
                order,
                request.csr_pem,
                deadline=deadline,
                finalized=status in (messages.STATUS_PROCESSING, messages.STATUS_VALID),
            )
            timings["finalize"] = self._clock.monotonic() - mark

        mark = self._clock.monotonic()
        chains, ca_now = self._download(
            client, order, want_alternates=bool(request.preferred_chain)
        )
        fullchain = pki.select_chain(chains, request.preferred_chain)
        timings["download"] = self._clock.monotonic() - mark

        # Never hand on a certificate that is not for our key, our names and the time of issue
        # (the CA's clock, from its answer's Date, else ours: a clock of ours that is off is
        # not the certificate's fault).
        leaf = answers.check_issued(
            fullchain, request.csr_pem, request.dns_names, now=ca_now or self._clock.now()
        )
        timings["total"] = self._clock.monotonic() - started
        issued = IssuedCertificate(
            fullchain_pem=fullchain,
            order_url=str(order.uri),
            account_url=account_url,
            serial_hex=pki.serial_hex(leaf),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
            issuer=pki.common_name(leaf.issuer),
            alternate_chains=len(chains) - 1,
            timings={k: round(v, 4) for k, v in timings.items()},
        )
        logger.info(
            "acme certificate issued order=%s serial=%s not_after=%s seconds=%.3f",
            issued.order_url,
            issued.serial_hex,
            issued.not_after.isoformat(),
            timings["total"],
        )
        return issued

    def profiles(self, deadline: float | None = None) -> dict[str, str]:
        """The CA's advertised profiles (name -> description); empty when it has none."""
        meta = self._get_directory(deadline).meta
        profiles = getattr(meta, "profiles", None) or {}
        if not isinstance(profiles, Mapping):
            msg = f"the CA's directory has 'meta.profiles' of {json_kind(profiles)}"
            raise CaAnswerInvalid(msg)
        return {str(name): str(text) for name, text in profiles.items()}

    def supports_renewal_info(self, deadline: float | None = None) -> bool:
        """Whether the directory advertises RFC 9773 ``renewalInfo``."""
        return _directory_url(self._get_directory(deadline), "renewalInfo") is not None

    def renewal_info(
        self,
        cert_pem: str,
        *,
        now: datetime | None = None,
        rng: Random | None = None,
        deadline: float | None = None,
    ) -> RenewalInfo | None:
        """Ask the CA when ``cert_pem`` should be renewed (RFC 9773 section 4.2).

        :meth:`RenewalInfoClient.renewal_info` for this issuer's CA (two GETs, no ACME
        session): None when the CA has no ``renewalInfo``, the certificate has no CertID or has
        expired. ``deadline`` (a ``time.monotonic()`` instant) bounds the whole exchange;
        default :data:`ARI_TIMEOUT` seconds from now.

        Raises:
            TransientError / AcmeProtocolError: the CA could not answer, or its answer is not a
                window (:class:`CaAnswerInvalid`: wrong types, inverted). Callers fall back to
                the lifetime-based policy; an ARI failure must never block a renewal.

        """
        return self._renewal_info.renewal_info(cert_pem, now=now, rng=rng, deadline=deadline)

    @property
    def account_url(self) -> str | None:
        """The account URL once resolved (None before the first order)."""
        return self._account_url

    # ------------------------------------------------------------------ directory and account

    def _network(self, *, key: jwk.JWK | None, deadline: float | None) -> AcmeNetwork:
        net = AcmeNetwork(
            key=key,
            alg=jwa.ES256,
            verify_ssl=self._verify,
            user_agent=self._user_agent,
            timeout=self._timeout,
            bad_nonce_retries=self._bad_nonce_retries,
            deadline=deadline,
        )
        net.session.verify = self._verify
        return net

    def _get_directory(self, deadline: float | None) -> messages.Directory:
        if deadline is None:
            deadline = self._clock.monotonic() + self._timeout
        with self._lock:
            if self._directory is None:
                with translate("directory"):
                    net = self._network(key=None, deadline=deadline)
                    self._directory = answers.directory(net.get(self.directory_url))
            return self._directory

    def _client(self, deadline: float) -> tuple[acme_client.ClientV2, str]:
        """A client bound to our account and its URL, registering the account on first use.

        Every request it makes ends by ``deadline``.
        """
        directory = self._get_directory(deadline)
        with self._lock:
            if self._account_key is None or self._account_url is None:
                self._load_or_register(directory, deadline)
            net = self._network(key=self._account_key, deadline=deadline)
            account_url = str(self._account_url)
            net.account = messages.RegistrationResource(
                body=messages.Registration(), uri=account_url
            )
            return acme_client.ClientV2(directory, net), account_url

    def _load_or_register(self, directory: messages.Directory, deadline: float) -> None:
        record = self._accounts.load(self.directory_url)
        if record is None:
            key = ec.generate_private_key(ec.SECP256R1())
            record = AccountRecord(private_key_pem=pki.private_key_to_pem(key))
            # Saved before registering: a run killed in between finds the same key next time,
            # and newAccount with a known key returns the existing account (RFC 8555 7.3.1).
            self._accounts.save(self.directory_url, record)
        loaded = pki.load_private_key(record.private_key_pem)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigError("the stored ACME account key must be an EC P-256 key")
        self._account_key = jwk.JWKEC(key=loaded)
        if record.account_url:
            self._account_url = record.account_url
            return
        self._account_url = self._register(directory, self._account_key, deadline)
        self._accounts.save(
            self.directory_url,
            AccountRecord(private_key_pem=record.private_key_pem, account_url=self._account_url),
        )

    def _register(self, directory: messages.Directory, key: jwk.JWKEC, deadline: float) -> str:
        meta = directory.meta
        tos = getattr(meta, "terms_of_service", None)
        if tos and not self._tos_agreed:
            raise ConfigError(
                f"the CA at {self.directory_url} requires agreeing to its terms of service"
                f" ({tos}); read them and set the terms-of-service agreement to true"
            )
        eab = None
        if self._eab is not None:
            try:
                eab = messages.ExternalAccountBinding.from_data(
                    account_public_key=key.public_key(),
                    kid=self._eab.kid,
                    hmac_key=self._eab.hmac_key,
                    directory=directory,
                    hmac_alg=self._eab.hmac_alg,
                )
            except (ValueError, TypeError, jose_errors.DeserializationError) as exc:
                # The message must not quote the key: it is a secret.
                raise ConfigError(
                    "the EAB HMAC key is not valid base64url, or the EAB algorithm is not"
                    " HS256/HS384/HS512; copy both again from the CA's EAB page"
                ) from exc
        elif getattr(meta, "external_account_required", False):
            raise ConfigError(
                f"the CA at {self.directory_url} requires External Account Binding: set the EAB"
                " key id and the EAB HMAC key (from your CA account) and run again"
            )
        registration = messages.NewRegistration(
            contact=tuple(f"mailto:{address}" for address in self._contact),
            terms_of_service_agreed=True if tos else None,
            external_account_binding=eab,
        )
        client = acme_client.ClientV2(directory, self._network(key=key, deadline=deadline))
        try:
            with translate("newAccount"), answers.guard("newAccount answer"):
                try:
                    regr = client.new_account(registration)
                except acme_errors.ConflictError as exc:
                    # Already registered with this key (RFC 8555 7.3.1: 200 + Location); the
                    # library raises for it. Reuse that account.
                    logger.info("acme account found url=%s", exc.location)
                    return answers.account_url(exc.location)
        except AcmeProtocolError as exc:
            if self._eab is not None and exc.problem_type in ("unauthorized", "malformed"):
                raise ConfigError(
                    f"the CA refused the External Account Binding ({exc.problem_type}:"
                    f" {exc.detail}); check the EAB key id and HMAC key"
                ) from exc
            raise
        url = answers.account_url(regr.uri)
        logger.info("acme account registered url=%s", url)
        return url

    def _forget_account_url(self) -> None:
        """The CA no longer knows our URL: keep the key, register again (same key) next time."""
        with self._lock:
            record = self._accounts.load(self.directory_url)
            if record is not None:
                self._accounts.save(
                    self.directory_url, AccountRecord(private_key_pem=record.private_key_pem)
                )
            self._account_key = None
            self._account_url = None

    def _check_profile(self, profile: str | None, deadline: float) -> None:
        if not profile:
            return
        offered = self.profiles(deadline)
        if not offered:
            raise ConfigError(
                f"profile {profile!r} was requested, but the CA at {self.directory_url}"
                " advertises no profiles; remove the profile setting"
            )
        if profile not in offered:
            raise ConfigError(
                f"profile {profile!r} is not offered by the CA at {self.directory_url};"
                f" choose one of: {', '.join(sorted(offered))}"
            )

    # ------------------------------------------------------------------ RFC 8555 section 7.4

    def _new_order(
        self, client: acme_client.ClientV2, request: OrderRequest
    ) -> tuple[messages.OrderResource, str | None]:
        """Create the order; returns it with the CertID it replaces (None if sent without)."""
        identifiers = [
            messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)
            for name in request.dns_names
        ]
        replaces = request.replaces
        while True:
            payload = NewOrder(
                identifiers=identifiers, profile=request.profile or None, replaces=replaces
            )
            try:
                with translate("newOrder"):
                    response = client._post(client.directory["newOrder"], payload)  # noqa: SLF001 - the library has no public way to send extra fields
                    body = answers.order(response, "newOrder answer")
                    location = answers.order_location(response)
                    answers.same_identifiers(body, request.dns_names, "newOrder answer")
                    order = messages.OrderResource(body=body, uri=location, csr_pem=request.csr_pem)
                    return order, replaces
            except RateLimited:
                raise
            except AcmeProtocolError as exc:
                if replaces is None or exc.problem_type == "accountDoesNotExist":
                    raise
                # CertMagic's safety valve: the CA may not know the old certificate (another
                # account, another CA, already replaced). Renew anyway, without `replaces`.
                logger.warning(
                    "acme newOrder rejected replaces=%s problem=%s; retrying without it",
                    replaces,
                    exc.problem_type,
                )
                replaces = None

    def _authorizations(
        self, client: acme_client.ClientV2, order: messages.OrderResource, request: OrderRequest
    ) -> list[_Pending]:
        """Fetch the order's authorizations; return the pending ones with their challenge."""
        account_key = client.net.key
        pending: list[_Pending] = []
        failures: list[IdentifierFailure] = []
        for url in order.body.authorizations:
            with translate("authorization"):
                response = client._post_as_get(url)  # noqa: SLF001
                authz = messages.AuthorizationResource(
                    body=answers.authorization(response), uri=url
                )
            name = str(authz.body.identifier.value)
            status = authz.body.status
            if status == messages.STATUS_VALID:
                continue  # reused authorization: nothing to prove
            if status != messages.STATUS_PENDING:
                failures.append(_authz_failure(authz))
                continue
            if request.challenge is not ChallengeType.HTTP_01:
                pending.append(self._dns_pending(authz, request.challenge, account_key))
                continue
            http01 = [c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)]
            if not http01:
                offered = ", ".join(sorted({str(c.chall.typ) for c in authz.body.challenges}))
                raise AcmeProtocolError(
                    f"the CA offers no http-01 challenge for {name} (offered: {offered}); this"
                    " renewer validates over http-01 only",
                    problem_type="unsupportedChallenge",
                )
            challenge = http01[0]
            token = str(challenge.chall.encode("token"))
            if not TOKEN_PATTERN.fullmatch(token):
                raise AcmeProtocolError(
                    f"the CA sent an http-01 token for {name} that is not base64url;"
                    " refusing to publish it",
                    problem_type="malformedToken",
                )
            key_authorization = challenge.chall.key_authorization(account_key)
            pending.append(_Pending(authz, challenge, key_authorization))
        if failures:
            raise ChallengeFailed(tuple(failures))
        return pending

    def _dns_pending(
        self,
        authz: messages.AuthorizationResource,
        kind: ChallengeType,
        account_key: jwk.JWK | None,
    ) -> _Pending:
        """The authorization with its dns-01 or dns-persist-01 challenge (ConfigError if none).

        Wildcard identifiers arrive without ``*.`` and with ``"wildcard": true`` (RFC 8555
        section 7.1.4); the record names are built from the identifier as the CA sends it.
        """
        name = str(authz.body.identifier.value)
        for challenge in authz.body.challenges:
            if _challenge_type(challenge) != kind.value:
                continue
            if kind is ChallengeType.DNS_PERSIST_01:
                return _Pending(authz, challenge, "", kind)
            token = str(challenge.chall.encode("token"))
            if not TOKEN_PATTERN.fullmatch(token):
                raise AcmeProtocolError(
                    f"the CA sent a dns-01 token for {name} that is not base64url",
                    problem_type="malformedToken",
                )
            if not isinstance(challenge.chall, challenges.DNS01) or account_key is None:
                continue  # the library parses every dns-01 as DNS01; a client has its key
            record = (
                dns_names.dns01_record_name(name),
                challenge.chall.validation(account_key),
            )
            return _Pending(authz, challenge, "", kind, record)
        offered = ", ".join(sorted({_challenge_type(c) for c in authz.body.challenges}))
        other = "dns-01" if kind is ChallengeType.DNS_PERSIST_01 else "dns-persist-01"
        raise ConfigError(
            f"the CA at {self.directory_url} offers no {kind.value} challenge for {name}"
            f" (offered: {offered}); set the certificate's challenge to one it offers"
            f" ({other} or, for names without a wildcard, http-01)"
        )

    def persist_records(
        self, dns_names_: Sequence[str], *, deadline: float | None = None
    ) -> tuple[DnsRecord, ...] | None:
        """The dns-persist-01 records for ``dns_names_`` with this renewer's account URL.

        Reads only: the account URL comes from the account store and the CA's issuer domain
        from the directory's ``caaIdentities`` (the draft's issuer domain names are the CA's
        CAA identities). None when no account is registered yet: its URL does not exist.
        """
        record = self._accounts.load(self.directory_url)
        if record is None or not record.account_url:
            return None
        identities = getattr(self._get_directory(deadline).meta, "caa_identities", None) or ()
        if not identities:
            raise CaAnswerInvalid(
                f"the CA at {self.directory_url} names no caaIdentities in its directory; the"
                " dns-persist-01 record needs its issuer domain name"
            )
        return dns_names.persist_records(dns_names_, str(identities[0]), record.account_url)

    def _respond(
        self,
        client: acme_client.ClientV2,
        pending: list[_Pending],
        request: OrderRequest,
        *,
        deadline: float,
    ) -> None:
        """Present, self-check, answer and poll; clean up every token whatever happens."""
        if request.challenge is ChallengeType.DNS_PERSIST_01:
            self._answer_and_poll(client, pending, deadline=deadline)
            return
        if request.challenge is ChallengeType.DNS_01:
            self._respond_dns01(client, pending, request, deadline=deadline)
            return
        workers = max(1, min(self._max_workers, len(pending)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="http01") as pool:
            try:
                _raise_first(
                    _run_all(
                        pool,
                        pending,
                        lambda p: self._challenges.present(p.token, p.key_authorization),
                    )
                )
                if self._self_check is not None:
                    check = self._self_check
                    _raise_first(
                        _run_all(
                            pool,
                            pending,
                            lambda p: check.verify(
                                p.name, p.token, p.key_authorization, deadline=deadline
                            ),
                        )
                    )
                self._answer_and_poll(client, pending, deadline=deadline)
            finally:
                # Cleanup must always occur (certbot's and CertMagic's contract), also when
                # present() failed half-way: clean_up of an absent token is a no-op.
                cleanups = _run_all(pool, pending, lambda p: self._challenges.clean_up(p.token))
                for item, error in cleanups:
                    if error is not None:
                        logger.warning(
                            "challenge clean_up failed token=%s error=%s", item.token, error
                        )

    def _respond_dns01(
        self,
        client: acme_client.ClientV2,
        pending: list[_Pending],
        request: OrderRequest,
        *,
        deadline: float,
    ) -> None:
        """Write the TXT records, wait for the zone to serve them, answer; always remove them."""
        if not request.dns_zone_id:
            raise ConfigError(
                "dns-01 needs an OCI DNS zone: set the certificate's challenge to"
                ' {"type": "dns-01", "zoneId": "<the zone\'s OCID>"}'
            )
        if self._dns_zone is None:
            raise ConfigError(
                "dns-01 is configured, but this renewer has no DNS zone writer (the OCI DNS"
                " adapter is not wired in); use dns-persist-01 or http-01 for this certificate"
            )
        records = [p.dns_record for p in pending if p.dns_record is not None]
        try:
            self._dns_zone.present(request.dns_zone_id, records, deadline=deadline)
            self._answer_and_poll(client, pending, deadline=deadline)
        finally:
            # Cleanup whatever happened (also when present() failed half-way: removing an
            # absent record is a no-op). A failed clean-up leaves a harmless TXT record.
            try:
                self._dns_zone.clean_up(request.dns_zone_id, records)
            except Exception as exc:  # noqa: BLE001 - must not hide the order's outcome
                logger.warning(
                    "dns-01 clean_up failed records=%d error_type=%s error=%s",
                    len(records),
                    type(exc).__name__,
                    exc,
                )

    def _answer_and_poll(
        self, client: acme_client.ClientV2, pending: list[_Pending], *, deadline: float
    ) -> None:
        # Answer every challenge before polling any: the CA validates them in parallel. Each
        # answer is one short POST; they stay sequential so nonces stay simple. Every challenge
        # type is answered with an empty JSON object (RFC 8555 section 7.5.1).
        for item in pending:
            with translate("challenge"), answers.guard("challenge answer"):
                if item.kind is ChallengeType.DNS_PERSIST_01:
                    # The library's answer_challenge insists on a Link rel="up" header, which
                    # Pebble does not send for this type; the answer's body is not needed (the
                    # authorization is polled next).
                    client._post(item.challenge.uri, _EmptyAnswer())  # noqa: SLF001
                else:
                    client.answer_challenge(item.challenge, item.challenge.response(client.net.key))
        self._poll_authorizations(client, pending, deadline=deadline)

    def _poll_authorizations(
        self, client: acme_client.ClientV2, pending: list[_Pending], *, deadline: float
    ) -> None:
        waiting = {item.authz.uri: item for item in pending}
        done: list[messages.AuthorizationResource] = []

        def poll_round() -> tuple[bool, float | None]:
            retry_after: float | None = None
            for uri in list(waiting):
                with translate("authorization"):
                    response = client._post_as_get(uri)  # noqa: SLF001
                    authz = messages.AuthorizationResource(
                        body=answers.authorization(response), uri=uri
                    )
                if authz.body.status in (messages.STATUS_PENDING, messages.STATUS_PROCESSING):
                    ra = retry_after_seconds(response)
                    if ra is not None:
                        retry_after = max(retry_after or 0.0, ra)
                    continue
                done.append(authz)
                del waiting[uri]
            return not waiting, retry_after

        self._poll("authorizations", poll_round, deadline=deadline)
        failures = [_authz_failure(a) for a in done if a.body.status != messages.STATUS_VALID]
        if failures:
            raise ChallengeFailed(tuple(failures))

    def _finalize(
        self,
        client: acme_client.ClientV2,
        order: messages.OrderResource,
        csr_pem: bytes,
        *,
        deadline: float,
        finalized: bool = False,
    ) -> messages.OrderResource:
        """Finalize (7.4) and poll until the order is valid; returns the order with its body.

        ``finalized``: the order was finalized already (``processing``): only poll it.
        """
        csr = messages.CertificateRequest(csr=x509.load_pem_x509_csr(csr_pem))
        state: dict[str, messages.Order] = {}

        def poll_round() -> tuple[bool, float | None]:
            nonlocal finalized
            if not finalized:
                try:
                    with translate("finalize"):
                        response = client._post(order.body.finalize, csr)  # noqa: SLF001
                        finalized = True
                except AcmeProtocolError as exc:
                    # All authorizations are valid but the order may lag a moment behind them.
                    if exc.problem_type != "orderNotReady":
                        raise
                    with translate("order"):
                        response = client._post_as_get(order.uri)  # noqa: SLF001
            else:
                with translate("order"):
                    response = client._post_as_get(order.uri)  # noqa: SLF001
            with translate("order"):
                body = answers.order(response)
            state["order"] = body
            if body.status == messages.STATUS_INVALID:
                if body.error is not None:
                    raise from_problem(body.error, action="finalize")
                raise AcmeProtocolError(
                    f"the CA marked order {order.uri} invalid without saying why",
                    problem_type="orderInvalid",
                )
            done = body.status == messages.STATUS_VALID and body.certificate is not None
            return done, retry_after_seconds(response)

        self._poll("order", poll_round, deadline=deadline)
        updated: messages.OrderResource = order.update(body=state["order"])
        return updated

    def _download(
        self, client: acme_client.ClientV2, order: messages.OrderResource, *, want_alternates: bool
    ) -> tuple[list[str], datetime | None]:
        """Download the default chain, and the alternates (7.4.2 Link rel="alternate") if asked.

        Returns the chains and the CA's time of the answer (its ``Date`` header), if it said.
        """
        with translate("certificate"):
            response = client._post_as_get(  # noqa: SLF001
                order.body.certificate, content_type="application/jose+json"
            )
            chains = [response.text]
            if want_alternates:
                alternates = client._get_links(response, "alternate")  # noqa: SLF001
                chains.extend(client._post_as_get(url).text for url in alternates)  # noqa: SLF001
        # A CA failure, not a configuration error: the download must be a PEM chain.
        return answers.chains(chains), answers.answer_date(response)

    # ------------------------------------------------------------------ waiting

    def _poll(
        self,
        what: str,
        poll_round: Callable[[], tuple[bool, float | None]],
        *,
        deadline: float,
    ) -> None:
        """Call ``poll_round`` until it reports done, honouring Retry-After, within ``deadline``.

        Without Retry-After the wait starts at ``polling.initial`` and doubles to
        ``polling.maximum``. A Retry-After that would end past the deadline ends the wait with
        :class:`AcmeTimeout` at once rather than polling against the CA's wish.
        """
        delay = self._polling.initial
        while True:
            finished, retry_after = poll_round()
            if finished:
                return
            wait = delay if retry_after is None else max(retry_after, delay)
            remaining = deadline - self._clock.monotonic()
            if wait >= remaining:
                raise AcmeTimeout(
                    f"ACME {what} not ready before the deadline"
                    f" (next poll in {wait:.1f} s, {max(remaining, 0):.1f} s left)",
                    retry_after=retry_after,
                )
            self._clock.sleep(wait)
            delay = min(delay * 2, self._polling.maximum)


class _EmptyAnswer(challenges.ChallengeResponse):
    """``{}``: the answer to a challenge (RFC 8555 section 7.5.1).

    The library sends an empty JWS payload — a POST-as-GET, which the CA takes as a read, not
    as an answer — for any falsy object, and a response without fields is falsy.
    """

    def __bool__(self) -> bool:
        return True


def _challenge_type(challenge: messages.ChallengeBody) -> str:
    """The challenge's ``type``; types the library does not know keep their raw JSON."""
    if isinstance(challenge.chall, challenges.UnrecognizedChallenge):
        return str(challenge.chall.jobj.get("type", "?"))
    return str(challenge.chall.typ)


def _authz_failure(authz: messages.AuthorizationResource) -> IdentifierFailure:
    name = str(authz.body.identifier.value)
    for challenge in authz.body.challenges:
        if challenge.error is not None:
            return IdentifierFailure(
                name, problem_type(challenge.error), str(challenge.error.detail or "")
            )
    return IdentifierFailure(name, f"authorization {authz.body.status}", "no detail from the CA")


def _dns01_records(
    authz: messages.Authorization, account_key: jwk.JWK
) -> list[OrderChallengeRecord]:
    """The TXT record each dns-01 challenge of ``authz`` asks for (RFC 8555 §8.4)."""
    records: list[OrderChallengeRecord] = []
    for challenge in authz.challenges:
        if not isinstance(challenge.chall, challenges.DNS01):
            continue
        if not TOKEN_PATTERN.fullmatch(str(challenge.chall.encode("token"))):
            continue  # never presented either (``_dns_pending`` refuses such a token)
        records.append(
            OrderChallengeRecord(
                name=dns_names.dns01_record_name(str(authz.identifier.value)),
                value=challenge.chall.validation(account_key),
                settled=authz.status != messages.STATUS_PENDING,
            )
        )
    return records


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _normal(name: str) -> str:
    return name.lower().removesuffix(".")


def _directory_url(directory: messages.Directory, name: str) -> str | None:
    """A resource URL from the directory, or None when the CA does not offer it."""
    try:
        return str(directory[name])
    except KeyError:
        return None


def _raise_first(results: list[tuple[T, BaseException | None]]) -> None:
    for _item, error in results:
        if error is not None:
            raise error


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _run_all(
    pool: ThreadPoolExecutor, items: Iterable[T], action: Callable[[T], object]
) -> list[tuple[T, BaseException | None]]:
    """Run ``action`` on every item concurrently; return each item with its error (or None)."""
    futures = [(item, pool.submit(action, item)) for item in items]
    results: list[tuple[T, BaseException | None]] = []
    for item, future in futures:
        error = future.exception()
        results.append((item, error))
    return results


__all__ = [
    "TOKEN_PATTERN",
    "AcmeIssuer",
    "ExternalAccountBinding",
    "PollingPolicy",
]
