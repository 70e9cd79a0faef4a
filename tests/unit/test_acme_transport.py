"""``renewer.adapters.acme_transport``: Retry-After, problem documents, error translation, newOrder.

Everything here is a real object: ``requests.Response`` instances filled in by hand, problem
documents parsed by ``acme.messages.Error.from_json``, and the library's own exception types.
No network.
"""

from __future__ import annotations

import email.utils
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import josepy as jose
import pytest
import requests
from acme import errors as acme_errors
from acme import messages
from requests.structures import CaseInsensitiveDict

from renewer.adapters.acme_transport import (
    AcmeNetwork,
    NewOrder,
    from_problem,
    problem_type,
    retry_after_seconds,
    translate,
)
from renewer.errors import (
    AcmeProtocolError,
    AcmeServerError,
    AcmeUnreachable,
    ConfigError,
    RateLimited,
    TransientError,
)

pytestmark = pytest.mark.unit

PREFIX = "urn:ietf:params:acme:error:"
PROBLEM_JSON = "application/problem+json"


def response(
    status: int, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> requests.Response:
    """A real ``requests.Response`` as the transport would have received it."""
    result = requests.Response()
    result.status_code = status
    result.headers = CaseInsensitiveDict(headers or {})
    result._content = body
    result.encoding = "utf-8"
    result.url = "https://ca.example/acme/new-order"
    return result


def problem_response(
    status: int, document: dict[str, Any], *, headers: dict[str, str] | None = None
) -> requests.Response:
    return response(
        status,
        headers={"Content-Type": PROBLEM_JSON, **(headers or {})},
        body=json.dumps(document).encode(),
    )


def problem(document: dict[str, Any], **attributes: Any) -> messages.Error:
    error = messages.Error.from_json(document)
    for key, value in attributes.items():
        setattr(error, key, value)
    return error


def with_retry_after(value: str | None) -> requests.Response:
    return response(429, headers={} if value is None else {"Retry-After": value})


# --- retry_after_seconds ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("0", 0.0), (" 120 ", 120.0), ("86400", 86400.0)],
)
def test_retry_after_delta_seconds(value, seconds):
    assert retry_after_seconds(with_retry_after(value)) == seconds


def test_retry_after_header_name_is_case_insensitive():
    assert retry_after_seconds(response(429, headers={"retry-after": "9"})) == 9.0


def test_retry_after_http_date_in_the_future():
    when = datetime.now(UTC) + timedelta(seconds=120)

    seconds = retry_after_seconds(with_retry_after(email.utils.format_datetime(when, usegmt=True)))

    # The HTTP-date drops sub-second precision and the test itself takes a moment.
    assert seconds is not None
    assert 115.0 <= seconds <= 120.0


@pytest.mark.parametrize(
    "value",
    ["Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 -0000"],
    ids=["gmt", "naive"],
)
def test_retry_after_http_date_in_the_past_is_zero(value):
    assert retry_after_seconds(with_retry_after(value)) == 0.0


@pytest.mark.parametrize(
    "value",
    ["soon", "", "-5", "1.5", "7 seconds", "Someday, 99 Foo 2015 07:28:00 GMT"],
)
def test_retry_after_garbage_is_none(value):
    assert retry_after_seconds(with_retry_after(value)) is None


def test_retry_after_absent_is_none():
    assert retry_after_seconds(with_retry_after(None)) is None


def test_retry_after_with_a_superscript_digit_is_none():
    assert retry_after_seconds(with_retry_after("\u00b2")) is None


# --- AcmeNetwork._check_response ----------------------------------------------------------------


def test_check_response_keeps_status_and_retry_after_on_the_problem():
    rate_limited = problem_response(
        429,
        {"type": PREFIX + "rateLimited", "detail": "too many new orders"},
        headers={"Retry-After": "7"},
    )

    with pytest.raises(messages.Error) as info:
        AcmeNetwork._check_response(rate_limited)

    assert problem_type(info.value) == "rateLimited"
    assert info.value.detail == "too many new orders"
    assert info.value.http_status == 429
    assert info.value.retry_after == 7.0


def test_check_response_without_retry_after_records_none():
    server_error = problem_response(500, {"type": PREFIX + "serverInternal"})

    with pytest.raises(messages.Error) as info:
        AcmeNetwork._check_response(server_error)

    assert info.value.http_status == 500
    assert info.value.retry_after is None


