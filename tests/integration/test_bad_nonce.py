"""badNonce with the production defaults (issue 12, class 5).

Pebble's ``PEBBLE_WFE_NONCEREJECT=50`` rejects half of all nonces, the retried requests' too. The
issuer is built exactly as production builds it (no ``bad_nonce_retries`` argument), and at
least 99 of 100 orders must be issued. With 5 retries about one order in ten failed.
"""

from __future__ import annotations

import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from renewer import pki
from renewer.errors import RenewerError
from renewer.model import KeyType, OrderRequest

pytestmark = pytest.mark.integration

ORDERS = 100
REQUIRED = 99


@pytest.mark.pebble(nonce_reject_percent=50)
def test_production_defaults_survive_half_of_all_nonces_rejected(acme, caplog):
    caplog.set_level(logging.DEBUG, logger="renewer.adapters.acme_transport")
    issuer = acme.issuer()  # production defaults: no retry count passed
    tag = secrets.token_hex(4)

    def one(index: int) -> str | None:
        name = f"nonce{index}-{tag}.example.com"
        key = pki.generate_private_key(KeyType.EC_P256)
        request = OrderRequest(dns_names=(name,), csr_pem=pki.make_csr(key, (name,)))
        try:
            issuer.issue(request, deadline=time.monotonic() + 120)
        except RenewerError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(one, range(ORDERS)) if f is not None]

    assert ORDERS - len(failures) >= REQUIRED, failures
    # The CA really did reject nonces (about one request in two): the retries were exercised.
    retries = [r for r in caplog.records if "badNonce retry" in r.getMessage()]
    assert len(retries) > ORDERS * 2
