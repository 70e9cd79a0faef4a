"""Names of everything the renewer creates, derived deterministically. Pure; no I/O.

Deterministic names make every create detectable on a re-run (ARCHITECTURE §3): a run killed
after creating an LB bundle finds it by name next time instead of creating a second one. The
``prefix`` (default ``acme``) marks what this renewer owns: it only ever modifies or deletes
resources whose names carry it (rule 2).
"""

from __future__ import annotations

import re

from renewer.errors import ConfigError
from renewer.untrusted import describe

DEFAULT_PREFIX = "acme"
CHALLENGE_PREFIX = ".well-known/acme-challenge/"
# Always used with fullmatch(): "$" would also match before a trailing newline.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+")
# A certificate's configured name: used inside secret, bundle and object names, so keep it to
# characters every one of them accepts, and short enough for OCI's name limits.
CERT_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,14}")
_HEX = re.compile(r"[0-9a-f]+")
_SERIAL_CHARS = 16


def check_certificate_name(name: str) -> str:
    """``name`` if it is a valid certificate name, else ConfigError saying what is allowed.

    The message describes the value instead of echoing it (it may be a misplaced secret).
    """
    if not CERT_NAME_RE.fullmatch(name):
        msg = (
            f"certificate name ({describe(name)}) is invalid: use 1-40 lower-case letters,"
            " digits and hyphens, starting and ending with a letter or digit (e.g. 'shop-www')"
        )
        raise ConfigError(msg)
    return name


def check_prefix(prefix: str) -> str:
    """``prefix`` if valid, else ConfigError."""
    if not PREFIX_RE.fullmatch(prefix):
        msg = (
            f"name prefix ({describe(prefix)}) is invalid: use 1-15 lower-case letters,"
            " digits and hyphens, starting with a letter"
        )
        raise ConfigError(msg)
    return prefix


def challenge_object(token: str) -> str:
    """Object name of an http-01 key authorization; the token must be base64url."""
    if not TOKEN_RE.fullmatch(token):
        msg = "an ACME http-01 token must match [A-Za-z0-9_-]+; refusing to publish it"
        raise ConfigError(msg)
    return f"{CHALLENGE_PREFIX}{token}"


def secret_name(name: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Vault secret holding every issued version of certificate ``name``."""
    return f"{prefix}-{check_certificate_name(name)}"


def account_secret_name(directory_url: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """Vault secret holding the ACME account for ``directory_url`` (one per CA directory)."""
    host = re.sub(r"[^a-z0-9]+", "-", directory_url.lower().split("://", 1)[-1]).strip("-")
    return f"{prefix}-account-{host}"[:255]


def bundle_name(name: str, serial_hex: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """LB certificate bundle for one issued certificate: ``<prefix>-<name>-<serial16>``.

    LB certificate names allow letters, digits, ``-`` and ``_`` only; the serial's first 16 hex
    digits tell bundles of one certificate apart (ACME CA serials are random, 64+ bits).
    """
    serial = serial_hex.lower()
    if not serial or not _HEX.fullmatch(serial):
        msg = f"serial {serial_hex!r} is not hexadecimal"
        raise ConfigError(msg)
    return f"{prefix}-{check_certificate_name(name)}-{serial[:_SERIAL_CHARS]}"


def owns_bundle(bundle: str, name: str, *, prefix: str = DEFAULT_PREFIX) -> bool:
    """Whether LB bundle ``bundle`` was created by this renewer for certificate ``name``."""
    head = f"{prefix}-{name}-"
    return bundle.startswith(head) and bool(_HEX.fullmatch(bundle[len(head) :]))


def lease_object(name: str) -> str:
    """Object name of the per-certificate lease in the private state bucket."""
    return f"leases/{check_certificate_name(name)}.json"


def state_object(name: str) -> str:
    """Object name of the per-certificate derived state in the private state bucket."""
    return f"state/{check_certificate_name(name)}.json"


def orphan_record_object(name: str) -> str:
    """Object name of the record of a certificate that left the configuration (state bucket).

    Apart from ``state/``: the renewal pipeline rewrites a state object whole, and a record must
    survive until the retirement (renewer.orphans) removes it.
    """
    return f"orphans/{check_certificate_name(name)}.json"


def revocations_object(name: str) -> str:
    """Object name of the revocations recorded for certificate ``name`` (state bucket).

    A durable record (the journal expires): ``rollback`` refuses a revoked version by it.
    """
    return f"revocations/{check_certificate_name(name)}.json"
