"""The example tenancy: what ``make demo``, ``make sandbox`` and ``--seed`` without a file start.

One compartment ``apps``; the renewer's function and the token server's container as resource
principals with least-privilege policies (the statements Terraform writes) and an ``operator``
user in ``Admins``; the challenge and state buckets; a vault with an AES key; a load balancer
whose HTTP :80 listener routes ``/.well-known/acme-challenge/`` to the backend set
``acme-tokens`` and whose HTTPS :443 listener serves a self-signed certificate for
``shop.example.com`` that expires in 5 days; a Notifications topic. It is
:meth:`sandbox.world.SandboxWorld.fixture` — the tests' tenancy — so the example never drifts from
what is tested. The self-signed certificate is made afresh each time (a certificate checked in
would expire).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.net import free_port
from sandbox.world import SandboxWorld

NAMES = ("shop.example.com", "www.shop.example.com")


def example_fixture(token_port: int | None = None) -> dict[str, Any]:
    """The example tenancy's emulator fixture; ``token_port``: where the token server listens.

    Without a port, a free one nobody listens on: the challenge path then answers 502, as a
    load balancer whose backend is down does.
    """
    world = SandboxWorld(Path("example-world"), certificates=NAMES)  # not started: no files
    return world.fixture(free_port() if token_port is None else token_port)
