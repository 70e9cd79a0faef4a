"""The ACME engine against a CA that answers, but wrongly (issue 12, classes 1-3).

Every CA answer is checked at the boundary: whatever shape a directory, an order, an
authorization, a renewalInfo or a certificate download has, the issuer ends with a typed error
of :mod:`renewer.errors` (never TypeError/KeyError/AttributeError, never ConfigError for the
CA's fault, never "cannot reach"/"HTTP None" for an answer that was received), and a certificate
that is not for the order's key, names and time is refused. The CA is a real HTTP server on
loopback (:mod:`tests.unit.hostile_ca`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renewer import pki
from renewer.adapters.acme_issuer import AcmeIssuer
from renewer.clock import SystemClock
from renewer.errors import CaAnswerInvalid, ConfigError, RenewerError, TransientError
from renewer.model import KeyType, OrderRequest
from renewer.report import Outcome
from sandbox.challenges import InMemoryChallengeStore
from tests.support.fakes import InMemoryAccountStore
from tests.unit.hostile_ca import Answer, HostileCA
from tests.unit.test_renewal import DAY, new_world, only

NAMES = ("shop.example.com", "www.shop.example.com")
JSON = {"Content-Type": "application/json"}
# Any JSON document: what a broken CA or a proxy in front of it may send.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=8,
)
FUZZ = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def ca() -> Iterator[HostileCA]:
    with HostileCA() as server:
        yield server


def issuer_for(ca: HostileCA, **kwargs: Any) -> AcmeIssuer:
    return AcmeIssuer(
        directory_url=ca.directory_url,
        accounts=InMemoryAccountStore(),
        challenges=InMemoryChallengeStore(),
        **kwargs,
    )


def order(issuer: AcmeIssuer, names: tuple[str, ...] = NAMES, **kwargs: Any) -> Any:
    key = pki.generate_private_key(KeyType.EC_P256)
    request = OrderRequest(dns_names=names, csr_pem=pki.make_csr(key, names))
    return issuer.issue(request, deadline=time.monotonic() + 20, **kwargs)


def assert_typed_and_honest(error: BaseException) -> None:
    """A CA's wrong answer is the CA's failure, said as such."""
    assert isinstance(error, RenewerError), repr(error)
    assert not isinstance(error, ConfigError), repr(error)
    assert "cannot reach" not in str(error)
    assert "HTTP None" not in str(error)


def test_the_well_behaved_hostile_ca_issues(ca: HostileCA):
    # The baseline every other test bends: without a change, the order succeeds.
    issued = order(issuer_for(ca))
    assert pki.dns_names_of(pki.split_chain(issued.fullchain_pem)[0]) == frozenset(NAMES)


# --- the directory ---


@pytest.mark.parametrize("missing", ["newNonce", "newAccount", "newOrder"])
def test_a_directory_without_a_required_url_names_it(ca: HostileCA, missing: str):
    directory = ca.default("dir", {}).body
    assert isinstance(directory, dict)
    del directory[missing]
    ca.answers["dir"] = Answer(body=directory, headers=JSON)

    with pytest.raises(CaAnswerInvalid, match=missing) as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)
    assert ca.requests == ["dir"]  # nothing else was asked


@FUZZ
@given(document=json_values)
def test_any_directory_that_is_not_an_object_of_urls_is_a_typed_error(ca, document):
    ca.answers["dir"] = Answer(body=document, headers=JSON)
    with pytest.raises(CaAnswerInvalid) as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)


@pytest.mark.parametrize(
    "body", [b"<html>maintenance</html>", b"", b"[1, 2", b"\xff\xfe"], ids=repr
)
def test_a_directory_that_is_not_json_was_received_not_unreachable(ca: HostileCA, body: bytes):
    ca.answers["dir"] = Answer(body=body, headers={"Content-Type": "text/html"})
    with pytest.raises(CaAnswerInvalid, match=r"not JSON|Content-Type") as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)


# --- orders ---


def test_an_order_without_authorizations_is_a_typed_error(ca: HostileCA):
    def no_authorizations(payload: dict[str, Any]) -> Answer:
        answer = ca.default("new-order", payload)
        answer.body = {k: v for k, v in ca.order("pending").items() if k != "authorizations"}
        return answer

    ca.answers["new-order"] = no_authorizations
    with pytest.raises(CaAnswerInvalid, match="authorizations") as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)


def test_a_new_order_without_location_is_refused_before_on_order(ca: HostileCA):
    def no_location(payload: dict[str, Any]) -> Answer:
        answer = ca.default("new-order", payload)
        answer.headers.pop("Location")
        return answer

    ca.answers["new-order"] = no_location
    recorded: list[str] = []

    with pytest.raises(CaAnswerInvalid, match="Location") as info:
        order(issuer_for(ca), on_order=lambda url, _account: recorded.append(url))
    assert_typed_and_honest(info.value)
    assert recorded == []  # never the string "None"


def test_a_new_order_for_other_names_is_refused(ca: HostileCA):
    def other_names(payload: dict[str, Any]) -> Answer:
        return ca.default("new-order", {"identifiers": [{"type": "dns", "value": "x.test"}]})

    ca.answers["new-order"] = other_names
    with pytest.raises(CaAnswerInvalid, match="other identifier"):
        order(issuer_for(ca))


@FUZZ
@given(document=json_values)
def test_any_malformed_new_order_answer_is_a_typed_error(ca, document):
    ca.answers["new-order"] = Answer(201, document, {"Location": f"{ca.base}/order/1", **JSON})
    with pytest.raises(RenewerError) as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)


@FUZZ
@given(document=json_values)
def test_any_malformed_authorization_is_a_typed_error(ca, document):
    def pending(payload: dict[str, Any]) -> Answer:
        answer = ca.default("new-order", payload)
        answer.body = ca.order("pending")
        return answer

    ca.answers["new-order"] = pending
    ca.answers["authz"] = Answer(body=document, headers=JSON)
    with pytest.raises(RenewerError) as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)


@FUZZ
@given(document=json_values)
def test_any_malformed_finalize_answer_is_a_typed_error(ca, document):
    ca.answers["finalize"] = Answer(body=document, headers=JSON)
    with pytest.raises(RenewerError) as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
        Answer(200, b"{}", {"Content-Type": "application/json"}),
    ],
    ids=["proxy-502", "no-up-link"],
)
def test_a_challenge_answer_without_what_the_library_needs_is_honest(ca: HostileCA, answer: Answer):
    # A pending authorization with an http-01 challenge: answering it gets the bad answer.
    def pending(payload: dict[str, Any]) -> Answer:
        result = ca.default("new-order", payload)
        result.body = ca.order("pending")
        return result

    def authz(payload: dict[str, Any]) -> Answer:
        return Answer(
            body={
                "identifier": {"type": "dns", "value": NAMES[0]},
                "status": "pending",
                "challenges": [{"type": "http-01", "url": f"{ca.base}/chall/1", "token": "A" * 43}],
            },
            headers=JSON,
        )

    ca.answers["new-order"] = pending
    ca.answers["authz"] = authz
    ca.answers["chall"] = answer
    with pytest.raises(RenewerError) as info:
        order(issuer_for(ca), names=NAMES[:1])
    assert "cannot reach" not in str(info.value)
    assert "HTTP None" not in str(info.value)


# --- the download ---


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
    ids=["empty", "garbage", "bad-der"],
)
def test_a_garbage_certificate_download_is_the_cas_failure_not_config(ca: HostileCA, body):
    ca.answers["cert"] = Answer(body=body, headers={"Content-Type": "text/plain"})
    with pytest.raises(CaAnswerInvalid, match="certificate download") as info:
        order(issuer_for(ca))
    assert_typed_and_honest(info.value)


# --- class 3: what was issued ---


def test_a_certificate_for_another_key_is_refused(ca: HostileCA):
    ca.sign_key = pki.generate_private_key(KeyType.EC_P256)
    with pytest.raises(CaAnswerInvalid, match=r"public key is not the CSR's") as info:
        order(issuer_for(ca))
    assert info.value.problem_type == "certificateMismatch"
    assert "PRIVATE KEY" not in str(info.value)


@pytest.mark.parametrize(
    "names",
    [NAMES[:1], (*NAMES, "evil.example.net"), ("other.example.com", NAMES[1])],
    ids=["missing", "extra", "swapped"],
)
def test_a_certificate_for_other_names_is_refused(ca: HostileCA, names):
    ca.sign_names = names
    with pytest.raises(CaAnswerInvalid, match="names differ") as info:
        order(issuer_for(ca))
    assert info.value.problem_type == "certificateMismatch"


@pytest.mark.parametrize(
    ("validity", "said"),
    [
        ((timedelta(days=-10), timedelta(days=-1)), "expired"),
        ((timedelta(days=5), timedelta(days=90)), "not valid before"),
        ((timedelta(days=1), timedelta(days=1)), "does not end after it starts"),
    ],
    ids=["expired", "future", "empty"],
)
def test_a_certificate_not_valid_now_is_refused(ca: HostileCA, validity, said):
    ca.validity = validity
    with pytest.raises(CaAnswerInvalid, match=said) as info:
        order(issuer_for(ca))
    assert info.value.problem_type == "certificateMismatch"


def test_names_differing_only_in_case_or_a_trailing_dot_match(ca: HostileCA):
    ca.sign_names = tuple(n.upper() for n in NAMES)
    issued = order(issuer_for(ca))
    assert issued.serial_hex


# --- renewalInfo (ARI) ---


def issued_pem(ca: HostileCA) -> str:
    return str(order(issuer_for(ca)).fullchain_pem)


@pytest.mark.parametrize(
    "document",
    [
        {"suggestedWindow": "soon"},
        {"suggestedWindow": {"start": 5, "end": 6}},
        {"suggestedWindow": {"start": "2026-01-02T00:00:00Z"}},
        {"suggestedWindow": {"start": "tomorrow", "end": "later"}},
        {"suggestedWindow": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}},
        [],
        "window",
    ],
    ids=["string", "numbers", "no-end", "not-rfc3339", "inverted", "array", "json-string"],
)
def test_a_malformed_renewal_info_is_a_typed_error(ca: HostileCA, document):
    pem = issued_pem(ca)
    ca.answers["ari"] = Answer(body=document, headers=JSON)
    with pytest.raises(CaAnswerInvalid) as info:
        issuer_for(ca).renewal_info(pem)
    assert_typed_and_honest(info.value)


@FUZZ
@given(document=json_values)
def test_any_renewal_info_answer_is_a_window_or_a_typed_error(ca, document):
    pem = getattr(ca, "_fuzz_pem", None) or issued_pem(ca)
    ca._fuzz_pem = pem
    ca.answers["ari"] = Answer(body=document, headers=JSON)
    try:
        info = issuer_for(ca).renewal_info(pem)
    except RenewerError as exc:
        assert_typed_and_honest(exc)
    else:
        assert info is not None
        assert info.window_start <= info.selected_time <= info.window_end


# --- class 2: ARI never blocks ---


@pytest.mark.parametrize(
    "error",
    [
        TypeError("string indices must be integers"),
        KeyError("suggestedWindow"),
        AttributeError("'str' object has no attribute 'start'"),
        CaAnswerInvalid("the CA's renewalInfo window ends before it starts"),
        TransientError("renewalInfo: 503"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_any_ari_failure_falls_back_to_the_lifetime_policy(error: BaseException):
    world = new_world()
    world.run()
    world.issuer.renewal_info_error = error
    world.advance(DAY)
    not_due = only(world.run())
    world.advance(60 * DAY)
    due = only(world.run())

    assert (not_due.outcome, not_due.reason) == (Outcome.SKIPPED, "NotDue")
    assert (due.outcome, due.reason) == (Outcome.RENEWED, "RenewalWindow")


class _YearAhead(SystemClock):
    """Our clock a year off: the CA's Date, not ours, is the time of issue."""

    def now(self) -> datetime:
        return super().now() + timedelta(days=365)


def test_validity_is_judged_at_the_cas_time_of_issue_not_by_our_clock(ca: HostileCA):
    issued = order(issuer_for(ca, clock=_YearAhead()))
    assert issued.serial_hex

    ca.validity = (timedelta(days=-10), timedelta(days=-1))
    with pytest.raises(CaAnswerInvalid, match="expired"):
        order(issuer_for(ca, clock=_YearAhead()))
