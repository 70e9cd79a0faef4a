"""Challenge types and the DNS records the DNS challenges need. Pure, stdlib only.

Three ways to prove control of a name (:class:`ChallengeType`):

* ``http-01`` (RFC 8555 §8.3): the key authorization served on port 80; no wildcards.
* ``dns-01`` (RFC 8555 §8.4): a TXT record at ``_acme-challenge.<domain>`` holding
  base64url(SHA-256(key authorization)), written for each order and removed afterwards. For a
  wildcard ``*.example.com`` the record is at ``_acme-challenge.example.com`` (RFC 8555 §8.4:
  the validation domain is built from the identifier without its ``*.``).
* ``dns-persist-01`` (draft-ietf-acme-dns-persist): one TXT record at
  ``_validation-persist.<domain>`` written once and left in place, whose value names the CA's
  issuer domain and the ACME account allowed to issue:
  ``<issuer-domain>; accounturi=<account URL>`` plus ``; policy=wildcard`` when the record must
  also authorize wildcard names (the draft's ``policy`` parameter; without it the CA issues for
  the exact name only). The record binds the **account URL**: a new ACME account (a new key, a
  new CA, a deleted account secret) invalidates every such record.

Everything here is a pure function of names and strings, so the plan can print exactly the
records an operator (or Terraform) has to create.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DNS01_LABEL",
    "PERSIST_LABEL",
    "ChallengeType",
    "DnsRecord",
    "dns01_record_name",
    "is_wildcard",
    "persist_record_name",
    "persist_record_value",
    "persist_records",
    "validation_base",
]

DNS01_LABEL = "_acme-challenge"
PERSIST_LABEL = "_validation-persist"
WILDCARD_PREFIX = "*."


class ChallengeType(enum.StrEnum):
    """The ACME challenge a certificate's names are validated with."""

    HTTP_01 = "http-01"
    DNS_PERSIST_01 = "dns-persist-01"
    DNS_01 = "dns-01"

    @property
    def is_dns(self) -> bool:
        """Whether the challenge is validated through DNS (and so allows wildcard names)."""
        return self is not ChallengeType.HTTP_01


@dataclass(frozen=True, slots=True, order=True)
class DnsRecord:
    """One DNS record to create: ``name`` is absolute without the trailing dot."""

    name: str
    type: str
    value: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready mapping (the plan's ``dnsRecords`` entries)."""
        return {"name": self.name, "type": self.type, "value": self.value}


def is_wildcard(name: str) -> bool:
    """Whether ``name`` is a wildcard (``*.`` followed by a domain)."""
    return name.startswith(WILDCARD_PREFIX)


def validation_base(name: str) -> str:
    """The domain a DNS challenge validates for ``name``: the name without ``*.``, lower case."""
    name = name.lower().removesuffix(".")
    return name.removeprefix(WILDCARD_PREFIX)


def dns01_record_name(name: str) -> str:
    """``_acme-challenge.<domain>`` for ``name`` (RFC 8555 §8.4; wildcards drop their ``*.``)."""
    return f"{DNS01_LABEL}.{validation_base(name)}"


def persist_record_name(name: str) -> str:
    """``_validation-persist.<domain>`` for ``name`` (wildcards drop their ``*.``)."""
    return f"{PERSIST_LABEL}.{validation_base(name)}"


def persist_record_value(issuer_domain: str, account_uri: str, *, wildcard: bool) -> str:
    """The TXT value authorizing ``account_uri`` at the CA named ``issuer_domain``.

    ``wildcard`` adds the draft's ``policy=wildcard`` (then the record also authorizes
    ``*.<domain>``). Raises ValueError for parts the record syntax cannot carry: the value
    grammar forbids ``;`` and blanks inside a parameter value, and a CA domain has neither.
    """
    for part, what in ((issuer_domain, "issuer domain"), (account_uri, "account URI")):
        if not part or any(c in part for c in '; \t"\\') or not part.isascii():
            msg = f"the {what} cannot be written into a dns-persist-01 record"
            raise ValueError(msg)
    value = f"{issuer_domain.lower()}; accounturi={account_uri}"
    return f"{value}; policy=wildcard" if wildcard else value


def persist_records(
    dns_names: Iterable[str], issuer_domain: str, account_uri: str
) -> tuple[DnsRecord, ...]:
    """The dns-persist-01 records a certificate for ``dns_names`` needs, sorted by name.

    ``example.com`` and ``*.example.com`` share ``_validation-persist.example.com``: one record,
    with ``policy=wildcard`` because one of them is a wildcard.
    """
    wildcard_for: dict[str, bool] = {}
    for name in dns_names:
        record_name = persist_record_name(name)
        wildcard_for[record_name] = wildcard_for.get(record_name, False) or is_wildcard(name)
    return tuple(
        sorted(
            DnsRecord(
                name=record_name,
                type="TXT",
                value=persist_record_value(issuer_domain, account_uri, wildcard=wildcard),
            )
            for record_name, wildcard in wildcard_for.items()
        )
    )
