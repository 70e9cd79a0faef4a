"""CA fallback's pure parts (issue 17): which failures are the CA's, the CA order, the backoffs,
and the issuer over a CA list (with in-memory issuers: tests/support's FakeIssuer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renewer import ca_choice, pki
from renewer.ca_issuers import CaListIssuer
from renewer.errors import (
    AcmeProtocolError,
    AcmeServerError,
    AcmeTimeout,
    AcmeUnreachable,
    CaAnswerInvalid,
    CaUnavailable,
    ChallengeFailed,
    ConfigError,
    IdentifierFailure,
    RateLimited,
    RenewerError,
    SelfCheckFailed,
    TransientError,
)
from renewer.model import CaFailure, CaSpec, KeyType, OrderRequest, StoredCertificate
from tests.support.fakes import FakeClock
from tests.support.fakes_issuer import FakeIssuer

pytestmark = pytest.mark.unit

NOW = datetime(2027, 1, 1, tzinfo=UTC)
FIRST = "https://acme.first.test/directory"
SECOND = "https://acme.second.test/directory"
THIRD = "https://acme.third.test:8443/dir"


def failed(*kinds: str) -> ChallengeFailed:
    return ChallengeFailed(
        tuple(IdentifierFailure(f"n{i}.test", k, "d") for i, k in enumerate(kinds))
    )


CA_SIDE = [
    AcmeUnreachable("ACME newOrder: cannot reach the ACME server (ConnectionError)"),
    AcmeUnreachable("ACME finalize: unexpected response from the ACME server (HTTP 503)"),
    RateLimited("rateLimited", retry_after=60),
    AcmeServerError("boom", problem_type="serverInternal", status=500),
    AcmeServerError("nonces", problem_type="badNonce", status=400),
    CaAnswerInvalid("not a directory"),
    CaAnswerInvalid("wrong key", problem_type="certificateMismatch"),
    AcmeProtocolError("invalid order", problem_type="orderInvalid"),
    AcmeProtocolError("gateway", problem_type="unexpectedResponse", status=502),
    failed("caa"),
    failed("serverInternal"),
]
OURS = [
    SelfCheckFailed("http://shop.test/.well-known/acme-challenge/x", "HTTP 404"),
    failed("unauthorized"),
    failed("connection"),
    failed("dns"),
    failed("caa", "unauthorized"),  # one name is ours to fix: another CA fails it too
    ConfigError("acme.cas[0].eab: ..."),
    AcmeTimeout("the deadline passed"),
    TransientError("Object Storage: 503 while publishing the challenge"),
    AcmeProtocolError("bad csr", problem_type="badCSR", status=400),
    AcmeProtocolError("policy", problem_type="rejectedIdentifier", status=400),
    AcmeProtocolError("no", problem_type="unauthorized", status=403),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", CA_SIDE, ids=lambda e: f"{type(e).__name__}")
def test_failures_on_the_cas_side_fall_back(error: BaseException) -> None:
    assert ca_choice.is_ca_side(error)


@pytest.mark.parametrize("error", OURS, ids=lambda e: f"{type(e).__name__}")
def test_our_own_failures_never_fall_back(error: BaseException) -> None:
    assert not ca_choice.is_ca_side(error)


@given(
    kind=st.one_of(st.sampled_from(sorted(ca_choice.CA_SIDE_PROBLEMS)), st.text(max_size=30)),
    status=st.one_of(st.none(), st.integers(100, 599)),
)
def test_a_problem_document_is_the_cas_side_exactly_for_its_types_or_a_5xx(
    kind: str, status: int | None
) -> None:
    error = AcmeProtocolError("x", problem_type=kind, status=status)
    expected = kind in ca_choice.CA_SIDE_PROBLEMS or (status is not None and status >= 500)
    assert ca_choice.is_ca_side(error) is expected


VALIDATION_KINDS = ["caa", "serverInternal", "unauthorized", "dns", "connection"]


@given(st.lists(st.sampled_from(VALIDATION_KINDS), min_size=1))
def test_a_validation_failure_falls_back_only_when_no_identifier_failed_on_our_side(
    kinds: list[str],
) -> None:
    assert ca_choice.is_ca_side(failed(*kinds)) is (set(kinds) <= {"caa", "serverInternal"})


# --- the CA order and the backoffs ------------------------------------------------------------

URLS = st.sampled_from([FIRST, SECOND, THIRD, "https://d.test/dir", "https://e.test/dir"])


@given(
    urls=st.lists(URLS, min_size=1, max_size=5, unique=True),
    ends=st.lists(st.integers(-3, 3), min_size=5, max_size=5),
)
def test_the_ca_order_keeps_the_list_order_and_skips_only_cas_backing_off(
    urls: list[str], ends: list[int]
) -> None:
    cas = tuple(CaSpec(u) for u in urls)
    backoffs = {
        u: ca_choice.CaBackoff(1, NOW, NOW + timedelta(minutes=m))
        for u, m in zip(urls, ends, strict=False)
        if m != 0
    }
    order = ca_choice.ca_order(cas, backoffs, NOW)
    ready = [
        c for c in cas if c.directory_url not in backoffs or backoffs[c.directory_url].until <= NOW
    ]
    assert order  # never empty: an order somewhere beats none
    assert list(order) == (ready or list(cas))


def test_backoff_grows_by_the_renewal_table_and_honours_retry_after() -> None:
    failure = CaFailure(FIRST, "AcmeUnreachable")
    steps = []
    backoffs: dict[str, ca_choice.CaBackoff] = {}
    for _ in range(5):
        backoffs = ca_choice.record(backoffs, failures=[failure], succeeded=None, now=NOW)
        steps.append(backoffs[FIRST].until - NOW)
    assert steps == [
        timedelta(minutes=1),
        timedelta(minutes=10),
        timedelta(minutes=100),
        timedelta(days=1),
        timedelta(days=1),
    ]
    limited = CaFailure(SECOND, "RateLimited", "rateLimited", retry_after=3600.0)
    after = ca_choice.record({}, failures=[limited], succeeded=None, now=NOW)
    assert after[SECOND].until == NOW + timedelta(hours=1)


def test_a_success_clears_that_cas_backoff_only() -> None:
    backoffs = {
        FIRST: ca_choice.CaBackoff(2, NOW, NOW + timedelta(minutes=10)),
        SECOND: ca_choice.CaBackoff(1, NOW, NOW + timedelta(minutes=1)),
    }
    after = ca_choice.record(backoffs, failures=[], succeeded=SECOND, now=NOW)
    assert list(after) == [FIRST]


@given(
    count=st.integers(1, 10_000),
    minutes=st.integers(0, 10_000),
)
def test_a_backoff_survives_its_state_document(count: int, minutes: int) -> None:
    entry = ca_choice.CaBackoff(count, NOW, NOW + timedelta(minutes=minutes))
    assert ca_choice.CaBackoff.parse(entry.to_document()) == entry


@pytest.mark.parametrize(
    "document",
    [
        None,
        "x",
        {},
        {"failures": 0, "last_failure_at": NOW.isoformat(), "until": NOW.isoformat()},
        {"failures": True, "last_failure_at": NOW.isoformat(), "until": NOW.isoformat()},
        {"failures": 1, "last_failure_at": "yesterday", "until": NOW.isoformat()},
        {"failures": 1, "last_failure_at": "2027-01-01T00:00:00", "until": NOW.isoformat()},
    ],
)
def test_a_damaged_backoff_entry_is_dropped(document: Any) -> None:
    assert ca_choice.CaBackoff.parse(document) is None


def stored(**fields: Any) -> StoredCertificate:
    base: dict[str, Any] = {
        "version": 1,
        "fullchain_pem": "",
        "private_key_pem": "",
        "serial_hex": "01",
        "not_before": NOW,
        "not_after": NOW + timedelta(days=90),
        "dns_names": ("shop.test",),
        "key_type": KeyType.EC_P256,
    }
    return StoredCertificate(**{**base, **fields})


def test_the_issuing_ca_is_the_recorded_directory_else_the_account_origin() -> None:
    cas = (CaSpec(FIRST), CaSpec(THIRD))
    assert ca_choice.issuing_ca(stored(directory_url=THIRD), cas) == CaSpec(THIRD)
    by_account = stored(account_url="https://ACME.third.test:8443/acct/7")
    assert ca_choice.issuing_ca(by_account, cas) == CaSpec(THIRD)
    other_port = stored(account_url="https://acme.third.test/acct/7")
    assert ca_choice.issuing_ca(other_port, cas) is None
    assert ca_choice.issuing_ca(stored(directory_url=SECOND), cas) is None
    assert ca_choice.ca_host(THIRD) == "acme.third.test:8443"


# --- the issuer over a CA list --------------------------------------------------------------


class Issuers:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.fakes = {
            url: FakeIssuer(clock=self.clock, account_url=f"{ca_choice.origin(url)}/acct/1")
            for url in (FIRST, SECOND)
        }
        self.issuer = CaListIssuer(self.fakes, default=FIRST)  # type: ignore[arg-type]


def order(*cas: CaSpec, **more: Any) -> OrderRequest:
    private = pki.generate_private_key(KeyType.EC_P256)
    return OrderRequest(
        dns_names=("shop.test",),
        csr_pem=pki.make_csr(private, ("shop.test",)),
        cas=cas,
        **more,
    )


def test_a_ca_side_failure_orders_from_the_next_ca() -> None:
    issuers = Issuers()
    issuers.fakes[FIRST].fail_next(1, RateLimited("slow down", retry_after=30))

    issued = issuers.issuer.issue(order(CaSpec(FIRST), CaSpec(SECOND)), deadline=1e9)

    assert issued.directory_url == SECOND
    assert issued.passed_over == (CaFailure(FIRST, "RateLimited", "rateLimited", 30.0),)
    assert (len(issuers.fakes[FIRST].orders), len(issuers.fakes[SECOND].orders)) == (1, 1)


def test_our_failure_stops_at_the_first_ca() -> None:
    issuers = Issuers()
    issuers.fakes[FIRST].fail_next(1, failed("unauthorized"))

    with pytest.raises(ChallengeFailed) as info:
        issuers.issuer.issue(order(CaSpec(FIRST), CaSpec(SECOND)), deadline=1e9)

    assert info.value.ca_failures == ()
    assert issuers.fakes[SECOND].orders == []


def test_our_failure_at_the_second_ca_still_names_the_first_passed_over() -> None:
    issuers = Issuers()
    issuers.fakes[FIRST].fail_next(1, AcmeUnreachable("down"))
    issuers.fakes[SECOND].fail_next(1, SelfCheckFailed("http://shop.test/x", "HTTP 404"))

    with pytest.raises(SelfCheckFailed) as info:
        issuers.issuer.issue(order(CaSpec(FIRST), CaSpec(SECOND)), deadline=1e9)

    assert info.value.ca_failures == (CaFailure(FIRST, "AcmeUnreachable"),)


def test_every_ca_failing_on_its_side_is_one_typed_error_naming_each() -> None:
    issuers = Issuers()
    issuers.fakes[FIRST].fail_next(1, AcmeUnreachable("down"))
    issuers.fakes[SECOND].fail_next(1, RateLimited("slow down", retry_after=120))

    with pytest.raises(CaUnavailable) as info:
        issuers.issuer.issue(order(CaSpec(FIRST), CaSpec(SECOND)), deadline=1e9)

    assert [f.directory_url for f in info.value.ca_failures] == [FIRST, SECOND]
    assert "acme.first.test: AcmeUnreachable" in str(info.value)
    assert "acme.second.test: RateLimited (rateLimited)" in str(info.value)
    assert info.value.retry_after is None  # the first CA named no wait
    assert isinstance(info.value, TransientError)


def test_a_single_ca_keeps_its_own_error_type() -> None:
    issuers = Issuers()
    error = RateLimited("slow down", retry_after=5)
    issuers.fakes[FIRST].fail_next(1, error)

    with pytest.raises(RateLimited) as info:
        issuers.issuer.issue(order(CaSpec(FIRST)), deadline=1e9)

    assert info.value is error


def test_replaces_goes_to_the_issuing_ca_only_and_each_ca_gets_its_own_profile() -> None:
    issuers = Issuers()
    issuers.fakes[FIRST].fail_next(1, AcmeServerError("x", problem_type="serverInternal"))

    issuers.issuer.issue(
        order(
            CaSpec(FIRST, profile="shortlived"),
            CaSpec(SECOND),
            replaces="aaa.bbb",
            replaces_ca=FIRST,
            profile="tlsserver",
        ),
        deadline=1e9,
    )

    at_first, at_second = issuers.fakes[FIRST].orders[0], issuers.fakes[SECOND].orders[0]
    assert (at_first.replaces, at_first.profile) == ("aaa.bbb", "shortlived")
    assert (at_second.replaces, at_second.profile) == (None, "tlsserver")
    assert at_first.cas == at_second.cas == ()


def test_an_open_order_is_resumed_at_the_ca_of_its_account() -> None:
    issuers = Issuers()
    issuers.fakes[FIRST].fail_next(1, AcmeUnreachable("down"))
    issued = issuers.issuer.issue(order(CaSpec(FIRST), CaSpec(SECOND)), deadline=1e9)

    again = issuers.issuer.resume(
        issued.order_url,
        order(CaSpec(FIRST), CaSpec(SECOND)),
        account_url=issued.account_url,
        deadline=1e9,
    )

    assert again is not None
    assert again.directory_url == SECOND
    assert issuers.fakes[FIRST].resumes == []
    gone = issuers.issuer.resume(
        issued.order_url,
        order(CaSpec(FIRST)),
        account_url=issued.account_url,
        deadline=1e9,
    )
    assert gone is None  # the second CA is no longer configured for it


def test_renewal_information_is_asked_of_the_named_ca() -> None:
    issuers = Issuers()
    issued = issuers.issuer.issue(order(CaSpec(SECOND)), deadline=1e9)

    issuers.issuer.renewal_info_at(SECOND, issued.fullchain_pem)

    assert issuers.fakes[FIRST].renewal_info_calls == []
    assert len(issuers.fakes[SECOND].renewal_info_calls) == 1


def test_the_ca_failures_attribute_is_part_of_every_renewer_error() -> None:
    assert RenewerError("x").ca_failures == ()
