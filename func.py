"""OCI Functions entry point: the only module that imports ``fdk``. Wiring only.

The renewal pipeline on OCI (Object Storage, Vault, Load Balancer adapters) is not wired yet, so
every invocation fails loudly (fdk answers 502) instead of pretending to have renewed anything.
"""

from __future__ import annotations

import io

from fdk import context

from renewer.errors import ConfigError


def handler(ctx: context.InvokeContext, data: io.BytesIO | None = None) -> None:
    """Refuse to run until the OCI pipeline exists: a scheduled no-op must never look green."""
    del ctx, data
    raise ConfigError(
        "this build has the ACME engine only; the OCI renewal pipeline is not wired yet"
    )
