"""RenewalInfoClient: RFC 9773 with the standard library, against a real HTTP CA on loopback.

The hostile-answer and deadline classes run through AcmeIssuer.renewal_info, which delegates
here (tests/unit/test_hostile_ca.py, test_deadlines.py); these tests pin what is this module's
own: statuses, Retry-After, size, the directory's renewalInfo entry, RFC 3339 forms, and that
asking costs no ACME stack.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import pytest

from renewer.adapters.acme_renewal_info import (
    ARI_RETRY_DEFAULT,
    ARI_RETRY_MAX,
    ARI_RETRY_MIN,
    MAX_ANSWER_BYTES,
    RenewalInfoClient,
    parse_retry_after,
    renewal_window,
)
from renewer.errors import AcmeProtocolError, CaAnswerInvalid, TransientError
from renewer.model import RenewalInfo
from renewer.wiring import IssuerOnFirstUse
from tests.unit.hostile_ca import Answer, HostileCA
from tests.unit.test_hostile_ca import issued_pem

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
JSON = {"Content-Type": "application/json"}
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def ca() -> Iterator[HostileCA]:
    with HostileCA() as server:
        yield server


@pytest.fixture
def pem(ca: HostileCA) -> str:
    return issued_pem(ca)


def window(start: str, end: str) -> dict[str, object]:
    return {"suggestedWindow": {"start": start, "end": end}}


def ask(ca: HostileCA, pem: str) -> RenewalInfo | None:
    return RenewalInfoClient(ca.directory_url).renewal_info(pem, rng=Random(1))  # noqa: S311 - a seeded jitter


def test_a_window_is_read_with_a_random_instant_inside_and_the_default_retry(ca, pem):
    before = datetime.now(UTC)
    info = ask(ca, pem)

    assert info is not None
    assert info.window_start <= info.selected_time <= info.window_end
    assert info.window_start > before + timedelta(days=29)
    assert before + ARI_RETRY_DEFAULT <= info.retry_after <= datetime.now(UTC) + ARI_RETRY_DEFAULT


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", timedelta(seconds=120)), ("1", ARI_RETRY_MIN), ("99999999", ARI_RETRY_MAX)],
)
def test_retry_after_is_honoured_within_one_minute_and_one_day(ca, pem, header, expected):
    start = datetime.now(UTC) + timedelta(days=1)
    document = window(start.isoformat(), (start + timedelta(days=1)).isoformat())
    ca.answers["ari"] = Answer(body=document, headers={**JSON, "Retry-After": header})

    before = datetime.now(UTC)
    info = ask(ca, pem)

    assert info is not None
    assert before + expected <= info.retry_after <= datetime.now(UTC) + expected


def test_a_ca_without_renewal_info_is_no_answer_not_an_error(ca, pem):
    ca.answers["dir"] = Answer(
        body={"newNonce": "x", "newAccount": "x", "newOrder": "x"}, headers=JSON
    )
    assert ask(ca, pem) is None


@pytest.mark.parametrize("entry", [42, "ftp://ca.example/ari", ["a"]])
def test_a_renewal_info_entry_that_is_not_a_url_is_a_typed_error(ca, pem, entry):
    ca.answers["dir"] = Answer(body={"renewalInfo": entry}, headers=JSON)
    with pytest.raises(CaAnswerInvalid, match="'renewalInfo'"):
        ask(ca, pem)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_a_server_error_or_rate_limit_is_transient_with_its_retry_after(ca, pem, status):
    ca.answers["ari"] = Answer(status=status, headers={"Retry-After": "30"})
    with pytest.raises(TransientError) as info:
        ask(ca, pem)
    assert info.value.retry_after == 30.0
    assert "cannot reach" not in str(info.value)
    assert f"HTTP {status}" in str(info.value)


def test_another_error_status_is_a_protocol_error_naming_it(ca, pem):
    ca.answers["ari"] = Answer(status=404)
    with pytest.raises(AcmeProtocolError) as info:
        ask(ca, pem)
    assert info.value.status == 404
    assert not isinstance(info.value, TransientError)


def test_an_answer_over_the_size_limit_is_refused_unread(ca, pem):
    ca.answers["ari"] = Answer(body=b"{" + b" " * MAX_ANSWER_BYTES + b"}", headers=JSON)
    with pytest.raises(CaAnswerInvalid, match="over"):
        ask(ca, pem)


def test_a_closed_port_is_cannot_reach(pem):
    with HostileCA() as gone:
        url = gone.directory_url
    with pytest.raises(TransientError, match="cannot reach"):
        RenewalInfoClient(url).renewal_info(pem)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2027-01-01T00:00:00Z", "2027-01-02T00:00:00Z"),
        ("2027-01-01T00:00:00.123456789Z", "2027-01-02T00:00:00.5Z"),  # Go's nanoseconds
        ("2027-01-01T01:00:00+01:00", "2027-01-02T00:00:00-00:00"),
        ("2027-01-01 00:00:00Z", "2027-01-02T00:00:00z"),
    ],
)
def test_rfc_3339_forms_are_read_as_utc(start, end):
    begins, ends = renewal_window(window(start, end))
    assert begins.replace(microsecond=0) == datetime(2027, 1, 1, tzinfo=UTC)
    assert ends.date().isoformat() == "2027-01-02"
    assert begins.tzinfo is UTC


@pytest.mark.parametrize("bad", ["2027-01-01T00:00:00", "2027-01-01", "soon", ""])
def test_a_time_without_an_offset_is_not_rfc_3339(bad):
    with pytest.raises(CaAnswerInvalid, match=r"suggestedWindow\.start"):
        renewal_window(window(bad, "2027-01-02T00:00:00Z"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("3600", 3600.0),
        ("Sun, 06 Dec 2026 12:01:00 GMT", 60.0),
        ("Sun, 06 Dec 2026 11:00:00 GMT", 0.0),
        ("9" * 4400, None),  # int() of 4,300+ digits raises; never reached
        ("soon", None),
        ("\u00b2", None),
        (None, None),
    ],
)
def test_retry_after_headers(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_asking_for_renewal_information_imports_no_acme_stack():
    code = (
        "import sys, renewer.adapters.acme_renewal_info, renewer.wiring;"
        "loaded = {'acme', 'josepy', 'requests'} & set(sys.modules);"
        "assert not loaded, loaded"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_wiring_answers_renewal_info_without_building_the_issuer():
    built: list[str] = []

    def build() -> IssuerOnFirstUse:
        built.append("issuer")
        raise AssertionError("the ACME issuer was built for a renewal-information question")

    answer = RenewalInfo(NOW, NOW, NOW, NOW)
    asked: list[tuple[str, float | None]] = []

    def renewal_info(pem: str, *, deadline: float | None = None) -> RenewalInfo:
        asked.append((pem, deadline))
        return answer

    issuer = IssuerOnFirstUse(build, renewal_info=renewal_info)  # type: ignore[arg-type]

    assert issuer.renewal_info("pem", deadline=12.5) is answer
    assert asked == [("pem", 12.5)]
    assert (built, issuer.built) == ([], False)


def test_a_scheduled_run_asks_for_renewal_information_before_its_step_deadline():
    from tests.unit.test_renewal import DAY, new_world  # noqa: PLC0415 - the orchestrator's world

    world = new_world()
    world.run()
    world.advance(DAY)
    before = world.clock.monotonic()
    world.run()

    (deadline,) = world.issuer.renewal_info_deadlines[-1:]
    assert deadline is not None, "the run did not bound its ARI question by its own deadline"
    assert before < deadline <= world.clock.monotonic() + 60.0  # the default step budget