def test_check_response_passes_a_good_response_through():
    ok = response(200, headers={"Content-Type": "application/json"}, body=b'{"status": "valid"}')

    assert AcmeNetwork._check_response(ok) is ok


def test_rate_limit_from_the_wire_becomes_rate_limited_with_its_wait():
    rate_limited = problem_response(
        429,
        {"type": PREFIX + "rateLimited", "detail": "too many new orders"},
        headers={"Retry-After": "7"},
    )

    with pytest.raises(RateLimited) as info, translate("newOrder"):
        AcmeNetwork._check_response(rate_limited)

    assert info.value.retry_after == 7.0
    assert info.value.status == 429
    assert str(info.value) == (
        "ACME newOrder failed: rateLimited: too many new orders; retry after 7 s"
    )


def test_rate_limit_with_a_malformed_retry_after_is_still_rate_limited():
    rate_limited = problem_response(
        429, {"type": PREFIX + "rateLimited", "detail": "slow down"}, headers={"Retry-After": "²"}
    )

    with pytest.raises(RateLimited) as info, translate("newOrder"):
        AcmeNetwork._check_response(rate_limited)

    assert info.value.retry_after is None


# --- problem_type -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typ", "short"),
    [
        (PREFIX + "rateLimited", "rateLimited"),
        (PREFIX + "badNonce", "badNonce"),
        (PREFIX + "alreadyReplaced", "alreadyReplaced"),  # RFC 9773, unknown to acme 5.x
        ("about:blank", "about:blank"),
        ("https://ca.example/problems/quota", "https://ca.example/problems/quota"),
    ],
)
def test_problem_type(typ, short):
    assert problem_type(problem({"type": typ})) == short


def test_problem_type_defaults_to_about_blank():
    assert problem_type(problem({"detail": "no type given"})) == "about:blank"


# --- from_problem -------------------------------------------------------------------------------


def test_rate_limited_carries_retry_after():
    limited = problem(
        {"type": PREFIX + "rateLimited", "detail": "too many certificates"},
        http_status=429,
        retry_after=3600.0,
    )

    error = from_problem(limited, action="newOrder")

    assert type(error) is RateLimited
    assert isinstance(error, TransientError)
    assert error.retry_after == 3600.0
    assert error.status == 429
    assert error.problem_type == "rateLimited"
    assert error.detail == "too many certificates"
    assert str(error) == (
        "ACME newOrder failed: rateLimited: too many certificates; retry after 3600 s"
    )


def test_rate_limited_without_retry_after():
    error = from_problem(problem({"type": PREFIX + "rateLimited"}), action="newOrder")

    assert type(error) is RateLimited
    assert error.retry_after is None
    assert str(error) == "ACME newOrder failed: rateLimited"
    assert "retry after" not in str(error)


@pytest.mark.parametrize(
    ("document", "status", "kind"),
    [
        ({"type": PREFIX + "serverInternal", "detail": "oops"}, None, "serverInternal"),
        ({"type": PREFIX + "serverInternal", "detail": "oops"}, 500, "serverInternal"),
        ({"type": PREFIX + "badNonce", "detail": "oops"}, 400, "badNonce"),
        ({"type": "about:blank", "detail": "oops"}, 500, "about:blank"),
        ({"type": "about:blank", "detail": "oops"}, 503, "about:blank"),
        ({"type": PREFIX + "malformed", "detail": "oops"}, 502, "malformed"),
    ],
    ids=[
        "serverInternal",
        "serverInternal-500",
        "badNonce",
        "500-blank",
        "503-blank",
        "502-malformed",
    ],
)
def test_server_side_problems_are_retryable(document, status, kind):
    error = from_problem(problem(document, http_status=status), action="finalize")

    assert type(error) is AcmeServerError
    assert isinstance(error, TransientError)
    assert isinstance(error, AcmeProtocolError)
    assert error.problem_type == kind
    assert error.status == status
    assert error.retry_after is None
    assert str(error) == f"ACME finalize failed: {kind}: oops"


