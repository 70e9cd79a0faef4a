"""OCI DNS: the emulator's zone records API through the real SDK, and ``OciDnsChallengeZone``.

Fidelity (each behaviour's source is in ``sandbox/oci_emulator/dns.py``): zones by OCID or
name, TXT RDATA normalized to quoted strings, ADD/REMOVE idempotent and all-or-nothing,
protected apex records, If-Match, paging, and the DNS policy reference's permissions
(``use dns-records`` scoped by ``target.dns-zone.id``). Then the adapter: present waits until
the values are listed, clean-up removes exactly ours, errors are typed and change nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oci
import pytest

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_dns import OciDnsChallengeZone, txt_value
from renewer.clock import SystemClock
from renewer.errors import ConfigError, TransientError
from sandbox.oci_emulator.credentials import api_key_config
from sandbox.oci_emulator.faults import FaultRule
from tests.contract.conftest import (
    BASE_FIXTURE,
    RunningEmulator,
    assert_clean_model,
    renewer_oci_clients,
)

pytestmark = pytest.mark.integration

ZONE = "ocid1.dns-zone.oc1..shopzone"
ZONE_NAME = "example.com"
OTHER_ZONE = "ocid1.dns-zone.oc1..payrollzone"  # exists; no policy lets the renewer write it
CHALLENGE = "_acme-challenge.shop.example.com"
FOREIGN_VALUE = "someone-elses-token"  # another client's record at the same name
VALUE = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"


@pytest.fixture
def fixture_data() -> dict[str, Any]:
    return {
        **BASE_FIXTURE,
        "zones": [
            {
                "id": ZONE,
                "name": ZONE_NAME,
                "compartment": "apps",
                "records": [
                    {"domain": CHALLENGE, "rtype": "TXT", "rdata": FOREIGN_VALUE, "ttl": 60},
                    {"domain": "www.example.com", "rtype": "A", "rdata": "192.0.2.1", "ttl": 300},
                ],
            },
            {"id": OTHER_ZONE, "name": "example.org", "compartment": "apps"},
        ],
        "authorization": True,
        "policies": [
            {
                "name": "renewer",
                "statements": [
                    "Allow dynamic-group renewer-dg to use dns-records in compartment apps"
                    f" where target.dns-zone.id = '{ZONE}'"
                ],
            },
            {
                "name": "admins",
                "statements": ["Allow group Admins to manage all-resources in tenancy"],
            },
        ],
    }


@pytest.fixture
def dns(emulator: RunningEmulator, tmp_path: Path) -> oci.dns.DnsClient:
    """The operator's DnsClient (API key, no retries)."""
    config = api_key_config(emulator.emulator, emulator.tenancy.principals["operator"], tmp_path)
    return oci.dns.DnsClient(
        config,
        service_endpoint=emulator.endpoint,
        retry_strategy=oci.retry.NoneRetryStrategy(),
        circuit_breaker_strategy=oci.circuit_breaker.NoCircuitBreakerStrategy(),
    )


@pytest.fixture
def renewer(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> OciClients:
    return renewer_oci_clients(emulator, tmp_path, monkeypatch)


def op(operation: str, **fields: Any) -> oci.dns.models.RecordOperation:
    return oci.dns.models.RecordOperation(operation=operation, **fields)


def patch(dns: oci.dns.DnsClient, domain: str, *items: Any, zone: str = ZONE, **kw: Any) -> Any:
    details = oci.dns.models.PatchDomainRecordsDetails(items=list(items))
    return dns.patch_domain_records(zone, domain, details, **kw)


def txt(dns: oci.dns.DnsClient, domain: str = CHALLENGE) -> list[str]:
    return [r.rdata for r in dns.get_domain_records(ZONE, domain, rtype="TXT").data.items]


def status_of(call: Any) -> tuple[int, str]:
    with pytest.raises(oci.exceptions.ServiceError) as caught:
        call()
    return caught.value.status, caught.value.code


# --------------------------------------------------------------------------- the emulator


def test_zone_by_ocid_and_by_name(dns: oci.dns.DnsClient) -> None:
    for key in (ZONE, ZONE_NAME):
        zone = dns.get_zone(key).data
        assert_clean_model(zone)
        assert (zone.id, zone.name, zone.zone_type, zone.scope) == (
            ZONE, ZONE_NAME, "PRIMARY", "GLOBAL"
        )  # fmt: skip
    assert status_of(lambda: dns.get_zone("ocid1.dns-zone.oc1..missing")) == (
        404, "NotAuthorizedOrNotFound"
    )  # fmt: skip


def test_a_new_zone_holds_protected_soa_and_ns_at_its_apex(dns: oci.dns.DnsClient) -> None:
    records = dns.get_domain_records(OTHER_ZONE, "example.org").data.items
    assert_clean_model(records)
    assert sorted((r.rtype, r.is_protected) for r in records) == [("NS", True), ("SOA", True)]
    ns = next(r for r in records if r.rtype == "NS")
    remove = op("REMOVE", domain="example.org", rtype="NS", rdata=ns.rdata)
    assert status_of(lambda: patch(dns, "example.org", remove, zone=OTHER_ZONE))[0] == 400


def test_txt_rdata_comes_back_quoted_and_add_is_idempotent(dns: oci.dns.DnsClient) -> None:
    # The fixture's bare FOREIGN_VALUE is listed quoted, as go-acme/lego's provider expects.
    assert txt(dns) == [f'"{FOREIGN_VALUE}"']
    add = op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE, ttl=30)
    answer = patch(dns, CHALLENGE, add)
    assert_clean_model(answer.data)
    assert sorted(txt(dns)) == sorted([f'"{FOREIGN_VALUE}"', f'"{VALUE}"'])
    etag = answer.headers["etag"]
    # ADD of a record already there (quoted this time): success without a change.
    again = patch(
        dns, CHALLENGE, op("ADD", domain=CHALLENGE, rtype="TXT", rdata=f'"{VALUE}"', ttl=30)
    )
    assert again.headers["etag"] == etag
    assert len(txt(dns)) == 2


