"""Every answer of the CA, checked at the boundary before the order logic reads it.

The ``acme`` library's ``from_json`` accepts documents with required fields missing (most fields
are ``omitempty``) and fails with ``TypeError``/``KeyError``/``AttributeError`` on wrong types. A
CA that misbehaves (or a proxy in front of it) must end a run with a typed error, not a crash, so
each reader here parses inside a guard and then checks what RFC 8555 and RFC 9773 require and
the issuer relies on. Failures are :class:`~renewer.errors.CaAnswerInvalid` naming the answer and
the field; messages describe values by their JSON kind, never by quoting them.

Also here: :func:`check_issued`, which refuses a certificate whose public key, names or
validity do not match the order (a CA bug, or an attacker between us and the CA, must never get
a certificate deployed that is not for our key).
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from josepy import errors as jose_errors

from renewer import pki
from renewer.errors import CaAnswerInvalid, ConfigError
from renewer.untrusted import json_kind

# The directory entries the issuer cannot work without (RFC 8555 section 7.1.1).
REQUIRED_DIRECTORY = ("newNonce", "newAccount", "newOrder")
# A certificate may start a little in the future: CAs backdate, clocks differ.
CLOCK_SKEW = timedelta(minutes=10)


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Raise :class:`CaAnswerInvalid` for what a parser of ``what`` raises on a bad shape."""
    try:
        yield
    except CaAnswerInvalid:
        raise
    except (
        jose_errors.DeserializationError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        OverflowError,
    ) as exc:
        msg = f"the CA's {what} is malformed ({type(exc).__name__})"
        raise CaAnswerInvalid(msg) from exc


def _json(response: requests.Response, what: str) -> dict[str, Any]:
    try:
        document = response.json()
    except (ValueError, RecursionError) as exc:  # requests' JSONDecodeError is a ValueError
        msg = f"the CA's {what} is not JSON"
        raise CaAnswerInvalid(msg) from exc
    if not isinstance(document, dict):
        msg = f"the CA's {what} is {json_kind(document)}, not a JSON object"
        raise CaAnswerInvalid(msg)
    return document


def _url(value: object, what: str, field: str) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        msg = f"the CA's {what} has no usable {field!r} URL (found {json_kind(value)})"
        raise CaAnswerInvalid(msg)
    return value


def directory(response: requests.Response) -> messages.Directory:
    """RFC 8555 section 7.1.1: an object with at least newNonce, newAccount and newOrder."""
    document = _json(response, "directory")
    for name in REQUIRED_DIRECTORY:
        _url(document.get(name), "directory", name)
    if not isinstance(document.get("meta", {}), dict):
        msg = f"the CA's directory has a 'meta' that is {json_kind(document['meta'])}"
        raise CaAnswerInvalid(msg)
    with guard("directory"):
        return messages.Directory.from_json(dict(document))


def account_url(location: object) -> str:
    """The account URL from newAccount's ``Location`` (RFC 8555 section 7.3)."""
    return _url(location, "newAccount answer", "Location")


def order(response: requests.Response, what: str = "order") -> messages.Order:
    """An order object (RFC 8555 section 7.1.3) with what the issuer reads from it."""
    document = _json(response, what)
    with guard(what):
        body: messages.Order = messages.Order.from_json(document)
    if body.status is None:
        msg = f"the CA's {what} has no 'status'"
        raise CaAnswerInvalid(msg)
    identifiers = document.get("identifiers")
    if not isinstance(identifiers, list) or not identifiers:
        msg = f"the CA's {what} has no 'identifiers' array (found {json_kind(identifiers)})"
        raise CaAnswerInvalid(msg)
    authorizations = document.get("authorizations")
    if not isinstance(authorizations, list) or not all(
        isinstance(url, str) for url in authorizations
    ):
        msg = (
            f"the CA's {what} has no 'authorizations' array of URLs"
            f" (found {json_kind(authorizations)})"
        )
        raise CaAnswerInvalid(msg)
    for url in authorizations:
        _url(url, what, "authorizations")
    _url(document.get("finalize"), what, "finalize")
    if body.status == messages.STATUS_VALID or "certificate" in document:
        _url(document.get("certificate"), what, "certificate")
    return body


