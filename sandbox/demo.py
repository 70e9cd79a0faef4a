"""``make demo``: the whole product on one machine — a scheduled renewal, end to end.

What runs (every piece real, nothing mocked):

* **Pebble**, Let's Encrypt's test CA, validating http-01 through the emulated load balancer;
* the **OCI emulator** with a tenancy: a load balancer whose HTTP :80 listener routes
  ``/.well-known/acme-challenge/`` to the token server and whose HTTPS :443 listener serves an
  expiring self-signed certificate; the challenge and state buckets, a vault and key, IAM
  policies enforced (the function and the token server get least privilege only);
* the **token server** reading the challenge bucket with its own resource principal;
* the **real fdk server** running ``func.py`` with the function's resource principal, invoked
  the way ``fn invoke`` does (``POST /call`` on its unix socket with ``Fn-Call-Id`` and
  ``Fn-Deadline``).

What it shows: the served certificate before; invocation 1 (the scheduled run, an empty body)
issues and deploys, and its JSON report as a table; a real TLS handshake with the :443 listener
presenting the new certificate (subject, issuer, serial, expiry); invocation 2 skips with
``NotDue``; the ``status`` action. Then everything it started is stopped. Exit status 0 when
every step behaved as expected.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from renewer import pki
from renewer.cli import render
from renewer.runner import Result
from sandbox.fn_server import FnResponse, FnServer
from sandbox.pebble import PebbleNotInstalled
from sandbox.world import HTTPS_LISTENER, LB_ID, SandboxWorld

NAMES = ("shop.example.com", "www.shop.example.com")


def say(text: str = "") -> None:
    """One line of the demo's story."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> int:
    """Run the demo; 0 when every step behaved as expected."""
    try:
        return _run()
    except PebbleNotInstalled as exc:
        say(f"demo: {exc}")
        return 2


def _run() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="renewer-demo-") as tmp:
        workdir = Path(tmp)
        say("Starting the sandbox: Pebble, the OCI emulator, the token server ...")
        with SandboxWorld(workdir / "world", certificates=NAMES) as world:
            _describe(world)
            before = world.served_certificate(NAMES[0])
            say()
            say(f"Before: https://{NAMES[0]} (listener {HTTPS_LISTENER!r}) serves")
            show_certificate(before)
            with FnServer(workdir / "fn", world.function_environment()) as fn:
                say()
                say(f"The function: fdk {fn.function.name} handler, on {fn.socket_path}")
                ok = _invocations(world, fn, before)
            say()
            say("Stopping the fdk server, the token server, the emulator and Pebble.")
    say(f"Demo {'finished' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s.")
    return 0 if ok else 1


def _describe(world: SandboxWorld) -> None:
    say(f"  Pebble {world.pebble.binaries.version}: {world.pebble.directory_url}")
    say(f"  OCI emulator: {world.emulator.endpoint} (IAM policies enforced)")
    say(f"  load balancer {LB_ID}")
    say(f"    :80  -> 127.0.0.1:{world.lb_port(80)}  challenge path -> the token server")
    say(f"    :443 -> 127.0.0.1:{world.lb_port(443)}  listener {HTTPS_LISTENER!r}")


def _invocations(world: SandboxWorld, fn: FnServer, before: x509.Certificate) -> bool:
    say()
    say("$ fn invoke acme acme-renewer        # what Resource Scheduler sends: an empty body")
    first = _invoke(fn, b"")
    if first is None:
        return False
    certificate = first.document["certificates"][0]
    _show_token_server(world)
    after = world.served_certificate(NAMES[0])
    say()
    say(f"After: a TLS handshake with https://{NAMES[0]} presents")
    show_certificate(after)
    served = pki.normalize_serial(pki.serial_hex(after))
    renewed = certificate["outcome"] == "renewed" and served == pki.normalize_serial(
        certificate["serial"] or ""
    )
    if not renewed or after.serial_number == before.serial_number:
        say("  UNEXPECTED: the listener does not serve the certificate the function reported")
        return False

    say()
    say("$ fn invoke acme acme-renewer        # the next scheduled run")
    second = _invoke(fn, b"")
    if second is None or second.document["certificates"][0]["reason"] != "NotDue":
        say("  UNEXPECTED: the second run was not skipped as NotDue")
        return False

    say()
    say('$ echo \'{"action": "status"}\' | fn invoke acme acme-renewer')
    status = _invoke(fn, json.dumps({"action": "status"}).encode())
    return status is not None


def _invoke(fn: FnServer, body: bytes) -> Result | None:
    started = time.monotonic()
    response: FnResponse = fn.invoke(body)
    elapsed = time.monotonic() - started
    if response.status != 200:  # the FDK answers 200, 502 or 504
        say(f"  HTTP {response.status} after {elapsed:.2f} s: {response.text}")
        say("  the function's log:")
        for line in fn.log().splitlines()[-20:]:
            say(f"    {line}")
        return None
    document = json.loads(response.body)
    say(f"  HTTP 200 after {elapsed:.2f} s, call {response.call_id}")
    for line in render(Result(document)).splitlines():
        say(f"  {line}")
    return Result(document)


def _show_token_server(world: SandboxWorld) -> None:
    """What the token server answered the CA (and the self-check), from its JSON access log."""
    assert world.token_backend is not None  # noqa: S101 - started with the world
    lines = [json.loads(line) for line in world.token_backend.access_log.getvalue().splitlines()]
    challenges = [e for e in lines if str(e.get("path", "")).startswith("/.well-known/")]
    served = sum(1 for e in challenges if e.get("status") == 200)
    say(
        f"  the token server answered {len(challenges)} challenge request(s) through the LB's"
        f" :80 listener, {served} with the key authorization"
    )


def show_certificate(certificate: x509.Certificate) -> None:
    """Subject, issuer, serial, expiry and names, as an operator checks them."""
    not_after = certificate.not_valid_after_utc
    days = (not_after - datetime.now(UTC)).total_seconds() / 86400
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    say(f"  subject  {_cn(certificate.subject)}")
    say(f"  issuer   {_cn(certificate.issuer)}")
    say(f"  serial   {pki.serial_hex(certificate)}")
    say(f"  expires  {not_after:%Y-%m-%d %H:%M} UTC ({days:.1f} days left)")
    say(f"  names    {', '.join(names.value.get_values_for_type(x509.DNSName))}")


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if values:
        return str(values[0].value)
    return name.rfc4514_string() or "(empty: the names are in subjectAltName)"


if __name__ == "__main__":
    sys.exit(main())
