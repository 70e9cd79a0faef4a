"""One issuance with our engine, as one process: what ``bench/acme_bench.py`` times against peers.

Like ``certbot certonly --standalone``, it serves http-01 itself (an in-memory store behind a
loopback HTTP server on ``--http-port``), registers a fresh account, orders a certificate for
``--names`` and writes ``fullchain.pem`` and ``privkey.pem`` to ``--workdir``. The http-01
self-check is on, as in production. Exit 0 on success, 1 with a one-line reason otherwise.

    REQUESTS_CA_BUNDLE=<pebble ca> python bench/ours_issue.py --directory URL --http-port P \
        --names a.example,b.example --workdir DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from renewer import pki
from renewer.adapters.acme_issuer import AcmeIssuer
from renewer.adapters.http_self_check import HttpSelfCheck
from renewer.errors import RenewerError
from renewer.model import KeyType, OrderRequest
from renewer.ports import AccountRecord
from sandbox.challenges import ChallengeHTTPServer, InMemoryChallengeStore


class _Accounts:
    """A fresh account per process, as the peers get with a fresh config directory."""

    def __init__(self) -> None:
        self._record: AccountRecord | None = None

    def load(self, directory_url: str) -> AccountRecord | None:
        del directory_url
        return self._record

    def save(self, directory_url: str, record: AccountRecord) -> None:
        del directory_url
        self._record = record


def main(argv: list[str] | None = None) -> int:
    """Issue once; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", required=True, help="ACME directory URL")
    parser.add_argument("--http-port", type=int, required=True, help="port the CA fetches")
    parser.add_argument("--names", required=True, help="comma-separated DNS names")
    parser.add_argument("--workdir", type=Path, required=True, help="where to write the PEMs")
    parser.add_argument("--key-type", default=KeyType.EC_P256.value, choices=list(KeyType))
    parser.add_argument("--timeout", type=float, default=90.0, help="order deadline, seconds")
    args = parser.parse_args(argv)

    names = tuple(n.strip() for n in args.names.split(",") if n.strip())
    store = InMemoryChallengeStore()
    with ChallengeHTTPServer(store, port=args.http_port) as server:
        issuer = AcmeIssuer(
            directory_url=args.directory,
            accounts=_Accounts(),
            challenges=store,
            self_check=HttpSelfCheck(port=server.port, connect_host="127.0.0.1"),
            ca_bundle=os.environ.get("REQUESTS_CA_BUNDLE"),
        )
        key = pki.generate_private_key(KeyType(args.key_type))
        request = OrderRequest(dns_names=names, csr_pem=pki.make_csr(key, names))
        try:
            issued = issuer.issue(request, deadline=time.monotonic() + args.timeout)
        except RenewerError as exc:
            print(f"ours_issue: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "fullchain.pem").write_text(issued.fullchain_pem)
    key_path = args.workdir / "privkey.pem"
    key_path.write_text(pki.private_key_to_pem(key))
    key_path.chmod(0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
