"""Contracts between the renewal core and the adapters (``typing.Protocol``s).

Adapters implement these with one SDK family each; tests implement them in memory
(``tests/support/fakes.py``). Every method states its idempotency and not-found behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class ChallengeStore(Protocol):
    """Publishes http-01 key authorizations where the public frontend serves them.

    This is the distributed http-01 solver: whoever initiated the order writes the key
    authorization to shared storage, and any frontend (the token server behind the load balancer)
    serves ``/.well-known/acme-challenge/<token>`` from it.

    ``present`` is idempotent (writing the same token twice is fine). ``clean_up`` must succeed
    when the object is already gone, and must be safe to call after a failed or partial
    ``present``. Tokens reaching these methods have been checked against ``[A-Za-z0-9_-]+``.
    Errors are raised as :class:`renewer.errors.TransientError` or
    :class:`renewer.errors.ConfigError`.
    """

    def present(self, token: str, key_authorization: str) -> None:
        """Publish ``key_authorization`` at ``.well-known/acme-challenge/<token>``."""
        ...

    def clean_up(self, token: str) -> None:
        """Remove what ``present`` published for ``token``; no-op when absent."""
        ...


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An ACME account: its private key (PEM, PKCS#8) and, once registered, its URL (``kid``).

    ``private_key_pem`` is secret: it is left out of ``repr`` and must never be logged.
    """

    private_key_pem: str = field(repr=False)
    account_url: str | None = None


class AccountStore(Protocol):
    """Keeps one ACME account per directory URL, so no run ever registers a second account.

    ``load`` returns None when nothing is stored for the directory. ``save`` replaces what is
    stored for the directory (last writer wins) and is idempotent. The key is saved *before* the
    account is registered, so a run killed between the two re-finds the same account next time.
    """

    def load(self, directory_url: str) -> AccountRecord | None:
        """The account stored for ``directory_url``, or None."""
        ...

    def save(self, directory_url: str, record: AccountRecord) -> None:
        """Store ``record`` for ``directory_url``, replacing what was there."""
        ...


class ChallengeSelfCheck(Protocol):
    """Confirms a published key authorization is reachable the way the CA will fetch it.

    ``verify`` returns when ``http://<dns_name>/.well-known/acme-challenge/<token>`` answers
    with ``key_authorization``; it retries a bounded number of times (never past ``deadline``, a
    ``time.monotonic()`` instant) and then raises :class:`renewer.errors.SelfCheckFailed` naming
    the URL and what came back. It only reads, so it is always safe to call again.
    """

    def verify(self, dns_name: str, token: str, key_authorization: str, *, deadline: float) -> None:
        """Return once the token URL serves ``key_authorization``; raise SelfCheckFailed."""
        ...
