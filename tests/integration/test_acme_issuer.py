"""AcmeIssuer against a real Pebble (Debian's package), one fresh Pebble per test.

No doubles of ``acme``: every order goes over HTTPS to Pebble, and Pebble's validator fetches the
key authorizations from the loopback challenge server.
"""

from __future__ import annotations

import base64
import itertools
import logging
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509

from renewer import pki, policy
from renewer.adapters.acme_issuer import (
    AcmeIssuer,
    ExternalAccountBinding,
    PollingPolicy,
)
from renewer.errors import (
    AcmeProtocolError,
    AcmeTimeout,
    ChallengeFailed,
    ConfigError,
    SelfCheckFailed,
    TransientError,
)
from renewer.model import CertificateSpec, IssuedCertificate, KeyType, OrderRequest, Reason
from renewer.ports import AccountRecord
from sandbox.challenges import InMemoryChallengeStore
from sandbox.net import free_port
from sandbox.pebble import BLOCKED_DOMAIN, replaces_accepted
from tests.support.fakes import InMemoryAccountStore, RecordingClock, UnpublishedChallengeStore

pytestmark = pytest.mark.integration


def names(count: int, zone: str = "example.com") -> tuple[str, ...]:
    """Fresh names: no authorization or certificate of another test can be reused."""
    tag = secrets.token_hex(4)
    return tuple(f"www{i}-{tag}.{zone}" for i in range(count))


def chain_of(pem: str) -> list[x509.Certificate]:
    return pki.split_chain(pem)


def assert_chains_to_pebble(pem: str, roots: list[str]) -> None:
    chain = chain_of(pem)
    for child, parent in itertools.pairwise(chain):
        child.verify_directly_issued_by(parent)
    root_certs = [x509.load_pem_x509_certificate(r.encode()) for r in roots]
    top = chain[-1]
    assert any(top.issuer == r.subject for r in root_certs)


@pytest.mark.parametrize("count", [1, 10])
def test_issues_for_one_and_ten_names(acme, issue, count):
    requested = names(count)
    cert = issue(acme.issuer(), requested)

    leaf = chain_of(cert.fullchain_pem)[0]
    assert pki.dns_names_of(leaf) == frozenset(requested)
    assert cert.serial_hex == pki.serial_hex(leaf)
    assert cert.not_before < datetime.now(UTC) < cert.not_after
    assert cert.order_url.startswith(acme.pebble.directory_url.rsplit("/", 1)[0])
    assert_chains_to_pebble(cert.fullchain_pem, acme.pebble.root_pems())
    # Every token was presented, fetched by the validator, and cleaned up.
    assert len(acme.store.presented) == count
    assert sorted(acme.store.cleaned) == sorted(acme.store.presented)
    assert len(acme.store) == 0
    assert all(acme.store.fetches[t] >= 1 for t in acme.store.presented)


@pytest.mark.parametrize("key_type", list(KeyType))
def test_issues_for_every_key_type(acme, issue, key_type):
    cert = issue(acme.issuer(), names(1), key_type=key_type)
    leaf = chain_of(cert.fullchain_pem)[0]
    assert pki.key_type_of(leaf.public_key()) == key_type


def test_account_is_created_once_and_reused_across_runs(acme, issue):
    issue(acme.issuer(), names(1))
    # The key is saved before the account is registered, then saved again with its URL.
    assert [url is None for _, url in acme.accounts.saves] == [True, False]
    first_url = acme.accounts.load(acme.pebble.directory_url).account_url

    # A second "run": a new issuer (a new function container) with the same store.
    second = acme.issuer()
    issue(second, names(1))
    assert second.account_url == first_url
    assert len(acme.accounts.saves) == 2  # nothing new was registered or saved
    assert acme.pebble.log_tail(200_000).count("POST /sign-me-up") == 1