def test_bare_words_are_separate_strings_and_escapes_survive(dns: oci.dns.DnsClient) -> None:
    patch(dns, CHALLENGE, op("ADD", domain=CHALLENGE, rtype="TXT", rdata='a b "c \\"d\\""', ttl=30))
    listed = [r for r in txt(dns) if r != f'"{FOREIGN_VALUE}"']
    assert listed == ['"a" "b" "c \\"d\\""']
    assert txt_value(listed[0]) == 'abc "d"'  # the adapter reads it back as the CA would


def test_remove_by_rdata_or_hash_touches_only_that_record(dns: oci.dns.DnsClient) -> None:
    patch(dns, CHALLENGE, op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE, ttl=30))
    patch(dns, CHALLENGE, op("REMOVE", domain=CHALLENGE, rtype="TXT", rdata=f'"{VALUE}"'))
    assert txt(dns) == [f'"{FOREIGN_VALUE}"']
    patch(dns, CHALLENGE, op("REMOVE", domain=CHALLENGE, rtype="TXT", rdata=VALUE))  # absent: ok
    foreign = dns.get_domain_records(ZONE, CHALLENGE, rtype="TXT").data.items[0]
    patch(
        dns, CHALLENGE, op("REMOVE", domain=CHALLENGE, rtype="TXT", record_hash=foreign.record_hash)
    )
    assert txt(dns) == []
    assert [r.rdata for r in dns.get_domain_records(ZONE, "www.example.com").data.items] == [
        "192.0.2.1"
    ]


def test_a_patch_is_all_or_nothing_and_stays_in_its_zone(dns: oci.dns.DnsClient) -> None:
    good = op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE, ttl=30)
    outside = op("ADD", domain="_acme-challenge.example.net", rtype="TXT", rdata=VALUE, ttl=30)
    details = oci.dns.models.PatchZoneRecordsDetails(items=[good, outside])
    assert status_of(lambda: dns.patch_zone_records(ZONE, details))[0] == 400
    assert txt(dns) == [f'"{FOREIGN_VALUE}"']
    # The per-domain form refuses items for another domain of the zone.
    other = op("ADD", domain="www.example.com", rtype="TXT", rdata=VALUE, ttl=30)
    assert status_of(lambda: patch(dns, CHALLENGE, other))[0] == 400
    assert status_of(lambda: patch(dns, "_acme-challenge.example.net", outside))[0] == 400
    missing_ttl = op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE)
    assert status_of(lambda: patch(dns, CHALLENGE, missing_ttl)) == (400, "MissingParameter")


def test_if_match_and_zone_wide_operations(dns: oci.dns.DnsClient) -> None:
    etag = dns.get_zone_records(ZONE).headers["etag"]
    add = op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE, ttl=30)
    answer = dns.patch_zone_records(
        ZONE, oci.dns.models.PatchZoneRecordsDetails(items=[add]), if_match=etag
    )
    assert answer.headers["etag"] != etag
    stale = op("REMOVE", domain=CHALLENGE, rtype="TXT", rdata=VALUE)
    details = oci.dns.models.PatchZoneRecordsDetails(items=[stale])
    assert status_of(lambda: dns.patch_zone_records(ZONE, details, if_match=etag)) == (
        412, "NoEtagMatch"
    )  # fmt: skip
    records = dns.get_zone_records(ZONE, domain=CHALLENGE, rtype="TXT").data.items
    assert sorted(r.rdata for r in records) == sorted([f'"{FOREIGN_VALUE}"', f'"{VALUE}"'])


def test_lists_are_paged(dns: oci.dns.DnsClient) -> None:
    for n in range(5):
        patch(dns, CHALLENGE, op("ADD", domain=CHALLENGE, rtype="TXT", rdata=f"v{n}", ttl=30))
    first = dns.get_domain_records(ZONE, CHALLENGE, limit=4)
    assert len(first.data.items) == 4
    assert first.headers["opc-total-items"] == "6"
    rest = dns.get_domain_records(ZONE, CHALLENGE, limit=4, page=first.headers["opc-next-page"])
    assert len(rest.data.items) == 2
    assert "opc-next-page" not in rest.headers


