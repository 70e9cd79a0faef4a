"""Last line of defence before text leaves the function: strip anything shaped like a secret.

Reports and errors are secret-free by contract (``renewer.errors``, ``renewer.report``); what the
operations sinks publish — notification bodies, journal records — goes through :func:`redact`
anyway, because a message e-mailed to a list or kept for 90 days in a bucket is the worst place
for a contract violation to surface. Pure; no I/O.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# PEM blocks of any label (private keys, certificates, CSRs): never useful in a message.
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.DOTALL)
# An http-01 key authorization is "<token>.<thumbprint>", both base64url (RFC 8555 8.1): the
# token is 22+ characters, the SHA-256 thumbprint exactly 43.
_KEY_AUTHORIZATION = re.compile(r"\b[A-Za-z0-9_-]{22,}\.[A-Za-z0-9_-]{43}\b")
# Labelled secrets: "hmacKey=...", "private_key: ..." and the like ("secret" alone is not a
# label: "read the secret: OCI answered 404" is a useful error).
_LABELLED = re.compile(
    r"(?i)\b(hmac[_-]?key|private[_-]?key|password|key[_-]?authorization)"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)


def redact(text: str) -> str:
    """``text`` with PEM blocks, key authorizations and labelled secrets replaced."""
    text = _PEM.sub(REDACTED, text)
    text = _KEY_AUTHORIZATION.sub(REDACTED, text)
    return _LABELLED.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def redact_json(value: object) -> object:
    """A copy of a JSON-like value with :func:`redact` applied to every string in it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(key): redact_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(item) for item in value]
    return value
