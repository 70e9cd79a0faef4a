"""``make demo``: the renewal engine end to end on this machine, with a real ACME CA (Pebble).

What it shows, in order:

1. run 1 — the policy finds no certificate (``Missing``), the engine registers an ACME account,
   orders a certificate over http-01 (tokens served from a loopback challenge server, self-checked
   first), and a real TLS handshake with a loopback HTTPS server presents it;
2. run 2 — the policy finds the certificate healthy (``NotDue``): no ACME request is made;
3. run 3 — a forced renewal sends RFC 9773 ``replaces`` (the CA confirms the replacement);
4. every process it started is stopped.

The OCI side (Object Storage challenges, Vault, Load Balancer listeners, the fdk function) is
wired in by the pipeline and function work; this demo runs the engine they build on.
"""

from __future__ import annotations

import socket
import ssl
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from renewer import pki, policy
from renewer.adapters.acme_issuer import AcmeIssuer
from renewer.adapters.http_self_check import HttpSelfCheck
from renewer.model import (
    CertificateSpec,
    CurrentCertificate,
    Decision,
    IssuedCertificate,
    OrderRequest,
)
from renewer.ports import AccountRecord
from sandbox.challenges import ChallengeHTTPServer, InMemoryChallengeStore
from sandbox.pebble import Pebble, PebbleNotInstalled, PebbleOptions

SPEC = CertificateSpec(
    name="shop", dns_names=("shop.example.com", "www.shop.example.com"), profile="default"
)


class FileAccountStore:
    """The ACME account kept in a file between runs (Vault holds it in production)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def load(self, directory_url: str) -> AccountRecord | None:
        """The stored account, if any."""
        del directory_url
        if not self._path.is_file():
            return None
        key_pem, _, url = self._path.read_text().partition("\n--url--\n")
        return AccountRecord(private_key_pem=key_pem, account_url=url.strip() or None)

    def save(self, directory_url: str, record: AccountRecord) -> None:
        """Store the account (owner-only file)."""
        del directory_url
        self._path.write_text(f"{record.private_key_pem}\n--url--\n{record.account_url or ''}")
        self._path.chmod(0o600)


def say(text: str = "") -> None:
    """Print one line of the demo's narration."""
    print(text, flush=True)


def show_decision(run: int, decision: Decision) -> None:
    """Print what the policy decided and why."""
    verdict = "renew" if decision.renew else "skip"
    say(f"run {run}: decision={verdict} reason={decision.reason} — {decision.message}")


def tls_handshake(
    fullchain_pem: str, key_pem: str, name: str, roots: list[str]
) -> x509.Certificate:
    """Serve the certificate on a loopback TLS port and connect to it as a browser would.

    The client verifies the chain against Pebble's roots and the hostname via SNI, so this proves
    the issued chain is complete and valid for ``name``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        chain_path, key_path = Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        chain_path.write_text(fullchain_pem)
        key_path.write_text(key_pem)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(chain_path, key_path)
    client_ctx = ssl.create_default_context(cadata="".join(roots))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_one() -> None:
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname=name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            version = tls.version()
        thread.join(timeout=5)
    if der is None:
        msg = "the TLS server presented no certificate"
        raise RuntimeError(msg)
    say(f"  TLS handshake with {name}: {version}, chain verified against the CA's root")
    return x509.load_der_x509_certificate(der)


def show_certificate(cert: x509.Certificate) -> None:
    """Print what an operator checks on a served certificate."""
    days = (cert.not_valid_after_utc - datetime.now(UTC)).days
    subject = pki.common_name(cert.subject) or "(empty: names are in the SAN only)"
    say(f"  subject: {subject}")
    say(f"  names:   {', '.join(sorted(pki.dns_names_of(cert)))}")
    say(f"  issuer:  {pki.common_name(cert.issuer)}   serial: {pki.serial_hex(cert)}")
    say(f"  expires: {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC ({days} days left)")


def issue(issuer: AcmeIssuer, *, replaces: str | None = None) -> tuple[IssuedCertificate, str]:
    """Order a certificate for SPEC with a fresh key; return it and the key PEM."""
    key = pki.generate_private_key(SPEC.key_type)
    request = OrderRequest(
        dns_names=SPEC.dns_names,
        csr_pem=pki.make_csr(key, SPEC.dns_names),
        profile=SPEC.profile,
        replaces=replaces,
    )
    issued = issuer.issue(request, deadline=time.monotonic() + 60)
    timings = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in issued.timings.items())
    say(f"  issued serial {issued.serial_hex} by order {issued.order_url}")
    say(f"  timings: {timings}")
    return issued, pki.private_key_to_pem(key)


def main() -> int:
    """Run the demo; 0 when every step behaved as expected."""
    try:
        return _run()
    except PebbleNotInstalled as exc:
        say(f"demo: {exc}")
        return 2


def _run() -> int:
    with tempfile.TemporaryDirectory(prefix="renewer-demo-") as tmp:
        workdir = Path(tmp)
        store = InMemoryChallengeStore()
        with (
            ChallengeHTTPServer(store) as server,
            Pebble(workdir / "pebble", PebbleOptions(http_port=server.port)) as pebble,
        ):
            say(f"Pebble {pebble.binaries.version} at {pebble.directory_url}")
            say(
                f"http-01 challenges served from 127.0.0.1:{server.port}; every name resolves there"
            )
            issuer = AcmeIssuer(
                directory_url=pebble.directory_url,
                accounts=FileAccountStore(workdir / "account"),
                challenges=store,
                self_check=HttpSelfCheck(port=server.port, connect_host="127.0.0.1"),
                ca_bundle=str(pebble.ca_bundle),
                contact=("ops@example.com",),
            )
            roots = pebble.root_pems()
            current: CurrentCertificate | None = None

            say()
            decision = policy.decide(spec=SPEC, current=current, now=datetime.now(UTC))
            show_decision(1, decision)
            if not decision.renew:
                return 1
            issued, key_pem = issue(issuer)
            current = pki.describe(issued.fullchain_pem, profile=SPEC.profile)
            show_certificate(tls_handshake(issued.fullchain_pem, key_pem, SPEC.dns_names[0], roots))

            say()
            log_size = len(pebble.log_tail(10_000_000))
            info = issuer.renewal_info(issued.fullchain_pem) if pebble.features.ari else None
            decision = policy.decide(spec=SPEC, current=current, now=datetime.now(UTC), ari=info)
            show_decision(2, decision)
            if decision.renew:
                return 1
            new_requests = pebble.log_tail(10_000_000)[log_size:].count("calling handler()")
            say(f"  ACME requests made by run 2: {new_requests} (only the renewalInfo query)")

            say()
            decision = policy.decide(spec=SPEC, current=current, now=datetime.now(UTC), force=True)
            show_decision(3, decision)
            renewed, key_pem = issue(issuer, replaces=current.ari_cert_id)
            replaced = "is a replacement of" in pebble.log_tail(10_000_000)
            say(f"  CA confirms replacement of serial {current.serial_hex}: {replaced}")
            show_certificate(
                tls_handshake(renewed.fullchain_pem, key_pem, SPEC.dns_names[1], roots)
            )
            if not replaced:
                return 1
    say()
    say("demo finished: Pebble and the challenge server are stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