@pytest.mark.parametrize("status", [400, 403, 499, None])
def test_client_side_problems_are_not_retryable(status):
    error = from_problem(
        problem({"type": PREFIX + "unauthorized", "detail": "no"}, http_status=status),
        action="finalize",
    )

    assert type(error) is AcmeProtocolError
    assert not isinstance(error, TransientError)
    assert error.status == status


def test_title_stands_in_for_a_missing_detail():
    error = from_problem(
        problem({"type": PREFIX + "unauthorized", "title": "Unauthorized"}), action="newAccount"
    )

    assert error.detail == "Unauthorized"
    assert str(error) == "ACME newAccount failed: unauthorized: Unauthorized"


def test_rejected_identifier_lists_each_subproblem():
    document = {
        "type": PREFIX + "rejectedIdentifier",
        "detail": "Some identifiers were rejected",
        "subproblems": [
            {
                "type": PREFIX + "rejectedIdentifier",
                "detail": "forbidden by policy",
                "identifier": {"type": "dns", "value": "bad.example"},
            },
            {
                "type": PREFIX + "caa",
                "detail": "CAA record forbids issuance",
                "identifier": {"type": "dns", "value": "locked.example"},
            },
            {"type": "https://ca.example/problems/other", "detail": "no identifier"},
        ],
    }

    error = from_problem(problem(document, http_status=400), action="newOrder")

    assert type(error) is AcmeProtocolError
    assert error.problem_type == "rejectedIdentifier"
    assert error.status == 400
    assert error.subproblems == (
        ("bad.example", "rejectedIdentifier", "forbidden by policy"),
        ("locked.example", "caa", "CAA record forbids issuance"),
        ("", "https://ca.example/problems/other", "no identifier"),
    )
    assert str(error) == (
        "ACME newOrder failed: rejectedIdentifier: Some identifiers were rejected"
        " (bad.example: rejectedIdentifier: forbidden by policy;"
        " locked.example: caa: CAA record forbids issuance;"
        " : https://ca.example/problems/other: no identifier)"
    )


# --- translate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectionError("connection refused"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.SSLError("bad handshake"),
    ],
    ids=["ConnectionError", "ReadTimeout", "SSLError"],
)
def test_transport_failures_become_transient_and_chained(exc):
    with pytest.raises(TransientError) as info, translate("newOrder"):
        raise exc

    # The CA's side (issue 17): the typed subclass lets renewer.ca_choice fall back.
    assert type(info.value) is AcmeUnreachable
    assert info.value.__cause__ is exc
    assert str(info.value) == (
        f"ACME newOrder: cannot reach the ACME server ({type(exc).__name__})"
    )


def test_problem_document_becomes_the_typed_error():
    limited = problem(
        {"type": PREFIX + "rateLimited", "detail": "slow down"}, http_status=429, retry_after=5.0
    )

    with pytest.raises(RateLimited) as info, translate("newOrder"):
        raise limited

    assert info.value.__cause__ is limited
    assert info.value.retry_after == 5.0


def test_unauthorized_problem_is_a_protocol_error():
    refused = problem({"type": PREFIX + "unauthorized", "detail": "nope"}, http_status=403)

    with pytest.raises(AcmeProtocolError) as info, translate("authorization"):
        raise refused

    assert type(info.value) is AcmeProtocolError
    assert info.value.problem_type == "unauthorized"
    assert info.value.__cause__ is refused


@pytest.mark.parametrize(
    "ours",
    [ConfigError("ACME_DIRECTORY_URL is not set"), TransientError("later", retry_after=1.0)],
    ids=["ConfigError", "TransientError"],
)
def test_our_own_errors_pass_unchanged(ours):
    with pytest.raises(type(ours)) as info, translate("newOrder"):
        raise ours

    assert info.value is ours
    assert info.value.__cause__ is None


def test_unrelated_exceptions_are_not_swallowed():
    with pytest.raises(KeyError), translate("newOrder"):
        raise KeyError("x")


def test_html_502_from_a_proxy_is_transient():
    bad_gateway = response(
        502, headers={"Content-Type": "text/html"}, body=b"<html>Bad Gateway</html>"
    )

    with pytest.raises(TransientError) as info, translate("finalize"):
        AcmeNetwork._check_response(bad_gateway)

    assert type(info.value) is AcmeUnreachable
    assert isinstance(info.value.__cause__, acme_errors.ClientError)
    assert str(info.value) == "ACME finalize: unexpected response from the ACME server (HTTP 502)"


