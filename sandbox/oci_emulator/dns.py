"""OCI DNS: zones and their records (``oci.dns.DnsClient``, base ``/20180115``).

Operations: ``GetZone`` (``GET /zones/{zoneNameOrId}``), ``GetZoneRecords`` and
``PatchZoneRecords`` (``GET|PATCH /zones/{zoneNameOrId}/records``), ``GetDomainRecords`` and
``PatchDomainRecords`` (``GET|PATCH /zones/{zoneNameOrId}/records/{domain}``).

Fixture (``zones`` key)::

    "zones": [{"id": "ocid1.dns-zone.oc1..z", "name": "example.com",
               "compartment": "<ocid or fixture compartment name>",
               "records": [{"domain": "example.com", "rtype": "TXT", "rdata": "v=spf1 -all",
                            "ttl": 300}]}]

Every zone also holds its apex SOA and NS records, protected (``isProtected``), as a new OCI
zone does ("Each DNS zone you create automatically contains two essential records").

Behaviour, with its source:

* A zone is addressed by OCID or by name (path parameter ``zoneNameOrId``: "The name or OCID of
  the target zone"). An unknown zone, or one the caller may not use, is 404
  NotAuthorizedOrNotFound (OCI's answer for both).
* Permissions (OCI policy reference, "Details for the DNS Service"): GetZone DNS_ZONE_READ;
  GetZoneRecords DNS_ZONE_READ and DNS_RECORD_READ; PatchZoneRecords DNS_ZONE_UPDATE and
  DNS_RECORD_UPDATE; GetDomainRecords DNS_RECORD_READ; PatchDomainRecords DNS_RECORD_UPDATE.
  The handler passes ``dns_zone_id`` and ``dns_zone_name`` (``target.dns-zone.id``, ``.name``).
* PATCH applies ``RecordOperation`` items in order, all or nothing (SDK docstring of
  ``RecordOperation.operation``): ``ADD`` — the record must exist afterwards; ``REMOVE`` — it
  must not; both "can succeed even if they require no changes". ``REQUIRE``/``PROHIBIT`` are
  preconditions; one that fails answers 412 (assumed code ``PreconditionFailed``). An operation
  matches records on every field it carries (``recordHash``, ``domain``, ``rtype``, ``rdata``
  after normalization, ``ttl``).
* RDATA is normalized ("All RDATA is normalized and the returned presentation of your RDATA may
  differ from its initial input", SDK ``Record.rdata``). For TXT: each character-string comes
  back quoted, blank-separated — ``abc`` becomes ``"abc"`` (go-acme/lego's OCI provider adds
  ``abc`` and finds ``"abc"`` when cleaning up); bare words are separate strings (RFC 1035 §5.1;
  assumed for OCI); a string over 255 octets is refused with 400 (RFC 1035 §3.3; assumed:
  OCI might split it instead). Domains are compared case-insensitively and kept in lower case
  without the root's dot (assumed).
* ``If-Match`` on a PATCH is compared with the zone's ETag (412 ``NoEtagMatch`` when it
  differs); every answer carries the zone's current ``etag`` and ``opc-total-items``.
* Lists are paged: ``limit`` (default 50, at most 100; assumed), ``page`` = the previous
  answer's ``opc-next-page``; ``rtype`` filters case-insensitively (SDK docstring); sorted by
  domain then rtype (assumed; the SDK documents ``sortBy`` rtype or ttl).

Assumed (no source): a record outside the zone (a domain that is not the zone's name or below
it) and a PATCH of a protected record are 400 ``InvalidParameter``; a PATCH on
``/records/{domain}`` may only touch that domain (400 otherwise); a TTL outside 1-604800 is
400. A change is visible at once in every read — and in what the zone's nameservers answer
(:meth:`Dns.add_listener`: the sandbox mirrors TXT records into pebble-challtestsrv).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from sandbox.oci_emulator.core import (
    OciError,
    Reply,
    Request,
    Route,
    invalid,
    new_etag,
    not_found,
    rfc3339,
)
from sandbox.oci_emulator.server import Emulator

BASE = "/20180115"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_STRING = 255
MAX_TTL = 604_800
OPERATIONS = ("ADD", "REMOVE", "REQUIRE", "PROHIBIT")

# (zone name, record domain, the TXT values now at that domain, decoded) after each change.
TxtListener = Callable[[str, str, list[str]], None]


class Dns:
    """The DNS operations above.

    State (``state.section("dns")``): ``zones`` by OCID, each ``{"id", "name", "compartmentId",
    "version", "etag", "timeCreated", "records": [...]}``.
    """

    name = "dns"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._listeners: list[TxtListener] = []
        self._listeners_lock = threading.Lock()

    def routes(self) -> list[Route]:
        """The five operations."""
        zone = f"{BASE}/zones/{{zoneNameOrId}}"
        return [
            Route("GET", zone, "GetZone", self.get_zone),
            Route("GET", f"{zone}/records", "GetZoneRecords", self.get_zone_records),
            Route("PATCH", f"{zone}/records", "PatchZoneRecords", self.patch_zone_records),
            Route("GET", f"{zone}/records/{{domain}}", "GetDomainRecords", self.get_domain),
            Route("PATCH", f"{zone}/records/{{domain}}", "PatchDomainRecords", self.patch_domain),
        ]

    def seed(self, fixture: dict[str, Any]) -> None:
        """Create the fixture's zones and records; ValueError names a bad entry."""
        zones = self._zones()
        compartments = {str(c["name"]): str(c["id"]) for c in fixture.get("compartments", [])}
        for entry in fixture.get("zones", []):
            zone_id, name = str(entry.get("id", "")), _domain(str(entry.get("name", "")))
            if not zone_id.startswith("ocid1.dns-zone.") or not name:
                msg = f"zone {entry!r}: needs an ocid1.dns-zone... 'id' and a 'name'"
                raise ValueError(msg)
            compartment = str(entry.get("compartment") or fixture.get("tenancy") or "")
            zone: dict[str, Any] = {
                "id": zone_id,
                "name": name,
                "compartmentId": compartments.get(compartment, compartment),
                "version": 1,
                "etag": new_etag(),
                "timeCreated": rfc3339(),
                "records": [],
            }
            apex = [
                {"domain": name, "rtype": "SOA", "ttl": 300, "rdata":
                 f"ns1.p01.dns.oraclecloud.net. hostmaster.{name}. 1 3600 600 604800 1800"},
                {"domain": name, "rtype": "NS", "ttl": 86400,
                 "rdata": "ns1.p01.dns.oraclecloud.net."},
            ]  # fmt: skip
            for record in apex:
                zone["records"].append(_stored(zone, record, protected=True))
            for record in entry.get("records", []):
                try:
                    zone["records"].append(_stored(zone, _checked_add(zone, record)))
                except OciError as exc:
                    msg = f"zone {zone_id}: bad record {record!r}: {exc.message}"
                    raise ValueError(msg) from exc
            zones[zone_id] = zone

    # ------------------------------------------------------------------ for the sandbox

    def add_listener(self, listener: TxtListener) -> None:
        """Call ``listener(zone name, domain, values)`` after each change of a domain's TXT set.

        Called while the PATCH is being answered, before its reply: once a PATCH has returned,
        every listener has seen the change (the sandbox's stand-in for OCI's nameservers).
        """
        with self._listeners_lock:
            self._listeners.append(listener)

    def txt_values(self, zone_id: str, domain: str) -> list[str]:
        """The decoded TXT values at ``domain`` in the zone (for tests)."""
        with self.emulator.state.lock:
            zone = self._zones()[zone_id]
            return _txt_values(zone, _domain(domain))

    def records(self, zone_id: str) -> list[dict[str, Any]]:
        """Every record of the zone, as the API lists them (for tests)."""
        with self.emulator.state.lock:
            return [_public(r) for r in _sorted(self._zones()[zone_id]["records"])]

    # ------------------------------------------------------------------ the operations

    def get_zone(self, request: Request) -> Reply:
        """``Zone``."""
        zone = self._zone(request)
        return Reply(body=_zone_json(zone), headers={"etag": zone["etag"]})

    def get_zone_records(self, request: Request) -> Reply:
        """``RecordCollection`` of the zone (``domain``, ``domainContains``, ``rtype`` filter)."""
        zone = self._zone(request)
        domain, contains = request.arg("domain"), request.arg("domainContains")
        records = [
            r
            for r in zone["records"]
            if (domain is None or r["domain"] == _domain(domain))
            and (contains is None or contains.lower() in r["domain"])
        ]
        return self._page(request, zone, records)

    def get_domain(self, request: Request) -> Reply:
        """``RecordCollection`` of one domain."""
        zone = self._zone(request)
        domain = _inside(zone, request.params["domain"])
        return self._page(request, zone, [r for r in zone["records"] if r["domain"] == domain])

    def patch_zone_records(self, request: Request) -> Reply:
        """Apply ``PatchZoneRecordsDetails``; answer the zone's records."""
        zone = self._zone(request)
        self._patch(request, zone, only_domain=None)
        return self._page(request, zone, zone["records"])

    def patch_domain(self, request: Request) -> Reply:
        """Apply ``PatchDomainRecordsDetails`` at one domain; answer that domain's records."""
        zone = self._zone(request)
        domain = _inside(zone, request.params["domain"])
        self._patch(request, zone, only_domain=domain)
        return self._page(request, zone, [r for r in zone["records"] if r["domain"] == domain])

    # ------------------------------------------------------------------ helpers

    def _zones(self) -> dict[str, Any]:
        zones: dict[str, Any] = self.emulator.state.section("dns").setdefault("zones", {})
        return zones

    def _zone(self, request: Request) -> dict[str, Any]:
        key = request.params["zoneNameOrId"]
        zones = self._zones()
        zone = zones.get(key) or next(
            (z for z in zones.values() if z["name"] == _domain(key)), None
        )
        if zone is None:
            raise not_found("zone")
        self.emulator.authorize(
            request,
            compartment_id=zone["compartmentId"],
            dns_zone_id=zone["id"],
            dns_zone_name=zone["name"],
        )
        return zone

    def _patch(self, request: Request, zone: dict[str, Any], *, only_domain: str | None) -> None:
        if_match = request.header("if-match")
        if if_match and if_match not in ("*", zone["etag"]):
            raise OciError(412, "NoEtagMatch", "The If-Match ETag does not match the zone's.")
        items = request.json_object().get("items")
        if not isinstance(items, list):
            raise invalid("items must be a list of RecordOperation.")
        records = list(zone["records"])
        changed: set[str] = set()
        for index, item in enumerate(items):
            records = _apply(zone, records, item, index, only_domain, changed)
        if not changed:
            return
        zone["records"] = records
        zone["version"] += 1
        zone["etag"] = new_etag()
        for record in records:
            if record["domain"] in changed:
                record["rrsetVersion"] = str(zone["version"])
        with self._listeners_lock:
            listeners = list(self._listeners)
        for domain in sorted(changed):
            values = _txt_values(zone, domain)
            for listener in listeners:
                listener(zone["name"], domain, values)

    def _page(self, request: Request, zone: dict[str, Any], records: list[dict[str, Any]]) -> Reply:
        rtype = request.arg("rtype")
        if rtype is not None:
            records = [r for r in records if r["rtype"] == rtype.upper()]
        records = _sorted(records)
        try:
            limit = int(request.arg("limit") or DEFAULT_LIMIT)
            start = int(request.arg("page") or 0)
        except ValueError:
            raise invalid("limit and page must be integers.") from None
        if not 1 <= limit <= MAX_LIMIT or start < 0:
            raise invalid(f"limit must be 1-{MAX_LIMIT}; page a previous opc-next-page.")
        chosen = records[start : start + limit]
        headers = {"etag": zone["etag"], "opc-total-items": str(len(records))}
        if start + limit < len(records):
            headers["opc-next-page"] = str(start + limit)
        return Reply(body={"items": [_public(r) for r in chosen]}, headers=headers)


