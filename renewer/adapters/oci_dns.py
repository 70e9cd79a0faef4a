"""``DnsChallengeZone`` for OCI DNS: dns-01 TXT records written through the DNS API.

PRESENT, for the ``(name, value)`` records of one order (RFC 8555 §8.4: ``_acme-challenge.<domain>``
TXT base64url(SHA-256(key authorization))):

* one ``PatchDomainRecords`` per record name (``PATCH /20180115/zones/{zone}/records/{name}``)
  with an ``ADD`` operation per value: ``rtype`` TXT, ``rdata`` the value as one quoted
  character-string, ``ttl`` :data:`DEFAULT_TTL`. Other records at the name stay (PATCH adds;
  several orders may validate one name at once), and an ADD of a record already there succeeds
  without a change (the SDK's ``RecordOperation.operation`` docstring: "ADD and REMOVE
  operations can succeed even if they require no changes"), so a retried PATCH is harmless;
* then ``GetDomainRecords`` (``rtype=TXT``, every page) until every value is listed, pausing
  0.25 s doubling to 3 s, bounded by the deadline (:class:`AcmeTimeout` when it passes).

The per-domain operations are used rather than the zone-wide ``PatchZoneRecords`` because they
need less: OCI's policy reference ("Details for the DNS Service", "Permissions Required for Each
API Operation") lists PatchDomainRecords as DNS_RECORD_UPDATE and GetDomainRecords as
DNS_RECORD_READ — ``use dns-records`` — where the zone-wide pair also needs DNS_ZONE_UPDATE and
DNS_ZONE_READ (``use dns-zones``, which also allows UpdateZone). Terraform grants exactly
``use dns-records ... where target.dns-zone.id = '<zone>'``.

"The zone's authoritative answer holds them": the records the DNS API lists for the zone are
what OCI's authoritative nameservers serve for it. How soon a change reaches every one of
those nameservers is not published (assumed near-immediate; docs/oci-emulator.md); the CA asks
them directly, never a caching resolver, so public resolution is not waited for. A CA that
validates before the change arrived fails the challenge (ChallengeFailed), and the next run
orders again after the backoff.

OCI normalizes RDATA ("All RDATA is normalized and the returned presentation of your RDATA may
differ from its initial input", the SDK's ``Record.rdata``): a TXT value comes back as quoted
character-strings (go-acme/lego's OCI provider matches ``"<value>"`` when cleaning up). Values
are compared after decoding the presentation format, so ``abc``, ``"abc"`` and ``"a" "bc"``
are one value.

CLEAN-UP reads the TXT records at each name and removes, by ``recordHash``, exactly those whose
value is one of ours (other values at the name stay); nothing to remove is no call at all, so
it is idempotent. Errors go through :func:`translate`: a missing zone or a missing policy is a
:class:`ConfigError` (404 NotAuthorizedOrNotFound), throttling and 5xx a
:class:`TransientError`; a 409 (a concurrent change of the zone) is retried within the deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_lifecycle import Backoff
from renewer.clock import Clock
from renewer.errors import AcmeTimeout, ConfigError, RenewerError, TransientError

# isort: split
# After oci_clients: it sets the SDK's import-time retry default before ``oci`` is first imported.
import oci

logger = logging.getLogger(__name__)

DEFAULT_TTL = 30  # seconds: the lowest the SDK's docstring recommends ("lower than 30 ... not")
CLEAN_UP_SECONDS = 60.0  # a clean-up runs after the order's deadline too: its own bound
_CONFLICT = 409
_TXT = "TXT"
_MAX_STRING = 255  # RFC 1035 §3.3: one character-string holds at most 255 octets


class OciDnsChallengeZone:
    """:class:`~renewer.ports.DnsChallengeZone` over OCI DNS (see the module docstring).

    Thread-safe (the SDK client is); one instance serves every certificate of a run.

    Args:
        clients: the OCI clients (only ``dns`` is used).
        clock: monotonic time and sleeping, for the waits.
        ttl: TTL of the TXT records written.

    """

    def __init__(self, clients: OciClients, *, clock: Clock, ttl: int = DEFAULT_TTL) -> None:
        self._clients = clients
        self._clock = clock
        self._ttl = ttl

    def present(self, zone_id: str, records: Sequence[tuple[str, str]], *, deadline: float) -> None:
        """Add the TXT records and wait until the zone lists them all.

        Raises:
            ConfigError: the zone is missing or not ours to write (404), a name outside it or
                a value OCI refuses (400).
            AcmeTimeout: the records were not all listed by ``deadline``.
            TransientError: throttling, 5xx, OCI unreachable.

        """
        wanted = _by_name(records)
        for name, values in wanted.items():
            for value in values:
                _check_value(value)
            operations = [
                oci.dns.models.RecordOperation(
                    operation="ADD", domain=name, rtype=_TXT, rdata=_quoted(value), ttl=self._ttl
                )
                for value in values
            ]
            self._patch(zone_id, name, operations, deadline, f"add dns-01 TXT records at {name}")
        logger.info("dns01_present zone=%s names=%d records=%d", zone_id, len(wanted), len(records))
        backoff = Backoff(self._clock, deadline, f"wait for the dns-01 TXT records in {zone_id}")
        missing = sorted(wanted)
        while True:
            if self._clock.monotonic() >= deadline:
                msg = (
                    f"wait for the dns-01 TXT records in {zone_id}: the zone did not list the"
                    f" values at {', '.join(missing)} by the deadline"
                )
                raise AcmeTimeout(msg)
            missing = sorted(
                name
                for name, values in wanted.items()
                if not set(values) <= {value for value, _ in self._txt(zone_id, name, deadline)}
            )
            if not missing:
                return
            backoff.pause(f"the zone does not list the values at {', '.join(missing)} yet")

    def clean_up(self, zone_id: str, records: Sequence[tuple[str, str]]) -> None:
        """Remove exactly our TXT values (other values at the names stay); idempotent.

        Raises:
            ConfigError / TransientError: as :func:`translate` says.

        """
        deadline = self._clock.monotonic() + CLEAN_UP_SECONDS
        for name, values in _by_name(records).items():
            ours = set(values)
            hashes = [h for value, h in self._txt(zone_id, name, deadline) if value in ours and h]
            if not hashes:
                continue
            operations = [
                oci.dns.models.RecordOperation(
                    operation="REMOVE", domain=name, rtype=_TXT, record_hash=record_hash
                )
                for record_hash in hashes
            ]
            self._patch(zone_id, name, operations, deadline, f"remove dns-01 TXT records at {name}")
            logger.info("dns01_clean_up zone=%s name=%s removed=%d", zone_id, name, len(hashes))

    # ------------------------------------------------------------------ the two calls

    def _patch(
        self, zone_id: str, name: str, operations: list[Any], deadline: float, action: str
    ) -> None:
        details = oci.dns.models.PatchDomainRecordsDetails(items=operations)
        backoff = Backoff(self._clock, deadline, action)
        while True:
            if self._clock.monotonic() >= deadline:
                msg = f"{action}: the deadline passed before the change was sent"
                raise TransientError(msg)
            try:
                with translate(f"{action} in DNS zone {zone_id}"):
                    self._clients.dns.patch_domain_records(zone_id, name, details)
            except RenewerError as exc:
                # A concurrent change of the zone: ADD and REMOVE are idempotent, so send again.
                if exc.oci_status != _CONFLICT:
                    raise
                logger.warning("dns01_retry zone=%s name=%s code=%s", zone_id, name, exc.oci_code)
                backoff.pause(f"OCI answered 409 {exc.oci_code}")
                continue
            return

    def _txt(self, zone_id: str, name: str, deadline: float) -> Iterator[tuple[str, str | None]]:
        """(decoded value, recordHash) of every TXT record at ``name``, every page."""
        if self._clock.monotonic() >= deadline:
            msg = f"read the TXT records at {name}: the deadline has passed"
            raise TransientError(msg)
        page: str | None = None
        while True:
            kwargs: dict[str, Any] = {"rtype": _TXT}
            if page:
                kwargs["page"] = page
            with translate(f"read the TXT records at {name} in DNS zone {zone_id}"):
                response = self._clients.dns.get_domain_records(zone_id, name, **kwargs)
            for record in response.data.items or ():
                if str(record.rtype or "").upper() != _TXT:
                    continue
                yield txt_value(str(record.rdata or "")), record.record_hash
            page = response.headers.get("opc-next-page")
            if not page:
                return


def _by_name(records: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """Values per record name (lower case, no trailing dot), in order, each once."""
    by_name: dict[str, list[str]] = {}
    for name, value in records:
        values = by_name.setdefault(name.lower().removesuffix("."), [])
        if value not in values:
            values.append(value)
    return by_name


def _check_value(value: str) -> None:
    # dns-01 values are 43 base64url characters; anything else is a bug upstream, not a record.
    if not value or len(value) > _MAX_STRING or not value.isascii() or not value.isprintable():
        msg = "a dns-01 TXT value must be 1-255 printable ASCII characters"
        raise ConfigError(msg)


def _quoted(value: str) -> str:
    """``value`` as one presentation-format character-string (quotes and backslashes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def txt_value(rdata: str) -> str:
    r"""The value a TXT ``rdata`` in presentation format holds: its character-strings joined.

    ``"abc"``, ``abc`` and ``"a" "bc"`` are all ``abc`` (RFC 1035 §5.1: quoted strings with
    ``\X`` and ``\DDD`` escapes, or blank-separated bare words; validators concatenate the
    strings of one record).
    """
    strings: list[str] = []
    i, n = 0, len(rdata)
    while i < n:
        if rdata[i].isspace():
            i += 1
            continue
        quoted = rdata[i] == '"'
        i += quoted
        out: list[str] = []
        while i < n and (rdata[i] != '"' if quoted else not rdata[i].isspace()):
            if rdata[i] == "\\" and i + 1 < n:
                if rdata[i + 1 : i + 4].isdigit() and i + 4 <= n:
                    out.append(chr(int(rdata[i + 1 : i + 4])))
                    i += 4
                    continue
                out.append(rdata[i + 1])
                i += 2
                continue
            out.append(rdata[i])
            i += 1
        i += quoted  # the closing quote
        strings.append("".join(out))
    return "".join(strings)
