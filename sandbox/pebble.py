"""Run Let's Encrypt's test CA (Pebble) and its DNS stand-in on loopback, on free ports.

Used by the pytest fixtures, the demo and the benchmarks. A :class:`Pebble` is a context manager:
it writes a config and a generated TLS certificate into a work directory, starts
``pebble-challtestsrv`` as the DNS server (every name resolves to 127.0.0.1, no AAAA) and
``pebble`` pointed at it, waits until the directory answers, and on exit stops both processes
(terminate, then kill) whatever happened.

Binaries come from ``$PEBBLE_BIN_DIR``, then the project cache filled by
``sandbox/fetch_deb.sh`` (``.cache/pebble/usr/bin``), then ``$PATH``.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from sandbox.net import free_port, wait_for_tcp
from sandbox.tls import TlsFiles, write_server_tls

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_BIN_DIR = PROJECT_ROOT / ".cache" / "pebble" / "usr" / "bin"

# Two profiles shaped like Let's Encrypt's: "default" (90 days) and "shortlived" (160 hours).
DEFAULT_PROFILES: dict[str, tuple[str, int]] = {
    "default": ("The profile you know and love", 90 * 24 * 3600),
    "shortlived": ("A short-lived cert profile", 160 * 3600),
}
BLOCKED_DOMAIN = "blocked.example"


@functools.cache
def _help_text(binary: Path) -> str:
    # Go's flag package prints usage to stderr and exits 2 for -h.
    done = subprocess.run(  # noqa: S603 - our own binary path
        [str(binary), "-h"], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout + done.stderr


class PebbleNotInstalled(RuntimeError):
    """Neither the project cache nor $PATH has the pebble binaries."""


@dataclass(frozen=True, slots=True)
class PebbleBinaries:
    """Where ``pebble`` and ``pebble-challtestsrv`` live, and the package version if known."""

    pebble: Path
    challtestsrv: Path
    version: str

    def at_least(self, major: int, minor: int) -> bool:
        """Whether the package version is at least major.minor (True when unknown)."""
        match = re.match(r"(\d+)\.(\d+)", self.version)
        return match is None or (int(match[1]), int(match[2])) >= (major, minor)

    @classmethod
    def locate(cls) -> PebbleBinaries:
        """Find the binaries (see module docstring).

        Raises:
            PebbleNotInstalled: with the command that installs them.

        """
        candidates = []
        if os.environ.get("PEBBLE_BIN_DIR"):
            candidates.append(Path(os.environ["PEBBLE_BIN_DIR"]))
        candidates.append(CACHE_BIN_DIR)
        for directory in candidates:
            pebble, chall = directory / "pebble", directory / "pebble-challtestsrv"
            if pebble.is_file() and chall.is_file():
                # fetch_deb.sh unpacks into DIR/usr/bin and records DIR/VERSION.
                version_file = directory.parent.parent / "VERSION"
                version = version_file.read_text().strip() if version_file.is_file() else "unknown"
                return cls(pebble, chall, version)
        on_path, chall_on_path = shutil.which("pebble"), shutil.which("pebble-challtestsrv")
        if on_path and chall_on_path:
            return cls(Path(on_path), Path(chall_on_path), "unknown")
        msg = "pebble is not installed: run `make pebble` (or sandbox/fetch_deb.sh pebble DIR)"
        raise PebbleNotInstalled(msg)

    def challtestsrv_dns_flags(self, address: str) -> list[str]:
        """Flags that make challtestsrv serve DNS on ``address`` and nothing else extra.

        The flag was renamed between releases (2.4: ``-dns01``; 2.10: ``-dnsserver``, plus a
        DNS-over-HTTPS listener that must be turned off), so read the binary's own help.
        """
        help_text = _help_text(self.challtestsrv)
        if "-dnsserver" in help_text:
            flags = ["-dnsserver", address]
            return [*flags, "-doh", ""] if "-doh" in help_text else flags
        return ["-dns01", address]


@dataclass(slots=True)
class PebbleOptions:
    """Knobs of one Pebble instance. Defaults give fast, deterministic runs.

    ``nonce_reject_percent`` and ``authz_reuse_percent`` map to PEBBLE_WFE_NONCEREJECT and
    PEBBLE_AUTHZREUSE; ``eab_keys`` (kid -> base64url HMAC key) with ``eab_required`` turns on
    External Account Binding; ``profiles`` (name -> (description, validity seconds)) needs Pebble
    2.10; ``retry_after_authz``/``retry_after_order`` are the Retry-After seconds Pebble sends
    while an authorization or order is pending; ``alternate_roots`` adds alternate chains.
    """

    http_port: int = 0
    nonce_reject_percent: int = 0
    authz_reuse_percent: int = 0
    eab_keys: dict[str, str] = field(default_factory=dict)
    eab_required: bool = False
    profiles: dict[str, tuple[str, int]] | None = field(
        default_factory=lambda: dict(DEFAULT_PROFILES)
    )
    domain_blocklist: tuple[str, ...] = (BLOCKED_DOMAIN,)
    retry_after_authz: int = 0
    retry_after_order: int = 0
    alternate_roots: int = 0
    validity_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class PebbleFeatures:
    """What the running Pebble offers, read from its directory (feature detection, not versions)."""

    ari: bool
    profiles: tuple[str, ...]
    retry_after: bool = True  # Retry-After on pending authorizations/orders (Pebble >= 2.5)


class Pebble:
    """A running Pebble + challtestsrv pair. Use as a context manager.

    Attributes after start: ``directory_url``, ``ca_bundle`` (the CA that signed Pebble's HTTPS
    listener: give it to clients as REQUESTS_CA_BUNDLE), ``management_url``, ``http_port``
    (where Pebble's VA sends http-01 requests), ``log_path``, ``features``.
    """

    def __init__(
        self,
        workdir: Path,
        options: PebbleOptions | None = None,
        binaries: PebbleBinaries | None = None,
    ) -> None:
        self.workdir = workdir
        self.options = options or PebbleOptions()
        self.binaries = binaries or PebbleBinaries.locate()
        self.http_port = self.options.http_port or free_port()
        self.listen_port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port(udp_too=True)
        self.log_path = workdir / "pebble.log"
        self.directory_url = f"https://localhost:{self.listen_port}/dir"
        self.management_url = f"https://localhost:{self.management_port}"
        self.tls: TlsFiles | None = None
        self.features = PebbleFeatures(ari=False, profiles=())
        self._procs: list[subprocess.Popen[bytes]] = []
        self._log: IO[bytes] | None = None
        # challtestsrv's management API (plain HTTP): the TXT records Pebble's VA resolves.
        self.challtestsrv_port = free_port()
        self.challtestsrv_url = f"http://127.0.0.1:{self.challtestsrv_port}"

    @property
    def ca_bundle(self) -> Path:
        """PEM file to trust for Pebble's own HTTPS listener."""
        if self.tls is None:
            msg = "Pebble is not started"
            raise RuntimeError(msg)
        return self.tls.ca_cert

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config, start both processes and wait for the directory (at most 20 s)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = write_server_tls(self.workdir / "tls")
        config = self.workdir / "pebble-config.json"
        config.write_text(json.dumps(self._config(), indent=2))
        self._log = self.log_path.open("ab")
        chall_mgmt = self.challtestsrv_port
        self._spawn(
            [
                str(self.binaries.challtestsrv),
                *self.binaries.challtestsrv_dns_flags(f"127.0.0.1:{self.dns_port}"),
                "-management", f"127.0.0.1:{chall_mgmt}",
                "-http01", "", "-https01", "", "-tlsalpn01", "",
                "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            ],
            env=os.environ.copy(),
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not wait_for_tcp("127.0.0.1", chall_mgmt, timeout=0.2):
            if self._procs[-1].poll() is not None or time.monotonic() > deadline:
                self._fail("pebble-challtestsrv did not start")
        env = os.environ.copy()
        env.update(
            PEBBLE_VA_NOSLEEP="1",
            PEBBLE_WFE_NONCEREJECT=str(self.options.nonce_reject_percent),
            PEBBLE_AUTHZREUSE=str(self.options.authz_reuse_percent),
            PEBBLE_ALTERNATE_ROOTS=str(self.options.alternate_roots),
        )
        self._spawn(
            [
                str(self.binaries.pebble),
                "-config", str(config),
                "-dnsserver", f"127.0.0.1:{self.dns_port}",
            ],
            env=env,
        )  # fmt: skip
        self._wait_for_directory(timeout=20)

    def stop(self) -> None:
        """Stop every process started; safe to call twice."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._procs.clear()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, max_bytes: int = 20_000) -> str:
        """The end of Pebble's and challtestsrv's combined output (for failed-test reports)."""
        if not self.log_path.is_file():
            return ""
        data = self.log_path.read_bytes()
        return data[-max_bytes:].decode("utf-8", "replace")

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting Pebble's listener."""
        return ssl.create_default_context(cafile=str(self.ca_bundle))

    def get_json(self, url: str) -> Any:  # noqa: ANN401 - arbitrary JSON
        """GET a JSON document from Pebble (directory, management API)."""
        with urllib.request.urlopen(url, context=self.ssl_context(), timeout=10) as resp:  # noqa: S310 - https to our own loopback server
            return json.load(resp)

    def root_pems(self) -> list[str]:
        """PEM of every root Pebble may chain to (default root first, then alternates)."""
        roots = []
        for i in range(self.options.alternate_roots + 1):
            url = f"{self.management_url}/roots/{i}"
            with urllib.request.urlopen(url, context=self.ssl_context(), timeout=10) as resp:  # noqa: S310
                roots.append(resp.read().decode("ascii"))
        return roots

    def set_txt(self, name: str, value: str) -> None:
        """Add a TXT value at ``name`` in the DNS Pebble's VA queries (challtestsrv ``/set-txt``).

        Values accumulate per name (challtestsrv keeps a list), as several TXT records of one
        name do in a zone.
        """
        self._challtestsrv("set-txt", {"host": _fqdn(name), "value": value})

    def clear_txt(self, name: str) -> None:
        """Remove every TXT value at ``name`` (challtestsrv ``/clear-txt``)."""
        self._challtestsrv("clear-txt", {"host": _fqdn(name)})

    def replace_txt(self, name: str, values: Sequence[str]) -> None:
        """Make ``values`` the TXT values at ``name`` (what a zone now holds there).

        How the sandbox's OCI DNS zones reach Pebble's VA: the emulator tells the world each
        domain's TXT set after every change (``Dns.add_listener``), and this mirrors it.
        """
        self.clear_txt(name)
        for value in values:
            self.set_txt(name, value)

    def _challtestsrv(self, action: str, body: dict[str, str]) -> None:
        req = urllib.request.Request(  # noqa: S310 - http to our own loopback server
            f"{self.challtestsrv_url}/{action}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            resp.read()

    def set_renewal_info(self, cert_pem: str, window_start: str, window_end: str) -> None:
        """Override the ARI answer for a certificate (Pebble's management API, 2.10+)."""
        body = json.dumps(
            {
                "Certificate": cert_pem,
                "ARIResponse": json.dumps(
                    {"suggestedWindow": {"start": window_start, "end": window_end}}
                ),
            }
        ).encode()
        req = urllib.request.Request(  # noqa: S310
            f"{self.management_url}/set-renewal-info/", data=body, method="POST"
        )
        with urllib.request.urlopen(req, context=self.ssl_context(), timeout=10) as resp:  # noqa: S310
            resp.read()

    def _config(self) -> dict[str, Any]:
        if self.tls is None:
            msg = "TLS files missing"
            raise RuntimeError(msg)
        opts = self.options
        pebble: dict[str, Any] = {
            "listenAddress": f"127.0.0.1:{self.listen_port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.tls.cert),
            "privateKey": str(self.tls.key),
            "httpPort": self.http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": opts.eab_required,
            "domainBlocklist": list(opts.domain_blocklist),
            "retryAfter": {"authz": opts.retry_after_authz, "order": opts.retry_after_order},
            "keyAlgorithm": "ecdsa",
        }
        if opts.eab_keys:
            pebble["externalAccountMACKeys"] = dict(opts.eab_keys)
        if opts.profiles:
            pebble["profiles"] = {
                name: {"description": desc, "validityPeriod": secs}
                for name, (desc, secs) in opts.profiles.items()
            }
        if opts.validity_seconds is not None:
            pebble["certificateValidityPeriod"] = opts.validity_seconds
        return {"pebble": pebble}

    def _spawn(self, argv: list[str], *, env: dict[str, str]) -> None:
        # start_new_session: a Ctrl-C in the test runner must not race our own clean shutdown.
        proc = subprocess.Popen(  # noqa: S603 - argv built from our own paths
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,
        )
        self._procs.append(proc)

    def _wait_for_directory(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self._procs):
                self._fail("a Pebble process exited during start-up")
            try:
                directory = self.get_json(self.directory_url)
            except OSError as exc:
                last_error = exc
                time.sleep(0.05)
                continue
            meta = directory.get("meta", {})
            self.features = PebbleFeatures(
                ari="renewalInfo" in directory,
                profiles=tuple(sorted(meta.get("profiles", {}) or {})),
                retry_after=self.binaries.at_least(2, 5),
            )
            return
        self._fail(f"Pebble directory did not answer within {timeout:.0f} s ({last_error})")

    def _fail(self, why: str) -> None:
        msg = f"{why}; log {self.log_path}:\n{self.log_tail(4000)}"
        raise RuntimeError(msg)


def replaces_accepted(serial_hex: str) -> bool:
    """Whether Pebble can match an RFC 9773 ``replaces`` naming the certificate ``serial_hex``.

    Pebble keys issued certificates by the hex of the serial's unsigned bytes, but a CertID by
    the hex of the bytes it carries — per RFC 9773 the DER INTEGER's content octets, which start
    with 0x00 when the serial's top bit is set. For such a serial Pebble cannot find the order
    and answers ``serverInternal`` (``core.NewCertID`` vs ``ca.hexSerial`` in
    letsencrypt/pebble). Its 63-bit serials hit this about once in 256 (a zero top byte, then a
    set bit); Let's Encrypt's serials never do. The engine then orders without ``replaces``, as
    it should; tests that count replacements ask this first.
    """
    return int(serial_hex, 16).bit_length() % 8 != 0


def _fqdn(name: str) -> str:
    """The name with the root's dot: challtestsrv keys its records by FQDN."""
    return name if name.endswith(".") else f"{name}."
