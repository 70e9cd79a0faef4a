"""Shared fixtures: a real Pebble per test (knobs via ``@pytest.mark.pebble(...)``), the loopback
challenge server, and an :class:`AcmeIssuer` factory wired to them.

Every process a fixture starts is stopped in its teardown; when a test fails, the Pebble log of
that test is attached to the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from renewer import pki
from renewer.adapters.acme_issuer import AcmeIssuer
from renewer.adapters.http_self_check import HttpSelfCheck, SelfCheckPolicy
from renewer.model import IssuedCertificate, KeyType, OrderRequest
from sandbox.challenges import ChallengeHTTPServer, InMemoryChallengeStore
from sandbox.pebble import Pebble, PebbleBinaries, PebbleNotInstalled, PebbleOptions
from tests.support.fakes import InMemoryAccountStore

ORDER_DEADLINE = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pebble(**options): PebbleOptions for this test's Pebble (see sandbox.pebble)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that name no layer are unit tests (the fast default).
    for item in items:
        if not any(item.get_closest_marker(m) for m in ("integration", "e2e")):
            item.add_marker(pytest.mark.unit)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for pebble in getattr(item, "_pebbles", []):
            report.sections.append((f"Pebble log ({pebble.log_path})", pebble.log_tail()))
    return report


@pytest.fixture(scope="session")
def pebble_binaries() -> PebbleBinaries:
    try:
        return PebbleBinaries.locate()
    except PebbleNotInstalled as exc:
        pytest.fail(str(exc))


@dataclass
class AcmeSandbox:
    """One Pebble, the challenge store it validates against, and an account store."""

    pebble: Pebble
    store: InMemoryChallengeStore
    server: ChallengeHTTPServer
    accounts: InMemoryAccountStore = field(default_factory=InMemoryAccountStore)

    def issuer(self, **kwargs: Any) -> AcmeIssuer:
        """An issuer for this Pebble; keyword arguments override the defaults."""
        options: dict[str, Any] = {
            "directory_url": self.pebble.directory_url,
            "accounts": self.accounts,
            "challenges": self.store,
            "ca_bundle": str(self.pebble.ca_bundle),
            "self_check": self.self_check(),
        }
        options.update(kwargs)
        return AcmeIssuer(**options)

    def self_check(self, **policy: Any) -> HttpSelfCheck:
        return HttpSelfCheck(
            port=self.server.port,
            connect_host="127.0.0.1",
            policy=SelfCheckPolicy(**{"tries": 2, "interval": 0.05, **policy}),
        )

    def require_ari(self) -> None:
        if not self.pebble.features.ari:
            pytest.skip(
                f"Pebble {self.pebble.binaries.version} has no renewalInfo (ARI); "
                "Debian sid's 2.10 has it: rm -rf .cache/pebble && make pebble"
            )

    def require_retry_after(self) -> None:
        if not self.pebble.features.retry_after:
            pytest.skip(
                f"Pebble {self.pebble.binaries.version} sends no Retry-After (added in 2.5); "
                "Debian sid's 2.10 does: rm -rf .cache/pebble && make pebble"
            )

    def require_profiles(self) -> None:
        if not self.pebble.features.profiles:
            pytest.skip(
                f"Pebble {self.pebble.binaries.version} has no profiles; "
                "Debian sid's 2.10 has them: rm -rf .cache/pebble && make pebble"
            )


@pytest.fixture
def acme(
    request: pytest.FixtureRequest, tmp_path: Path, pebble_binaries: PebbleBinaries
) -> Iterator[AcmeSandbox]:
    """A fresh Pebble (with this test's ``pebble`` marker options) and its challenge server."""
    marker = request.node.get_closest_marker("pebble")
    store = InMemoryChallengeStore()
    with ChallengeHTTPServer(store) as server:
        options = PebbleOptions(http_port=server.port, **(marker.kwargs if marker else {}))
        pebble = Pebble(tmp_path / "pebble", options, pebble_binaries)
        request.node._pebbles = [*getattr(request.node, "_pebbles", []), pebble]
        with pebble:
            yield AcmeSandbox(pebble, store, server)


@pytest.fixture
def issue() -> Callable[..., IssuedCertificate]:
    """``issue(issuer, names, key_type=..., **order_kwargs)``: order with a fresh key."""

    def _issue(
        issuer: AcmeIssuer,
        names: tuple[str, ...],
        *,
        key_type: KeyType = KeyType.EC_P256,
        deadline: float = ORDER_DEADLINE,
        **order: Any,
    ) -> IssuedCertificate:
        key = pki.generate_private_key(key_type)
        request = OrderRequest(dns_names=names, csr_pem=pki.make_csr(key, names), **order)
        return issuer.issue(request, deadline=time.monotonic() + deadline)

    return _issue