# --------------------------------------------------------------------------- records


def _apply(
    zone: dict[str, Any],
    records: list[dict[str, Any]],
    item: object,
    index: int,
    only_domain: str | None,
    changed: set[str],
) -> list[dict[str, Any]]:
    """``records`` after the ``index``-th RecordOperation (400/412 when it cannot apply)."""
    if not isinstance(item, dict):
        raise invalid(f"items[{index}] must be an object.")
    operation = item.get("operation")
    if operation not in OPERATIONS:
        raise invalid(f"items[{index}].operation must be one of {', '.join(OPERATIONS)}.")
    domain = item.get("domain")
    if only_domain is not None and domain is not None and _inside(zone, str(domain)) != only_domain:
        raise invalid(f"items[{index}].domain is not the domain of the request path.")
    if operation == "ADD":
        record = _checked_add(zone, {**item, "domain": domain or only_domain})
        if any(_matches(r, record) for r in records):
            return records  # already there: success without a change
        changed.add(record["domain"])
        return [*records, _stored(zone, record, version=zone["version"] + 1)]
    probe = _probe(zone, item, index, only_domain)
    hits = [r for r in records if _matches(r, probe)]
    if operation == "REQUIRE" and not hits:
        raise OciError(412, "PreconditionFailed", f"items[{index}]: no such record.")
    if operation == "PROHIBIT" and hits:
        raise OciError(412, "PreconditionFailed", f"items[{index}]: the record exists.")
    if operation != "REMOVE" or not hits:
        return records
    if any(r["isProtected"] for r in hits):
        raise invalid(f"items[{index}] would remove a protected record.")
    changed.update(r["domain"] for r in hits)
    return [r for r in records if r not in hits]