def order_location(response: requests.Response) -> str:
    """The ``Location`` header of newOrder: the order URL (RFC 8555 section 7.4, required)."""
    return _url(response.headers.get("Location"), "newOrder answer", "Location")


def same_identifiers(body: messages.Order, names: Sequence[str], what: str = "order") -> None:
    """The order is for exactly ``names`` (RFC 8555 section 7.4: the CA echoes them)."""
    ordered = {_normal(str(i.value)) for i in body.identifiers}
    wanted = {_normal(n) for n in names}
    if ordered != wanted:
        msg = (
            f"the CA's {what} is for {len(ordered)} other identifier(s) than the"
            f" {len(wanted)} ordered"
        )
        raise CaAnswerInvalid(msg)


def authorization(response: requests.Response) -> messages.Authorization:
    """An authorization object (RFC 8555 section 7.1.4): identifier, status, challenges."""
    document = _json(response, "authorization")
    with guard("authorization"):
        body: messages.Authorization = messages.Authorization.from_json(document)
    if body.identifier is None or not isinstance(getattr(body.identifier, "value", None), str):
        msg = "the CA's authorization has no 'identifier'"
        raise CaAnswerInvalid(msg)
    if body.status is None:
        msg = f"the CA's authorization for {body.identifier.value} has no 'status'"
        raise CaAnswerInvalid(msg)
    if not isinstance(document.get("challenges"), list):
        msg = (
            f"the CA's authorization for {body.identifier.value} has no 'challenges' array"
            f" (found {json_kind(document.get('challenges'))})"
        )
        raise CaAnswerInvalid(msg)
    return body


def chains(texts: Sequence[str]) -> list[str]:
    """Certificate downloads (RFC 8555 section 7.4.2): each a PEM chain, leaf first."""
    for index, text in enumerate(texts):
        what = "certificate download" if index == 0 else f"alternate chain {index}"
        try:
            pki.split_chain(text)
        except ConfigError as exc:
            msg = f"the CA's {what} is not a PEM certificate chain"
            raise CaAnswerInvalid(msg) from exc
    return list(texts)


def answer_date(response: requests.Response) -> datetime | None:
    """The answer's ``Date`` header (RFC 9110 section 6.6.1) as an aware time, None if absent."""
    value = response.headers.get("Date")
    if not isinstance(value, str):
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _aware(when)


def check_issued(
    fullchain_pem: str, csr_pem: bytes, names: Sequence[str], *, now: datetime
) -> x509.Certificate:
    """The leaf of ``fullchain_pem`` is for the CSR's key and ``names``, and valid ``now``.

    ``now`` is the time of issue: the CA's clock when its answer said (see :func:`answer_date`).

    Raises:
        CaAnswerInvalid: ``certificateMismatch``, naming what differs (never the key).

    """
    leaf = pki.split_chain(fullchain_pem)[0]
    csr = x509.load_pem_x509_csr(csr_pem)
    problems = []
    if _spki(leaf.public_key()) != _spki(csr.public_key()):
        problems.append("its public key is not the CSR's")
    got = {_normal(n) for n in pki.dns_names_of(leaf)}
    wanted = {_normal(n) for n in names}
    if got != wanted:
        problems.append(
            f"its names differ from the order ({len(got - wanted)} extra,"
            f" {len(wanted - got)} missing)"
        )
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not_after <= not_before:
        problems.append("its validity does not end after it starts")
    elif not_after <= now:
        problems.append(f"it expired at {not_after.isoformat()}")
    elif not_before > now + CLOCK_SKEW:
        problems.append(f"it is not valid before {not_before.isoformat()}")
    if problems:
        msg = (
            f"the CA issued a certificate (serial {pki.serial_hex(leaf)}) that does not match"
            f" the order: {'; '.join(problems)}; it was not stored or deployed"
        )
        raise CaAnswerInvalid(msg, problem_type="certificateMismatch")
    return leaf


def _spki(public_key: Any) -> bytes:  # noqa: ANN401 - any cryptography public key
    return bytes(
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _normal(name: str) -> str:
    return name.lower().removesuffix(".")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