def test_key_saved_without_url_finds_the_existing_account(acme, issue):
    issue(acme.issuer(), names(1))
    record = acme.accounts.load(acme.pebble.directory_url)
    # A run killed between registering and saving the URL: only the key survived.
    acme.accounts.save(acme.pebble.directory_url, AccountRecord(record.private_key_pem))

    again = acme.issuer()
    issue(again, names(1))
    assert again.account_url == record.account_url


def test_account_unknown_to_the_ca_is_registered_again_with_the_same_key(acme, issue):
    issuer = acme.issuer()
    issue(issuer, names(1))
    record = acme.accounts.load(acme.pebble.directory_url)
    stale = record.account_url.rsplit("/", 1)[0] + "/0000000000000000"
    acme.accounts.save(acme.pebble.directory_url, AccountRecord(record.private_key_pem, stale))

    again = acme.issuer()
    issue(again, names(1))
    assert again.account_url == record.account_url
    assert acme.accounts.load(acme.pebble.directory_url).account_url == record.account_url


def test_contact_is_sent_with_the_account(acme, issue):
    issuer = acme.issuer(contact=("ops@example.com",))
    issue(issuer, names(1))
    assert issuer.account_url


EAB_KID = "kid-renewer"
EAB_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


@pytest.mark.pebble(eab_required=True, eab_keys={EAB_KID: EAB_KEY})
def test_eab_required_with_the_right_key(acme, issue):
    issuer = acme.issuer(eab=ExternalAccountBinding(kid=EAB_KID, hmac_key=EAB_KEY))
    cert = issue(issuer, names(1))
    assert cert.account_url == issuer.account_url


@pytest.mark.pebble(eab_required=True, eab_keys={EAB_KID: EAB_KEY})
def test_eab_required_with_a_wrong_key_is_a_config_error_without_the_key(acme, issue):
    wrong = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    issuer = acme.issuer(eab=ExternalAccountBinding(kid=EAB_KID, hmac_key=wrong))
    with pytest.raises(ConfigError, match="External Account Binding") as info:
        issue(issuer, names(1))
    assert wrong not in str(info.value)
    assert EAB_KEY not in str(info.value)
    assert acme.store.presented == []  # nothing was ordered


@pytest.mark.pebble(eab_required=True, eab_keys={EAB_KID: EAB_KEY})
def test_eab_required_but_not_configured_names_the_setting(acme, issue):
    with pytest.raises(ConfigError, match="requires External Account Binding"):
        issue(acme.issuer(), names(1))


def test_terms_of_service_not_agreed_is_a_config_error(acme, issue):
    with pytest.raises(ConfigError, match="terms of service"):
        issue(acme.issuer(terms_of_service_agreed=False), names(1))
    assert acme.accounts.load(acme.pebble.directory_url).account_url is None


@pytest.mark.pebble(nonce_reject_percent=50)
def test_half_of_all_nonces_rejected_still_issues(acme, issue):
    cert = issue(acme.issuer(), names(10))  # the production default, not a test-only count
    assert len(pki.dns_names_of(chain_of(cert.fullchain_pem)[0])) == 10
    assert "badNonce" in acme.pebble.log_tail(500_000) or "nonce" in acme.pebble.log_tail(500_000)


@pytest.mark.pebble(authz_reuse_percent=100)
def test_valid_authorizations_are_reused_without_a_challenge(acme, issue):
    issuer = acme.issuer()
    requested = names(3)
    issue(issuer, requested)
    presented_first = list(acme.store.presented)
    issue(issuer, requested)
    assert acme.store.presented == presented_first  # the second order proved nothing again


def test_shortlived_profile_gives_a_six_day_certificate(acme, issue):
    acme.require_profiles()
    cert = issue(acme.issuer(), names(1), profile="shortlived")
    assert cert.not_after - cert.not_before == pytest.approx(
        timedelta(hours=160), abs=timedelta(minutes=1)
    )