def _domain(name: str) -> str:
    return name.strip().lower().removesuffix(".")


def _inside(zone: dict[str, Any], name: str) -> str:
    domain = _domain(name)
    if domain != zone["name"] and not domain.endswith("." + zone["name"]):
        raise invalid(f"The domain {domain} is not in the zone {zone['name']}.")
    return domain


def _checked_add(zone: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """The normalized record an ADD (or a fixture record) describes; 400 when incomplete."""
    for field in ("domain", "rtype", "rdata", "ttl"):
        if item.get(field) in (None, ""):
            raise OciError(400, "MissingParameter", f"An ADD needs {field}.")
    ttl = item["ttl"]
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL:
        raise invalid(f"ttl must be an integer of 1-{MAX_TTL} seconds.")
    rtype = str(item["rtype"]).upper()
    domain = _inside(zone, str(item["domain"]))
    return {"domain": domain, "rtype": rtype, "rdata": normalize(rtype, str(item["rdata"])),
            "ttl": ttl}  # fmt: skip


def _probe(
    zone: dict[str, Any], item: dict[str, Any], index: int, only: str | None
) -> dict[str, Any]:
    """The fields a REMOVE/REQUIRE/PROHIBIT matches on (at least one besides the domain)."""
    probe: dict[str, Any] = {}
    if item.get("recordHash"):
        probe["recordHash"] = str(item["recordHash"])
    domain = item.get("domain") or only
    if domain:
        probe["domain"] = _inside(zone, str(domain))
    if item.get("rtype"):
        probe["rtype"] = str(item["rtype"]).upper()
    if item.get("rdata"):
        probe["rdata"] = normalize(probe.get("rtype", ""), str(item["rdata"]))
    if item.get("ttl") is not None:
        probe["ttl"] = item["ttl"]
    if not set(probe) - {"domain"}:
        raise invalid(f"items[{index}] needs a recordHash, or rtype and rdata.")
    return probe


def _matches(record: dict[str, Any], probe: dict[str, Any]) -> bool:
    return all(record.get(key) == value for key, value in probe.items())


def _stored(
    zone: dict[str, Any], record: dict[str, Any], *, protected: bool = False, version: int = 1
) -> dict[str, Any]:
    digest = hashlib.sha256(
        f"{zone['id']}|{record['domain']}|{record['rtype']}|{record['rdata']}".encode()
    ).hexdigest()[:32]
    return {**record, "recordHash": digest, "isProtected": protected, "rrsetVersion": str(version)}


def _public(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("domain", "recordHash", "isProtected", "rdata", "rrsetVersion", "rtype", "ttl")
    return {k: record[k] for k in keys}


def _sorted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["domain"], r["rtype"], r["rdata"]))


