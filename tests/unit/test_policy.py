"""The renewal policy, table-driven against a fixed instant (cert-manager's checks_test.go style).

No real clock anywhere: every case is evaluated at ``NOW``, and every boundary is tested on both
sides, one second apart.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from renewer.model import (
    CertificateSpec,
    CurrentCertificate,
    FailureHistory,
    KeyType,
    Reason,
    RenewalInfo,
)
from renewer.policy import (
    PolicyConfig,
    ari_fetch_due,
    backoff_until,
    decide,
    renewal_window_start,
    select_ari_time,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NEXT_RUN = NOW + 12 * HOUR  # the default check interval
NAMES = ("example.com", "www.example.com")
SPEC = CertificateSpec(name="site", dns_names=NAMES)

# A 90-day certificate 30 days into its life: the 1/3 window opens 30 days from now.
HEALTHY_NOT_AFTER = NOW + 60 * DAY
HEALTHY_WINDOW = NOW + 30 * DAY
# 9.9 days (short-lived: renew at 1/2 left = 4.95 days) and 10 days (renew at 1/3 = 3 d 8 h).
LIFE_9_9 = timedelta(days=9, hours=21, minutes=36)
HALF_9_9 = timedelta(days=4, hours=22, minutes=48)
LIFE_10 = 10 * DAY
THIRD_10 = timedelta(days=3, hours=8)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def cert(
    *,
    not_after: datetime = HEALTHY_NOT_AFTER,
    lifetime: timedelta = 90 * DAY,
    names: tuple[str, ...] = NAMES,
    key_type: KeyType = KeyType.EC_P256,
    profile: str | None = None,
) -> CurrentCertificate:
    return CurrentCertificate(
        serial_hex="03a1f2",
        not_before=not_after - lifetime,
        not_after=not_after,
        dns_names=frozenset(names),
        key_type=key_type,
        profile=profile,
    )


def spec(**changes: Any) -> CertificateSpec:
    return replace(SPEC, **changes)


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible draws for tests, not secrets


def ari(
    selected: datetime, *, start: datetime | None = None, end: datetime | None = None
) -> RenewalInfo:
    return RenewalInfo(
        window_start=selected - DAY if start is None else start,
        window_end=selected + DAY if end is None else end,
        selected_time=selected,
        retry_after=NOW + 6 * HOUR,
    )


def failed(count: int, *, ago: timedelta) -> FailureHistory:
    return FailureHistory(consecutive_failures=count, last_failure_at=NOW - ago)


@dataclass(frozen=True)
class Case:
    name: str
    current: CurrentCertificate | None
    renew: bool
    reason: Reason
    next_check: datetime | None = None
    spec: CertificateSpec = SPEC
    ari: RenewalInfo | None = None
    failures: FailureHistory = field(default_factory=FailureHistory)
    force: bool = False
    config: PolicyConfig = field(default_factory=PolicyConfig)
    says: tuple[str, ...] = ()  # fragments the message must contain


def due(name: str, reason: Reason, current: CurrentCertificate | None, **kw: Any) -> Case:
    return Case(name, current, renew=True, reason=reason, **kw)


def not_due(name: str, current: CurrentCertificate, next_check: datetime, **kw: Any) -> Case:
    return Case(name, current, False, Reason.NOT_DUE, next_check, **kw)


def backing_off(name: str, current: CurrentCertificate | None, until: datetime, **kw: Any) -> Case:
    return Case(name, current, False, Reason.BACKING_OFF, until, **kw)


BASICS = [
    due("missing", Reason.MISSING, None, says=("site",)),
    not_due(
        "healthy mid-life",
        cert(),
        HEALTHY_WINDOW,
        says=("by lifetime", iso(HEALTHY_WINDOW), iso(HEALTHY_NOT_AFTER)),
    ),
    due("expired exactly at not_after", Reason.EXPIRED, cert(not_after=NOW), says=(iso(NOW),)),
    due("expired a day ago", Reason.EXPIRED, cert(not_after=NOW - DAY)),
    due("one second before not_after", Reason.RENEWAL_WINDOW, cert(not_after=NOW + SECOND)),
    due(
        "renewal window opens exactly now",
        Reason.RENEWAL_WINDOW,
        cert(not_after=NOW + 30 * DAY),
        says=(iso(NOW), iso(NOW + 30 * DAY)),
    ),
    not_due(
        "renewal window opens in one second",
        cert(not_after=NOW + 30 * DAY + SECOND),
        NOW + SECOND,
    ),
    due(
        "9.9-day lifetime: half left exactly now",
        Reason.RENEWAL_WINDOW,
        cert(not_after=NOW + HALF_9_9, lifetime=LIFE_9_9),
    ),
    not_due(
        "9.9-day lifetime: half left in one second",
        cert(not_after=NOW + HALF_9_9 + SECOND, lifetime=LIFE_9_9),
        NOW + SECOND,
    ),
    not_due(
        "10-day lifetime is not short-lived: half left is not enough",
        cert(not_after=NOW + HALF_9_9, lifetime=LIFE_10),
        NOW + HALF_9_9 - THIRD_10,
    ),
    due(
        "10-day lifetime: a third left exactly now",
        Reason.RENEWAL_WINDOW,
        cert(not_after=NOW + THIRD_10, lifetime=LIFE_10),
    ),
    not_due(
        "10-day lifetime: a third left in one second",
        cert(not_after=NOW + THIRD_10 + SECOND, lifetime=LIFE_10),
        NOW + SECOND,
    ),
]

NAMES_KEYS_PROFILES = [
    due(
        "name added",
        Reason.NAMES_CHANGED,
        cert(),
        spec=spec(dns_names=(*NAMES, "api.example.com")),
        says=("added api.example.com",),
    ),
    due(
        "name removed",
        Reason.NAMES_CHANGED,
        cert(),
        spec=spec(dns_names=("example.com",)),
        says=("removed www.example.com",),
    ),
    due(
        "name replaced",
        Reason.NAMES_CHANGED,
        cert(),
        spec=spec(dns_names=("example.com", "api.example.com")),
        says=("added api.example.com", "removed www.example.com"),
    ),
    not_due(
        "names differing only by case or trailing dot are the same",
        cert(),
        HEALTHY_WINDOW,
        spec=spec(dns_names=("Example.COM.", "WWW.example.com")),
    ),
    not_due(
        "names in another order or repeated are the same",
        cert(),
        HEALTHY_WINDOW,
        spec=spec(dns_names=("www.example.com", "example.com", "example.com")),
    ),
    not_due(
        "held names are normalized too",
        cert(names=("EXAMPLE.com.", "www.example.com")),
        HEALTHY_WINDOW,
    ),
    due(
        "key type changed",
        Reason.KEY_TYPE_CHANGED,
        cert(),
        spec=spec(key_type=KeyType.RSA_2048),
        says=("ecdsa-p256", "rsa-2048"),
    ),
    due(
        "profile asked where none was",
        Reason.PROFILE_CHANGED,
        cert(),
        spec=spec(profile="shortlived"),
        says=("the CA default", "shortlived"),
    ),
    due(
        "profile dropped",
        Reason.PROFILE_CHANGED,
        cert(profile="classic"),
        says=("classic", "the CA default"),
    ),
    due(
        "profile switched",
        Reason.PROFILE_CHANGED,
        cert(profile="classic"),
        spec=spec(profile="shortlived"),
        says=("classic", "shortlived"),
    ),
    not_due("profile None vs empty is no change", cert(profile=""), HEALTHY_WINDOW),
    not_due("profile empty vs None is no change", cert(), HEALTHY_WINDOW, spec=spec(profile="")),
    not_due(
        "same profile",
        cert(profile="classic"),
        HEALTHY_WINDOW,
        spec=spec(profile="classic"),
    ),
]

ARI = [
    due(
        "ARI selected time exactly at the next run",
        Reason.ARI_WINDOW_OPEN,
        cert(),
        ari=ari(NEXT_RUN),
        says=(iso(NEXT_RUN),),
    ),
    due(
        "ARI selected time one second before the next run",
        Reason.ARI_WINDOW_OPEN,
        cert(),
        ari=ari(NEXT_RUN - SECOND),
    ),
    not_due(
        "ARI selected time one second after the next run",
        cert(),
        NEXT_RUN + SECOND,
        ari=ari(NEXT_RUN + SECOND),
        says=("by ARI", iso(NEXT_RUN + SECOND)),
    ),
    due(
        "ARI selected time already passed",
        Reason.ARI_WINDOW_OPEN,
        cert(),
        ari=ari(NOW - DAY),
    ),
    due(
        "ARI window ended exactly now",
        Reason.ARI_WINDOW_OPEN,
        cert(),
        ari=ari(NOW + 5 * DAY, start=NOW - 3 * DAY, end=NOW),
        says=("ended", iso(NOW)),
    ),
    not_due(
        "ARI window ends in one second",
        cert(),
        NOW + 5 * DAY,
        ari=ari(NOW + 5 * DAY, start=NOW - 3 * DAY, end=NOW + SECOND),
    ),
    due(
        "ARI later than the lifetime backstop does not delay renewal",
        Reason.RENEWAL_WINDOW,
        cert(not_after=NOW + 30 * DAY),
        ari=ari(NOW + 20 * DAY),
    ),
    not_due(
        "ARI later than lifetime: planned by lifetime",
        cert(),
        HEALTHY_WINDOW,
        ari=ari(NOW + 40 * DAY),
        says=("by lifetime", iso(HEALTHY_WINDOW)),
    ),
    not_due(
        "ARI earlier than lifetime: planned by ARI",
        cert(),
        NOW + 10 * DAY,
        ari=ari(NOW + 10 * DAY),
        says=("by ARI", iso(NOW + 10 * DAY)),
    ),
    due(
        "ARI due before the next twelve-hourly run",
        Reason.ARI_WINDOW_OPEN,
        cert(),
        ari=ari(NOW + 2 * HOUR),
    ),
    not_due(
        "ARI not due before the next hourly run",
        cert(),
        NOW + 2 * HOUR,
        ari=ari(NOW + 2 * HOUR),
        config=PolicyConfig(check_interval=HOUR),
    ),
]

PRECEDENCE = [
    due(
        "expired beats changed names",
        Reason.EXPIRED,
        cert(not_after=NOW),
        spec=spec(dns_names=("other.example",)),
    ),
    due(
        "changed names beat changed key type",
        Reason.NAMES_CHANGED,
        cert(),
        spec=spec(dns_names=("other.example",), key_type=KeyType.RSA_4096),
    ),
    due(
        "changed key type beats changed profile",
        Reason.KEY_TYPE_CHANGED,
        cert(),
        spec=spec(key_type=KeyType.RSA_4096, profile="shortlived"),
    ),
    due(
        "changed profile beats open ARI window",
        Reason.PROFILE_CHANGED,
        cert(),
        spec=spec(profile="shortlived"),
        ari=ari(NOW),
    ),
    due(
        "open ARI window beats renewal window",
        Reason.ARI_WINDOW_OPEN,
        cert(not_after=NOW + DAY),
        ari=ari(NOW),
    ),
]

FORCE = [
    due("force with nothing due", Reason.FORCED, cert(), force=True, says=("forced",)),
    due(
        "force during backoff",
        Reason.FORCED,
        None,
        force=True,
        failures=failed(4, ago=MINUTE),
    ),
    due(
        "force beats every other reason",
        Reason.FORCED,
        cert(not_after=NOW),
        spec=spec(dns_names=("other.example",)),
        force=True,
    ),
]


def _backoff_cases() -> list[Case]:
    # Let's Encrypt's schedule: 1 min, 10 min, 100 min, then daily for every later failure.
    steps = [(1, MINUTE), (2, 10 * MINUTE), (3, 100 * MINUTE), (4, DAY), (7, DAY)]
    cases = []
    for count, wait in steps:
        label = f"{count} failures, wait {wait}"
        cases += [
            backing_off(
                f"{label}: one second left",
                None,
                NOW + SECOND,
                failures=failed(count, ago=wait - SECOND),
                says=("Missing", f"after {count} consecutive failure", iso(NOW + SECOND)),
            ),
            due(
                f"{label}: over exactly now", Reason.MISSING, None, failures=failed(count, ago=wait)
            ),
            due(
                f"{label}: over a second ago",
                Reason.MISSING,
                None,
                failures=failed(count, ago=wait + SECOND),
            ),
        ]
    return cases


BACKOFF = [
    *_backoff_cases(),
    backing_off(
        "backoff names the due reason",
        cert(not_after=NOW + 30 * DAY),
        NOW + 9 * MINUTE,
        failures=failed(2, ago=MINUTE),
        says=("RenewalWindow", "2 consecutive failures until", iso(NOW + 9 * MINUTE)),
    ),
    backing_off(
        "one failure is singular",
        None,
        NOW + 30 * SECOND,
        failures=failed(1, ago=30 * SECOND),
        says=("1 consecutive failure until",),
    ),
    not_due(
        "failures do not matter when nothing is due",
        cert(),
        HEALTHY_WINDOW,
        failures=failed(3, ago=timedelta(0)),
    ),
    due(
        "failure count without a timestamp does not back off",
        Reason.MISSING,
        None,
        failures=FailureHistory(consecutive_failures=2),
    ),
    backing_off(
        "configured backoff repeats its last wait",
        None,
        NOW + 30 * MINUTE,
        failures=failed(5, ago=30 * MINUTE),
        config=PolicyConfig(backoff=(HOUR,)),
    ),
]

CASES = [*BASICS, *NAMES_KEYS_PROFILES, *ARI, *PRECEDENCE, *FORCE, *BACKOFF]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_decide(case: Case) -> None:
    decision = decide(
        spec=case.spec,
        current=case.current,
        now=NOW,
        ari=case.ari,
        failures=case.failures,
        force=case.force,
        config=case.config,
    )

    assert (decision.renew, decision.reason, decision.next_check) == (
        case.renew,
        case.reason,
        case.next_check,
    ), decision.message
    for fragment in case.says:
        assert fragment in decision.message
    # Dates in messages are ISO 8601 UTC with a Z, never Python's "+00:00".
    assert "+00:00" not in decision.message


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


def test_decide_accepts_any_timezone_and_reports_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    decision = decide(spec=SPEC, current=cert(), now=NOW.astimezone(plus_two))

    assert (decision.renew, decision.reason, decision.next_check) == (
        False,
        Reason.NOT_DUE,
        HEALTHY_WINDOW,
    )
    assert iso(HEALTHY_WINDOW) in decision.message


def test_decide_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        decide(spec=SPEC, current=cert(), now=NOW.replace(tzinfo=None))


def test_default_config_is_the_documented_one() -> None:
    assert PolicyConfig() == PolicyConfig(
        check_interval=12 * HOUR,
        renew_fraction=1 / 3,
        short_lived_fraction=1 / 2,
        short_lived_threshold=10 * DAY,
        backoff=(MINUTE, 10 * MINUTE, 100 * MINUTE, DAY),
    )


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"check_interval": timedelta(0)}, "check_interval"),
        ({"renew_fraction": 0.0}, "renew_fraction"),
        ({"renew_fraction": 1.0}, "renew_fraction"),
        ({"short_lived_fraction": 1.5}, "short_lived_fraction"),
        ({"short_lived_threshold": -SECOND}, "short_lived_threshold"),
        ({"backoff": ()}, "backoff"),
        ({"backoff": (MINUTE, -MINUTE)}, "backoff"),
    ],
    ids=str,
)
def test_policy_config_rejects(changes: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValueError, match=field_name):
        PolicyConfig(**changes)


@pytest.mark.parametrize(
    ("lifetime", "config", "expected"),
    [
        (90 * DAY, PolicyConfig(), NOW - 30 * DAY),
        (LIFE_10, PolicyConfig(), NOW - THIRD_10),
        (LIFE_9_9, PolicyConfig(), NOW - HALF_9_9),
        (6 * DAY, PolicyConfig(), NOW - 3 * DAY),
        (90 * DAY, PolicyConfig(renew_fraction=0.5), NOW - 45 * DAY),
        (6 * DAY, PolicyConfig(short_lived_threshold=timedelta(0)), NOW - 2 * DAY),
    ],
    ids=["90d at 1/3", "10d at 1/3", "9.9d at 1/2", "6d at 1/2", "90d at 1/2", "6d no threshold"],
)
def test_renewal_window_start(
    lifetime: timedelta, config: PolicyConfig, expected: datetime
) -> None:
    assert renewal_window_start(cert(not_after=NOW, lifetime=lifetime), config) == expected


@pytest.mark.parametrize(
    ("failures", "config", "expected"),
    [
        (FailureHistory(), PolicyConfig(), None),
        (FailureHistory(0, NOW), PolicyConfig(), None),
        (FailureHistory(2, None), PolicyConfig(), None),
        (FailureHistory(1, NOW), PolicyConfig(), NOW + MINUTE),
        (FailureHistory(2, NOW), PolicyConfig(), NOW + 10 * MINUTE),
        (FailureHistory(3, NOW), PolicyConfig(), NOW + 100 * MINUTE),
        (FailureHistory(4, NOW), PolicyConfig(), NOW + DAY),
        (FailureHistory(7, NOW), PolicyConfig(), NOW + DAY),
        (FailureHistory(3, NOW), PolicyConfig(backoff=(5 * MINUTE,)), NOW + 5 * MINUTE),
    ],
    ids=[
        "none",
        "zero count",
        "no timestamp",
        "1st",
        "2nd",
        "3rd",
        "4th",
        "7th repeats last",
        "custom",
    ],
)
def test_backoff_until(
    failures: FailureHistory, config: PolicyConfig, expected: datetime | None
) -> None:
    assert backoff_until(failures, config) == expected


WINDOW_START = NOW + 20 * DAY
WINDOW_END = NOW + 22 * DAY


def test_select_ari_time_stays_inside_the_window() -> None:
    for seed in range(500):
        chosen = select_ari_time(WINDOW_START, WINDOW_END, rng=seeded(seed))
        assert WINDOW_START <= chosen <= WINDOW_END


def test_select_ari_time_is_deterministic_for_a_seed() -> None:
    first = select_ari_time(WINDOW_START, WINDOW_END, rng=seeded(42))
    again = select_ari_time(WINDOW_START, WINDOW_END, rng=seeded(42))
    others = {select_ari_time(WINDOW_START, WINDOW_END, rng=seeded(s)) for s in range(20)}

    assert first == again
    assert len(others) == 20


def test_select_ari_time_spreads_over_the_whole_window() -> None:
    rng = seeded(7)
    draws = [select_ari_time(WINDOW_START, WINDOW_END, rng=rng) for _ in range(2000)]
    middle = WINDOW_START + (WINDOW_END - WINDOW_START) / 2
    tenth = (WINDOW_END - WINDOW_START) / 10

    early = sum(d < middle for d in draws) / len(draws)
    assert 0.45 < early < 0.55
    assert min(draws) < WINDOW_START + tenth
    assert max(draws) > WINDOW_END - tenth


def test_select_ari_time_reaches_both_ends() -> None:
    end = WINDOW_START + timedelta(microseconds=1)
    seen = {select_ari_time(WINDOW_START, end, rng=seeded(s)) for s in range(50)}
    assert seen == {WINDOW_START, end}


@pytest.mark.parametrize(
    "window_end",
    [WINDOW_START, WINDOW_START - SECOND, WINDOW_START - DAY],
    ids=["empty", "inverted by a second", "inverted by a day"],
)
def test_select_ari_time_degenerate_window_gives_start(window_end: datetime) -> None:
    assert select_ari_time(WINDOW_START, window_end, rng=seeded(0)) == WINDOW_START


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        (None, True),
        (RenewalInfo(NOW, NOW + DAY, NOW, retry_after=NOW + SECOND), False),
        (RenewalInfo(NOW, NOW + DAY, NOW, retry_after=NOW), True),
        (RenewalInfo(NOW, NOW + DAY, NOW, retry_after=NOW - SECOND), True),
    ],
    ids=["nothing known", "retry after in a second", "retry after now", "retry after passed"],
)
def test_ari_fetch_due(info: RenewalInfo | None, expected: bool) -> None:
    assert ari_fetch_due(info, NOW) is expected


def test_ari_fetch_due_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        ari_fetch_due(None, NOW.replace(tzinfo=None))