def test_unknown_profile_is_a_config_error_listing_the_offered_ones(acme, issue):
    acme.require_profiles()
    with pytest.raises(ConfigError, match=r"'tlsserverx'.*default, shortlived"):
        issue(acme.issuer(), names(1), profile="tlsserverx")
    # Bad input changes nothing at the CA: no account was registered, no order placed.
    assert acme.accounts.saves == []
    log = acme.pebble.log_tail(500_000)
    assert "POST /sign-me-up" not in log
    assert "POST /order-plz" not in log


def test_renewal_sends_replaces_and_the_ca_accepts_it(acme, issue):
    acme.require_ari()
    issuer = acme.issuer()
    requested = names(2)
    first = issue(issuer, requested, profile="default")
    current = pki.describe(first.fullchain_pem)

    renewed = issue(issuer, requested, profile="default", replaces=current.ari_cert_id)
    log = acme.pebble.log_tail(500_000)
    if replaces_accepted(first.serial_hex):  # else Pebble's CertID bug: ordered without it
        assert "is a replacement of" in log
        assert "marked as replaced" in log
    assert renewed.serial_hex != first.serial_hex


def test_rejected_replaces_is_retried_once_without_it(acme, issue):
    acme.require_ari()
    issuer = acme.issuer()
    requested = names(1)
    first = issue(issuer, requested)
    cert_id = pki.describe(first.fullchain_pem).ari_cert_id
    issue(issuer, requested, replaces=cert_id)
    # The same certificate replaced twice: the CA says alreadyReplaced; we renew anyway.
    third = issue(issuer, requested, replaces=cert_id)
    log = acme.pebble.log_tail(500_000)
    assert log.count("is a replacement of") == (1 if replaces_accepted(first.serial_hex) else 0)
    assert third.serial_hex