def _zone_json(zone: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": zone["id"],
        "name": zone["name"],
        "compartmentId": zone["compartmentId"],
        "zoneType": "PRIMARY",
        "scope": "GLOBAL",
        "serial": zone["version"],
        "version": str(zone["version"]),
        "lifecycleState": "ACTIVE",
        "timeCreated": zone["timeCreated"],
        "isProtected": False,
        "dnssecState": "DISABLED",
        "externalMasters": [],
        "externalDownstreams": [],
        "freeformTags": {},
        "definedTags": {},
        "nameservers": [{"hostname": "ns1.p01.dns.oraclecloud.net"}],
        "self": f"https://dns.us-phoenix-1.oci.oraclecloud.com{BASE}/zones/{zone['id']}",
    }


def _txt_values(zone: dict[str, Any], domain: str) -> list[str]:
    return [
        "".join(txt_strings(r["rdata"]))
        for r in _sorted(zone["records"])
        if r["domain"] == domain and r["rtype"] == "TXT"
    ]


# --------------------------------------------------------------------------- TXT presentation


def normalize(rtype: str, rdata: str) -> str:
    """OCI's presentation of ``rdata``: TXT as quoted strings; other types blank-collapsed."""
    if rtype != "TXT":
        return " ".join(rdata.split())
    strings = txt_strings(rdata)
    if not strings:
        raise invalid("A TXT record needs at least one character-string.")
    for text in strings:
        if len(text.encode()) > MAX_STRING:
            raise invalid(f"A TXT character-string is longer than {MAX_STRING} octets.")
    return " ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"' for s in strings)


def txt_strings(rdata: str) -> list[str]:
    """The character-strings of TXT ``rdata`` (RFC 1035 §5.1 quoting and escapes)."""
    strings: list[str] = []
    i, n = 0, len(rdata)
    while i < n:
        if rdata[i].isspace():
            i += 1
            continue
        quoted = rdata[i] == '"'
        if quoted:
            i += 1
        text: list[str] = []
        while i < n and (rdata[i] != '"' if quoted else not rdata[i].isspace()):
            if rdata[i] == "\\" and i + 1 < n:
                digits = rdata[i + 1 : i + 4]
                if len(digits) == 3 and digits.isdigit():
                    text.append(chr(int(digits)))
                    i += 4
                else:
                    text.append(rdata[i + 1])
                    i += 2
                continue
            text.append(rdata[i])
            i += 1
        if quoted:
            if i >= n:
                raise invalid("A TXT character-string is missing its closing quote.")
            i += 1
        strings.append("".join(text))
    return strings