def test_listeners_see_each_change_before_the_patch_returns(
    dns: oci.dns.DnsClient, emulator: RunningEmulator
) -> None:
    seen: list[tuple[str, str, list[str]]] = []
    emulator.emulator.services["dns"].add_listener(lambda *change: seen.append(change))  # type: ignore[attr-defined]
    patch(dns, CHALLENGE, op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE, ttl=30))
    assert seen == [(ZONE_NAME, CHALLENGE, sorted([FOREIGN_VALUE, VALUE]))]
    patch(dns, CHALLENGE, op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE, ttl=30))
    assert len(seen) == 1  # nothing changed, nothing told


# --------------------------------------------------------------------------- permissions


def test_use_dns_records_scoped_to_the_zone(renewer: OciClients) -> None:
    client = renewer.dns
    add = op("ADD", domain=CHALLENGE, rtype="TXT", rdata=VALUE, ttl=30)
    patch(client, CHALLENGE, add)  # PatchDomainRecords: DNS_RECORD_UPDATE
    assert f'"{VALUE}"' in txt(client)  # GetDomainRecords: DNS_RECORD_READ
    # The zone-wide operations and GetZone also need dns-zones permissions.
    assert status_of(lambda: client.get_zone(ZONE))[0] == 404
    assert status_of(lambda: client.get_zone_records(ZONE))[0] == 404
    details = oci.dns.models.PatchZoneRecordsDetails(items=[add])
    assert status_of(lambda: client.patch_zone_records(ZONE, details))[0] == 404
    # Another zone: not writable, not readable.
    other = op("ADD", domain="_acme-challenge.example.org", rtype="TXT", rdata=VALUE, ttl=30)
    assert status_of(
        lambda: patch(client, "_acme-challenge.example.org", other, zone=OTHER_ZONE)
    ) == (404, "NotAuthorizedOrNotFound")


# --------------------------------------------------------------------------- the adapter


def test_present_then_clean_up_leaves_other_values(
    renewer: OciClients, emulator: RunningEmulator
) -> None:
    zone = OciDnsChallengeZone(renewer, clock=SystemClock())
    service = emulator.emulator.services["dns"]
    wildcard_and_base = [
        (CHALLENGE, VALUE),
        (CHALLENGE, "second-value"),
        ("_acme-challenge.example.com", VALUE),
    ]
    zone.present(ZONE, wildcard_and_base, deadline=SystemClock().monotonic() + 30)
    assert sorted(service.txt_values(ZONE, CHALLENGE)) == sorted(
        [FOREIGN_VALUE, VALUE, "second-value"]
    )  # type: ignore[attr-defined]
    assert service.txt_values(ZONE, "_acme-challenge.example.com") == [VALUE]  # type: ignore[attr-defined]
    zone.clean_up(ZONE, wildcard_and_base)
    assert service.txt_values(ZONE, CHALLENGE) == [FOREIGN_VALUE]  # type: ignore[attr-defined]
    assert service.txt_values(ZONE, "_acme-challenge.example.com") == []  # type: ignore[attr-defined]
    emulator.emulator.requests.clear()
    zone.clean_up(ZONE, wildcard_and_base)  # idempotent: reads, no PATCH
    assert "PatchDomainRecords" not in emulator.emulator.operations_called()


def test_errors_are_typed_and_change_nothing(
    renewer: OciClients, emulator: RunningEmulator
) -> None:
    zone = OciDnsChallengeZone(renewer, clock=SystemClock())
    deadline = SystemClock().monotonic() + 30
    service = emulator.emulator.services["dns"]
    before = service.records(OTHER_ZONE)  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"NotAuthorizedOrNotFound.*policy"):
        zone.present(OTHER_ZONE, [("_acme-challenge.example.org", VALUE)], deadline=deadline)
    assert service.records(OTHER_ZONE) == before  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="400"):
        zone.present(ZONE, [("_acme-challenge.shop.example.net", VALUE)], deadline=deadline)
    assert service.txt_values(ZONE, CHALLENGE) == [FOREIGN_VALUE]  # type: ignore[attr-defined]
    emulator.emulator.faults.add(
        FaultRule.from_json(
            {
                "operation": "PatchDomainRecords",
                "status": 429,
                "code": "TooManyRequests",
                "times": 1,
            }
        )
    )
    with pytest.raises(TransientError, match="429"):
        zone.present(ZONE, [(CHALLENGE, VALUE)], deadline=deadline)


def test_a_conflict_is_retried_within_the_deadline(
    renewer: OciClients, emulator: RunningEmulator
) -> None:
    zone = OciDnsChallengeZone(renewer, clock=SystemClock())
    rule = FaultRule.from_json(
        {"operation": "PatchDomainRecords", "status": 409, "code": "Conflict", "times": 1}
    )
    emulator.emulator.faults.add(rule)
    zone.present(ZONE, [(CHALLENGE, VALUE)], deadline=SystemClock().monotonic() + 30)
    assert rule.fired == 1
    assert VALUE in emulator.emulator.services["dns"].txt_values(ZONE, CHALLENGE)  # type: ignore[attr-defined]