def test_html_404_is_a_protocol_error():
    not_found = response(404, headers={"Content-Type": "text/html"}, body=b"<html>404</html>")

    with pytest.raises(AcmeProtocolError) as info, translate("finalize"):
        AcmeNetwork._check_response(not_found)

    assert type(info.value) is AcmeProtocolError
    assert not isinstance(info.value, TransientError)
    assert info.value.status == 404
    assert info.value.problem_type == "unexpectedResponse"
    assert str(info.value) == "ACME finalize: unexpected response from the ACME server (HTTP 404)"


@pytest.mark.parametrize(("status", "transient"), [(502, True), (404, False)])
def test_client_error_built_directly_maps_by_status(status, transient):
    exc = acme_errors.ClientError(response(status, body=b"plain text"))

    with pytest.raises((TransientError, AcmeProtocolError)) as info, translate("finalize"):
        raise exc

    assert isinstance(info.value, TransientError) is transient
    assert isinstance(info.value, AcmeProtocolError) is not transient
    assert info.value.__cause__ is exc
    assert f"(HTTP {status})" in str(info.value)


def test_undecodable_problem_document_keeps_its_status():
    # The library wraps (response, DeserializationError) in a ClientError.
    broken = problem_response(400, {"type": PREFIX + "malformed", "identifier": "not-an-object"})

    with pytest.raises(AcmeProtocolError) as info, translate("newOrder"):
        AcmeNetwork._check_response(broken)

    assert info.value.status == 400
    assert info.value.problem_type == "unexpectedResponse"


def test_client_error_without_a_response_is_transient():
    with pytest.raises(TransientError) as info, translate("newNonce"):
        raise acme_errors.ClientError

    assert str(info.value) == "ACME newNonce: the ACME server's answer is unusable (ClientError)"


def test_conflict_keeps_the_location():
    conflict = response(409, headers={"Location": "https://ca.example/acme/acct/1"})

    with pytest.raises(AcmeProtocolError) as info, translate("newAccount"):
        AcmeNetwork._check_response(conflict)

    assert info.value.problem_type == "conflict"
    assert info.value.status == 409
    assert "https://ca.example/acme/acct/1" in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [jose.DeserializationError("bad field"), ValueError("bad value")],
    ids=["DeserializationError", "ValueError"],
)
def test_malformed_responses_are_protocol_errors(exc):
    with pytest.raises(AcmeProtocolError) as info, translate("poll"):
        raise exc

    assert info.value.problem_type == "malformedResponse"
    assert info.value.__cause__ is exc
    assert str(info.value) == (
        f"ACME poll: malformed response from the ACME server ({type(exc).__name__})"
    )


# --- NewOrder -----------------------------------------------------------------------------------

IDENTIFIERS = [
    messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="example.com"),
    messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="www.example.com"),
]
WIRE_IDENTIFIERS = [
    {"type": "dns", "value": "example.com"},
    {"type": "dns", "value": "www.example.com"},
]


def test_new_order_sends_replaces():
    order = NewOrder(identifiers=IDENTIFIERS, replaces="abc.def")

    assert order.to_partial_json()["replaces"] == "abc.def"
    assert json.loads(order.json_dumps()) == {
        "identifiers": WIRE_IDENTIFIERS,
        "replaces": "abc.def",
    }


def test_new_order_omits_replaces_and_profile_when_none():
    order = NewOrder(identifiers=IDENTIFIERS)

    assert json.loads(order.json_dumps()) == {"identifiers": WIRE_IDENTIFIERS}


def test_new_order_with_profile_and_replaces():
    order = NewOrder(identifiers=IDENTIFIERS, profile="shortlived", replaces="abc.def")

    assert json.loads(order.json_dumps()) == {
        "identifiers": WIRE_IDENTIFIERS,
        "profile": "shortlived",
        "replaces": "abc.def",
    }


def test_new_order_is_still_the_library_payload():
    order = NewOrder.from_json({"identifiers": WIRE_IDENTIFIERS, "replaces": "abc.def"})

    assert isinstance(order, messages.NewOrder)
    assert order.replaces == "abc.def"
    assert order.identifiers == tuple(IDENTIFIERS)
