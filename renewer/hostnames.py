"""Which DNS names a public CA issues for: :func:`check_dns_name`. Pure, stdlib only.

The rules are the CA's (RFC 8555 §7.1.4 identifiers; RFC 1123 §2.1 and RFC 3696 §2 host names;
RFC 5890/5891 for IDNA; the CA/Browser Forum's Baseline Requirements §3.2.2.4 refuse IP
addresses as DNS names), checked before an order is placed so a typo never costs an order:

* letters, digits and hyphens in dot-separated labels of 1-63 characters, 253 in all, at least
  two labels, no hyphen at either end of a label, and no ``??--`` label other than ``xn--``
  (RFC 5891 §4.2.3.1 reserves hyphens in positions 3 and 4);
* the top label looks like a delegated TLD: letters only, or an ``xn--`` A-label. Every
  delegated TLD has that shape, and a numeric or hex top label is how IP addresses hide:
  resolvers read ``127.1``, ``0x7f.0.0.1``, ``0177.0.0.1`` as IPv4 addresses (inet_aton), and
  ``1.2.3.256`` or ``shop.example.123`` name no public host at all;
* no IP address literal, and no wildcard unless the caller allows one (``allow_wildcard``: a DNS
  challenge validates ``*.<domain>``; http-01 cannot, RFC 8555 §8.3). A wildcard is ``*.`` and
  then a name that passes every rule above.

Internationalized names are **not converted**: an IDN in Unicode is refused and the hint gives
its ``xn--`` form (``"xn--" + Punycode(label)``, RFC 3492, what IDNA 2008 produces for a valid
U-label) for the operator to check and paste. Conversion proper needs the IDNA 2008 tables (the
``idna`` package, only a transitive dependency of the runtime's ``requests``, which the pure core
does not import); the standard library only has IDNA 2003, which maps some names (``ß``,
``ς``, joiners) to a *different* name, so using it would certify a name the operator did not
write. ``xn--`` labels are accepted when they are well-formed Punycode of a lower-case NFC label;
the CA checks the rest of IDNA 2008.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from renewer.errors import ConfigError

__all__ = ["MAX_LABEL", "MAX_NAME", "check_dns_name", "normalize"]

MAX_NAME = 253  # RFC 1035 §2.3.4: 255 octets on the wire = 253 characters in text
MAX_LABEL = 63
_LDH = re.compile(r"[a-z0-9-]+")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")  # what inet_aton reads as one part of an address
_ACE = "xn--"


def normalize(text: str) -> str:
    """Lower case, without surrounding blanks or the root's trailing dot."""
    return text.strip().lower().removesuffix(".")


def check_dns_name(text: str, *, allow_wildcard: bool = False) -> str:
    """The normalized name if a public CA would issue for it, else ConfigError saying why.

    ``allow_wildcard``: accept ``*.<name>`` (the caller validates with a DNS challenge).

    The message never contains the name (the caller names the field): a value in the wrong
    field may be a secret. The one exception is the ``xn--`` hint for a Unicode name, given only
    when the value is made of letters, digits, hyphens and dots — a host name, not key material.
    """
    name = normalize(text)
    if not name.isascii():
        raise ConfigError(_unicode_problem(name))
    if name.startswith("*.") and allow_wildcard:
        return "*." + check_dns_name(name[2:])
    if name.startswith("*."):
        msg = (
            "is a wildcard; http-01 cannot validate wildcards (RFC 8555 §8.3) — set the"
            " certificate's challenge to dns-persist-01 or dns-01, or list each host name instead"
        )
        raise ConfigError(msg)
    if is_ip_literal(name):
        msg = "is an IP address; this renewer issues for DNS names only"
        raise ConfigError(msg)
    problem = _shape_problem(name)
    if problem is not None:
        raise ConfigError(f"is not a valid DNS name: {problem}")
    return name


def is_ip_literal(name: str) -> bool:
    """Whether ``name`` is an IPv4 or IPv6 address (brackets allowed), not a DNS name."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _shape_problem(name: str) -> str | None:
    example = "use letters, digits and hyphens in dot-separated labels, e.g. www.example.com"
    if len(name) > MAX_NAME:
        return f"it is {len(name):,} characters long; a DNS name has at most {MAX_NAME}"
    labels = name.split(".")
    if len(labels) < 2:  # noqa: PLR2004 - a host in a registered domain
        return f"it is a single label; a public certificate names a host in a domain ({example})"
    for number, label in enumerate(labels, start=1):
        problem = _label_problem(label)
        if problem is not None:
            return f"label {number} {problem}; {example}"
    if all(_NUMBER.fullmatch(label) for label in labels):
        return (
            "it is made of numbers only, like an IPv4 address (resolvers read forms such as"
            " 127.1, 0x7f.0.0.1 or 0177.0.0.1 as addresses); this renewer issues for DNS names"
            " only"
        )
    if not _TLD.fullmatch(labels[-1]):
        return (
            "the top-level label must be letters (or an xn-- A-label), as every public"
            " top-level domain is: a name like shop.example.123 names no public host, and"
            " public CAs refuse it"
        )
    return None


def _label_problem(label: str) -> str | None:  # noqa: PLR0911 - one reason per rule
    if not label:
        return "is empty (two dots in a row, or a leading dot)"
    if len(label) > MAX_LABEL:
        return f"is {len(label)} characters long; a label has at most {MAX_LABEL}"
    if not _LDH.fullmatch(label):
        return "holds a character other than letters, digits and hyphens"
    if label.startswith("-") or label.endswith("-"):
        return "starts or ends with a hyphen"
    if label[2:4] == "--":
        if not label.startswith(_ACE):
            return "has hyphens in positions 3 and 4, which RFC 5891 reserves for xn-- labels"
        if not _valid_a_label(label):
            return "is an xn-- label that is not valid Punycode of a lower-case Unicode label"
    return None


def _valid_a_label(label: str) -> bool:
    encoded = label[len(_ACE) :]
    try:
        decoded = encoded.encode("ascii").decode("punycode")
    except UnicodeError:
        return False
    return (
        not decoded.isascii()
        and all(c.isalnum() or c == "-" for c in decoded)  # letters and digits, as IDNA 2008
        and decoded == unicodedata.normalize("NFC", decoded)
        and decoded == decoded.lower()
        and decoded.encode("punycode").decode("ascii") == encoded
    )


def _unicode_problem(name: str) -> str:
    base = (
        "holds non-ASCII characters: internationalized names are not converted (see"
        " docs/configuration.md); write the name's A-label (xn--) form"
    )
    host_like = len(name) <= MAX_NAME and all(c.isalnum() or c in "-." for c in name)
    if not host_like:
        return base
    labels = []
    for label in name.split("."):
        if label.isascii():
            labels.append(label)
            continue
        u_label = unicodedata.normalize("NFC", label)
        labels.append(_ACE + u_label.encode("punycode").decode("ascii"))
    return f'{base}, e.g. "{".".join(labels)}" (check it with your registrar)'