def test_renewal_info_drives_the_policy_decision(acme, issue):
    acme.require_ari()
    issuer = acme.issuer()
    requested = names(1)
    cert = issue(issuer, requested, profile="default")
    current = pki.describe(cert.fullchain_pem, profile="default")
    spec = CertificateSpec(name="site", dns_names=requested, profile="default")
    now = datetime.now(UTC)

    # Pebble's own window for a fresh 90-day certificate is weeks away: not due.
    info = issuer.renewal_info(cert.fullchain_pem)
    assert info is not None
    assert info.window_start <= info.selected_time <= info.window_end
    assert info.retry_after > now
    decision = policy.decide(spec=spec, current=current, now=now, ari=info)
    assert (decision.renew, decision.reason) == (False, Reason.NOT_DUE)

    # The CA moves the window into the past (an incident, a revocation): renew now.
    start, end = now - timedelta(hours=2), now - timedelta(hours=1)
    acme.pebble.set_renewal_info(
        cert.fullchain_pem,
        start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    info = issuer.renewal_info(cert.fullchain_pem)
    decision = policy.decide(spec=spec, current=current, now=now, ari=info)
    assert (decision.renew, decision.reason) == (True, Reason.ARI_WINDOW_OPEN)


def test_renewal_info_is_none_when_the_ca_cannot_say(acme, issue):
    acme.require_ari()
    issuer = acme.issuer()
    cert = issue(issuer, names(1))
    # RFC 9773 section 4.2: never ask about an expired certificate.
    after_expiry = cert.not_after + timedelta(seconds=1)
    assert issuer.renewal_info(cert.fullchain_pem, now=after_expiry) is None
    # A certificate without an Authority Key Identifier has no CertID to ask about.
    self_signed = acme.pebble.ca_bundle.read_text()
    assert pki.ari_cert_id(pki.split_chain(self_signed)[0]) is None
    assert issuer.renewal_info(self_signed) is None


def test_blocked_name_is_a_typed_rejected_identifier_error(acme, issue):
    with pytest.raises(AcmeProtocolError) as info:
        issue(acme.issuer(), (f"www.{BLOCKED_DOMAIN}",))
    assert info.value.problem_type == "rejectedIdentifier"
    assert BLOCKED_DOMAIN in str(info.value)
    assert acme.store.presented == []


def test_missing_token_fails_validation_listing_each_name(acme, issue):
    store = UnpublishedChallengeStore()
    requested = names(2)
    issuer = acme.issuer(challenges=store, self_check=None)
    with pytest.raises(ChallengeFailed) as info:
        issue(issuer, requested)
    failed = {f.identifier for f in info.value.failures}
    assert failed == set(requested)
    assert all(f.problem_type and f.detail for f in info.value.failures)
    for name in requested:
        assert name in str(info.value)
    assert sorted(store.cleaned) == sorted(store.presented)


def test_self_check_catches_a_missing_token_before_the_ca_is_asked(acme, issue):
    store = UnpublishedChallengeStore()
    issuer = acme.issuer(challenges=store)
    with pytest.raises(SelfCheckFailed) as info:
        issue(issuer, names(1))
    assert "/.well-known/acme-challenge/" in info.value.url
    assert "HTTP 404" in str(info.value)
    assert "POST /chalZ/" not in acme.pebble.log_tail(500_000)  # the CA was never asked
    assert store.cleaned == store.presented


@pytest.mark.pebble(alternate_roots=1)
def test_preferred_chain_is_chosen_by_root_name(acme, issue):
    roots = [x509.load_pem_x509_certificate(r.encode()) for r in acme.pebble.root_pems()]
    alternate = pki.common_name(roots[1].subject)
    issuer = acme.issuer()

    default = issue(issuer, names(1))
    preferred = issue(issuer, names(1), preferred_chain=alternate)
    assert pki.top_issuer(preferred.fullchain_pem) == alternate
    assert pki.top_issuer(default.fullchain_pem) != alternate
    assert preferred.alternate_chains == 1

    unknown = issue(issuer, names(1), preferred_chain="No Such Root")
    assert pki.top_issuer(unknown.fullchain_pem) == pki.common_name(roots[0].subject)


@pytest.mark.pebble(retry_after_authz=2)
def test_retry_after_is_honoured(acme, issue):
    acme.require_retry_after()
    clock = RecordingClock()
    # Our own cadence never waits more than 20 ms here, so a long sleep can only be the CA's.
    fast = PollingPolicy(initial=0.01, maximum=0.02)
    # Validation must outlast our first poll, or there is no pending answer to carry a
    # Retry-After (on a loaded machine Pebble could otherwise validate first).
    acme.server.delay = 0.3
    issue(acme.issuer(clock=clock, polling=fast), names(1))
    # Pebble sends "2" or an HTTP-date two seconds ahead, truncated to the second: the wait we
    # compute from it is 1-2 s minus transit, so it may land a hair under 1 s. Anything over
    # 0.5 s can only be the CA's Retry-After: our own cadence here never exceeds 20 ms.
    assert max(clock.sleeps) >= 0.5


@pytest.mark.pebble(retry_after_authz=3)
def test_deadline_stops_polling_and_cleans_up(acme, issue):
    acme.require_retry_after()
    # Validation must outlast the first poll, so that the authorization is still pending and
    # its Retry-After (3 s) reaches past the deadline. Without the delay a fast Pebble had it
    # valid at the first poll, and the order finished in time (a flake seen in CI).
    acme.server.delay = 0.5
    with pytest.raises(AcmeTimeout, match="not ready before the deadline"):
        issue(acme.issuer(), names(1), deadline=2.0)
    assert len(acme.store) == 0
    assert acme.store.cleaned == acme.store.presented


def test_a_deadline_already_passed_sends_nothing(acme, issue):
    with pytest.raises(AcmeTimeout, match="not started"):
        issue(acme.issuer(), names(1), deadline=-1)
    assert "POST /" not in acme.pebble.log_tail(500_000)


def test_unreachable_ca_is_transient(issue):
    issuer = AcmeIssuer(
        directory_url=f"https://127.0.0.1:{free_port()}/dir",
        accounts=InMemoryAccountStore(),
        challenges=InMemoryChallengeStore(),
        network_timeout=2,
    )
    with pytest.raises(TransientError, match="cannot reach the ACME server"):
        issue(issuer, names(1))


def test_concurrent_orders_share_one_account(acme, issue):
    issuer = acme.issuer()
    with ThreadPoolExecutor(max_workers=4) as pool:
        certs = list(pool.map(lambda _: issue(issuer, names(2)), range(4)))
    assert len({c.serial_hex for c in certs}) == 4
    assert acme.pebble.log_tail(500_000).count("POST /sign-me-up") == 1


@pytest.mark.pebble(eab_required=True, eab_keys={EAB_KID: EAB_KEY})
def test_no_secret_reaches_logs_or_errors(acme, caplog):
    caplog.set_level(logging.DEBUG)  # the most verbose the function could ever log
    eab_key = EAB_KEY
    issuer = acme.issuer(eab=ExternalAccountBinding(kid=EAB_KID, hmac_key=eab_key))
    key = pki.generate_private_key(KeyType.EC_P256)
    requested = names(1)
    started = time.monotonic()
    request = OrderRequest(dns_names=requested, csr_pem=pki.make_csr(key, requested))
    issuer.issue(request, deadline=started + 60)

    account_pem = acme.accounts.load(acme.pebble.directory_url).private_key_pem
    logged = caplog.text
    secrets_ = [pki.private_key_to_pem(key), account_pem, eab_key]
    for secret in secrets_:
        body = "".join(secret.strip().splitlines()[1:-1]) if "BEGIN" in secret else secret
        assert body not in logged.replace("\n", "")
    assert "PRIVATE KEY" not in logged
    assert account_pem not in repr(acme.accounts.load(acme.pebble.directory_url))
    assert eab_key not in repr(ExternalAccountBinding(kid=EAB_KID, hmac_key=eab_key))


# ------------------------------------------------------------------ resuming an order


class Killed(BaseException):
    """Stands for the process dying right after newOrder (raised by the on_order hook)."""


@dataclass
class Interrupted:
    """An order left by a "killed" run: its URL, its account, and the request to resume it."""

    order_url: str
    account_url: str
    request: OrderRequest


def order_request(requested: tuple[str, ...]) -> OrderRequest:
    key = pki.generate_private_key(KeyType.EC_P256)
    return OrderRequest(dns_names=requested, csr_pem=pki.make_csr(key, requested))


def interrupted_order(issuer: AcmeIssuer, requested: tuple[str, ...]) -> Interrupted:
    """newOrder, then the run "dies" before any challenge is presented."""
    request = order_request(requested)
    created: list[tuple[str, str]] = []

    def die(order_url: str, account_url: str) -> None:
        created.append((order_url, account_url))
        raise Killed

    with pytest.raises(Killed):
        issuer.issue(request, deadline=time.monotonic() + 60, on_order=die)
    [(order_url, account_url)] = created
    return Interrupted(order_url, account_url, request)


def resume(issuer: AcmeIssuer, order: Interrupted, **changes: Any) -> IssuedCertificate | None:
    options: dict[str, Any] = {"account_url": order.account_url, **changes}
    return issuer.resume(order.order_url, order.request, deadline=time.monotonic() + 60, **options)


def new_orders(acme: Any) -> int:
    return acme.pebble.log_tail(500_000).count("POST /order-plz")


def test_on_order_gets_the_order_before_any_challenge_is_presented(acme):
    seen: list[tuple[str, str, int]] = []
    request = order_request(names(2))

    def record(order_url: str, account_url: str) -> None:
        seen.append((order_url, account_url, len(acme.store.presented)))

    issued = acme.issuer().issue(request, deadline=time.monotonic() + 60, on_order=record)

    assert seen == [(issued.order_url, issued.account_url, 0)]


def test_a_pending_order_is_resumed_through_its_challenges(acme):
    issuer = acme.issuer()
    requested = names(2)
    order = interrupted_order(issuer, requested)
    assert acme.store.presented == []  # the run died before any challenge

    # The next run: a new issuer (a new container) with the same account store.
    issued = resume(acme.issuer(), order)

    assert issued is not None
    assert issued.order_url == order.order_url
    assert pki.dns_names_of(chain_of(issued.fullchain_pem)[0]) == frozenset(requested)
    assert len(acme.store.presented) == 2
    assert sorted(acme.store.cleaned) == sorted(acme.store.presented)
    assert new_orders(acme) == 1  # no second order


def test_a_valid_order_is_resumed_by_downloading_its_certificate(acme):
    issuer = acme.issuer()
    request = order_request(names(1))
    created: list[str] = []
    first = issuer.issue(
        request, deadline=time.monotonic() + 60, on_order=lambda url, _a: created.append(url)
    )
    # The run died after the CA issued, before the certificate was stored: ask again.
    order = Interrupted(created[0], first.account_url, request)
    presented = list(acme.store.presented)

    again = resume(acme.issuer(), order)

    assert again is not None
    assert again.serial_hex == first.serial_hex  # the same certificate, not a second one
    assert again.fullchain_pem == first.fullchain_pem
    assert acme.store.presented == presented  # nothing proved again
    assert new_orders(acme) == 1
    assert acme.pebble.log_tail(500_000).count("POST /finalize-order/") == 1


@pytest.mark.pebble(authz_reuse_percent=100)
def test_a_ready_order_is_resumed_by_finalizing_it(acme, issue):
    issuer = acme.issuer()
    requested = names(2)
    issue(issuer, requested)  # valid authorizations for these names, reused by the next order
    order = interrupted_order(issuer, requested)
    presented = list(acme.store.presented)
    finalized = acme.pebble.log_tail(500_000).count("POST /finalize-order/")

    issued = resume(acme.issuer(), order)

    assert issued is not None
    assert issued.order_url == order.order_url
    assert acme.store.presented == presented  # ready: nothing left to prove
    assert acme.pebble.log_tail(500_000).count("POST /finalize-order/") == finalized + 1
    assert new_orders(acme) == 2  # the first issuance and the interrupted order


def test_an_invalid_order_is_not_resumed(acme):
    store = UnpublishedChallengeStore()
    issuer = acme.issuer(challenges=store, self_check=None)
    request = order_request(names(1))
    created: list[str] = []
    with pytest.raises(ChallengeFailed):
        issuer.issue(
            request, deadline=time.monotonic() + 60, on_order=lambda url, _a: created.append(url)
        )
    order = Interrupted(created[0], str(issuer.account_url), request)

    assert resume(acme.issuer(), order) is None
    assert new_orders(acme) == 1


def test_an_unknown_or_foreign_order_is_not_resumed(acme):
    issuer = acme.issuer()
    order = interrupted_order(issuer, names(1))
    base = order.order_url.rsplit("/", 1)[0]

    unknown = Interrupted(f"{base}/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", order.request)
    assert resume(issuer, unknown, account_url=order.account_url) is None  # 404
    # Another account's issuer (its own account store) may not read the order: 403.
    stranger = acme.issuer(accounts=InMemoryAccountStore())
    assert (
        stranger.resume(
            order.order_url,
            order.request,
            account_url=order.account_url,
            deadline=time.monotonic() + 60,
        )
        is None
    )
    log_before = acme.pebble.log_tail(500_000)
    # Recorded by another account, or at another CA: refused without asking.
    assert resume(issuer, order, account_url=f"{order.account_url}0") is None
    elsewhere = Interrupted("https://acme.elsewhere.test/order/1", order.account_url, order.request)
    assert resume(issuer, elsewhere) is None
    assert acme.pebble.log_tail(500_000).count("POST /my-order/") == log_before.count(
        "POST /my-order/"
    )
    # The order itself is untouched and still resumable by its own account.
    assert resume(issuer, order) is not None
    assert new_orders(acme) == 1
